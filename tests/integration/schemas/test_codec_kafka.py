"""Records written through the codec come out of a real broker equal, for any reader group."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from orderflow.kafka import Admin, ConsumedRecord, Consumer, Producer, TopicSpec
from orderflow.metrics import Metrics
from orderflow.settings import Settings
from schemas.codec import AvroCodec, RecordDecodeError, frame
from schemas.models import OrderEvent, OrderLine, Package, PackageLine, make_event_id, order_key
from schemas.registry import SchemaRegistryClient, UnknownSchemaId

NOW = datetime(2026, 11, 26, 9, 30, 15, 123000, tzinfo=UTC)


def sample_event(order_sn: str) -> OrderEvent:
    return OrderEvent(
        event_id=make_event_id(
            marketplace="shopee",
            shop_id=727720655,
            order_sn=order_sn,
            status="PROCESSED",
            update_time=NOW,
            source="push",
        ),
        shop_id=727720655,
        order_sn=order_sn,
        region="VN",
        currency="VND",
        status="PROCESSED",
        previous_status="READY_TO_SHIP",
        create_time=NOW,
        update_time=NOW,
        pay_time=NOW,
        cod=True,
        total_amount=Decimal("32119"),
        items=(
            OrderLine(
                item_id=23620853561,
                model_id=221404189791,
                item_name="Kem",
                model_sku="QAZ-05",
                quantity=1,
                original_price=Decimal("300000"),
                discounted_price=Decimal("48000"),
            ),
        ),
        packages=(
            Package(
                package_number="OFG166300791210964",
                tracking_number="SPXVN123",
                items=(PackageLine(item_id=23620853561, model_id=221404189791, quantity=1),),
            ),
        ),
        source="push",
        emitted_at=NOW,
    )


def read_all(consumer: Consumer, count: int, timeout: float = 30.0) -> list[ConsumedRecord]:
    records: list[ConsumedRecord] = []
    deadline = time.monotonic() + timeout
    while len(records) < count and time.monotonic() < deadline:
        records += consumer.poll(timeout=0.5)
    return records


@pytest.fixture
def topic(settings: Settings) -> str:
    admin = Admin(settings)
    try:
        admin.create_topics([TopicSpec(settings.topic_orders, 3, 1)])
    finally:
        admin.close()
    return settings.topic_orders


def test_an_order_event_decodes_equal_in_another_consumer_group(
    settings: Settings, topic: str, registry: SchemaRegistryClient, metrics: Metrics, unique: str
) -> None:
    writer_codec = AvroCodec(OrderEvent, topic, registry)
    events = [sample_event(f"2404098R48U{i:03d}") for i in range(5)]
    producer = Producer(settings, metrics)
    try:
        producer.send_many(
            topic,
            [
                (
                    order_key(e.shop_id, e.order_sn),
                    writer_codec.encode(e),
                    [("event_id", e.event_id.encode())],
                )
                for e in events
            ],
        )
    finally:
        producer.close()

    # A different process's codec: it knows nothing but the registry URL.
    with SchemaRegistryClient(settings.schema_registry_url) as other_registry:
        reader_codec = AvroCodec(OrderEvent, topic, other_registry)
        consumer = Consumer(settings, group_id=f"reader-{unique}", topics=[topic])
        try:
            records = read_all(consumer, len(events))
        finally:
            consumer.close()
        decoded = {reader_codec.decode(r.value or b"").order_sn: r for r in records}
        assert sorted(decoded) == sorted(e.order_sn for e in events)
        for e in events:
            record = decoded[e.order_sn]
            assert reader_codec.decode(record.value or b"") == e
            assert record.key == order_key(e.shop_id, e.order_sn)
            assert record.header("event_id") == e.event_id
    assert metrics.records_produced.labels(topic)._value.get() == len(events)


def test_garbage_on_the_topic_raises_the_typed_error(
    settings: Settings, topic: str, registry: SchemaRegistryClient, metrics: Metrics, unique: str
) -> None:
    codec = AvroCodec(OrderEvent, topic, registry)
    producer = Producer(settings, metrics)
    try:
        # A real schema id before a body that is not an OrderEvent, then no frame at all.
        producer.send(topic, key=b"1:A", value=frame(codec.schema_id, b"\x07not avro at all"))
        producer.send(topic, key=b"1:B", value=b"plain text")
    finally:
        producer.close()
    consumer = Consumer(settings, group_id=f"garbage-{unique}", topics=[topic])
    try:
        records = read_all(consumer, 2)
    finally:
        consumer.close()
    assert len(records) == 2
    for record in records:
        with pytest.raises(RecordDecodeError):
            codec.decode(record.value or b"")


def test_an_id_the_real_registry_does_not_know_is_transient(registry: SchemaRegistryClient) -> None:
    codec = AvroCodec(OrderEvent, "unknown-id", registry)
    with pytest.raises(UnknownSchemaId, match="retry later"):
        codec.decode(frame(2_000_000_000, b"\x02"))


def test_committed_offsets_are_where_a_new_member_resumes(
    settings: Settings, topic: str, registry: SchemaRegistryClient, metrics: Metrics, unique: str
) -> None:
    codec = AvroCodec(OrderEvent, topic, registry)
    producer = Producer(settings, metrics)
    try:
        # One key, so all records share a partition and their order.
        producer.send_many(
            topic, [(b"k", codec.encode(sample_event(f"S{i}")), []) for i in range(4)]
        )
    finally:
        producer.close()
    group = f"resume-{unique}"
    first = Consumer(settings, group_id=group, topics=[topic])
    try:
        records = read_all(first, 4)
        done = records[1]
        first.commit({(done.topic, done.partition): done.offset + 1})
    finally:
        first.close()  # must not commit the other two on close
    second = Consumer(settings, group_id=group, topics=[topic])
    try:
        rest = read_all(second, 2)
    finally:
        second.close()
    assert [codec.decode(r.value or b"").order_sn for r in rest] == ["S2", "S3"]
