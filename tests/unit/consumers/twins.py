"""In-memory twins for the consumer tests: a group member (``RecordSource``), a producer, a
scripted handler, a stop flag that never sleeps, and factories for events, records and a
migrated SQLite database. Nothing here touches a broker or the network."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from sqlalchemy.engine import Engine

from consumers.actions import make_action
from consumers.deadletter import DeadLetters
from consumers.erp.outbox import ActionRecord
from consumers.runtime import Delivery, Handler, PartialFailure, handle_each
from orderflow.db import create_engine, migrate
from orderflow.kafka import (
    ConsumedRecord,
    Headers,
    KafkaUnavailable,
    Outcome,
    Placed,
    Producer,
)
from orderflow.metrics import Metrics
from orderflow.process import StopFlag
from schemas.codec import AvroCodec
from schemas.models import (
    OrderEvent,
    OrderLine,
    Package,
    Source,
    make_event_id,
    order_key,
)
from schemas.registry import InMemorySchemaRegistry

TOPIC = "shopee.orders"
ACTIONS_TOPIC = "shopee.order-actions"
SHOP = 14701711
# Event times: a little before the fake clock's "now" (tests.unit.shopee.token_fakes).
T0 = 1_699_999_000

TopicPartition = tuple[str, int]
LineSpec = tuple[int, int, int]  # (item_id, model_id, quantity)


def at(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


def order_event(
    order_sn: str,
    status: str = "READY_TO_SHIP",
    *,
    shop_id: int = SHOP,
    update_time: int = T0,
    lines: Sequence[LineSpec] = ((1001, 1, 1),),
    tracking_number: str | None = None,
    source: Source = "poll",
) -> OrderEvent:
    """A complete OrderEvent (every required field set) with the given order lines and, when
    ``tracking_number`` is given, one package carrying it."""
    updated = at(update_time)
    return OrderEvent(
        event_id=make_event_id(
            marketplace="shopee",
            shop_id=shop_id,
            order_sn=order_sn,
            status=status,
            update_time=updated,
            source=source,
        ),
        shop_id=shop_id,
        order_sn=order_sn,
        region="SG",
        currency="SGD",
        status=status,
        create_time=at(update_time - 3600),
        update_time=updated,
        items=tuple(
            OrderLine(
                item_id=item,
                model_id=model,
                quantity=quantity,
                item_name=f"item {item}",
                model_sku=f"SKU-{item}-{model}",
            )
            for item, model, quantity in lines
        ),
        packages=(
            ()
            if tracking_number is None
            else (
                Package(
                    package_number=f"PKG-{order_sn}",
                    tracking_number=tracking_number,
                    shipping_carrier="SPX",
                ),
            )
        ),
        source=source,
        emitted_at=at(update_time + 1),
    )


def handle_one(handler: Handler, event: OrderEvent) -> str:
    """What ``handler`` did with ``event`` alone; a failure is raised as the runtime would
    settle it (the cause, not the ``PartialFailure`` around it)."""
    try:
        (outcome,) = handler.handle([delivery(event)])
    except PartialFailure as failure:
        assert failure.outcomes == []
        raise failure.cause from None
    return outcome


def delivery(event: OrderEvent, offset: int = 0, partition: int = 0) -> Delivery:
    """An event as the runtime hands it to a handler (the record's bytes are not read)."""
    record = ConsumedRecord(
        TOPIC, partition, offset, order_key(event.shop_id, event.order_sn), b"", {}
    )
    return Delivery(record, event)


def event_codec() -> AvroCodec[OrderEvent]:
    return AvroCodec(OrderEvent, TOPIC, InMemorySchemaRegistry())


def migrated_engine(tmp_path: Path, name: str = "orderflow.db") -> Engine:
    """A SQLite database with every migration applied."""
    engine = create_engine(f"sqlite:///{tmp_path / name}")
    migrate(engine)
    return engine


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    """A metric's current value (0 when it was never set)."""
    return metrics.registry.get_sample_value(name, labels) or 0.0


class InMemorySource:
    """``consumers.runtime.RecordSource`` over in-memory partition logs.

    ``poll`` returns the records after each assigned partition's position, partition by
    partition in offset order, at most ``max_records`` in all, and moves the positions past
    them; ``seek`` moves a position back; ``commit`` keeps what was committed (and every
    commit, in order; ``sent_only`` those sent without waiting). ``fail_commits`` makes the
    next that many commits fail as the broker would (``KafkaUnavailable``).
    """

    def __init__(self, topic: str = TOPIC, partitions: int = 1) -> None:
        self.topic = topic
        self.logs: dict[TopicPartition, list[ConsumedRecord]] = {
            (topic, p): [] for p in range(partitions)
        }
        self.positions: dict[TopicPartition, int] = {tp: 0 for tp in self.logs}
        self.assigned: set[TopicPartition] = set(self.logs)
        self.committed: dict[TopicPartition, int] = {}
        self.commits: list[dict[TopicPartition, int]] = []
        self.sent_only: list[dict[TopicPartition, int]] = []
        self.seeks: list[tuple[str, int, int]] = []
        self.polls = 0
        self.fail_commits = 0

    def append(
        self,
        value: bytes,
        *,
        partition: int = 0,
        key: bytes | None = None,
        headers: Mapping[str, bytes] | None = None,
        timestamp_ms: int = T0 * 1000,
    ) -> ConsumedRecord:
        log = self.logs[(self.topic, partition)]
        record = ConsumedRecord(
            self.topic, partition, len(log), key, value, dict(headers or {}), timestamp_ms
        )
        log.append(record)
        return record

    def append_event(
        self, codec: AvroCodec[OrderEvent], event: OrderEvent, *, partition: int = 0
    ) -> ConsumedRecord:
        """``event`` encoded as the enricher writes it: keyed by order, with its headers."""
        return self.append(
            codec.encode(event),
            partition=partition,
            key=order_key(event.shop_id, event.order_sn),
            headers={"event_id": event.event_id.encode(), "source": event.source.encode()},
            timestamp_ms=int(event.emitted_at.timestamp() * 1000),
        )

    def poll(self, timeout: float = 1.0, max_records: int | None = None) -> list[ConsumedRecord]:
        self.polls += 1
        room = max_records if max_records is not None else 10**9
        batch: list[ConsumedRecord] = []
        for tp in sorted(self.assigned):
            taken = self.logs[tp][self.positions[tp] :][: room - len(batch)]
            batch.extend(taken)
            self.positions[tp] += len(taken)
        return batch

    def commit(self, next_offsets: Mapping[TopicPartition, int], *, wait: bool = True) -> None:
        if not wait:
            self.sent_only.append(dict(next_offsets))
        if self.fail_commits:
            self.fail_commits -= 1
            raise KafkaUnavailable("offset commit failed: the broker is away (twin)")
        self.commits.append(dict(next_offsets))
        self.committed.update(next_offsets)

    def seek(self, topic: str, partition: int, offset: int) -> None:
        self.seeks.append((topic, partition, offset))
        self.positions[(topic, partition)] = offset

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def lag(self) -> dict[TopicPartition, int]:
        return {tp: len(self.logs[tp]) - self.positions[tp] for tp in sorted(self.assigned)}


@dataclass(frozen=True)
class Sent:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers

    def header(self, name: str) -> str | None:
        values = [value for header, value in self.headers if header == name]
        return values[-1].decode() if values else None


@dataclass
class FakeProducer:
    """``orderflow.kafka.Producer``'s ``submit`` and ``enqueue``, whose records the broker
    acknowledges at once, except the next ``refuse`` records, which it never acknowledges
    (``KafkaUnavailable``)."""

    sent: list[Sent] = field(default_factory=list)
    refuse: int = 0

    def submit(
        self, topic: str, *, key: bytes | None, value: bytes, headers: Headers | None = None
    ) -> Future[Placed]:
        placed: Future[Placed] = Future()
        if self.refuse:
            self.refuse -= 1
            placed.set_exception(
                KafkaUnavailable(f"broker did not acknowledge a record on {topic}")
            )
            return placed
        placed.set_result((0, len(self.on(topic))))
        self.sent.append(Sent(topic, key, value, list(headers or [])))
        return placed

    def enqueue(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes,
        headers: Headers | None = None,
        on_done: Callable[[Outcome], None],
    ) -> None:
        placed = self.submit(topic, key=key, value=value, headers=headers)
        exc = placed.exception()
        on_done(exc if isinstance(exc, KafkaUnavailable) else placed.result())

    def on(self, topic: str) -> list[Sent]:
        return [record for record in self.sent if record.topic == topic]

    def as_producer(self) -> Producer:
        # The runtime only calls submit; the twin stands in for the whole adapter.
        return cast(Producer, self)


def dead_letters(producer: FakeProducer, metrics: Metrics, consumer: str) -> DeadLetters:
    return DeadLetters(
        producer.as_producer(), metrics, topic=f"{TOPIC}.dlq.{consumer}", consumer=consumer
    )


class InstantStop(StopFlag):
    """A stop flag whose ``wait`` returns at once (recording what it was asked to wait) and
    which sets itself after ``set_after_waits`` waits, so a ``run`` loop ends."""

    def __init__(self, set_after_waits: int | None = None) -> None:
        super().__init__()
        self.waited: list[float] = []
        self._set_after = set_after_waits

    def wait(self, seconds: float) -> bool:
        self.waited.append(seconds)
        if self._set_after is not None and len(self.waited) >= self._set_after:
            self.set()
        return self.is_set()


class ScriptedHandler:
    """A handler whose failures are scripted per order (``fail``) or per shop (``block``).

    Effects are all or nothing per call, like erp-sync's one transaction: ``applied`` lists
    each event (by order_sn) once, the first time a call that carried it returned; a
    redelivered event is ``unchanged``. With ``actions`` set, each effect is also recorded
    as an OrderAction, as real handlers do in the effect's transaction.
    """

    name = "scripted"

    def __init__(
        self,
        actions: ActionRecord | None = None,
    ) -> None:
        self.calls: list[list[str]] = []
        self.applied: list[str] = []
        self._seen: set[str] = set()
        self._by_order: dict[str, tuple[BaseException, int | None]] = {}
        self._by_shop: dict[int, BaseException] = {}
        self._actions = actions
        # Called with each call's deliveries before anything is done (to look around).
        self.on_call: Callable[[Sequence[Delivery]], None] | None = None
        # Effects record by record, as auto-cancel and stock-restore make them: a failure
        # says where it happened (``PartialFailure``) instead of failing the whole call.
        self.per_record = False

    def fail(self, order_sn: str, exc: BaseException, times: int | None = None) -> None:
        """Raise ``exc`` when ``order_sn`` is handled: ``times`` times, or until ``heal``."""
        self._by_order[order_sn] = (exc, times)

    def heal(self, order_sn: str) -> None:
        self._by_order.pop(order_sn, None)

    def block(self, shop_id: int, exc: BaseException) -> None:
        self._by_shop[shop_id] = exc

    def unblock(self, shop_id: int) -> None:
        self._by_shop.pop(shop_id, None)

    def handle(self, deliveries: Sequence[Delivery]) -> list[str]:
        self.calls.append([d.event.order_sn for d in deliveries])
        if self.on_call is not None:
            self.on_call(deliveries)
        if self.per_record:
            return handle_each(deliveries, lambda d: self._apply([d])[0])
        return self._apply(deliveries)

    def _apply(self, deliveries: Sequence[Delivery]) -> list[str]:
        for d in deliveries:
            self._raise_if_scripted(d.event)
        outcomes = []
        for d in deliveries:
            new = d.event.event_id not in self._seen
            self._seen.add(d.event.event_id)
            if new:
                self.applied.append(d.event.order_sn)
                if self._actions is not None:
                    self._actions.record(
                        make_action(
                            d.event, consumer=self.name, kind="test", outcome="applied", now=T0
                        )
                    )
            outcomes.append("applied" if new else "unchanged")
        return outcomes

    def _raise_if_scripted(self, event: OrderEvent) -> None:
        if event.shop_id in self._by_shop:
            raise self._by_shop[event.shop_id]
        scripted = self._by_order.get(event.order_sn)
        if scripted is None:
            return
        exc, times = scripted
        if times is not None:
            if times <= 1:
                del self._by_order[event.order_sn]
            else:
                self._by_order[event.order_sn] = (exc, times - 1)
        raise exc


class StartingScriptedHandler(ScriptedHandler):
    """A ``ScriptedHandler`` whose batches are started and finished later, as erp-sync's are
    on PostgreSQL (``consumers.runtime.StartingHandler``): ``start`` notes the batch, and
    its effect happens, all or nothing, when the runtime calls the returned finish. ``log``
    lists the starts and finishes in order ("start AB", "finish AB")."""

    def __init__(self, actions: ActionRecord | None = None) -> None:
        super().__init__(actions)
        self.log: list[str] = []
        self.can_start = True  # False: start says it cannot (the runtime calls handle)
        self.start_fails: BaseException | None = None  # raised by the next start

    def start(self, deliveries: Sequence[Delivery]) -> Callable[[], list[str]] | None:
        if not self.can_start:
            return None
        names = "".join(d.event.order_sn for d in deliveries)
        self.log.append(f"start {names}")
        if self.start_fails is not None:
            exc, self.start_fails = self.start_fails, None
            raise exc

        def finish() -> list[str]:
            self.log.append(f"finish {names}")
            return self.handle(deliveries)

        return finish
