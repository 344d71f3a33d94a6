"""Facts about the Kafka adapter that do not need a broker."""

from __future__ import annotations

from collections.abc import Callable

from kafka.record import util

from orderflow.kafka import _WakeupGate


def test_record_checksums_use_the_native_crc32c() -> None:
    # Without the crc32c package kafka-python checksums every batch in pure Python
    # (tens of microseconds per record): a dependency, not an optimisation to lose silently.
    assert util.crc32c_c is not None


class _SenderTwin:
    """kafka-python's Sender as far as the wake-up gate sees it: ``wakeup`` and the client's
    ``poll``, which blocks (in the test: is suspended) until ``timeout_ms`` or a wake-up."""

    def __init__(self) -> None:
        self.wakeups = 0
        self.polls: list[float | None] = []
        self._client = self
        self.while_polling: Callable[[], None] = lambda: None

    def wakeup(self) -> None:
        self.wakeups += 1

    def poll(self, timeout_ms: float | None = None, future: object = None) -> None:
        self.polls.append(timeout_ms)
        self.while_polling()


def _gated(linger_ms: float = 5) -> tuple[_SenderTwin, Callable[[], None]]:
    sender = _SenderTwin()
    _WakeupGate.install(sender, linger_seconds=linger_ms / 1000)
    return sender, sender.wakeup


def test_a_new_batch_wakes_the_io_thread_when_it_is_awake_or_asleep_for_long() -> None:
    sender, wakeup = _gated()
    wakeup()  # awake (not in poll): it may already have chosen a long sleep
    assert sender.wakeups == 1
    sender.while_polling = wakeup
    sender._client.poll(timeout_ms=300_000)  # asleep until a metadata refresh
    sender._client.poll(timeout_ms=None)  # asleep without a deadline
    assert sender.wakeups == 3


def test_a_new_batch_does_not_wake_an_io_thread_that_looks_again_within_a_linger() -> None:
    sender, wakeup = _gated(linger_ms=5)
    sender.while_polling = wakeup
    sender._client.poll(timeout_ms=3)  # due back before the new batch is due
    sender._client.poll(timeout_ms=0)
    assert sender.wakeups == 0
    sender.while_polling = lambda: None
    wakeup()  # back from poll: awake again
    assert sender.wakeups == 1
    assert sender.polls == [3, 0]
