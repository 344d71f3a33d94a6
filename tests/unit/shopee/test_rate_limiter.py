"""Per-partner and per-shop token buckets with an injected clock."""

from __future__ import annotations

import pytest

from shopee.ratelimit import RateLimiter, TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_bucket_allows_a_burst_then_spaces_calls() -> None:
    bucket = TokenBucket.full(rate=2.0, capacity=2.0, now=0.0)
    assert bucket.reserve(0.0) == 0.0
    assert bucket.reserve(0.0) == 0.0
    assert bucket.reserve(0.0) == pytest.approx(0.5)
    assert bucket.reserve(0.0) == pytest.approx(1.0)  # queued behind the previous caller


def test_bucket_refills_with_time_but_not_beyond_capacity() -> None:
    bucket = TokenBucket.full(rate=1.0, capacity=3.0, now=0.0)
    for _ in range(3):
        bucket.reserve(0.0)
    assert bucket.reserve(1.0) == 0.0
    assert bucket.reserve(100.0) == 0.0
    assert bucket.tokens == pytest.approx(2.0)


def test_bucket_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        TokenBucket.full(rate=0, capacity=1, now=0)


def test_shop_limit_applies_per_shop() -> None:
    fake = FakeTime()
    limiter = RateLimiter(100.0, 2.0, clock=fake.clock, sleep=fake.sleep)
    waits = [limiter.acquire(1) for _ in range(4)]
    assert waits[:2] == [0.0, 0.0]
    assert waits[2] > 0
    # Another shop has its own bucket and goes straight through.
    assert limiter.reserve(2) == 0.0


def test_partner_limit_applies_across_shops_and_public_calls() -> None:
    fake = FakeTime()
    limiter = RateLimiter(2.0, 100.0, clock=fake.clock, sleep=fake.sleep)
    assert limiter.reserve(1) == 0.0
    assert limiter.reserve(2) == 0.0
    assert limiter.reserve(None) == pytest.approx(0.5)


def test_sustained_rate_matches_configuration() -> None:
    fake = FakeTime()
    limiter = RateLimiter(1000.0, 5.0, clock=fake.clock, sleep=fake.sleep)
    start = fake.now
    for _ in range(55):
        limiter.acquire(7)
    # 5 in the initial burst, then 5 per second: 50 more take 10 s.
    assert fake.now - start == pytest.approx(10.0)
