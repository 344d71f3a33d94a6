"""Fixtures for the ingest tests: the sandbox with an authorised shop, the real broker and
registry, and the enricher wired the way ``orderflow enricher`` wires it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import SecretStr

from orderflow.db import create_engine, migrate
from orderflow.kafka import Admin, Consumer, Producer
from orderflow.metrics import Metrics
from orderflow.settings import Settings
from orderflow.topics import ensure_topics
from producers.enricher import Enricher, build_enricher
from producers.notices import NoticeWriter
from producers.state import EmittedSnapshots
from schemas.codec import AvroCodec
from schemas.models import OrderNotice
from schemas.registry import SchemaRegistryClient
from shopee.client import ShopeeClient
from shopee.sandbox import SandboxServer
from shopee.sandbox.config import SandboxConfig

PARTNER_KEY = "enricher-test-partner-key-0123456789"
DAY = 86400


@dataclass
class World:
    settings: Settings
    sandbox: SandboxServer
    client: ShopeeClient
    metrics: Metrics
    producer: Producer
    registry: SchemaRegistryClient
    engine_url: str
    shop_id: int
    item_id: int
    closers: list[Callable[[], object]] = field(default_factory=list)

    def notice_writer(self) -> NoticeWriter:
        codec = AvroCodec(OrderNotice, self.settings.topic_notices, self.registry)
        return NoticeWriter(self.producer, codec, self.metrics)

    def enricher(
        self,
        consumer: Consumer,
        *,
        transactional: bool = True,
        snapshots: EmittedSnapshots | None = None,
    ) -> Enricher:
        """An enricher wired as ``orderflow enricher`` wires it (transactional by default,
        with a producer of its own)."""
        producer = self.producer
        if transactional:
            producer = Producer(
                self.settings, self.metrics, transactional_id=f"test-{uuid.uuid4().hex[:8]}"
            )
            self.closers.append(producer.close)
        engine = create_engine(self.engine_url)
        self.closers.append(engine.dispose)
        enricher = build_enricher(
            self.settings,
            consumer=consumer,
            client=self.client,
            producer=producer,
            registry=self.registry,
            engine=engine,
            metrics=self.metrics,
            transactional=transactional,
        )
        if snapshots is not None:
            enricher.snapshots = snapshots
        return enricher

    def enrich_until(self, events: int, timeout: float = 120.0) -> float:
        """Run an enricher until ``events`` events were emitted; returns the seconds taken."""
        consumer = Consumer(
            self.settings,
            group_id=f"enricher-{self.settings.topic_notices}",
            topics=[self.settings.topic_notices],
            max_poll_records=500,
        )
        enricher = self.enricher(consumer)
        started = time.monotonic()
        try:
            while self._emitted() < events:
                assert time.monotonic() - started < timeout, f"only {self._emitted()} events"
                enricher.run_once()
        finally:
            consumer.close()
        return time.monotonic() - started

    def _emitted(self) -> float:
        return sum(
            sample.value
            for metric in self.metrics.events_emitted.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )

    def calls(self, api: str) -> int:
        return self.sandbox.state.call_log.counts().get(api, 0)

    def add_shop(self) -> tuple[int, int]:
        """Another authorised shop with one well-stocked item: (shop_id, item_id)."""
        state = self.sandbox.state
        shop_id = state.add_shop()
        item_id = state.add_item(shop_id, None, [(0, "SKU", 1_000_000)])
        self.client.tokens.authorize(state.authorize(shop_id), shop_id)
        return shop_id, item_id


@pytest.fixture
def world(
    settings: Settings,
    registry: SchemaRegistryClient,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[World]:
    """The sandbox with one authorised shop; ``@pytest.mark.sandbox(**fields)`` sets
    SandboxConfig fields for one test."""
    admin = Admin(settings)
    ensure_topics(settings, admin, registry)
    admin.close()
    engine_url = f"sqlite:///{tmp_path}/ingest.db"
    engine = create_engine(engine_url)
    migrate(engine)
    metrics = Metrics()
    producer = Producer(settings, metrics)
    marker = request.node.get_closest_marker("sandbox")
    config = SandboxConfig(partner_key=PARTNER_KEY, **(marker.kwargs if marker else {}))
    with SandboxServer(config) as sandbox:
        shop_id = sandbox.state.add_shop()
        item_id = sandbox.state.add_item(shop_id, None, [(0, "SKU", 1_000_000)])
        shop_settings = settings.model_copy(
            update={
                "shopee_partner_id": sandbox.state.config.partner_id,
                "shopee_partner_key": SecretStr(PARTNER_KEY),
                "shopee_base_url": sandbox.base_url,
                # The sandbox answers in microseconds; the client's own limiter is not the
                # subject here.
                "shopee_rate_limit_shop_per_second": 1000.0,
                "shopee_rate_limit_partner_per_second": 1000.0,
            }
        )
        client = ShopeeClient.from_settings(shop_settings, engine, metrics)
        client.tokens.authorize(sandbox.state.authorize(shop_id), shop_id)
        world = World(
            shop_settings,
            sandbox,
            client,
            metrics,
            producer,
            registry,
            engine_url,
            shop_id,
            item_id,
        )
        yield world
        for close in reversed(world.closers):
            close()
        client.close()
    producer.close()
    engine.dispose()
