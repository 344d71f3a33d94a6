"""Order events in and records out, on the real broker: what the consumer tests feed the
runtime with and read back from the orders, dead-letter and actions topics.

Events are built the way the enricher builds them (``event_from_detail`` over a sandbox
order's detail) or by hand for orders no Shopee knows about; they are written with the real
``Producer`` and ``AvroCodec``, keyed and with the ``event_id``/``source`` headers, exactly as
the enricher writes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from orderflow.kafka import ConsumedRecord, Consumer, Headers, Placed, Producer
from orderflow.metrics import Metrics
from orderflow.settings import Settings
from producers.enricher import event_from_detail
from schemas.codec import AvroCodec
from schemas.models import OrderAction, OrderEvent, OrderLine, Package, make_event_id, order_key
from schemas.registry import SchemaRegistryClient
from shopee.client import ShopeeClient
from tests.integration.topics import read_topic

Line = tuple[int, int, int]
"""(item_id, model_id, quantity)"""


def order_event(
    shop_id: int,
    order_sn: str,
    *,
    update_time: int,
    status: str = "READY_TO_SHIP",
    lines: Sequence[Line] = ((1, 0, 1),),
    tracking_number: str | None = None,
) -> OrderEvent:
    """A hand-made snapshot of an order no sandbox knows (for consumers that call no one)."""
    at = datetime.fromtimestamp(update_time, UTC)
    return OrderEvent(
        event_id=make_event_id(
            marketplace="shopee",
            shop_id=shop_id,
            order_sn=order_sn,
            status=status,
            update_time=at,
            source="poll",
        ),
        shop_id=shop_id,
        order_sn=order_sn,
        region="SG",
        currency="SGD",
        status=status,
        create_time=at,
        update_time=at,
        items=tuple(
            OrderLine(item_id=item, model_id=model, quantity=quantity)
            for item, model, quantity in lines
        ),
        packages=(Package(package_number=f"PKG-{order_sn}", tracking_number=tracking_number),),
        source="poll",
        emitted_at=datetime.now(UTC),
    )


def sandbox_events(
    client: ShopeeClient, shop_id: int, order_sns: Iterable[str]
) -> list[OrderEvent]:
    """The orders' snapshots as the enricher emits them: ``get_order_detail`` through the real
    client, then ``event_from_detail``."""
    details = client.get_order_detail(shop_id, order_sns)
    assert not details.missing, details.missing
    now = datetime.now(UTC)
    return [
        event_from_detail(shop_id, detail, previous_status=None, source="poll", emitted_at=now)
        for detail in details.found
    ]


def invalid_event(event: OrderEvent) -> OrderEvent:
    """``event`` with a ``source`` the schema's string field carries but the model refuses:
    framed with a valid schema id, it decodes as Avro and then fails validation."""
    return event.model_copy(update={"source": "carrier-pigeon"})


class EventWriter:
    """Writes to the orders topic as the enricher does (acks=all, keyed, with headers)."""

    def __init__(self, settings: Settings, registry: SchemaRegistryClient) -> None:
        self.topic = settings.topic_orders
        self.codec = AvroCodec(OrderEvent, settings.topic_orders, registry)
        self._producer = Producer(settings, Metrics())

    def send(self, events: Sequence[OrderEvent]) -> list[Placed]:
        """Write ``events`` in order; where each landed, once all are acknowledged."""
        return self._producer.send_many(
            self.topic,
            [
                (order_key(e.shop_id, e.order_sn), self.codec.encode(e), headers_of(e))
                for e in events
            ],
        )

    def send_raw(self, key: bytes, value: bytes, headers: Headers | None = None) -> Placed:
        return self._producer.send(self.topic, key=key, value=value, headers=headers or [])

    def close(self) -> None:
        self._producer.close()


def headers_of(event: OrderEvent) -> Headers:
    return [("event_id", event.event_id.encode()), ("source", event.source.encode())]


def read_actions(settings: Settings, registry: SchemaRegistryClient) -> list[OrderAction]:
    """Every OrderAction on the actions topic, checking each record's key and headers."""
    codec = AvroCodec(OrderAction, settings.topic_actions, registry)
    actions = []
    for record in read_topic(settings, settings.topic_actions):
        action = codec.decode(record.value or b"")
        assert record.key == order_key(action.shop_id, action.order_sn)
        assert record.header("action_id") == action.action_id
        actions.append(action)
    return actions


def read_dead_letters(settings: Settings, consumer: str) -> list[ConsumedRecord]:
    return read_topic(settings, f"{settings.topic_orders}.dlq.{consumer}")


def group_offsets(settings: Settings, group_id: str) -> tuple[dict[int, int], dict[int, int]]:
    """Per partition of the orders topic: the group's committed offset (0 where it never
    committed) and the partition's end."""
    probe = Consumer(
        settings,
        group_id=group_id,
        topics=[settings.topic_orders],
        auto_offset_reset="earliest",
        assign=True,
    )
    try:
        ends = probe.end_offsets_of(settings.topic_orders)
        committed = {p: probe.position(topic, p) for topic, p in ends}
        return committed, {p: end for (_, p), end in ends.items()}
    finally:
        probe.close()
