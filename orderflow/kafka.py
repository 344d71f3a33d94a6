"""The only module that touches kafka-python, which ships no type information.

Everything else in orderflow sees these small typed wrappers: a producer that waits for
acks=all from an idempotent producer, a consumer that never commits on its own, and an
admin client that creates topics idempotently.
"""

from __future__ import annotations

import logging
import math
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

import kafka
import kafka.errors
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.partitioner.default import DefaultPartitioner
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import Counter

from orderflow.metrics import Metrics
from orderflow.settings import Settings

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


_FAILED_FOR_GOOD = (
    kafka.errors.AuthorizationError,
    kafka.errors.UnsupportedVersionError,
    kafka.errors.UnsupportedForMessageFormatError,
)
"""Transactional producer failures that a new producer would meet again."""


class KafkaUnavailable(Exception):
    """The broker could not be reached or did not acknowledge in time (transient)."""


class ProducerFenced(Exception):
    """Another process took over this producer's transactional id, or this member's group
    generation is gone: this instance must stop writing (not transient: crash and restart)."""


def client_config(settings: Settings) -> dict[str, Any]:
    """Connection settings shared by producers, consumers and the admin client."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers.split(","),
        "client_id": settings.kafka_client_id,
        "security_protocol": settings.kafka_security_protocol,
        # kafka-python's default grows the wait between reconnects to 30 s: a client came
        # back 13 s after a 35 s broker outage had ended (1 s cap: 0.2 s), and an idempotent
        # producer whose batches expire meanwhile never writes again (docs/reliability.md).
        "reconnect_backoff_max_ms": 1000,
    }
    if settings.kafka_sasl_mechanism:
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        password = settings.kafka_sasl_password
        config["sasl_plain_password"] = password.get_secret_value() if password else None
    if settings.kafka_ssl_cafile:
        config["ssl_cafile"] = settings.kafka_ssl_cafile
    return config


class ConsumedRecord(NamedTuple):
    """One record as a consumer read it. A named tuple: one is made per record polled, and a
    tuple is made in a third of a frozen dataclass's time."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Mapping[str, bytes] = MappingProxyType({})
    timestamp_ms: int = 0

    def header(self, name: str) -> str | None:
        raw = self.headers.get(name)
        return None if raw is None else raw.decode("utf-8", "replace")


Placed = tuple[int, int]
"""Where the broker put a record: (partition, offset)."""

Outcome = Placed | KafkaUnavailable
"""What became of a queued record: where it landed, or why it did not."""


def settler(future: Future[Placed]) -> Callable[[Outcome], None]:
    """An ``on_done`` for ``Producer.enqueue`` that settles ``future`` with the outcome."""

    def settle(outcome: Outcome) -> None:
        # A caller that gave up may have cancelled its future; the record still landed.
        if future.set_running_or_notify_cancel():
            if isinstance(outcome, KafkaUnavailable):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    return settle


class Producer:
    """An idempotent, acks=all producer.

    ``send``/``send_many`` return only once the broker acknowledged every record they were
    given, or raise ``KafkaUnavailable`` when it did not within one deadline. ``submit`` hands
    back a future instead, for callers that wait on their own terms (the webhook's event
    loop). No call blocks longer than ``max_block_ms`` before its record is queued.
    """

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        linger_ms: int = 5,
        max_block_ms: int = 5000,
        transactional_id: str | None = None,
        transaction_timeout_ms: int = 20000,
        **overrides: Any,
    ) -> None:
        self._metrics = metrics
        # Each record's acknowledgement counts under its topic; looking the labelled series
        # up once per topic keeps that off the I/O thread's path.
        self._produced: dict[str, Counter] = {}
        config = client_config(settings) | {
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": linger_ms,
            # Bounds how long send() may wait for metadata or buffer space; without it a
            # broker outage would block the caller for a minute.
            "max_block_ms": max_block_ms,
            "compression_type": "gzip",
            "max_in_flight_requests_per_connection": 5,
            "request_timeout_ms": 15000,
            "delivery_timeout_ms": 30000,
            # kafka-python's own sensors (rates, averages per batch and per request) are
            # read by nothing here, orderflow.metrics is what operators see, yet recording
            # them costs the I/O thread more than building the batch.
            "metrics_enabled": False,
        }
        if transactional_id is not None:
            config["transactional_id"] = transactional_id
            # A process that dies mid-transaction holds back read_committed readers of its
            # partitions until the broker aborts it: keep that stall short.
            config["transaction_timeout_ms"] = transaction_timeout_ms
        config.update(overrides)
        self._config = config
        self._is_transactional = transactional_id is not None
        self._renewal_lock = threading.Lock()
        self._renewing = False
        self._closing = threading.Event()
        self._step_timeout_ms = max(transaction_timeout_ms, int(config["request_timeout_ms"]))
        self._replace_transactional = False
        self._producer = self._create()
        # enqueue's way into self._producer, made again when a renewal replaced it.
        self._direct: _DirectAppend | None = None

    def _create(self) -> Any:
        try:
            producer = kafka.KafkaProducer(**self._config)
            _WakeupGate.install(producer._sender, linger_seconds=self._config["linger_ms"] / 1000)
            if self._is_transactional:
                # Aborts whatever a previous incarnation with this id left open.
                producer.init_transactions()
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailable(f"cannot create a Kafka producer: {exc}") from exc
        manager = producer._transaction_manager
        if manager is not None and not self._is_transactional:
            self._watch_producer_id(producer, manager)
        return producer

    # -- renewal of a wedged idempotent producer (kafka-python internals) --------------------

    def _watch_producer_id(self, producer: Any, manager: Any) -> None:
        """Replace ``producer`` once it drops its producer id.

        kafka-python 3.0 drops the id when a batch it had already sent expires (a broker
        outage longer than ``delivery_timeout_ms``) but stays in state READY, and only asks
        for a new id from UNINITIALIZED: its I/O thread then waits for an id forever and no
        record is ever sent again (docs/reliability.md, "kafka-python defects"). A new producer
        gets a new id; what the old one still held fails, so its callers retry as after any
        unacknowledged write.
        """
        reset = manager.reset_producer_id

        def reset_and_renew() -> None:
            reset()
            self._lost_producer_id(producer)

        manager.reset_producer_id = reset_and_renew

    def _lost_producer_id(self, wedged: Any) -> None:
        # Runs on the wedged producer's I/O thread: hand the work to a thread of its own.
        with self._renewal_lock:
            if self._renewing or wedged is not self._producer or self._closing.is_set():
                return
            self._renewing = True
        log.warning(
            "the Kafka producer lost its producer id after a sent batch expired;"
            " replacing it (records it still holds fail and are retried by their callers)"
        )
        threading.Thread(
            target=self._renew, args=(wedged,), name="kafka-producer-renewal", daemon=True
        ).start()

    def _renew(self, wedged: Any) -> None:
        _force_close(wedged)
        delay = 0.5
        while True:
            try:
                fresh = self._create()
                break
            except KafkaUnavailable as exc:
                log.warning("no new Kafka producer yet (%s); retrying in %.1f s", exc, delay)
                if self._closing.wait(delay):
                    with self._renewal_lock:
                        self._renewing = False
                    return
                delay = min(delay * 2, 5.0)
        with self._renewal_lock:
            closing = self._closing.is_set()
            if not closing:
                self._producer = fresh
            self._renewing = False
        if closing:
            _force_close(fresh)
            return
        self._metrics.producer_renewals.inc()
        log.info("a new Kafka producer replaced the one that lost its producer id")

    # -- transactions (only with a transactional_id) ------------------------------------------
    #
    # kafka-python waits for a transaction step's answer without a timeout: when the node
    # coordinating the transaction dies mid-step the request may never be re-sent, and the
    # process hangs for good (seen when a cluster's leader was SIGKILLed during a commit).
    # So the steps are driven here with a bound; a step not answered in time replaces the
    # producer by one with the same transactional id, which fences the old one and aborts
    # the open transaction unless the broker already had its commit request. The caller
    # sees KafkaUnavailable and retries the batch, as after any commit whose answer it lost.

    def begin_transaction(self) -> None:
        if self._replace_transactional:
            self._producer = self._create()
            self._replace_transactional = False
            self._metrics.producer_renewals.inc()
            log.info("a new transactional Kafka producer replaced the one that stopped answering")
        self._transactional(self._producer.begin_transaction)

    def commit_transaction(
        self, next_offsets: Mapping[tuple[str, int], int], consumer: Consumer
    ) -> None:
        """Commit the records sent since ``begin_transaction`` together with ``consumer``'s
        offsets (the offset of the next record to read, per topic and partition): both or
        neither become visible."""

        def commit() -> None:
            manager = self._producer._transaction_manager
            if next_offsets:
                added = manager.send_offsets_to_transaction(
                    _offsets(next_offsets), consumer.group_metadata()
                )
                self._await(added, "adding the consumer's offsets to the transaction")
            self._await(manager.begin_commit(), "committing the transaction")

        self._transactional(commit)

    def abort_transaction(self) -> None:
        """Drop what was sent since ``begin_transaction``; read_committed readers never see
        it. Safe to call after a failed commit."""
        if self._replace_transactional:
            return  # the replacement's initialisation settles it
        try:
            self._transactional(
                lambda: self._await(
                    self._producer._transaction_manager.begin_abort(), "aborting the transaction"
                )
            )
        except KafkaUnavailable as exc:
            log.warning("could not abort the transaction (%s); the broker will time it out", exc)

    def _await(self, result: Any, what: str) -> None:
        """Wait for a transaction step's answer (its error is raised) for at most the
        transaction timeout: after that the broker aborts the transaction anyway."""
        self._producer._sender.wakeup()
        if result.wait(timeout_ms=self._step_timeout_ms):
            return
        self._replace_transactional = True
        _force_close(self._producer)
        raise KafkaUnavailable(
            f"{what}: no answer within {self._step_timeout_ms / 1000:.0f}s; the producer is"
            " replaced by one with the same transactional id (the transaction commits only if"
            " the broker had the commit request; otherwise it is aborted)"
        )

    def _transactional(self, step: Callable[[], object]) -> None:
        try:
            step()
        except (kafka.errors.ProducerFencedError, kafka.errors.InvalidProducerEpochError) as exc:
            raise ProducerFenced(f"this producer was fenced: {exc}") from exc
        except (kafka.errors.KafkaError, AssertionError) as exc:
            if not self._fatal():
                raise KafkaUnavailable(f"transaction step failed: {exc}") from exc
            # kafka-python's transaction manager never leaves FATAL_ERROR. When the cause is
            # this process's (not authorised, a broker too old), a new producer would fail
            # the same way: crash. kafka-python also ends there when a coordinator merely
            # timed out a request (Java retries those): a new producer with the same id
            # then carries on, as a restarted process would.
            cause = self._producer._transaction_manager.last_error
            if isinstance(cause, _FAILED_FOR_GOOD):
                raise ProducerFenced(f"the transactional producer failed for good: {exc}") from exc
            self._replace_transactional = True
            _force_close(self._producer)
            raise KafkaUnavailable(
                f"transaction step failed ({exc}); the producer is replaced by one with the"
                " same transactional id (the transaction commits only if the broker had the"
                " commit request; otherwise it is aborted)"
            ) from exc

    def _fatal(self) -> bool:
        manager = self._producer._transaction_manager
        return manager is not None and manager._current_state.name == "FATAL_ERROR"

    def enqueue(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes,
        headers: Headers | None = None,
        on_done: Callable[[Outcome], None],
    ) -> None:
        """Queue one record; ``on_done`` is called once with where it landed when the broker
        acknowledged it, or with the ``KafkaUnavailable`` saying why it will not be. It runs
        on the producer's I/O thread (on the caller's when kafka-python fails the record at
        once), so it must be quick and thread-safe. ``KafkaUnavailable`` is raised instead
        when the record cannot even be queued.

        The webhook's path: no ``concurrent.futures.Future`` (a lock and a condition each)
        per record, and the caller decides how outcomes reach its own thread.
        """
        if self._renewing:
            self._metrics.produce_errors.labels(topic).inc()
            raise KafkaUnavailable(
                f"could not queue a record for {topic}: the Kafka producer is being replaced"
            )
        producer = self._producer
        direct = self._direct
        if direct is None or not direct.serves(producer):
            direct = self._direct = _DirectAppend(producer)
        try:
            raw = direct.send(topic, key, value, headers or [])
        except (kafka.errors.KafkaError, AssertionError) as exc:
            self._metrics.produce_errors.labels(topic).inc()
            raise KafkaUnavailable(f"could not queue a record for {topic}: {exc}") from exc
        produced = self._produced.get(topic)
        if produced is None:
            produced = self._produced[topic] = self._metrics.records_produced.labels(topic)

        def acknowledged(metadata: Any) -> None:
            produced.inc()
            on_done((int(metadata.partition), int(metadata.offset)))

        def failed(exc: BaseException) -> None:
            self._metrics.produce_errors.labels(topic).inc()
            error = KafkaUnavailable(f"broker did not acknowledge a record on {topic}: {exc}")
            error.__cause__ = exc
            on_done(error)

        raw.add_callback(acknowledged)
        raw.add_errback(failed)

    def submit(
        self, topic: str, *, key: bytes | None, value: bytes, headers: Headers | None = None
    ) -> Future[Placed]:
        """Queue one record; the future resolves to where it landed once acknowledged, or
        fails with ``KafkaUnavailable``."""
        result: Future[Placed] = Future()
        self.enqueue(topic, key=key, value=value, headers=headers, on_done=settler(result))
        return result

    def send(
        self,
        topic: str,
        *,
        key: bytes,
        value: bytes,
        headers: Headers | None = None,
        timeout: float = 30.0,
    ) -> Placed:
        """Write one record and wait for the acknowledgement; returns (partition, offset)."""
        return self.send_many(topic, [(key, value, headers or [])], timeout=timeout)[0]

    def send_many(
        self,
        topic: str,
        records: Sequence[tuple[bytes, bytes, Headers]],
        *,
        timeout: float = 30.0,
    ) -> list[Placed]:
        """Write records in order and wait, against one deadline, until every one of them is
        acknowledged. Other threads' records are neither flushed nor waited for."""
        deadline = time.monotonic() + timeout
        futures = [
            self.submit(topic, key=key, value=value, headers=headers)
            for key, value, headers in records
        ]
        return wait_all(futures, deadline, what=f"records on {topic}")

    def reachable(self, max_age_seconds: float = 30.0) -> bool:
        """True while the broker has answered a metadata request within ``max_age_seconds``
        (what ``/readyz`` reports). Asks for a fresh answer once the last one is a third of
        that old, so an idle process stays ready and a lost broker shows within the age.

        kafka-python's ``bootstrap_connected`` only says whether bootstrapping is still in
        progress, so the producer's own metadata is read instead (kafka-python internals,
        kept to this one method).
        """
        metadata = self._producer._metadata
        age_ms = time.monotonic() * 1000 - metadata._last_successful_refresh_ms
        if age_ms > max_age_seconds * 1000 / 3:
            metadata.request_update()
            self._producer._sender.wakeup()
        return bool(age_ms <= max_age_seconds * 1000)

    def warm_up(self, topic: str, timeout: float = 10.0) -> int:
        """Fetch ``topic``'s metadata now, so the first ``submit`` does not wait for it;
        returns its partition count."""
        try:
            partitions = self._producer.partitions_for(topic)
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailable(f"no metadata for topic {topic}: {exc}") from exc
        if not partitions:
            raise KafkaUnavailable(f"topic {topic} does not exist; run `orderflow topics`")
        return len(partitions)

    def close(self, timeout: float = 10.0) -> None:
        self._closing.set()
        if self._replace_transactional:
            return  # closed when it stopped answering; no replacement was made yet
        with self._renewal_lock:
            producer = self._producer
            renewing = self._renewing
        if renewing:
            return  # the old producer is force-closed by the renewal, which stops on _closing
        try:
            producer.flush(timeout=timeout)
        except kafka.errors.KafkaError as exc:
            log.warning("records still unacknowledged at close: %s", exc)
            # KafkaProducer.close flushes again and would raise the same error, leaving
            # its I/O thread running.
            _force_close(producer)
            return
        producer.close(timeout=timeout)


def _force_close(producer: Any, timeout: float = 5.0) -> None:
    """Stop ``producer`` without sending what it still holds: every record it has not yet
    had acknowledged fails (its callback sees ``KafkaUnavailable``). Errors are logged, not
    raised: a half-dead producer must not take its owner down with it."""
    try:
        producer._sender.force_close()
        producer._sender.join(timeout)
        producer.close(timeout=0)
    except Exception as exc:  # noqa: BLE001
        log.warning("closing a Kafka producer: %s", exc)


class _DirectAppend:
    """``KafkaProducer.send`` for one producer without the work its records do not need
    (kafka-python internals, kept to this class).

    Per record, ``send`` checks every header, calls the serializers (there are none),
    builds the set of every known topic twice and the topic's sorted partition list once,
    and formats the producer's name for a debug line that is not logged: on the webhook's
    path, more than the append itself. Here a keyed record for a topic whose partitions are
    known takes the partition ``send`` would give it (the default partitioner: murmur2 of
    the key over the sorted partitions, as Java's client, so every producer of a topic keeps
    an order's records on one partition), is appended to the same accumulator and wakes the
    I/O thread when ``send`` would. Anything else (no key, unknown topic, a transactional or
    closed producer, another partitioner, a record near the size limit) goes through
    ``send`` itself.
    """

    # Room for the batch and record framing around key, value and headers: a record this
    # far below max_request_size cannot be the one send() refuses as too large.
    _FRAMING_ALLOWANCE = 1024

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self._metadata = producer._metadata
        self._accumulator = producer._accumulator
        self._size_limit = int(producer.config["max_request_size"]) - self._FRAMING_ALLOWANCE
        manager = producer._transaction_manager
        self._usable = type(producer.config["partitioner"]) is DefaultPartitioner and not (
            manager is not None and manager.is_transactional()
        )
        # topic -> (the metadata's partition map it was sorted from, its partitions in order)
        self._partitions: dict[str, tuple[object, list[TopicPartition]]] = {}

    def serves(self, producer: Any) -> bool:
        return producer is self._producer

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> Any:
        """Queue one record; the ``FutureRecordMetadata`` that ``send`` would return."""
        producer = self._producer
        partitions = self._partitions_of(topic) if self._usable else None
        if (
            key is None
            or partitions is None
            or producer._closed
            or len(key) + len(value) + sum(len(n) + len(v) for n, v in headers) > self._size_limit
        ):
            return producer.send(topic, key=key, value=value, headers=headers)
        tp = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]  # as DefaultPartitioner
        future, batch_is_full, new_batch_created, _ = self._accumulator.append(
            tp, None, key, value, headers
        )
        if batch_is_full or new_batch_created:
            producer._sender.wakeup()  # through the _WakeupGate, as from send()
        return future

    def _partitions_of(self, topic: str) -> list[TopicPartition] | None:
        # A metadata update replaces each topic's partition map; the cached order is kept
        # only while its map is the current one.
        current = self._metadata._partitions.get(topic)
        if not current or topic in self._metadata.internal_topics:
            return None
        cached = self._partitions.get(topic)
        if cached is None or cached[0] is not current:
            cached = (current, [TopicPartition(topic, p) for p in sorted(current)])
            self._partitions[topic] = cached
        return cached[1]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (Java's ``Utils.murmur2``, kafka-python's
    ``kafka.partitioner.default.murmur2``): the same value, in half the time (whole 32-bit
    words unpacked at once, instead of each byte masked and shifted in Python)."""
    m = 0x5BD1E995
    length = len(data)
    h = 0x9747B28C ^ length
    for k in struct.unpack_from(f"<{length >> 2}I", data):
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = length & ~3
    rest = length & 3
    if rest >= 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


class _WakeupGate:
    """Spares kafka-python's I/O thread the wake-ups it does not need (kafka-python internals,
    kept to this class).

    ``send`` wakes the I/O thread whenever a record opens a new batch, i.e. for nearly every
    record when records spread over several partitions. A wake-up is a socket write on the
    caller's thread, a GIL hand-over and a whole I/O-thread iteration; on the webhook's path
    that cost more than the rest of the push. The gate lets a wake-up through unless the
    I/O thread is asleep in ``poll`` with a deadline at most one linger away: it then looks
    at the accumulator again by that deadline anyway, and sees every batch added meanwhile
    (a batch opened now is not due before ``now + linger``). While the thread is awake it
    may already have chosen a long sleep, so every wake-up passes.
    """

    def __init__(self, wakeup: Callable[[], None], poll: Callable[..., Any], linger: float):
        self._wakeup = wakeup
        self._poll = poll
        self._linger = linger
        self._asleep_until = 0.0  # time.monotonic() deadline of the current poll; 0: awake

    @classmethod
    def install(cls, sender: Any, *, linger_seconds: float) -> _WakeupGate:
        gate = cls(sender.wakeup, sender._client.poll, linger_seconds)
        sender._client.poll = gate.poll
        sender.wakeup = gate.wakeup
        return gate

    def poll(self, timeout_ms: float | None = None, future: Any = None) -> Any:
        """The I/O thread's poll, noting until when it may sleep."""
        self._asleep_until = (
            math.inf if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        )
        try:
            return self._poll(timeout_ms=timeout_ms, future=future)
        finally:
            self._asleep_until = 0.0

    def wakeup(self) -> None:
        if 0.0 < self._asleep_until <= time.monotonic() + self._linger:
            return
        self._wakeup()


def wait_all(futures: Sequence[Future[Placed]], deadline: float, *, what: str) -> list[Placed]:
    """The results of ``futures`` in order, or ``KafkaUnavailable`` once ``deadline``
    (``time.monotonic``) passes or any of them failed."""
    placed: list[Placed] = []
    for future in futures:
        try:
            placed.append(future.result(timeout=max(0.0, deadline - time.monotonic())))
        except FutureTimeout as exc:
            raise KafkaUnavailable(
                f"{len(futures) - len(placed)} of {len(futures)} {what} not acknowledged "
                "before the deadline"
            ) from exc
    return placed


PartitionsChanged = Callable[[list[tuple[str, int]]], None]


class Consumer:
    """A group member that only commits what it is told to commit.

    ``on_revoked`` runs before partitions are taken away (commit finished work there) and
    ``on_assigned`` after new ones arrive; both run inside ``poll`` on the caller's thread.
    ``auto_offset_reset`` says where a brand-new group starts.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        group_id: str,
        topics: Iterable[str],
        max_poll_records: int = 200,
        auto_offset_reset: str = "earliest",
        on_revoked: PartitionsChanged | None = None,
        on_assigned: PartitionsChanged | None = None,
        assign: bool = False,
        **overrides: Any,
    ) -> None:
        config = client_config(settings) | {
            "group_id": group_id,
            # Offsets are committed only after the side effect is durable.
            "enable_auto_commit": False,
            "auto_offset_reset": auto_offset_reset,
            "isolation_level": "read_committed",
            "max_poll_records": max_poll_records,
            "session_timeout_ms": 30000,
            "heartbeat_interval_ms": 3000,
        }
        config.update(overrides)
        try:
            self._consumer = kafka.KafkaConsumer(**config)
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailable(f"cannot create a Kafka consumer: {exc}") from exc
        if assign:
            # Every partition, no group membership (offsets are still kept under group_id):
            # for one-off tools that read a topic to its end.
            try:
                self._consumer.assign(
                    [
                        TopicPartition(topic, partition)
                        for topic in topics
                        for partition in sorted(self._consumer.partitions_for_topic(topic) or [])
                    ]
                )
            except kafka.errors.KafkaError as exc:
                raise KafkaUnavailable(f"cannot assign {list(topics)}: {exc}") from exc
        else:
            self._consumer.subscribe(list(topics), listener=_Listener(on_revoked, on_assigned))

    def poll(self, timeout: float = 1.0, max_records: int | None = None) -> list[ConsumedRecord]:
        try:
            batches = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailable(f"poll failed: {exc}") from exc
        return [_consumed(raw) for raw_records in batches.values() for raw in raw_records]

    def commit(self, next_offsets: Mapping[tuple[str, int], int], *, wait: bool = True) -> None:
        """Commit, per (topic, partition), the offset of the next record to read.

        ``wait=False`` only sends the commit (its failure is logged): the one way to commit
        from ``on_revoked``, which kafka-python 3 runs on its I/O thread, where a waiting
        call raises ``RuntimeError`` ("Cannot block on net.run() from the IO thread") and
        the rebalance or ``close`` then fails with "User rebalance callback throws an error".
        """
        if not next_offsets:
            return
        try:
            if wait:
                self._consumer.commit(_offsets(next_offsets))
            else:
                self._consumer.commit_async(_offsets(next_offsets), callback=_log_commit)
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailable(f"offset commit failed: {exc}") from exc

    def group_metadata(self) -> Any:
        """This member's group generation, which fences a stale member's transactional
        offset commit (KIP-447)."""
        return self._consumer.group_metadata()

    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Read ``(topic, partition)`` again from ``offset`` (used to retry without committing)."""
        self._consumer.seek(TopicPartition(topic=topic, partition=partition), offset)

    def position(self, topic: str, partition: int) -> int:
        """The offset of the next record this member will read from the partition."""
        try:
            return int(self._consumer.position(TopicPartition(topic, partition)))
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailable(f"no position for {topic}/{partition}: {exc}") from exc

    def end_offsets_of(self, topic: str) -> dict[tuple[str, int], int]:
        """Each partition's end (the offset the next record will get) as of now."""
        try:
            partitions = [
                TopicPartition(topic, p)
                for p in sorted(self._consumer.partitions_for_topic(topic) or [])
            ]
            ends = self._consumer.end_offsets(partitions)
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailable(f"no end offsets for {topic}: {exc}") from exc
        return {(tp.topic, tp.partition): int(offset) for tp, offset in ends.items()}

    def assignment(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def lag(self) -> dict[tuple[str, int], int]:
        """Records not yet read, per assigned partition, as of the last fetch (partitions
        not fetched from yet are left out: their end is unknown without asking)."""
        lags: dict[tuple[str, int], int] = {}
        for tp in self._consumer.assignment():
            end = self._consumer.highwater(tp)
            if end is None:
                continue
            try:
                position = self._consumer.position(tp)
            except kafka.errors.KafkaError:
                continue  # no position yet: the lag shows on the next fetch
            lags[(tp.topic, tp.partition)] = max(0, int(end) - int(position))
        return lags

    def close(self) -> None:
        # Never commit on close: only the runtime decides what is done.
        try:
            self._consumer.close(autocommit=False)
        except kafka.errors.KafkaError as exc:
            # kafka-python stops closing when a rebalance listener fails, leaving its network
            # client (sockets, I/O thread) open: close that too.
            log.warning("the consumer's close was cut short (%s); closing its connections", exc)
            self._consumer._client.close()


def _log_commit(offsets: Mapping[Any, Any], response: object) -> None:
    if isinstance(response, Exception):
        # The records are read again by whoever owns the partition next, to no effect.
        log.warning("offset commit not acknowledged (%s): %s", response, dict(offsets))


def _offsets(next_offsets: Mapping[tuple[str, int], int]) -> dict[Any, Any]:
    return {
        TopicPartition(topic=topic, partition=partition): OffsetAndMetadata(
            offset=offset, metadata="", leader_epoch=-1
        )
        for (topic, partition), offset in next_offsets.items()
    }


def read_since(
    settings: Settings, topic: str, since_ms: int = 0, timeout: float = 60.0
) -> list[ConsumedRecord]:
    """Every committed record of ``topic`` written at or after ``since_ms`` (epoch ms), up
    to the end of each partition as it is now, partition by partition in offset order. No
    group, nothing committed."""
    return [record for batch in iter_since(settings, topic, since_ms, timeout) for record in batch]


def iter_since(
    settings: Settings, topic: str, since_ms: int = 0, idle_timeout: float = 60.0
) -> Iterator[list[ConsumedRecord]]:
    """``read_since`` in batches, for topics too large to hold at once. Gives up with
    ``KafkaUnavailable`` only when no record arrives for ``idle_timeout`` seconds."""
    try:
        consumer = kafka.KafkaConsumer(
            **client_config(settings), enable_auto_commit=False, isolation_level="read_committed"
        )
    except kafka.errors.KafkaError as exc:
        raise KafkaUnavailable(f"could not read {topic}: {exc}") from exc
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        starts = consumer.offsets_for_times({tp: since_ms for tp in partitions})
        for tp in partitions:
            found = starts.get(tp)
            consumer.seek(tp, ends[tp] if found is None else found.offset)
        last_progress = time.monotonic()
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() - last_progress > idle_timeout:
                raise KafkaUnavailable(f"reading {topic} made no progress for {idle_timeout:.0f}s")
            batch = [
                _consumed(raw)
                for raw_records in consumer.poll(timeout_ms=500).values()
                for raw in raw_records
            ]
            if batch:
                last_progress = time.monotonic()
                yield batch
    except kafka.errors.KafkaError as exc:
        raise KafkaUnavailable(f"could not read {topic}: {exc}") from exc
    finally:
        consumer.close()


class Seekable(Protocol):
    def seek(self, topic: str, partition: int, offset: int) -> None: ...

    def assignment(self) -> set[tuple[str, int]]: ...


def rewind(consumer: Seekable, records: Iterable[ConsumedRecord]) -> None:
    """Make ``consumer`` read ``records`` again: each partition it still owns goes back to
    the first of them (a partition lost to a rebalance is read by its new owner from the
    committed offset)."""
    first: dict[tuple[str, int], int] = {}
    for record in records:
        tp = (record.topic, record.partition)
        first[tp] = min(first.get(tp, record.offset), record.offset)
    owned = consumer.assignment()
    for (topic, partition), offset in first.items():
        if (topic, partition) in owned:
            consumer.seek(topic, partition, offset)


def next_offsets(records: Iterable[ConsumedRecord]) -> dict[tuple[str, int], int]:
    """Per (topic, partition), the offset after the last of ``records``: what to commit."""
    offsets: dict[tuple[str, int], int] = {}
    for record in records:
        tp = (record.topic, record.partition)
        offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
    return offsets


def _consumed(raw: Any) -> ConsumedRecord:
    return ConsumedRecord(
        raw.topic,
        raw.partition,
        raw.offset,
        raw.key,
        raw.value,
        {name: value or b"" for name, value in (raw.headers or [])},
        int(raw.timestamp or 0),
    )


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self, on_revoked: PartitionsChanged | None, on_assigned: PartitionsChanged | None
    ) -> None:
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned

    def on_partitions_revoked(self, revoked: Any) -> None:
        if self._on_revoked is not None:
            self._on_revoked([(tp.topic, tp.partition) for tp in revoked])

    def on_partitions_assigned(self, assigned: Any) -> None:
        if self._on_assigned is not None:
            self._on_assigned([(tp.topic, tp.partition) for tp in assigned])


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] = field(default_factory=dict)


class Admin:
    def __init__(self, settings: Settings) -> None:
        try:
            self._admin = kafka.KafkaAdminClient(**client_config(settings))
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailable(
                f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc}"
            ) from exc

    def create_topics(self, specs: Sequence[TopicSpec]) -> dict[str, str]:
        """Create the topics that do not exist yet; returns each topic's outcome
        ("created" or "exists"). Existing topics are left as they are."""
        existing = self.list_topics()
        wanted = {spec.name: spec for spec in specs if spec.name not in existing}
        outcome = {spec.name: "exists" for spec in specs if spec.name in existing}
        if wanted:
            answer = self._call(
                "create topics",
                self._admin.create_topics,
                {
                    spec.name: {
                        "num_partitions": spec.partitions,
                        "replication_factor": spec.replication_factor,
                        "configs": dict(spec.configs),
                    }
                    for spec in wanted.values()
                },
                timeout_ms=30000,
                raise_errors=False,
                wait_for_metadata=True,
            )
            for topic in answer["topics"]:
                error = kafka.errors.for_code(topic["error_code"])
                if error is kafka.errors.NoError:
                    outcome[topic["name"]] = "created"
                elif error is kafka.errors.TopicAlreadyExistsError:
                    outcome[topic["name"]] = "exists"  # another replica won the race
                else:
                    raise KafkaUnavailable(
                        f"could not create topic {topic['name']}: {error.__name__}: "
                        f"{topic.get('error_message')}"
                    )
        return outcome

    def list_topics(self) -> set[str]:
        return set(self._call("list topics", self._admin.list_topics))

    def _call(self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call``, with kafka-python's errors (a request timed out, no broker) raised as
        ``KafkaUnavailable`` like everywhere else in orderflow."""
        try:
            return call(*args, **kwargs)
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailable(f"could not {what}: {exc}") from exc

    def delete_topics(self, names: Sequence[str]) -> None:
        """Delete these topics and every record in them (benchmarks and tests clean up after
        themselves this way: each partition costs the broker memory for as long as it exists).
        ``KafkaUnavailable`` unless every one of them is gone or never existed."""
        try:
            answer = self._admin.delete_topics(list(names), timeout_ms=30000, raise_errors=False)
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailable(f"could not delete topics {list(names)}: {exc}") from exc
        for topic in answer["topics"]:
            error = kafka.errors.for_code(topic["error_code"])
            if error not in (kafka.errors.NoError, kafka.errors.UnknownTopicOrPartitionError):
                raise KafkaUnavailable(f"could not delete topic {topic['name']}: {error.__name__}")

    def partitions(self, topic: str) -> int:
        (description,) = self._admin.describe_topics([topic])
        return len(description["partitions"])

    def close(self) -> None:
        self._admin.close()
