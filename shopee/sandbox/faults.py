"""Request-level fault injection: error rates per API, latency, and a per-shop rate limit.

The decisions are pure functions (:func:`error_rate_for`, :func:`pick_fault`,
:func:`window_allows`, :func:`applies_effect`, :func:`failure_seen`); :class:`FaultInjector`
holds the seeded generators and the rate-limit windows and is safe to share between request
threads. Push faults (drop, duplicate, reorder) are applied by
:class:`~shopee.sandbox.pushes.PushOutbox`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping, Sequence

from shopee.sandbox.config import FaultConfig, FaultKind, seeded_random
from shopee.sandbox.errors import ShopeeApiError

RATE_LIMIT_MESSAGE = "Too many requests. You have reached the rate limit. Please try again later."


_AFTER_EFFECT_PREFIX = "effect_then_"


def applies_effect(kind: FaultKind) -> bool:
    """Whether a request drawing ``kind`` is processed (its effect applied) before it fails."""
    return kind.startswith(_AFTER_EFFECT_PREFIX)


def failure_seen(kind: FaultKind) -> str:
    """What the caller gets: an envelope error (``error_server``, ...), a bare ``http_500``
    or ``http_502``, ``disconnect`` (the connection closes mid-answer) or ``timeout`` (no
    answer at all)."""
    return kind.removeprefix(_AFTER_EFFECT_PREFIX)


def fault_error(kind: str) -> ShopeeApiError | None:
    """The envelope a failure the caller sees (:func:`failure_seen`) answers with; None when
    there is no envelope (a bare transport error, a dropped connection, no answer)."""
    if kind == "error_server":
        return ShopeeApiError("error_server", "System error. Please try again later.")
    if kind == "error_system_busy":
        return ShopeeApiError(
            "error_system_busy", "Our system is taking some time to respond, please try later."
        )
    if kind == "error_rate_limit":
        return ShopeeApiError("error_rate_limit", RATE_LIMIT_MESSAGE)
    return None


def api_name(path: str) -> str:
    """``/api/v2/order/get_order_list`` -> ``order.get_order_list``."""
    return path.removeprefix("/api/v2/").strip("/").replace("/", ".")


def error_rate_for(rates: Mapping[str, float], path: str) -> float:
    """The configured error rate for ``path``; the most specific matching key wins."""
    name = api_name(path)
    for key in (path, f"v2.{name}", name, name.rsplit(".", 1)[-1], "*"):
        if key in rates:
            return rates[key]
    return 0.0


def pick_fault(
    rate: float, kinds: Sequence[FaultKind], roll: float, choice: float
) -> FaultKind | None:
    """With ``roll`` and ``choice`` uniform in [0, 1): a fault with probability ``rate``,
    the kind chosen uniformly from ``kinds``."""
    if not kinds or roll >= rate:
        return None
    return kinds[min(int(choice * len(kinds)), len(kinds) - 1)]


def window_allows(window: deque[float], now: float, limit: int) -> bool:
    """Sliding one-second window: admit (and record) ``now`` if fewer than ``limit``
    requests were admitted in the last second."""
    while window and window[0] <= now - 1.0:
        window.popleft()
    if len(window) >= limit:
        return False
    window.append(now)
    return True


class FaultInjector:
    """The live fault settings plus the state their decisions need."""

    def __init__(self, faults: FaultConfig, seed: int) -> None:
        self._lock = threading.Lock()
        self._faults = faults
        self._fault_rng = seeded_random(seed, "api-faults")
        self._latency_rng = seeded_random(seed, "latency")
        self._windows: dict[str, deque[float]] = {}

    @property
    def config(self) -> FaultConfig:
        with self._lock:
            return self._faults

    def configure(self, faults: FaultConfig) -> None:
        with self._lock:
            self._faults = faults
            self._windows.clear()

    def latency_seconds(self) -> float:
        with self._lock:
            faults = self._faults
            jitter = self._latency_rng.uniform(0, faults.latency_jitter_ms)
        return (faults.latency_ms + jitter) / 1000.0

    def injected_fault(self, path: str) -> FaultKind | None:
        with self._lock:
            faults = self._faults
            rate = error_rate_for(faults.error_rates, path)
            if rate <= 0:
                return None
            roll, choice = self._fault_rng.random(), self._fault_rng.random()
        return pick_fault(rate, faults.error_kinds, roll, choice)

    def admit(self, key: str, now: float) -> bool:
        """Whether the rate limit lets a request for ``key`` (shop or partner) through now."""
        with self._lock:
            limit = self._faults.rate_limit_per_second
            if limit is None:
                return True
            window = self._windows.setdefault(key, deque())
            return window_allows(window, now, limit)
