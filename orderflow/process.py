"""What every long-running orderflow process shares: logging, the stop flag, liveness.

A process's entry point reads its settings once, calls ``start_process``, builds its parts and
then runs ``while not stop.is_set(): run_once()``. SIGTERM and SIGINT only set the flag; the
loop finishes the work in hand, flushes, commits and returns, and the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from orderflow.logs import configure_logging
from orderflow.settings import Settings

log = logging.getLogger(__name__)


class StopFlag:
    """Set once, by a signal or by code; waiting on it doubles as an interruptible sleep."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if the flag was set meanwhile."""
        return self._event.wait(max(0.0, seconds))

    def install(self) -> StopFlag:
        """Set this flag on SIGTERM and SIGINT (main thread only)."""

        def handle(signum: int, _frame: FrameType | None) -> None:
            if self._event.is_set():
                return
            log.info(
                "received %s: finishing the work in hand, then stopping",
                signal.Signals(signum).name,
            )
            self._event.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
        return self


class Heartbeat:
    """Liveness of a main loop: alive while it has beaten within ``max_stall_seconds``.

    A loop that is backing off after a transient failure still beats, so a broker outage
    never makes Kubernetes restart a healthy process; a loop stuck in a call does not.
    """

    def __init__(
        self, max_stall_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_stall = max_stall_seconds
        self._clock = clock
        self._last = clock()

    def beat(self) -> None:
        self._last = self._clock()

    def alive(self) -> bool:
        return self._clock() - self._last <= self._max_stall


def start_process(settings: Settings, name: str) -> StopFlag:
    """Apply the log settings and install the stop flag for process ``name``."""
    configure_logging(settings.log_level, settings.log_format)
    log.info("orderflow %s starting", name)
    return StopFlag().install()
