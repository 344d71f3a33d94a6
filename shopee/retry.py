"""Retries with exponential backoff and full jitter.

Delay before retry ``n`` (0-based) is uniform in ``[0, min(max_delay, base_delay * 2**n))``
("full jitter"): replicas that failed together do not retry together. ``sleep`` and
``random`` are injected so tests run without waiting and deterministically.
"""

from __future__ import annotations

import logging
import random as _random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from shopee.errors import RetryableError, ShopeeError

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` extra attempts after the first; delays as described above."""

    max_retries: int
    base_delay: float = 0.5
    max_delay: float = 20.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry counts and delays must not be negative")

    def ceiling(self, retry_number: int) -> float:
        """The largest delay retry ``retry_number`` may wait."""
        # Capping the exponent keeps 2**n finite however many retries are configured.
        exponent: int = min(retry_number, 62)
        return min(self.max_delay, self.base_delay * float(2**exponent))

    def delay(self, retry_number: int, random: Callable[[], float]) -> float:
        """The full-jitter delay before retry ``retry_number``, from ``random()`` in [0, 1)."""
        return self.ceiling(retry_number) * random()

    def worst_case_seconds(self, attempt_seconds: float) -> float:
        """Upper bound of the time all attempts take if each lasts ``attempt_seconds``."""
        waits = sum(self.ceiling(n) for n in range(self.max_retries))
        return (self.max_retries + 1) * attempt_seconds + waits


def is_retryable(exc: ShopeeError) -> bool:
    return isinstance(exc, RetryableError)


def call_with_retries(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    should_retry: Callable[[ShopeeError], bool] = is_retryable,
    sleep: Callable[[float], None] = time.sleep,
    random: Callable[[], float] = _random.random,
) -> T:
    """Run ``attempt`` until it returns, retrying ``ShopeeError``s that ``should_retry``
    accepts at most ``policy.max_retries`` times; the last error propagates unchanged."""
    retry_number = 0
    while True:
        try:
            return attempt()
        except ShopeeError as exc:
            if retry_number >= policy.max_retries or not should_retry(exc):
                raise
            delay = policy.delay(retry_number, random)
            log.warning(
                "%s; retry %d of %d in %.2fs", exc, retry_number + 1, policy.max_retries, delay
            )
            sleep(delay)
            retry_number += 1
