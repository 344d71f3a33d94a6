"""The webhook's Kafka writes, from a process of their own.

kafka-python is pure Python: appending a record, building produce requests and running
each acknowledgement's callbacks cost the webhook about as much CPU as its HTTP handling,
on the same interpreter lock, while the machine's other core idled (``docs/performance.md``).
``WriterProcess`` moves the producer into a child process: the webhook hands it each record
(key, framed value, headers) and answers the push once the child reports the broker's
acknowledgement. Records and acknowledgements travel over one pipe in batches, so the
webhook pays a few microseconds per push for them instead of the producer's work.

Nothing acknowledged is lost and nothing is acknowledged early: a push is answered 200 only
after the child saw the broker acknowledge its record. If the child dies, every record it
held fails (the webhook answers 503 and Shopee retries), ``enqueue`` refuses new ones, and
the webhook stops so that Kubernetes restarts it. The child stops when the webhook closes it
(after flushing) or when the webhook is gone (the pipe closes), so a killed webhook leaves
no writer behind; what it held was never acknowledged to Shopee.

Messages, webhook -> child: ``("records", [(id, topic, key, value, headers), ...])``,
``("stop",)``. Child -> webhook: ``("ready",)``, ``("acks", [(id, outcome), ...], counts)``
with outcome ``(partition, offset)`` or an error text, and counts the producer's metrics
since the last message; ``("failed", reason)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from orderflow.kafka import Headers, KafkaUnavailable, Outcome, Producer
from orderflow.logs import configure_logging
from orderflow.metrics import Metrics
from orderflow.settings import Settings

log = logging.getLogger(__name__)

_Record = tuple[int, str, bytes | None, bytes, Headers]
_Counts = tuple[dict[str, float], dict[str, float], float]  # produced, errors by topic; renewals


class WriterProcess:
    """A ``Producer`` in a child process, with ``Producer.enqueue``'s contract: ``on_done``
    is called once with where the record landed or with the ``KafkaUnavailable`` saying why
    it did not. On an event loop (the webhook's), outcomes are read by the loop itself
    (``add_reader``): no thread waits for the interpreter lock between an acknowledgement
    and its push, which under load added milliseconds to every answer. Elsewhere a reader
    thread calls ``on_done``. The child's producer metrics are added to ``metrics`` as they
    arrive."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        warm_up: str,
        producer_options: dict[str, Any] | None = None,
        on_lost: Callable[[], None] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self._metrics = metrics
        self._on_lost = on_lost  # the child died while in use
        self._lock = threading.Lock()
        self._waiting: dict[int, Callable[[Outcome], None]] = {}
        self._ids = itertools.count()
        self._outgoing: list[_Record] = []
        self._wake = threading.Event()
        self._failure: str | None = None
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: threading.Thread | None = None
        # spawn, not fork: this process already runs kafka-python's and uvicorn's threads.
        context = multiprocessing.get_context("spawn")
        self._conn, theirs = context.Pipe()
        self._process = context.Process(
            target=run_writer,
            args=(settings, theirs, warm_up, producer_options or {}),
            name="webhook-kafka-writer",
            daemon=True,  # a webhook that exits without closing it takes it along
        )
        self._process.start()
        theirs.close()  # the child's end: held only by the child, so its death shows as EOF
        self._await_ready(start_timeout)
        # Records go out from a thread of their own: a pipe write never blocks the loop.
        self._sender = threading.Thread(target=self._send_loop, name="writer-send", daemon=True)
        self._sender.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def _await_ready(self, timeout: float) -> None:
        try:
            if not self._conn.poll(timeout):
                self._process.kill()
                raise KafkaUnavailable(f"the Kafka writer process did not start in {timeout:.0f}s")
            message = self._conn.recv()
        except (EOFError, OSError):
            self._process.join(5)
            message = ("failed", f"exit code {self._process.exitcode}")
        if message[0] != "ready":
            self._process.kill()
            raise KafkaUnavailable(f"the Kafka writer process did not start: {message[1]}")

    def enqueue(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes,
        headers: Headers | None = None,
        on_done: Callable[[Outcome], None],
    ) -> None:
        if self._loop is None and self._reader is None:
            self._start_reading()
        with self._lock:
            if self._failure is not None:
                raise KafkaUnavailable(f"could not queue a record for {topic}: {self._failure}")
            record_id = next(self._ids)
            self._waiting[record_id] = on_done
            self._outgoing.append((record_id, topic, key, value, headers or []))
            first = len(self._outgoing) == 1
        if first:
            # The send thread takes every record queued until it runs: one pipe write per
            # batch, not per push.
            self._wake.set()

    def _start_reading(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            reader = threading.Thread(target=self._read_loop, name="writer-acks", daemon=True)
            self._reader = reader
            reader.start()
            return
        loop.add_reader(self._conn.fileno(), self._readable)
        self._loop = loop

    def _send_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                batch, self._outgoing = self._outgoing, []
                closing = self._closing
            try:
                if batch:
                    self._conn.send(("records", batch))
                if closing:
                    self._conn.send(("stop",))
                    return
            except OSError as exc:
                self._lost(f"the Kafka writer process cannot be reached: {exc}")
                return

    def _readable(self) -> None:
        """The loop's reader: every message that arrived."""
        try:
            while self._conn.poll(0):
                self._received(self._conn.recv())
        except (EOFError, OSError):
            if self._loop is not None:
                self._loop.remove_reader(self._conn.fileno())
            self._gone()

    def _read_loop(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                self._gone()
                return
            self._received(message)

    def _gone(self) -> None:
        self._process.join(5)
        self._lost(f"the Kafka writer process stopped (exit code {self._process.exitcode})")

    def _received(self, message: tuple[Any, ...]) -> None:
        if message[0] == "failed":
            self._lost(f"the Kafka writer process failed: {message[1]}")
            return
        _, acks, (produced, errors, renewals) = message
        for topic, n in produced.items():
            self._metrics.records_produced.labels(topic).inc(n)
        for topic, n in errors.items():
            self._metrics.produce_errors.labels(topic).inc(n)
        if renewals:
            self._metrics.producer_renewals.inc(renewals)
        with self._lock:
            settled = [(self._waiting.pop(record_id, None), outcome) for record_id, outcome in acks]
        for on_done, outcome in settled:
            if on_done is not None:
                on_done(outcome if isinstance(outcome, tuple) else KafkaUnavailable(outcome))

    def _lost(self, reason: str) -> None:
        """Fail every record still held, refuse new ones, and (unless closing) say so."""
        with self._lock:
            first = self._failure is None
            self._failure = self._failure or reason
            waiting, self._waiting = self._waiting, {}
            closing = self._closing
        for on_done in waiting.values():
            on_done(KafkaUnavailable(reason))
        if first and not closing:
            log.error("%s; %d records not acknowledged", reason, len(waiting))
            if self._on_lost is not None:
                self._on_lost()

    def close(self, timeout: float = 10.0) -> None:
        """Flush what was queued (within ``timeout`` seconds if it can) and stop the child."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._wake.set()
        self._process.join(timeout)
        if self._process.is_alive():
            log.warning("the Kafka writer process did not stop within %.0fs", timeout)
            self._process.kill()
            self._process.join(5)
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop runs in another thread
                self._loop.remove_reader(self._conn.fileno())
        if self._reader is not None:
            self._reader.join(5)
        self._conn.close()


def stop_this_process() -> None:
    """What the webhook does when its writer is lost: stop as SIGTERM stops it (uvicorn
    answers what is in flight, here with 503), so that Kubernetes starts it again."""
    os.kill(os.getpid(), signal.SIGTERM)


# -- the child ------------------------------------------------------------------------------------


class _Acks:
    """Outcomes reported by the producer's I/O thread, sent to the webhook in batches."""

    def __init__(self, conn: Connection, metrics: Metrics) -> None:
        self._conn = conn
        self._metrics = metrics
        self._lock = threading.Lock()
        self._ready: list[tuple[int, tuple[int, int] | str]] = []
        self.wake = threading.Event()
        self._reported: _Counts = ({}, {}, 0.0)

    def done(self, record_id: int) -> Callable[[Outcome], None]:
        def settle(outcome: Outcome) -> None:
            wire = outcome if isinstance(outcome, tuple) else str(outcome)
            with self._lock:
                self._ready.append((record_id, wire))
                first = len(self._ready) == 1
            if first:
                self.wake.set()

        return settle

    def run(self, stopped: threading.Event) -> None:
        """Send outcomes as they arrive; return once ``stopped`` (set after the producer's
        last callback ran) and everything is sent."""
        while True:
            self.wake.wait(0.5)
            self.wake.clear()
            stopping = stopped.is_set()
            with self._lock:
                batch, self._ready = self._ready, []
            try:
                if batch:
                    self._conn.send(("acks", batch, self._counts()))
            except OSError:
                return  # the webhook is gone: nobody waits for these any more
            if stopping and not batch:
                return

    def _counts(self) -> _Counts:
        """The producer's counters since the last report."""
        produced = _by_topic(self._metrics, "orderflow_records_produced_total")
        errors = _by_topic(self._metrics, "orderflow_produce_errors_total")
        renewals = self._metrics.registry.get_sample_value(
            "orderflow_kafka_producer_renewals_total"
        )
        now: _Counts = (produced, errors, renewals or 0.0)
        before = self._reported
        self._reported = now
        return (
            {t: n - before[0].get(t, 0.0) for t, n in produced.items()},
            {t: n - before[1].get(t, 0.0) for t, n in errors.items()},
            now[2] - before[2],
        )


def _by_topic(metrics: Metrics, name: str) -> dict[str, float]:
    return {
        sample.labels["topic"]: sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == name
    }


def run_writer(
    settings: Settings, conn: Connection, warm_up: str, producer_options: dict[str, Any]
) -> None:
    """The child's entry point."""
    # Signals are the webhook's: it stops this process through the pipe, after its own drain.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_logging(settings.log_level, settings.log_format)
    metrics = Metrics()
    producer: Producer | None = None
    try:
        producer = Producer(settings, metrics, **producer_options)
        producer.warm_up(warm_up)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        if producer is not None:
            producer.close()
        raise
    acks = _Acks(conn, metrics)
    # Everything built so far (modules, the producer) out of the collector's way, as the
    # webhook does with its own heap: a full collection over it stalled every record in
    # flight for a few hundred milliseconds (webhook p99 at 500/s: 258 ms).
    gc.collect()
    gc.freeze()
    stopped = threading.Event()
    sender = threading.Thread(target=acks.run, args=(stopped,), name="writer-acks", daemon=True)
    conn.send(("ready",))
    sender.start()
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                log.info("the webhook is gone; its Kafka writer stops")
                return
            if message[0] == "stop":
                break
            records: list[_Record] = message[1]
            for record_id, topic, key, value, headers in records:
                done = acks.done(record_id)
                try:
                    producer.enqueue(topic, key=key, value=value, headers=headers, on_done=done)
                except KafkaUnavailable as exc:
                    done(exc)
    finally:
        # Flushes: every record queued is acknowledged or failed before this returns.
        producer.close()
        stopped.set()
        acks.wake.set()
        sender.join(30)
        conn.close()
