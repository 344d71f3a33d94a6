"""OrderNotices: how a push, a list entry or a lost push becomes a trigger on Kafka.

The builders are pure; ``NoticeWriter`` encodes notices (Avro, Confluent framing) and writes
them with the idempotent acks=all producer, keyed ``"{shop_id}:{order_sn}"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import Counter

from orderflow.kafka import (
    Headers,
    KafkaUnavailable,
    Outcome,
    Placed,
    settler,
    wait_all,
)
from orderflow.metrics import Metrics
from schemas.codec import AvroCodec
from schemas.models import OrderNotice, Source, make_event_id, order_key
from shopee.models import OrderListEntry
from shopee.push import OrderStatusPush, TrackingNumberPush

OrderPush = OrderStatusPush | TrackingNumberPush


def _utc(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


def notice_from_push(push: OrderPush, *, source: Source, received_at: float) -> OrderNotice:
    """The notice for a code-3 (order status) or code-4 (tracking number) push.

    A tracking-number push has no ``update_time``; its package and tracking number tell two
    of them apart in the event id, and a re-delivery of the same push keeps the same id.
    """
    if isinstance(push, OrderStatusPush):
        status: str | None = push.data.status
        update_time: datetime | None = _utc(push.data.update_time)
        discriminator = None
    else:
        status, update_time = None, None
        discriminator = f"tracking:{push.data.package_number}:{push.data.tracking_no}"
    return OrderNotice(
        event_id=make_event_id(
            marketplace="shopee",
            shop_id=push.shop_id,
            order_sn=push.data.order_sn,
            status=status,
            update_time=update_time,
            source=source,
            discriminator=discriminator,
        ),
        shop_id=push.shop_id,
        order_sn=push.data.order_sn,
        status=status,
        update_time=update_time,
        source=source,
        push_code=push.code,
        msg_id=push.msg_id,
        received_at=_utc(received_at),
    )


def notice_from_list_entry(
    shop_id: int, entry: OrderListEntry, *, source: Source, found_at: float
) -> OrderNotice:
    """The notice for an order get_order_list returned (poll or backfill)."""
    return OrderNotice(
        event_id=make_event_id(
            marketplace="shopee",
            shop_id=shop_id,
            order_sn=entry.order_sn,
            status=entry.order_status,
            update_time=None,
            source=source,
        ),
        shop_id=shop_id,
        order_sn=entry.order_sn,
        status=entry.order_status,
        source=source,
        received_at=_utc(found_at),
    )


def notice_headers(notice: OrderNotice) -> Headers:
    return [("event_id", notice.event_id.encode()), ("source", notice.source.encode())]


class NoticeSink(Protocol):
    """Where the webhook hands a notice (``NoticeWriter`` on Kafka; tests use a twin)."""

    def enqueue(self, notice: OrderNotice, on_done: Callable[[Outcome], None]) -> None:
        """Queue one notice; ``on_done`` is called once, from any thread, with where it
        landed once durable or with the ``KafkaUnavailable`` saying why it is not.
        ``KafkaUnavailable`` is raised instead when it cannot even be queued."""
        ...


class RecordQueue(Protocol):
    """Where a ``NoticeWriter`` queues records: ``Producer`` in this process, or
    ``producers.writer.WriterProcess`` (the webhook's)."""

    def enqueue(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes,
        headers: Headers | None = None,
        on_done: Callable[[Outcome], None],
    ) -> None: ...


class NoticeWriter:
    """Writes notices to the notices topic; nothing counts as written until acknowledged."""

    def __init__(self, producer: RecordQueue, codec: AvroCodec[OrderNotice], metrics: Metrics):
        self._producer = producer
        self._codec = codec
        self._metrics = metrics
        self._produced: dict[Source, Counter] = {}
        self.topic = codec.topic

    def enqueue(self, notice: OrderNotice, on_done: Callable[[Outcome], None]) -> None:
        produced = self._produced.get(notice.source)
        if produced is None:
            produced = self._metrics.notices_produced.labels(notice.source)
            self._produced[notice.source] = produced

        def count(outcome: Outcome) -> None:
            if not isinstance(outcome, KafkaUnavailable):
                produced.inc()
            on_done(outcome)

        self._producer.enqueue(
            self.topic,
            key=order_key(notice.shop_id, notice.order_sn),
            value=self._codec.encode(notice),
            headers=notice_headers(notice),
            on_done=count,
        )

    def submit(self, notice: OrderNotice) -> Future[Placed]:
        """Queue one notice; the future resolves once Kafka acknowledged it."""
        future: Future[Placed] = Future()
        self.enqueue(notice, settler(future))
        return future

    def write(self, notices: Sequence[OrderNotice], timeout: float = 30.0) -> list[Placed]:
        """Write every notice and wait until all are acknowledged (``KafkaUnavailable``
        otherwise: then none of them may be counted as written)."""
        deadline = time.monotonic() + timeout
        futures = [self.submit(notice) for notice in notices]
        return wait_all(futures, deadline, what=f"notices on {self.topic}")
