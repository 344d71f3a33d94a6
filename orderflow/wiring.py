"""The parts every long-running process opens: settings, logs, metrics, database, registry,
Kafka.

Entry points (``orderflow webhook|poller|enricher|backfill|consume``) open their parts once
and close them on the way out; everything below them receives the parts as arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from sqlalchemy.engine import Engine

from orderflow.db import create_engine, migrate
from orderflow.health import HealthServer
from orderflow.kafka import Producer
from orderflow.metrics import Metrics
from orderflow.process import StopFlag, start_process
from orderflow.settings import Settings, load_settings
from schemas.registry import SchemaRegistryClient
from shopee.client import ShopeeClient

log = logging.getLogger(__name__)


@dataclass
class ProcessParts:
    name: str
    settings: Settings
    stop: StopFlag
    metrics: Metrics
    engine: Engine
    registry: SchemaRegistryClient
    producer: Producer
    _closers: list[Callable[[], object]] = field(default_factory=list)

    @classmethod
    def open(
        cls,
        name: str,
        *,
        settings: Settings | None = None,
        producer_options: dict[str, Any] | None = None,
    ) -> Self:
        settings = settings if settings is not None else load_settings()
        stop = start_process(settings, name)
        metrics = Metrics()
        engine = create_engine(settings.database_url)
        migrate(engine)
        registry = SchemaRegistryClient(settings.schema_registry_url)
        producer = Producer(settings, metrics, **(producer_options or {}))
        return cls(name, settings, stop, metrics, engine, registry, producer)

    def shopee(self) -> ShopeeClient:
        client = ShopeeClient.from_settings(self.settings, self.engine, self.metrics)
        client.tokens.publish_all()
        self._closers.append(client.close)
        return client

    def on_close(self, closer: Callable[[], object]) -> None:
        """Call ``closer`` when the process closes its parts (last registered, first called)."""
        self._closers.append(closer)

    def serve_health(self, *, ready: Any, alive: Any) -> HealthServer:
        server = HealthServer(
            self.metrics,
            ready=ready,
            alive=alive,
            host=self.settings.http_host,
            port=self.settings.metrics_port,
        ).start()
        self._closers.append(server.stop)
        return server

    def close(self) -> None:
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception:
                log.exception("error while closing %s", closer)
        self.producer.close()
        self.registry.close()
        self.engine.dispose()
        log.info("orderflow %s stopped", self.name)
