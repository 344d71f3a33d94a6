"""The circuit breaker: closed under scattered poison, open (for good) when poison is most of
what arrives, and never letting the record that opens it through."""

from __future__ import annotations

import pytest

from consumers.breaker import CircuitBreaker


def feed(breaker: CircuitBreaker, outcomes: str) -> list[bool]:
    """Run ``outcomes`` through the breaker as the runtime does (``P`` poison, ``.`` good);
    per record, whether it was let through. A refused poison record is not recorded."""
    passed = []
    for outcome in outcomes:
        if outcome == "P":
            allowed = breaker.allows_dead_letter()
            if allowed:
                breaker.record(True)
            passed.append(allowed)
        else:
            breaker.record(False)
            passed.append(True)
    return passed


@pytest.mark.parametrize(
    "pattern",
    ["..P", ".P", "...PP", ".....P"],
    ids=["one in three", "every other", "two in five", "one in six"],
)
def test_scattered_poison_never_opens_it(pattern: str) -> None:
    # At most half of any stretch of records is poison (half is not "most").
    breaker = CircuitBreaker(window=20, threshold=0.5, min_dead_letters=3)
    assert all(feed(breaker, pattern * 200))
    assert not breaker.open


def test_before_the_window_fills_the_records_seen_so_far_count() -> None:
    breaker = CircuitBreaker(window=100, threshold=0.5, min_dead_letters=3)
    # Three of the first five records poison is most of what this consumer has seen.
    assert feed(breaker, "P.P.P") == [True, True, True, True, False]
    assert breaker.open


def test_a_burst_below_the_minimum_keeps_it_closed() -> None:
    breaker = CircuitBreaker(window=100, threshold=0.5, min_dead_letters=10)
    assert all(feed(breaker, "P" * 9))  # nine poison records in a quiet hour: normal
    assert not breaker.open


def test_poison_that_slid_out_of_the_window_no_longer_counts() -> None:
    breaker = CircuitBreaker(window=10, threshold=0.5, min_dead_letters=3)
    assert all(feed(breaker, "PP" + "." * 10 + "PP" + "." * 10 + "PP"))
    assert not breaker.open


@pytest.mark.parametrize(("window", "minimum"), [(100, 10), (10, 3), (5, 5), (50, 1)])
def test_only_poison_opens_it_at_the_minimum_and_refuses_that_record(
    window: int, minimum: int
) -> None:
    breaker = CircuitBreaker(window=window, threshold=0.5, min_dead_letters=minimum)
    passed = feed(breaker, "P" * (minimum - 1))
    assert all(passed) and not breaker.open
    # The record that would be the minimum-th dead letter opens it and is not let through.
    assert breaker.allows_dead_letter() is False
    assert breaker.open


def test_poison_after_good_records_opens_it_once_it_is_most_of_the_window() -> None:
    breaker = CircuitBreaker(window=10, threshold=0.5, min_dead_letters=3)
    passed = feed(breaker, "." * 10 + "PPPPPP")
    # After 5 poison in the last 10 (5/10 is not more than half) the 6th would be 6/10.
    assert passed == [True] * 10 + [True] * 5 + [False]
    assert breaker.open


def test_once_open_it_stays_open() -> None:
    breaker = CircuitBreaker(window=10, threshold=0.5, min_dead_letters=2)
    assert feed(breaker, "PP") == [True, False]
    assert feed(breaker, "." * 100 + "P") == [True] * 100 + [False]
    assert breaker.open
    assert breaker.allows_dead_letter() is False
