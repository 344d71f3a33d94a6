"""Where a consumer's OrderActions are published from: its own thread, or a relay process.

The consumer records every action in its effect's transaction (``consumers.actions``); an
``ActionOutlet`` gets the recorded actions onto the actions topic. Both outlets publish with
``ActionPublisher`` (oldest first, marked published once acknowledged, at least once; on
PostgreSQL, replicas skip each other's rows) and count what they published in the consumer's
``orderflow_order_actions_total``. They differ in where kafka-python's work runs:

* ``InlineOutlet`` publishes on the consumer's thread, after each batch.
* ``RelayProcess`` (what ``orderflow consume`` runs) publishes from a child process. kafka-python
  is pure Python: producing a record costs about as much CPU as decoding an event, so on the
  consumer's thread it would take as long as everything else the consumer does. In a process
  of its own it runs on another core, beside the consumer. The relay is woken after each batch
  and publishes until nothing is left, then waits for the next batch (or a few seconds, for
  actions another replica or an earlier process left). It reports what it published; it stops
  when the consumer closes it (after a last publish) or when the consumer is gone (the pipe
  between them closes), so a killed consumer leaves no relay behind.

Offsets and effects are the consumer's alone: a relay that is slow or down delays actions,
never effects; one that dies is noticed at the next batch and stops the consumer loudly.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import time
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Protocol

from consumers import collector
from consumers.actions import ActionEncoder, ActionPublisher
from consumers.erp.outbox import ActionRecord
from orderflow.db import create_engine
from orderflow.failures import kind_of
from orderflow.kafka import KafkaUnavailable, Producer
from orderflow.logs import configure_logging
from orderflow.metrics import Metrics
from orderflow.settings import Settings
from schemas.codec import AvroCodec
from schemas.models import OrderAction
from schemas.registry import SchemaRegistryClient

log = logging.getLogger(__name__)

# The relay queues up to _RELAY_BATCH actions at a time, then waits for them all. kafka-python
# wakes its I/O thread for every batch it starts or fills, and each wake-up hands the GIL
# over: batches of 1 MiB that linger 50 ms take a whole round of actions per partition
# (a dozen wake-ups per round instead of hundreds). Actions are an audit trail: 50 ms more
# before one is on the topic costs nobody anything. No gzip: compressing ~200-byte records
# cost the relay a twentieth of its CPU for a few kilobytes of network.
_RELAY_PRODUCER: dict[str, Any] = {
    "batch_size": 1024 * 1024,
    "linger_ms": 50,
    "compression_type": None,
}
_RELAY_BATCH = 2000

Published = Counter[tuple[str, str]]
"""Actions published, by kind and outcome."""


class ActionOutlet(Protocol):
    """What the consumer runtime needs of whoever publishes its actions."""

    def committed(self) -> None:
        """Actions were recorded (their transaction committed): publish them soon."""
        ...

    def poll(self) -> None:
        """Count what was published since the last call. Raises what publishing raised
        (``KafkaUnavailable`` is transient: the runtime backs off and calls again), or
        ``RelayFailed`` when publishing stopped for good."""
        ...

    def flush(self, timeout: float = 30.0) -> None:
        """Return once every action recorded before the call is published;
        ``KafkaUnavailable`` when that did not happen within ``timeout`` seconds."""
        ...

    def close(self, timeout: float = 30.0) -> None:
        """Publish what is left, within ``timeout`` seconds if it can, and stop."""
        ...


class RelayFailed(Exception):
    """The relay process is gone, or stopped on an error it cannot retry (not transient: the
    consumer stops loudly and is restarted)."""


def count_published(metrics: Metrics, consumer: str, published: Published) -> None:
    for (kind, outcome), count in published.items():
        metrics.order_actions.labels(consumer, kind, outcome).inc(count)


class InlineOutlet:
    """Publishes on the caller's thread: at the first ``poll`` after actions were recorded
    (and at the first ``poll`` of all, for actions an earlier process left)."""

    def __init__(self, publisher: ActionPublisher, metrics: Metrics, *, consumer: str) -> None:
        self._publisher = publisher
        self._metrics = metrics
        self._consumer = consumer
        self._due = True

    def committed(self) -> None:
        self._due = True

    def poll(self) -> None:
        if self._due:
            # Still due if this raises: the runtime calls again after its backoff.
            count_published(self._metrics, self._consumer, self._publisher.publish_pending())
            self._due = False

    def flush(self, timeout: float = 30.0) -> None:
        self._due = True
        self.poll()

    def close(self, timeout: float = 30.0) -> None:
        try:
            self.flush(timeout)
        except KafkaUnavailable as exc:
            log.warning("%s: actions left unpublished at close: %s", self._consumer, exc)


# -- the relay process ----------------------------------------------------------------------------

# Messages from the consumer: ("wake",), ("flush", token), ("stop",).
# Messages from the relay: ("published", [(kind, outcome, count), ...], produced, errors),
# ("flushed", token), ("failed", reason).


class RelayProcess:
    """An ``ActionRelay`` in a child process, publishing ``consumer``'s actions with the
    database, registry and Kafka of ``settings``. Starts at once; the first publish takes
    whatever earlier processes left."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        consumer: str,
        producer_options: dict[str, Any] | None = None,
    ) -> None:
        self._metrics = metrics
        self._consumer = consumer
        self._topic = settings.topic_actions
        self._flushes = 0
        self._flushed = 0
        self._failure: str | None = None
        # spawn, not fork: the consumer already runs kafka-python's network threads.
        context = multiprocessing.get_context("spawn")
        self._conn, theirs = context.Pipe()
        self._process = context.Process(
            target=run_relay,
            args=(settings, consumer, theirs, _RELAY_PRODUCER | (producer_options or {})),
            name=f"{consumer}-action-relay",
            # A consumer that exits without closing the relay takes it along.
            daemon=True,
        )
        self._process.start()
        theirs.close()  # the relay's end: held only by the relay, so its death shows as EOF
        self._closed = False

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def committed(self) -> None:
        self._send(("wake",))

    def poll(self) -> None:
        while self._receive(0.0):
            pass
        self._check()

    def flush(self, timeout: float = 30.0) -> None:
        self._flushes += 1
        token = self._flushes
        self._send(("flush", token))
        deadline = time.monotonic() + timeout
        while self._flushed < token:
            self._check()
            left = deadline - time.monotonic()
            if left <= 0:
                raise KafkaUnavailable(
                    f"{self._consumer}'s actions were not published within {timeout:.0f}s"
                )
            self._receive(min(left, 1.0))

    def close(self, timeout: float = 20.0) -> None:
        # 20 s: with the consumer's own drain, well inside the usual 30 s grace period.
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):  # already gone: nothing to stop
            self._conn.send(("stop",))
        deadline = time.monotonic() + timeout
        while self._process.is_alive() and time.monotonic() < deadline:
            try:
                self._receive(min(0.5, max(0.0, deadline - time.monotonic())))
            except RelayFailed:
                break
        self._process.join(max(0.0, deadline - time.monotonic()))
        if self._process.is_alive():
            log.warning(
                "%s: the action relay did not stop within %.0fs; its unpublished actions "
                "are published by the next one",
                self._consumer,
                timeout,
            )
            self._process.terminate()
            self._process.join(5.0)
        self._conn.close()

    def _send(self, message: tuple[object, ...]) -> None:
        try:
            self._conn.send(message)
        except OSError as exc:
            self._check()
            raise RelayFailed(f"{self._consumer}'s action relay cannot be reached: {exc}") from exc

    def _receive(self, timeout: float) -> bool:
        """Take one message if one arrives within ``timeout``; whether one did."""
        try:
            if not self._conn.poll(timeout):
                return False
            message = self._conn.recv()
        except (EOFError, OSError):
            self._process.join(5.0)
            raise RelayFailed(self._gone()) from None
        if message[0] == "published":
            _, by_kind, produced, errors = message
            count_published(
                self._metrics,
                self._consumer,
                Counter({(kind, outcome): n for kind, outcome, n in by_kind}),
            )
            # The relay's producer counted these in the relay; /metrics is the consumer's.
            self._metrics.records_produced.labels(self._topic).inc(produced)
            self._metrics.produce_errors.labels(self._topic).inc(errors)
        elif message[0] == "flushed":
            self._flushed = max(self._flushed, int(message[1]))
        elif message[0] == "failed":
            self._failure = str(message[1])
        return True

    def _check(self) -> None:
        if self._failure is not None or not self._process.is_alive():
            self._process.join(5.0)
            raise RelayFailed(self._gone())

    def _gone(self) -> str:
        why = self._failure or f"exit code {self._process.exitcode}"
        return f"{self._consumer}'s action relay stopped ({why})"


class ActionRelay:
    """The relay's loop: publish whenever woken or asked to flush, and every ``idle_seconds``
    (for actions another replica or an earlier process left). A transient failure is retried
    after a backoff; anything else ends the relay (the consumer then stops)."""

    def __init__(
        self,
        publisher: ActionPublisher,
        conn: Connection,
        produced: Callable[[], tuple[float, float]],
        *,
        idle_seconds: float = 5.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self._publisher = publisher
        self._conn = conn
        self._produced = produced  # () -> (records acknowledged, records refused) so far
        self._idle = idle_seconds
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max

    def run(self) -> None:
        flushes: list[int] = []
        stopping = False
        failures = 0
        wait = 0.0  # publish at once what earlier processes left
        reported = self._produced()
        while True:
            try:
                if self._conn.poll(wait):
                    while True:
                        message = self._conn.recv()
                        if message[0] == "flush":
                            flushes.append(int(message[1]))
                        elif message[0] == "stop":
                            stopping = True
                        if not self._conn.poll(0):
                            break
            except (EOFError, OSError):
                log.info("the consumer is gone; the action relay stops")
                return
            try:
                published = self._publisher.publish_pending()
            except Exception as exc:
                if kind_of(exc) != "transient":
                    raise
                if stopping:
                    log.warning("actions left unpublished at stop: %s", exc)
                    return
                failures += 1
                wait = min(self._backoff_max, self._backoff_base * 2**failures)
                log.warning("publishing actions failed: %s; retrying in %.1fs", exc, wait)
                continue
            failures = 0
            produced = self._produced()
            if published or produced != reported:
                by_kind = [(kind, outcome, n) for (kind, outcome), n in published.items()]
                self._conn.send(
                    ("published", by_kind, produced[0] - reported[0], produced[1] - reported[1])
                )
                reported = produced
            for token in flushes:
                self._conn.send(("flushed", token))
            flushes.clear()
            if stopping:
                return
            wait = self._idle


def run_relay(
    settings: Settings, consumer: str, conn: Connection, producer_options: dict[str, Any]
) -> None:
    """The relay process's entry point."""
    # Ctrl-C reaches the whole process group: the consumer stops first, then stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(settings.log_level, settings.log_format)
    metrics = Metrics()
    engine = create_engine(settings.database_url)
    registry = SchemaRegistryClient(settings.schema_registry_url)
    producer: Producer | None = None
    try:
        producer = Producer(settings, metrics, **producer_options)
        topic = settings.topic_actions

        def produced() -> tuple[float, float]:
            r = metrics.registry
            return (
                r.get_sample_value("orderflow_records_produced_total", {"topic": topic}) or 0.0,
                r.get_sample_value("orderflow_produce_errors_total", {"topic": topic}) or 0.0,
            )

        publisher = ActionPublisher(
            ActionRecord(engine),
            producer,
            ActionEncoder(AvroCodec(OrderAction, topic, registry)),
            consumer=consumer,
            batch=_RELAY_BATCH,
        )
        log.info("%s: action relay started", consumer)
        with collector.tuned():
            ActionRelay(publisher, conn, produced).run()
    except BaseException as exc:
        with contextlib.suppress(OSError):  # the consumer may be gone already
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        if producer is not None:
            producer.close()
        registry.close()
        engine.dispose()
        conn.close()
