"""Exponential backoff with full jitter, driven by injected random and sleep."""

from __future__ import annotations

import pytest

from shopee.errors import AuthError, FinalError, RateLimited, RetryableError, ShopeeError
from shopee.retry import RetryPolicy, call_with_retries


def test_ceiling_doubles_then_caps() -> None:
    policy = RetryPolicy(max_retries=10, base_delay=0.5, max_delay=5.0)
    assert [policy.ceiling(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    policy = RetryPolicy(max_retries=3, base_delay=1.0, max_delay=30.0)
    assert policy.delay(3, lambda: 0.0) == 0.0
    assert policy.delay(3, lambda: 0.5) == 4.0
    assert policy.delay(3, lambda: 0.999) == pytest.approx(7.992)


def test_huge_retry_numbers_stay_finite() -> None:
    assert RetryPolicy(max_retries=5000, max_delay=20.0).ceiling(4999) == 20.0


class Flaky:
    def __init__(self, failures: list[ShopeeError]) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def test_retries_transient_errors_with_the_drawn_delays() -> None:
    slept: list[float] = []
    draws = iter([0.25, 0.5, 1.0 - 1e-9])
    attempt = Flaky([RetryableError("a"), RateLimited("b"), RetryableError("c")])
    result = call_with_retries(
        attempt,
        RetryPolicy(max_retries=3, base_delay=1.0, max_delay=10.0),
        sleep=slept.append,
        random=lambda: next(draws),
    )
    assert result == "ok"
    assert attempt.calls == 4
    assert slept == [0.25, 1.0, pytest.approx(4.0)]


def test_gives_up_after_max_retries_with_the_last_error() -> None:
    slept: list[float] = []
    errors: list[ShopeeError] = [RetryableError(str(n)) for n in range(5)]
    attempt = Flaky(errors)
    with pytest.raises(RetryableError, match="2"):
        call_with_retries(
            attempt, RetryPolicy(max_retries=2), sleep=slept.append, random=lambda: 0.5
        )
    assert attempt.calls == 3
    assert len(slept) == 2


@pytest.mark.parametrize("error", [FinalError("no"), AuthError("token")])
def test_final_and_auth_errors_are_not_retried(error: ShopeeError) -> None:
    slept: list[float] = []
    attempt = Flaky([error])
    with pytest.raises(type(error)):
        call_with_retries(attempt, RetryPolicy(max_retries=5), sleep=slept.append)
    assert attempt.calls == 1
    assert slept == []


def test_zero_retries_means_one_attempt() -> None:
    attempt = Flaky([RetryableError("x")])
    with pytest.raises(RetryableError):
        call_with_retries(attempt, RetryPolicy(max_retries=0), sleep=lambda _: None)
    assert attempt.calls == 1


def test_worst_case_bounds_every_attempt_and_wait() -> None:
    policy = RetryPolicy(max_retries=3, base_delay=1.0, max_delay=3.0)
    assert policy.worst_case_seconds(10.0) == 4 * 10.0 + (1.0 + 2.0 + 3.0)
