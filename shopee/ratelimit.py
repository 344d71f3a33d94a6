"""Client-side rate limiting: one token bucket for the partner, one per shop.

Shopee publishes no numbers, only ``error_rate_limit`` errors and hints that limits exist per
partner and per shop, so both rates come from configuration. A call takes a token from the
partner bucket and from its shop's bucket (public calls only from the partner bucket) and
waits until both have one.

Buckets reserve: a call that cannot go now takes its token anyway and is told how long to
wait, so concurrent callers queue in arrival order instead of racing for the next token.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class TokenBucket:
    """``rate`` tokens per second, at most ``capacity`` saved up. Not thread-safe alone."""

    rate: float
    capacity: float
    tokens: float
    updated_at: float

    @classmethod
    def full(cls, rate: float, capacity: float, now: float) -> TokenBucket:
        if rate <= 0 or capacity < 1:
            raise ValueError("a bucket needs rate > 0 and capacity >= 1")
        return cls(rate=rate, capacity=capacity, tokens=capacity, updated_at=now)

    def reserve(self, now: float) -> float:
        """Take one token at ``now``; the seconds to wait before using it (0 if none)."""
        elapsed = max(0.0, now - self.updated_at)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated_at = max(self.updated_at, now)
        self.tokens -= 1.0
        if self.tokens >= 0:
            return 0.0
        return -self.tokens / self.rate


class RateLimiter:
    """Per-partner and per-shop token buckets; ``acquire`` blocks until a call may go.

    ``clock`` is monotonic seconds and ``sleep`` waits; both are injected so tests control
    time. Bursts are one second's worth of calls (at least one).
    """

    def __init__(
        self,
        partner_per_second: float,
        shop_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._shop_rate = shop_per_second
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._partner = TokenBucket.full(partner_per_second, max(1.0, partner_per_second), clock())
        self._shops: dict[int, TokenBucket] = {}

    def reserve(self, shop_id: int | None) -> float:
        """Take a token for a call (for ``shop_id``, or a public call if None); the seconds
        to wait before sending it."""
        with self._lock:
            now = self._clock()
            wait = self._partner.reserve(now)
            if shop_id is not None:
                bucket = self._shops.get(shop_id)
                if bucket is None:
                    bucket = TokenBucket.full(self._shop_rate, max(1.0, self._shop_rate), now)
                    self._shops[shop_id] = bucket
                wait = max(wait, bucket.reserve(now))
            return wait

    def acquire(self, shop_id: int | None) -> float:
        """Wait until a call may go; returns the seconds waited."""
        wait = self.reserve(shop_id)
        if wait > 0:
            self._sleep(wait)
        return wait
