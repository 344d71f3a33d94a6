"""Fixtures for the consumers on the real broker, registry and database.

``world`` gives each test its own topics, its own database (a fresh PostgreSQL database when
the stack has PostgreSQL), a running Shopee sandbox and an operator's Shopee client. From it,
``world.consumer(NAME)`` builds a consumer in this process exactly as ``orderflow consume
NAME`` builds it (``consumers.cli``: the handler factory, ``build_runtime``, a group member
named ``<prefix><NAME>`` that commits nothing on its own), and ``world.process(NAME)`` runs
the real command as a child process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from consumers.cli import (
    HandlerFactory,
    Start,
    auto_cancel_handler,
    build_runtime,
    erp_sync_handler,
    stock_restore_handler,
)
from consumers.erp.store import ErpStore
from consumers.parking import ParkedRecords
from consumers.runtime import ConsumerRuntime
from orderflow.db import create_engine, migrate
from orderflow.kafka import ConsumedRecord, Consumer, Producer
from orderflow.metrics import Metrics
from orderflow.process import StopFlag
from orderflow.settings import Settings
from orderflow.topics import create_topics
from orderflow.wiring import ProcessParts
from schemas.models import OrderAction
from schemas.registry import SchemaRegistryClient
from shopee.client import ShopeeClient
from shopee.sandbox import SandboxConfig, SandboxServer
from tests.integration.consumers.events import (
    EventWriter,
    group_offsets,
    read_actions,
    read_dead_letters,
)
from tests.integration.stack import Stack, free_port

ORDERFLOW = str(Path(sys.executable).with_name("orderflow"))
PARTNER_ID = 2001887
PARTNER_KEY = "consumer-test-partner-key-0123456789"

FACTORIES: dict[str, HandlerFactory] = {
    "erp-sync": erp_sync_handler,
    "stock-restore": stock_restore_handler,
    "auto-cancel": auto_cancel_handler,
}


def wait_for(done: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``done`` until it holds; fail naming ``what`` after ``timeout`` seconds. (A
    deadline for outcomes that arrive asynchronously, not a sleep standing in for them.)"""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.1)


class RunningConsumer:
    """One ``orderflow consume NAME`` built in this process: its parts, group member and
    runtime. Drive it batch by batch (``run_until``) or let it loop in a thread as the
    command does (``start``/``stop``)."""

    def __init__(self, name: str, settings: Settings, start: Start) -> None:
        self.name = name
        metrics = Metrics()
        engine = create_engine(settings.database_url)
        registry = SchemaRegistryClient(settings.schema_registry_url)
        self.parts = ProcessParts(
            name, settings, StopFlag(), metrics, engine, registry, Producer(settings, metrics)
        )
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.consumer: Consumer | None = None
        self.closed = False
        try:
            handler = FACTORIES[name](self.parts)
            self.consumer = Consumer(
                settings,
                group_id=f"{settings.consumer_group_prefix}{name}",
                topics=[settings.topic_orders],
                max_poll_records=settings.consumer_max_batch,
                auto_offset_reset=start,
                on_revoked=self._revoked,
            )
            self.runtime: ConsumerRuntime = build_runtime(self.parts, handler, self.consumer)
        except BaseException:
            self.close()
            raise

    @property
    def metrics(self) -> Metrics:
        return self.parts.metrics

    def metric(self, name: str, **labels: str) -> float:
        """One sample of this consumer's metrics (0 when it was never set)."""
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def metric_sum(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels``."""
        return sum(
            sample.value
            for family in self.metrics.registry.collect()
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def _revoked(self, partitions: list[tuple[str, int]]) -> None:
        self.runtime.on_revoked(partitions)  # what run_consumer's listener does

    def run_until(self, done: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        """Batches (``run_once``) on this thread until ``done()``."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name}: {what}: not within {timeout:.0f}s")
            self.runtime.run_once(self.parts.stop)

    def start(self) -> RunningConsumer:
        """``runtime.run`` on a thread of its own, until ``stop``."""

        def run() -> None:
            try:
                self.runtime.run(self.parts.stop)
            except BaseException as exc:
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"consumer-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Set the stop flag as SIGTERM does and wait for the loop; re-raise what it raised."""
        self.parts.stop.set()
        if self._thread is not None:
            self._thread.join(60)
            assert not self._thread.is_alive(), f"{self.name} did not stop"
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.stop()
        finally:
            if self.consumer is not None:
                self.consumer.close()
                self.consumer = None
            self.parts.close()


@dataclass
class ConsumerProcess:
    """``orderflow consume NAME`` as a child process."""

    name: str
    process: subprocess.Popen[bytes]
    metrics_port: int
    log: Path

    def metrics(self) -> str:
        try:
            return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return ""

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        """The labels and value of each of ``name``'s samples on the process's /metrics."""
        line = re.compile(rf"^{re.escape(name)}\{{([^}}]*)\}} (\S+)$", re.MULTILINE)
        label = re.compile(r'(\w+)="([^"]*)"')
        return [
            (dict(label.findall(found.group(1))), float(found.group(2)))
            for found in line.finditer(self.metrics())
        ]

    def metric(self, name: str, **labels: str) -> float | None:
        """The sample with exactly these labels, or None while it is not exported."""
        for got, value in self.samples(name):
            if got == labels:
                return value
        return None

    def metric_sum(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels``."""
        return sum(v for got, v in self.samples(name) if labels.items() <= got.items())

    def assert_running(self) -> None:
        assert self.process.poll() is None, f"{self.name} exited:\n{self.output()}"

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code (-9 if it had to be killed)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            return -9

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class ConsumerWorld:
    settings: Settings
    registry: SchemaRegistryClient
    sandbox: SandboxServer
    engine: Engine
    client: ShopeeClient
    writer: EventWriter
    workdir: Path
    running: list[RunningConsumer] = field(default_factory=list)
    processes: list[ConsumerProcess] = field(default_factory=list)

    @property
    def store(self) -> ErpStore:
        return ErpStore(self.engine)

    def configure(self, **overrides: object) -> None:
        """Change settings for the consumers built from now on."""
        self.settings = self.settings.model_copy(update=overrides)

    def group(self, name: str) -> str:
        return f"{self.settings.consumer_group_prefix}{name}"

    # -- consumers ----------------------------------------------------------------------------

    def consumer(self, name: str, *, start: Start = "earliest") -> RunningConsumer:
        running = RunningConsumer(name, self.settings, start)
        self.running.append(running)
        return running

    def process(self, name: str, *args: str, **env: str) -> ConsumerProcess:
        port = free_port()
        log = self.workdir / f"{name}.{len(self.processes)}.log"
        with log.open("wb") as out:
            # The child keeps its own copy of the descriptor.
            child = subprocess.Popen(
                [ORDERFLOW, "consume", name, *args],
                env=self.env() | {"ORDERFLOW_METRICS_PORT": str(port)} | env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started = ConsumerProcess(name, child, port, log)
        self.processes.append(started)
        return started

    def env(self) -> dict[str, str]:
        """The ``ORDERFLOW_*`` environment of a process configured like ``settings``."""
        s = self.settings
        values = {
            "ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
            "ORDERFLOW_SCHEMA_REGISTRY_URL": s.schema_registry_url,
            "ORDERFLOW_DATABASE_URL": s.database_url,
            "ORDERFLOW_TOPIC_NOTICES": s.topic_notices,
            "ORDERFLOW_TOPIC_ORDERS": s.topic_orders,
            "ORDERFLOW_TOPIC_ACTIONS": s.topic_actions,
            "ORDERFLOW_CONSUMER_GROUP_PREFIX": s.consumer_group_prefix,
            "ORDERFLOW_SHOPEE_PARTNER_ID": str(PARTNER_ID),
            "ORDERFLOW_SHOPEE_PARTNER_KEY": PARTNER_KEY,
            "ORDERFLOW_SHOPEE_BASE_URL": s.shopee_base_url,
            "ORDERFLOW_SHOPEE_RATE_LIMIT_SHOP_PER_SECOND": str(s.shopee_rate_limit_shop_per_second),
            "ORDERFLOW_SHOPEE_RATE_LIMIT_PARTNER_PER_SECOND": str(
                s.shopee_rate_limit_partner_per_second
            ),
            "ORDERFLOW_AUTO_CANCEL_DAILY_BUDGET": str(s.auto_cancel_daily_budget),
            "ORDERFLOW_CONSUMER_BLOCKED_RETRY_SECONDS": str(s.consumer_blocked_retry_seconds),
            "ORDERFLOW_HTTP_HOST": "127.0.0.1",
            "ORDERFLOW_LOG_LEVEL": "INFO",
        }
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
        return inherited | values

    # -- Shopee -------------------------------------------------------------------------------

    def authorize(self, shop_id: int) -> None:
        """The seller authorises the app and the code is exchanged (tokens stored)."""
        self.client.tokens.authorize(self.sandbox.state.authorize(shop_id), shop_id)

    def add_shop(self, stock: int = 1000) -> tuple[int, int]:
        """An authorised shop with one item (model 0, ``stock`` on Shopee's side)."""
        state = self.sandbox.state
        shop_id = state.add_shop()
        item_id = state.add_item(shop_id, None, [(0, "SKU", stock)])
        self.authorize(shop_id)
        return shop_id, item_id

    def cancel_calls(self, *, ok: bool | None = True) -> list[str]:
        """The order_sn of every cancel_order call the sandbox answered (successes only by
        default), in arrival order."""
        return [
            str(call.body["order_sn"])
            for call in self.sandbox.state.call_log.snapshot("order.cancel_order")
            if ok is None or call.ok == ok
        ]

    # -- what the consumers left behind -------------------------------------------------------

    def offsets(self, name: str) -> tuple[dict[int, int], dict[int, int]]:
        return group_offsets(self.settings, self.group(name))

    def caught_up(self, name: str) -> bool:
        """Whether the group committed every record now on the orders topic."""
        committed, ends = self.offsets(name)
        return committed == ends

    def catch_up(self, *consumers: RunningConsumer) -> None:
        """Run each consumer's batches until its group committed the whole orders topic."""
        for running in consumers:
            running.run_until(partial(self.caught_up, running.name), "every record committed")

    def dead_letters(self, name: str) -> list[ConsumedRecord]:
        return read_dead_letters(self.settings, name)

    def actions(self) -> list[OrderAction]:
        """Every action on the actions topic, once each consumer built here published what
        it recorded (its relay process publishes on its own time)."""
        for running in self.running:
            if not running.closed:
                running.runtime.flush_actions(60.0)
        return read_actions(self.settings, self.registry)

    def parked(self, name: str) -> int:
        return ParkedRecords(self.engine, name).count()

    def close(self) -> None:
        for running in reversed(self.running):
            running.close()
        for started in self.processes:
            if started.process.poll() is None:
                started.process.kill()
                started.process.wait(10)


@pytest.fixture
def database_url(stack: Stack, tmp_path: Path) -> Iterator[str]:
    """A new, migrated database of this test's own (PostgreSQL when the stack has it),
    dropped afterwards."""
    if stack.postgres_url is None:
        url = f"sqlite:///{tmp_path / 'consumers.db'}"
        _migrate(url)
        yield url
        return
    name = f"consumers_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # a generated name, not input
    url = stack.postgres_url.rsplit("/", 1)[0] + "/" + name
    _migrate(url)
    yield url
    with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        migrate(engine)
    finally:
        engine.dispose()


@pytest.fixture
def world(
    settings: Settings,
    database_url: str,
    registry: SchemaRegistryClient,
    unique: str,
    tmp_path: Path,
) -> Iterator[ConsumerWorld]:
    """This test's topics (3 partitions), database, sandbox and Shopee client."""
    with SandboxServer(SandboxConfig(partner_id=PARTNER_ID, partner_key=PARTNER_KEY)) as sandbox:
        configured = settings.model_copy(
            update={
                "database_url": database_url,
                "consumer_group_prefix": f"t{unique}-",
                "shopee_partner_id": PARTNER_ID,
                "shopee_partner_key": SecretStr(PARTNER_KEY),
                "shopee_base_url": sandbox.base_url,
                # The sandbox answers in microseconds; the client's own limiter is not the
                # subject here.
                "shopee_rate_limit_shop_per_second": 1000.0,
                "shopee_rate_limit_partner_per_second": 1000.0,
            }
        )
        create_topics(configured, registry)
        engine = create_engine(database_url)
        client = ShopeeClient.from_settings(configured, engine, Metrics())
        writer = EventWriter(configured, registry)
        built = ConsumerWorld(configured, registry, sandbox, engine, client, writer, tmp_path)
        try:
            yield built
        finally:
            built.close()
            writer.close()
            client.close()
            engine.dispose()
