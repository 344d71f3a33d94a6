"""The sandbox's notion of "now": every expiry, window and schedule reads it from here.

Tests pass a :class:`ManualClock` and move time with :meth:`ManualClock.advance` instead of
sleeping; a running sandbox uses :class:`SystemClock`.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """A source of Unix time in seconds (float, UTC)."""

    def now(self) -> float: ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """Time that moves only when told to; safe to read and move from several threads."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (never backwards) and return the new time."""
        if seconds < 0:
            raise ValueError("a ManualClock only moves forward")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        """Jump to ``now``; it must not be earlier than the current time."""
        with self._lock:
            if now < self._now:
                raise ValueError("a ManualClock only moves forward")
            self._now = float(now)
