"""Schema ids outlive `make down` / `make up`, as they do in production: Kafka keeps the
records that carry them, so the registry must keep the schemas those ids name.

One stack of this module's own (its own directory and ports), written to, stopped and started
again once on the same state; the tests below read what came back. A registry that kept its
schemas in memory would start again at id 1 and hand it to whatever is registered first.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from orderflow.kafka import Admin, ConsumedRecord, Consumer, Producer, TopicSpec
from orderflow.metrics import Metrics
from orderflow.settings import Settings
from schemas.codec import AvroCodec, schema_for, unframe
from schemas.models import OrderEvent, OrderLine, OrderNotice, order_key
from schemas.registry import SchemaRegistryClient, subject_for
from tests.integration.stack import EXPORT_LINE, LocalStack, Stack

TOPIC = "restart.orders"
NOW = datetime(2026, 11, 26, 9, 30, 15, 123000, tzinfo=UTC)

EVENT = OrderEvent(
    event_id="before-the-restart",
    shop_id=727720655,
    order_sn="2404098R48U37H",
    region="VN",
    currency="VND",
    status="READY_TO_SHIP",
    create_time=NOW,
    update_time=NOW,
    total_amount=Decimal("32119.5"),
    items=(OrderLine(item_id=23620853561, model_id=221404189791, quantity=2),),
    source="push",
    emitted_at=NOW,
)


@dataclass(frozen=True)
class Restarted:
    stack: Stack  # where the stack answers after the restart
    up_outputs: tuple[str, str]  # stdout of the first and the second `up`
    schema_id: int  # the OrderEvent schema's id, registered before the restart
    first_id_after: int  # the id of a different schema, the first registered after it


def settings_for(stack: Stack) -> Settings:
    return Settings(
        kafka_bootstrap_servers=stack.bootstrap_servers,
        schema_registry_url=stack.registry_url,
    )


def write_one_event(stack: Stack) -> int:
    settings = settings_for(stack)
    admin = Admin(settings)
    try:
        admin.create_topics([TopicSpec(TOPIC, 1, 1)])
    finally:
        admin.close()
    with SchemaRegistryClient(stack.registry_url) as registry:
        codec = AvroCodec(OrderEvent, TOPIC, registry)
        producer = Producer(settings, Metrics(CollectorRegistry()))
        try:
            producer.send(
                TOPIC, key=order_key(EVENT.shop_id, EVENT.order_sn), value=codec.encode(EVENT)
            )
        finally:
            producer.close()
        return codec.schema_id


def read_all(stack: Stack, group: str, count: int = 1) -> list[ConsumedRecord]:
    consumer = Consumer(settings_for(stack), group_id=group, topics=[TOPIC])
    records: list[ConsumedRecord] = []
    deadline = time.monotonic() + 30
    try:
        while len(records) < count and time.monotonic() < deadline:
            records += consumer.poll(timeout=0.5)
    finally:
        consumer.close()
    return records


@pytest.fixture(scope="module")
def restarted() -> Iterator[Restarted]:
    local = LocalStack(Path(tempfile.mkdtemp(prefix="orderflow-restart-")))
    try:
        first = local.run("up")
        assert first.returncode == 0, first.stderr
        before = local.up()  # already running: only reads where it answers
        if before.postgres_url is None:
            pytest.skip("no PostgreSQL in the stack: the registry can only keep schemas in memory")
        schema_id = write_one_event(before)
        down = local.down()
        assert down.returncode == 0, down.stderr
        second = local.run("up")
        assert second.returncode == 0, second.stderr
        after = local.up()  # already running: only reads where it answers
        # A fresh client (no cache): the first schema registered after the restart is one
        # the registry never saw, so an in-memory registry would give it the old id.
        with SchemaRegistryClient(after.registry_url) as registry:
            first_id_after = registry.register(
                subject_for("restart.other"), schema_for(OrderNotice)
            )
        yield Restarted(after, (first.stdout, second.stdout), schema_id, first_id_after)
    finally:
        local.remove()


def test_up_with_postgresql_prints_only_exports(restarted: Restarted) -> None:
    for stdout in restarted.up_outputs:
        lines = stdout.splitlines()
        assert "ORDERFLOW_DATABASE_URL" in stdout
        assert [line for line in lines if not EXPORT_LINE.match(line)] == [], stdout


def test_a_new_schema_after_the_restart_does_not_reuse_an_old_id(restarted: Restarted) -> None:
    assert restarted.first_id_after != restarted.schema_id


def test_the_old_schema_keeps_its_id(restarted: Restarted) -> None:
    with SchemaRegistryClient(restarted.stack.registry_url) as registry:
        assert registry.register(subject_for(TOPIC), schema_for(OrderEvent)) == restarted.schema_id


def test_a_record_written_before_the_restart_decodes_equal_after_it(
    restarted: Restarted, unique: str
) -> None:
    (record,) = read_all(restarted.stack, f"after-restart-{unique}")
    assert unframe(record.value or b"")[0] == restarted.schema_id
    with SchemaRegistryClient(restarted.stack.registry_url) as registry:
        assert AvroCodec(OrderEvent, TOPIC, registry).decode(record.value or b"") == EVENT
