"""The enricher against the one-call-per-push approach, over the same burst of notices.

5,000 notices for 5,000 distinct orders of one shop are on the notices topic; the Shopee
sandbox (in this process, over HTTP, as in tests/integration) knows every order. Each side
reads all of them with a consumer group of its own and writes one ``OrderEvent`` per order:

* the enricher (``producers.enricher.Enricher`` with the command's batch and linger settings):
  one get_order_detail call per 50 orders;
* the baseline, what existing Shopee integrations do: for each notice, get_order_detail for
  that one order, then produce its event. It is given the same consumer, producer, codecs and
  ``event_from_detail``, and waits for acknowledgements and commits once per poll rather than
  per record, so only the Shopee calls differ.

The client's own rate limiter is lifted for both sides (the sandbox answers in about a
millisecond; real Shopee takes far longer and limits calls per shop), so the notices/s ratio
understates what batching is worth in production; the call counts do not.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from benchmarks.cpu import AssignmentClock, Cpu
from benchmarks.report import Bound, Figure, figure, print_table
from benchmarks.stack import running_stack
from orderflow.db import create_engine, migrate
from orderflow.kafka import Consumer, Producer, wait_all
from orderflow.metrics import Metrics
from orderflow.settings import Settings
from orderflow.topics import create_topics
from producers.enricher import build_enricher, enricher_producer_options, event_from_detail
from producers.notices import NoticeWriter
from schemas.codec import AvroCodec
from schemas.models import OrderEvent, OrderNotice, make_event_id, order_key
from schemas.registry import SchemaRegistryClient
from shopee.client import ShopeeClient
from shopee.sandbox import SandboxServer
from shopee.sandbox.config import SandboxConfig
from tests.integration.stack import Stack
from tests.integration.topics import delete_topics_with_prefixes

ORDERS = 5000
TIMEOUT = 120.0
PARTNER_KEY = "bench-enricher-partner-key-0123456789"
DETAIL_CALL = "order.get_order_detail"


@dataclass
class _World:
    settings: Settings
    sandbox: SandboxServer
    client: ShopeeClient
    metrics: Metrics
    producer: Producer
    registry: SchemaRegistryClient
    engine: Engine
    shop_id: int
    item_id: int

    def consumer(
        self, group: str, on_assigned: Callable[[list[tuple[str, int]]], None]
    ) -> Consumer:
        return Consumer(
            self.settings,
            group_id=f"{group}-{self.settings.topic_notices}",
            topics=[self.settings.topic_notices],
            max_poll_records=self.settings.enricher_max_batch,
            on_assigned=on_assigned,
        )

    def detail_calls(self) -> int:
        return self.sandbox.state.call_log.counts().get(DETAIL_CALL, 0)


@contextmanager
def _world(stack: Stack, tmp: Path) -> Iterator[_World]:
    unique = uuid.uuid4().hex[:10]
    settings = Settings(
        kafka_bootstrap_servers=stack.bootstrap_servers,
        schema_registry_url=stack.registry_url,
        topic_notices=f"bench{unique}.order-notices",
        topic_orders=f"bench{unique}.orders",
        topic_actions=f"bench{unique}.order-actions",
        database_url=f"sqlite:///{tmp / 'enricher.db'}",
    )
    engine = create_engine(settings.database_url)
    migrate(engine)
    metrics = Metrics(CollectorRegistry())
    with SchemaRegistryClient(settings.schema_registry_url) as registry:
        create_topics(settings, registry)
        producer = Producer(settings, metrics)
        try:
            with SandboxServer(SandboxConfig(partner_key=PARTNER_KEY)) as sandbox:
                shop_id = sandbox.state.add_shop()
                item_id = sandbox.state.add_item(shop_id, None, [(0, "SKU", 10 * ORDERS)])
                settings = settings.model_copy(
                    update={
                        "shopee_partner_id": sandbox.state.config.partner_id,
                        "shopee_partner_key": SecretStr(PARTNER_KEY),
                        "shopee_base_url": sandbox.base_url,
                        "shopee_rate_limit_shop_per_second": 1e6,
                        "shopee_rate_limit_partner_per_second": 1e6,
                    }
                )
                client = ShopeeClient.from_settings(settings, engine, metrics)
                try:
                    client.tokens.authorize(sandbox.state.authorize(shop_id), shop_id)
                    yield _World(
                        settings,
                        sandbox,
                        client,
                        metrics,
                        producer,
                        registry,
                        engine,
                        shop_id,
                        item_id,
                    )
                finally:
                    client.close()
        finally:
            producer.close()
            engine.dispose()
            delete_topics_with_prefixes(settings, [f"bench{unique}."])


def _write_burst(world: _World) -> None:
    """``ORDERS`` new orders in the sandbox and one push notice for each on the topic."""
    state = world.sandbox.state
    order_sns = [state.create_order(world.shop_id, [(world.item_id, 0, 1)]) for _ in range(ORDERS)]
    received = datetime.now(UTC)
    notices = [
        OrderNotice(
            event_id=make_event_id(
                marketplace="shopee",
                shop_id=world.shop_id,
                order_sn=sn,
                status="READY_TO_SHIP",
                update_time=None,
                source="push",
                discriminator=sn,
            ),
            shop_id=world.shop_id,
            order_sn=sn,
            status="READY_TO_SHIP",
            source="push",
            received_at=received,
        )
        for sn in order_sns
    ]
    codec = AvroCodec(OrderNotice, world.settings.topic_notices, world.registry)
    NoticeWriter(world.producer, codec, world.metrics).write(notices, timeout=60)


@dataclass(frozen=True)
class _Run:
    seconds: float  # from the consumer's partition assignment to the last acknowledged event
    events: int
    detail_calls: int
    cpu: Cpu

    @property
    def per_second(self) -> float:
        return self.events / self.seconds


def _emitted(metrics: Metrics) -> int:
    return round(
        sum(
            sample.value
            for family in metrics.events_emitted.collect()
            for sample in family.samples
            if sample.name.endswith("_total")
        )
    )


def _run_enricher(world: _World) -> _Run:
    clock = AssignmentClock()
    consumer = world.consumer("bench-enricher", clock.assigned)
    settings = world.settings
    # As `orderflow enricher` runs it: transactions on (the default), a producer of its own.
    producer = Producer(settings, world.metrics, **enricher_producer_options(settings))
    enricher = build_enricher(
        settings,
        consumer=consumer,
        client=world.client,
        producer=producer,
        registry=world.registry,
        engine=world.engine,
        metrics=world.metrics,
        transactional=settings.enricher_transactions,
    )
    calls_before = world.detail_calls()
    deadline = time.monotonic() + TIMEOUT
    try:
        while _emitted(world.metrics) < ORDERS:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the enricher emitted {_emitted(world.metrics)} events")
            enricher.run_once()
        seconds, cpu = clock.stop()
        run = _Run(seconds, _emitted(world.metrics), world.detail_calls() - calls_before, cpu)
    finally:
        consumer.close()
        producer.close()
    return run


def _run_one_call_per_push(world: _World) -> _Run:
    clock = AssignmentClock()
    consumer = world.consumer("bench-one-call-per-push", clock.assigned)
    notice_codec = AvroCodec(OrderNotice, world.settings.topic_notices, world.registry)
    event_codec = AvroCodec(OrderEvent, world.settings.topic_orders, world.registry)
    calls_before = world.detail_calls()
    events = 0
    deadline = time.monotonic() + TIMEOUT
    try:
        while events < ORDERS:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the one-call-per-push loop emitted {events} events")
            records = consumer.poll(1.0)
            pending = []
            for record in records:
                notice = notice_codec.decode(record.value or b"")
                (detail,) = world.client.get_order_detail(notice.shop_id, [notice.order_sn]).found
                event = event_from_detail(
                    notice.shop_id,
                    detail,
                    previous_status=None,
                    source=notice.source,
                    emitted_at=datetime.now(UTC),
                )
                pending.append(
                    world.producer.submit(
                        event_codec.topic,
                        key=order_key(notice.shop_id, notice.order_sn),
                        value=event_codec.encode(event),
                        headers=[("event_id", event.event_id.encode())],
                    )
                )
            events += len(wait_all(pending, time.monotonic() + 30, what="events"))
            next_offsets: dict[tuple[str, int], int] = {}
            for record in records:
                tp = (record.topic, record.partition)
                next_offsets[tp] = max(next_offsets.get(tp, 0), record.offset + 1)
            if next_offsets:
                consumer.commit(next_offsets)
        seconds, cpu = clock.stop()
        run = _Run(seconds, events, world.detail_calls() - calls_before, cpu)
    finally:
        consumer.close()
    return run


def run(stack: Stack | None = None) -> list[Figure]:
    with (
        running_stack(stack) as found,
        tempfile.TemporaryDirectory() as tmp,
        _world(found, Path(tmp)) as world,
    ):
        _write_burst(world)
        enricher = _run_enricher(world)
        baseline = _run_one_call_per_push(world)
    per_50 = ORDERS / 50
    figures = [
        figure(
            "enricher_notices_per_s",
            "notices/s",
            enricher.per_second,
            baseline.per_second,
        ),
        figure("enricher_detail_calls", "calls", enricher.detail_calls, baseline.detail_calls),
        figure(
            "enricher_detail_calls_per_50_orders",
            "calls",
            enricher.detail_calls / per_50,
            baseline.detail_calls / per_50,
            Bound("value", "<=", 1.05),
        ),
    ]
    shop_limit = Settings.model_fields["shopee_rate_limit_shop_per_second"].default
    notes = [
        f"{ORDERS:,} notices for {ORDERS:,} distinct orders of one shop, against the sandbox "
        "in this process; client rate limiter lifted for both",
        f"enricher {enricher.seconds:.2f} s, {enricher.events:,} events; one call per push "
        f"{baseline.seconds:.2f} s, {baseline.events:,} events; ratio = value / baseline",
        f"enricher: {enricher.cpu.describe('this process, sandbox included')}",
        f"one call per push: {baseline.cpu.describe('this process, sandbox included')}",
        f"at the client's default limit of {shop_limit:g} calls/s per shop the calls alone take "
        f">= {enricher.detail_calls / shop_limit:.0f} s (enricher) and "
        f">= {baseline.detail_calls / shop_limit:.0f} s (one call per push)",
    ]
    print_table("enricher: notices -> get_order_detail -> OrderEvent on Kafka", figures, notes)
    return figures
