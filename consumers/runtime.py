"""The runtime every ``orderflow consume NAME`` process runs: records in, effects out, offsets
committed only once the effects are durable.

One batch:

1. poll up to ``max_batch`` records of the orders topic and decode them; bytes that are not
   an ``OrderEvent`` are poison;
2. hand the decodable records of shops that are not blocked to the handler in one call
   (erp-sync writes them in one transaction). If that call fails with anything but a
   transient error, the records are handled again one at a time, so the failure lands on
   the record it belongs to;
3. per record, by the kind of failure (``orderflow.failures``):
   * **poison** -> the record's bytes go to ``<topic>.dlq.<consumer>`` with ``dlq.*``
     headers (error, original topic/partition/offset, consumer, attempts), and the batch
     moves on;
   * **blocked** (one shop: authorisation gone, daily quota spent) -> the record, and every
     later record of that shop, is parked in the database and the shop is alerted on
     (``orderflow_shop_blocked``); other shops flow. Every ``blocked_retry`` seconds the
     parked records are tried again in order; when they pass, the shop resumes;
   * **transient** (broker, database, registry, Shopee busy) -> what finished is committed,
     the rest is read again after a backoff; ``/healthz`` stays green meanwhile;
   * anything else -> the process crashes loudly (Kubernetes restarts it; nothing
     unfinished was committed);
4. wait for the dead letters' acknowledgements, commit the offsets (at most once per
   ``commit_interval``; at once after a failure, on a rebalance and at a stop), and tell the
   action outlet (``consumers.publishing``) that the handler recorded actions to publish.

A handler that can start a batch and finish it later (``StartingHandler``: erp-sync on
PostgreSQL, whose writes the database does while the consumer waits) has it started in step
2 and finished in the next turn, right after the next batch is polled and decoded: the
consumer's own work and the database's overlap instead of taking turns. Nothing else moves
while a batch is in flight: its records are settled and committed, as above, when it is
finished, before the next batch is started and before parked records are tried; a failure
reads again the batch and what was polled after it; a stop finishes it.

A circuit breaker (``consumers.breaker``) stops the consumer instead of dead-lettering when
most recent records were poison. SIGTERM sets the stop flag; the batch in hand finishes and
commits before the loop returns.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import NoReturn, Protocol, runtime_checkable

from consumers.breaker import CircuitBreaker
from consumers.deadletter import DeadLetters
from consumers.parking import ParkedRecords
from consumers.publishing import ActionOutlet
from orderflow.failures import Blocked, kind_of
from orderflow.kafka import (
    ConsumedRecord,
    KafkaUnavailable,
    Placed,
    next_offsets,
    rewind,
    wait_all,
)
from orderflow.metrics import Metrics
from orderflow.process import Heartbeat, StopFlag
from schemas.codec import AvroCodec, RecordDecodeError
from schemas.models import OrderEvent
from shopee.errors import ShopeeError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One decoded record."""

    record: ConsumedRecord
    event: OrderEvent


class Handler(Protocol):
    """One consumer's effect."""

    name: str

    def handle(self, deliveries: Sequence[Delivery]) -> list[str]:
        """Make the effect of every delivery durable, in order, and say per delivery what
        happened (``applied`` or ``unchanged``). Must be idempotent: a redelivered record
        changes nothing. Raises on failure; the runtime decides by ``kind_of``."""
        ...


@runtime_checkable
class StartingHandler(Handler, Protocol):
    """A handler whose effect can be started and finished later: the runtime reads and
    decodes its next batch while the effect's writes finish (erp-sync on PostgreSQL)."""

    def start(self, deliveries: Sequence[Delivery]) -> Callable[[], list[str]] | None:
        """Start the effect of every delivery; the returned call waits until it is durable
        and returns, or raises, what ``handle`` would. May raise itself. None: this batch
        cannot be started (the runtime calls ``handle``)."""
        ...


@dataclass(frozen=True)
class _Flight:
    """A batch whose effect was started (``StartingHandler.start``) and not finished yet."""

    records: Sequence[ConsumedRecord]
    decoded: list[tuple[ConsumedRecord, OrderEvent | str]]
    remaining: list[Delivery]  # handed to the handler
    finish: Callable[[], list[str]]
    started: float  # time.monotonic()


class RecordSource(Protocol):
    """What the runtime needs of a group member (``orderflow.kafka.Consumer``; tests use an
    in-memory twin)."""

    def poll(
        self, timeout: float = 1.0, max_records: int | None = None
    ) -> list[ConsumedRecord]: ...

    def commit(self, next_offsets: Mapping[tuple[str, int], int], *, wait: bool = True) -> None: ...

    def seek(self, topic: str, partition: int, offset: int) -> None: ...

    def assignment(self) -> set[tuple[str, int]]: ...

    def lag(self) -> dict[tuple[str, int], int]: ...


class PartialFailure(Exception):
    """Raised by a handler that makes effects record by record: the first
    ``len(outcomes)`` deliveries finished (with these outcomes), the next one failed with
    ``cause``, and the rest were not tried. Lets the runtime settle just the failed record
    instead of trying the whole batch again one by one."""

    def __init__(self, outcomes: list[str], cause: Exception) -> None:
        super().__init__(str(cause))
        self.outcomes = outcomes
        self.cause = cause


def handle_each(deliveries: Sequence[Delivery], one: Callable[[Delivery], str]) -> list[str]:
    """``one`` over ``deliveries`` in order, for handlers without a batch effect; a failure
    is raised as a ``PartialFailure`` that says where it happened."""
    outcomes: list[str] = []
    for delivery in deliveries:
        try:
            outcomes.append(one(delivery))
        except Exception as exc:
            raise PartialFailure(outcomes, exc) from exc
    return outcomes


def handle_batched(
    deliveries: Sequence[Delivery],
    batch: Callable[[Sequence[Delivery]], list[str]],
    one: Callable[[Delivery], str],
) -> list[str]:
    """``batch`` over ``deliveries`` (every effect in one transaction: all or none). A
    transient failure propagates (nothing was made durable; the batch is tried again); any
    other is looked for with ``one`` over each delivery in order, as ``handle_each`` does,
    so it lands on the record it belongs to and the records before it finish."""
    try:
        return batch(deliveries)
    except Exception as exc:
        if kind_of(exc) == "transient":
            raise
        log.info("batch of %d failed (%s); handling its records one by one", len(deliveries), exc)
        return handle_each(deliveries, one)


def unwrap(exc: BaseException) -> BaseException:
    """The failure itself, for a ``PartialFailure``; else ``exc``."""
    return exc.cause if isinstance(exc, PartialFailure) else exc


class BreakerOpen(Exception):
    """Too many recent records were poison: stop instead of draining the topic into the DLQ."""


@dataclass
class RuntimeConfig:
    max_batch: int = 500
    poll_timeout: float = 1.0
    blocked_retry: float = 300.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    # How often the database is asked which shops have parked records (another replica,
    # or this process before a restart, may have parked them).
    parked_scan_interval: float = 10.0
    # At most one offset commit per this many seconds (0: after every batch). Effects are
    # durable and idempotent before their offsets are committed, so a longer interval only
    # means more records read again after a crash; a rebalance, a failure and a stop commit
    # at once.
    commit_interval: float = 0.0


def blocked_reason(exc: BaseException) -> str:
    """A short, bounded reason for a blocked shop (an exception class name)."""
    if isinstance(exc, Blocked):
        return exc.reason
    return type(exc).__name__ if isinstance(exc, ShopeeError) else "blocked"


@dataclass
class ConsumerRuntime:
    handler: Handler
    consumer: RecordSource
    codec: AvroCodec[OrderEvent]
    dead_letters: DeadLetters
    parked: ParkedRecords
    actions: ActionOutlet | None
    metrics: Metrics
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    config: RuntimeConfig = field(default_factory=RuntimeConfig)
    clock: Callable[[], float] = time.time
    _blocked: dict[int, tuple[float, str]] = field(default_factory=dict)
    _uncommitted: dict[tuple[str, int], int] = field(default_factory=dict)
    _failures: int = 0
    _next_parked_scan: float = 0.0
    _recorded: bool = False  # effects finished since the outlet was last told
    _last_timestamp_ms: dict[tuple[str, int], int] = field(default_factory=dict)
    _next_commit: float = 0.0  # from when (``clock``) finished offsets are committed
    _flight: _Flight | None = None  # a started batch, finished in the next turn

    def __post_init__(self) -> None:
        # Every series this consumer may report exists from the start, at zero: Prometheus's
        # increase() cannot see a counter's first step from "absent" to 1.
        m, name = self.metrics, self.name
        for outcome in ("applied", "unchanged", "dead_letter", "parked"):
            m.records_consumed.labels(self.codec.topic, name, outcome)
        m.dead_letters.labels(name)
        m.consumer_retries.labels(name)
        m.consumer_breaker_open.labels(name).set(0)
        m.consumer_lag_seconds.labels(name).set(0)
        m.consumer_parked_records.labels(name).set(0)

    @property
    def name(self) -> str:
        return self.handler.name

    # -- the loop -----------------------------------------------------------------------------

    def run(self, stop: StopFlag, heartbeat: Heartbeat | None = None) -> None:
        """Batches until ``stop`` is set. An open breaker stops consuming, but the process
        stays up (alive, not ready, alerting) until a person restarts it after a fix."""
        while not stop.is_set():
            if self.breaker.open:
                stop.wait(1.0)
            else:
                self.run_once(stop)
            if heartbeat is not None:
                heartbeat.beat()
        self.commit_finished()

    def commit_finished(self) -> None:
        """Finish the batch in flight, if any, and commit the offsets of every record
        finished so far, now (at a stop: the group's next member starts after them). A
        transient failure is logged: the records concerned are read again and change
        nothing."""
        try:
            self._land()
        except Exception as exc:
            if kind_of(exc) != "transient":
                raise
            log.warning("%s: could not finish the batch in flight: %s", self.name, exc)
        try:
            self._commit_due(force=True)
        except KafkaUnavailable as exc:
            log.warning("%s: could not commit finished records: %s", self.name, exc)

    def ready(self) -> bool:
        return not self.breaker.open

    def flush_actions(self, timeout: float = 30.0) -> None:
        """Return once the actions of every effect finished so far are published
        (``KafkaUnavailable`` after ``timeout`` seconds)."""
        if self.actions is not None:
            self.actions.committed()
            self._recorded = False
            self.actions.flush(timeout)

    def run_once(self, stop: StopFlag | None = None) -> int:
        """One batch (and due unparking, and action publishing); how many records it
        finished. Transient failures are waited out here; others propagate."""
        try:
            finished = 0
            if self._unparking_due():
                finished += self._land()  # parked records go after the batch in flight
                self._unpark_due()
            # With a batch in flight, take only what was fetched meanwhile: its effect is
            # finished after this poll.
            records = self.consumer.poll(
                0.0 if self._flight else self.config.poll_timeout,
                max_records=self.config.max_batch,
            )
            finished += self._turn(records)
            self._commit_due()  # also when idle: offsets held back by the interval
            if self.actions is not None:
                if self._recorded:
                    self.actions.committed()
                    self._recorded = False
                self.actions.poll()
            self._observe_lag()
        except BreakerOpen as exc:
            self.metrics.consumer_breaker_open.labels(self.name).set(1)
            log.error(
                "%s stopped: %s. Nothing after the last good record was committed; fix the "
                "cause, then restart the consumer (and `orderflow replay` its dead letters)",
                self.name,
                exc,
            )
            return 0
        except Exception as exc:
            if kind_of(exc) != "transient":
                raise
            self._failures += 1
            self.metrics.consumer_retries.labels(self.name).inc()
            delay = min(self.config.backoff_max, self.config.backoff_base * 2**self._failures)
            log.warning("%s: %s; retrying in %.1fs without committing", self.name, exc, delay)
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)
            return 0
        self._failures = 0
        return finished

    def on_revoked(self, partitions: list[tuple[str, int]]) -> None:
        """Rebalance or close: commit what is finished on the partitions going away (what
        the commit interval held back). Sent without waiting: kafka-python runs this on its
        I/O thread, where waiting is refused (``Consumer.commit``). If it is lost, the next
        owner reads those records again, and they change nothing."""
        gone = set(partitions)
        offsets = {tp: offset for tp, offset in self._uncommitted.items() if tp in gone}
        if offsets:
            try:
                self.consumer.commit(offsets, wait=False)
            except KafkaUnavailable as exc:
                log.warning("%s: could not commit before the rebalance: %s", self.name, exc)
        for tp in gone:
            self._uncommitted.pop(tp, None)
            self._last_timestamp_ms.pop(tp, None)
            self.metrics.consumer_lag_records.labels(self.name, str(tp[1])).set(0)

    # -- one batch ----------------------------------------------------------------------------

    def _turn(self, records: Sequence[ConsumedRecord]) -> int:
        """Finish the batch in flight (decoding ``records`` meanwhile), then handle
        ``records``: started, when the handler can, else to the end. How many records
        finished."""
        flight, self._flight = self._flight, None
        try:
            decoded = [(record, self._decode(record)) for record in records]
        except BaseException:
            if flight is not None:
                self._process(flight.records, flight.decoded, flight, also_rewind=records)
            rewind(self.consumer, records)
            raise
        finished = 0
        if flight is not None:
            finished = self._process(flight.records, flight.decoded, flight, also_rewind=records)
        if records:
            self._flight = self._start(records, decoded)
            if self._flight is None:
                finished += self._process(records, decoded)
        return finished

    def _start(
        self,
        records: Sequence[ConsumedRecord],
        decoded: list[tuple[ConsumedRecord, OrderEvent | str]],
    ) -> _Flight | None:
        """Start the effect of the batch, when the handler can (None: it cannot, or the batch
        has nothing for it)."""
        if not isinstance(self.handler, StartingHandler):
            return None
        remaining = self._deliverable(decoded)
        if not remaining:
            return None
        started = time.monotonic()
        try:
            finish = self.handler.start(remaining)
        except Exception as exc:  # noqa: BLE001 - raised when the batch is finished
            finish = _raising(exc)
        if finish is None:
            return None
        return _Flight(records, decoded, remaining, finish, started)

    def _land(self) -> int:
        """Finish the batch in flight, if any; how many records finished."""
        flight, self._flight = self._flight, None
        return 0 if flight is None else self._process(flight.records, flight.decoded, flight)

    def _deliverable(
        self, decoded: list[tuple[ConsumedRecord, OrderEvent | str]]
    ) -> list[Delivery]:
        """The records for the handler: decodable, of shops that are not blocked."""
        return [
            Delivery(record, event)
            for record, event in decoded
            if isinstance(event, OrderEvent) and event.shop_id not in self._blocked
        ]

    def _process(
        self,
        records: Sequence[ConsumedRecord],
        decoded: list[tuple[ConsumedRecord, OrderEvent | str]],
        flight: _Flight | None = None,
        also_rewind: Sequence[ConsumedRecord] = (),
    ) -> int:
        """Handle ``records`` (the ``flight`` they were started in, if any) to the end and
        commit what finished. After a transient failure the unfinished records, and
        ``also_rewind`` (read after them), are read again."""
        started = time.monotonic() if flight is None else flight.started
        done: list[ConsumedRecord] = []
        pending: list[Future[Placed]] = []
        try:
            self._handle(records, decoded, done, pending, flight)
        except BaseException as exc:
            # Keep what finished; whatever failed (and what follows it) is read again.
            try:
                self._commit(records, done, pending, force=True)
            except KafkaUnavailable as commit_failure:
                log.warning("%s: could not commit finished records: %s", self.name, commit_failure)
            # Even when that commit failed: else the unfinished records would be skipped.
            if kind_of(exc) == "transient":
                finished = {id(record) for record in done}
                unfinished = [r for r in records if id(r) not in finished]
                rewind(self.consumer, [*unfinished, *also_rewind])
            raise
        self._commit(records, done, pending)
        self.metrics.consumer_processing_seconds.labels(self.name).observe(
            time.monotonic() - started
        )
        return len(done)

    def _handle(
        self,
        records: Sequence[ConsumedRecord],
        decoded: list[tuple[ConsumedRecord, OrderEvent | str]],
        done: list[ConsumedRecord],
        pending: list[Future[Placed]],
        flight: _Flight | None,
    ) -> None:
        remaining = self._deliverable(decoded) if flight is None else flight.remaining
        started = None if flight is None else flight.finish
        while remaining:
            try:
                if started is not None:
                    finish, started = started, None
                    outcomes = finish()
                else:
                    outcomes = self.handler.handle(remaining)
            except PartialFailure as failure:
                # The handler says where it stopped: keep what finished, settle the failed
                # record by its kind, and hand it the rest (other records of a shop that
                # just got blocked are parked below, in order).
                count = len(failure.outcomes)
                self._finished(remaining[:count], failure.outcomes, done)
                self._failed(remaining[count], failure.cause, done, pending)
                remaining = [
                    d for d in remaining[count + 1 :] if d.event.shop_id not in self._blocked
                ]
            except Exception as exc:
                if kind_of(exc) in ("transient", None):
                    raise
                log.info("%s: batch failed (%s); handling its records one by one", self.name, exc)
                break
            else:
                self._finished(remaining, outcomes, done)
                remaining = []
        # Left: poison, records of blocked shops, and those of a batch that failed as a
        # whole. None shares an order with a record finished above, so each order's records
        # are still handled in order.
        finished = {id(record) for record in done}
        for record, event in decoded:
            if id(record) in finished:
                continue
            if not isinstance(event, OrderEvent):
                self._dead_letter(record, event, pending)
                done.append(record)
            elif event.shop_id in self._blocked:
                self._park(event.shop_id, self._blocked[event.shop_id][1], record)
                done.append(record)
            else:
                self._handle_one(Delivery(record, event), done, pending)

    def _handle_one(
        self, delivery: Delivery, done: list[ConsumedRecord], pending: list[Future[Placed]]
    ) -> None:
        try:
            (outcome,) = self.handler.handle([delivery])
        except Exception as exc:  # noqa: BLE001 - settled by kind; the others re-raised
            self._failed(delivery, unwrap(exc), done, pending)
            return
        self._finished([delivery], [outcome], done)

    def _failed(
        self,
        delivery: Delivery,
        exc: BaseException,
        done: list[ConsumedRecord],
        pending: list[Future[Placed]],
    ) -> None:
        """Settle a record whose effect failed with ``exc``: dead-letter it (poison), park
        it (blocked shop), or raise (transient: retried; anything else: crash)."""
        kind = kind_of(exc)
        if kind == "poison":
            self._dead_letter(delivery.record, f"{type(exc).__name__}: {exc}", pending)
        elif kind == "blocked":
            shop_id = delivery.event.shop_id
            self._block(shop_id, blocked_reason(exc), exc)
            self._park(shop_id, blocked_reason(exc), delivery.record)
        else:
            raise exc
        done.append(delivery.record)

    def _decode(self, record: ConsumedRecord) -> OrderEvent | str:
        """The event, or why the record is poison. An unknown schema id is transient (the
        registry may catch up) and propagates."""
        try:
            return self.codec.decode(record.value or b"")
        except RecordDecodeError as exc:
            self.metrics.decode_errors.labels(record.topic).inc()
            return f"not an OrderEvent: {exc}"

    def _finished(
        self, deliveries: Sequence[Delivery], outcomes: Sequence[str], done: list[ConsumedRecord]
    ) -> None:
        """Note ``deliveries`` as finished with ``outcomes``, counted per outcome."""
        if len(outcomes) != len(deliveries):
            raise ValueError(f"{len(outcomes)} outcomes for {len(deliveries)} deliveries")
        done.extend(delivery.record for delivery in deliveries)
        for _ in deliveries:
            self.breaker.record(False)
        self._recorded = True
        for (topic, outcome), count in Counter(
            (d.record.topic, outcome) for d, outcome in zip(deliveries, outcomes, strict=True)
        ).items():
            self.metrics.records_consumed.labels(topic, self.name, outcome).inc(count)

    def _dead_letter(
        self, record: ConsumedRecord, reason: str, pending: list[Future[Placed]]
    ) -> None:
        if not self.breaker.allows_dead_letter():
            raise BreakerOpen(
                f"more than {self.breaker.threshold:.0%} of the last {self.breaker.window} "
                f"records were poison; the latest, {record.topic}/{record.partition}"
                f"@{record.offset}: {reason}"
            )
        log.error(
            "%s: dead-lettering %s/%d@%d: %s",
            self.name,
            record.topic,
            record.partition,
            record.offset,
            reason,
        )
        pending.append(self.dead_letters.submit(record, reason))
        self.breaker.record(True)
        self.metrics.records_consumed.labels(record.topic, self.name, "dead_letter").inc()

    def _commit(
        self,
        records: Sequence[ConsumedRecord],
        done: Sequence[ConsumedRecord],
        pending: Sequence[Future[Placed]],
        *,
        force: bool = False,
    ) -> None:
        """Commit, per partition, up to the first record of ``records`` not ``done``: records
        finish out of offset order (a batch first, then poison and parked ones), and a
        committed offset must never pass one that did not finish. Without ``force``, only
        once ``config.commit_interval`` passed since the last commit."""
        wait_all(pending, time.monotonic() + 30.0, what="dead letters")
        owned = self.consumer.assignment()
        if len(done) == len(records):  # all of them (the usual case): no gaps to look for
            prefix = next_offsets(records)
        else:
            finished = {(r.topic, r.partition, r.offset) for r in done}
            prefix = _finished_prefix(records, finished)
        for tp, offset in prefix.items():
            if tp in owned:
                self._uncommitted[tp] = offset
        latest: dict[tuple[str, int], int] = {}
        for record in done:
            tp = (record.topic, record.partition)
            if record.timestamp_ms > latest.get(tp, 0):
                latest[tp] = record.timestamp_ms
        for tp, timestamp_ms in latest.items():
            self._last_timestamp_ms[tp] = max(self._last_timestamp_ms.get(tp, 0), timestamp_ms)
        self._commit_due(force)

    def _commit_due(self, force: bool = False) -> None:
        if not self._uncommitted:
            return
        now = self.clock()
        if not force and now < self._next_commit:
            return
        self.consumer.commit(self._uncommitted)
        self._uncommitted = {}
        self._next_commit = now + self.config.commit_interval

    def _observe_lag(self) -> None:
        now_ms = self.clock() * 1000
        oldest = 0.0
        for (topic, partition), lag in self.consumer.lag().items():
            self.metrics.consumer_lag_records.labels(self.name, str(partition)).set(lag)
            last = self._last_timestamp_ms.get((topic, partition))
            if lag and last:
                # The next unprocessed record was written after the last processed one:
                # this bounds how far behind the consumer is.
                oldest = max(oldest, (now_ms - last) / 1000)
        self.metrics.consumer_lag_seconds.labels(self.name).set(oldest)

    # -- blocked shops ------------------------------------------------------------------------

    def _block(self, shop_id: int, reason: str, exc: BaseException | None = None) -> None:
        if shop_id not in self._blocked:
            log.error(
                "%s: shop %d is blocked (%s); parking its records until it can be served: %s",
                self.name,
                shop_id,
                reason,
                exc,
            )
        elif self._blocked[shop_id][1] != reason:
            # Blocked for another reason now: the old reason's alert must not stay up.
            self.metrics.shop_blocked.labels(
                self.name, str(shop_id), self._blocked[shop_id][1]
            ).set(0)
        self._blocked[shop_id] = (self.clock() + self.config.blocked_retry, reason)
        self.metrics.shop_blocked.labels(self.name, str(shop_id), reason).set(1)

    def _park(self, shop_id: int, reason: str, record: ConsumedRecord) -> None:
        self.parked.park(shop_id, reason, [record], int(self.clock()))
        self.metrics.records_consumed.labels(record.topic, self.name, "parked").inc()

    def _unparking_due(self) -> bool:
        now = self.clock()
        return now >= self._next_parked_scan or any(
            now >= until for until, _ in self._blocked.values()
        )

    def _unpark_due(self) -> None:
        now = self.clock()
        if now >= self._next_parked_scan:
            self._next_parked_scan = now + self.config.parked_scan_interval
            for shop_id, reason in self.parked.shops().items():
                # Parked before a restart, or by another replica: try at once.
                self._blocked.setdefault(shop_id, (now, reason))
            self.metrics.consumer_parked_records.labels(self.name).set(self.parked.count())
        for shop_id, (until, reason) in list(self._blocked.items()):
            if now >= until:
                self._drain(shop_id, reason)

    def _drain(self, shop_id: int, reason: str) -> None:
        """Handle the shop's parked records in order; the shop resumes when none is left,
        and stays blocked when one is still refused."""
        while True:
            rows = self.parked.take(shop_id)
            if not rows:
                del self._blocked[shop_id]
                self.metrics.shop_blocked.labels(self.name, str(shop_id), reason).set(0)
                log.info("%s: shop %d can be served again (was %s)", self.name, shop_id, reason)
                return
            for row in rows:
                pending: list[Future[Placed]] = []
                event = self._decode(row.record)
                try:
                    if isinstance(event, OrderEvent):
                        self._handle_parked(Delivery(row.record, event), pending)
                    else:
                        self._dead_letter(row.record, event, pending)
                except Exception as exc:
                    kind = kind_of(exc)
                    if kind == "transient":
                        # Try this shop again soon; the other shops' records keep flowing.
                        retry = min(self.config.blocked_retry, self.config.backoff_max)
                        self._blocked[shop_id] = (self.clock() + retry, reason)
                        log.warning("%s: shop %d's parked records: %s", self.name, shop_id, exc)
                        return
                    if kind != "blocked":
                        raise
                    self._block(shop_id, blocked_reason(exc), exc)
                    return
                wait_all(pending, time.monotonic() + 30.0, what="dead letters")
                self.parked.delete([row.id])
                self._recorded = True

    def _handle_parked(self, delivery: Delivery, pending: list[Future[Placed]]) -> None:
        try:
            (outcome,) = self.handler.handle([delivery])
        except Exception as exc:  # noqa: BLE001 - only poison is settled; the rest re-raised
            cause = unwrap(exc)
            if kind_of(cause) != "poison":
                raise cause from None
            self._dead_letter(delivery.record, f"{type(cause).__name__}: {cause}", pending)
            return
        self.breaker.record(False)
        self.metrics.records_consumed.labels(delivery.record.topic, self.name, outcome).inc()


def _raising(exc: Exception) -> Callable[[], NoReturn]:
    def finish() -> NoReturn:
        raise exc

    return finish


def _finished_prefix(
    records: Sequence[ConsumedRecord], finished: set[tuple[str, int, int]]
) -> dict[tuple[str, int], int]:
    """Per partition, the offset after the longest run of finished records from the start
    of ``records`` (partitions with none finished are left out)."""
    by_partition: dict[tuple[str, int], list[int]] = {}
    for record in records:
        by_partition.setdefault((record.topic, record.partition), []).append(record.offset)
    prefix: dict[tuple[str, int], int] = {}
    for (topic, partition), offsets in by_partition.items():
        for offset in sorted(offsets):
            if (topic, partition, offset) not in finished:
                break
            prefix[(topic, partition)] = offset + 1
    return prefix
