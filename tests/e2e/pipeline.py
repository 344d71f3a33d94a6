"""The pipeline as real processes (``orderflow webhook|poller|enricher`` and
``orderflow consume NAME``) against an in-process sandbox, on the session's stack (or any
Kafka: a ``Stack`` names one), in a database of its own; and what the tests and ``make chaos``
read back: the notices and orders topics, the ERP store, the stock ledger, the outbox, parked
records, dead letters and how far each consumer group got."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from consumers.erp.store import ErpStore
from consumers.erp.tables import shopee_outbox, stock_ledger
from consumers.parking import consumer_parked
from orderflow.db import create_engine, migrate
from orderflow.kafka import Consumer
from orderflow.metrics import Metrics
from orderflow.settings import Settings
from orderflow.topics import create_topics, dlq_topic
from producers.state import parked_notices
from schemas.codec import AvroCodec
from schemas.models import OrderEvent, OrderNotice
from schemas.registry import SchemaRegistryClient
from shopee.client import ShopeeClient
from shopee.sandbox import SandboxServer
from tests.integration.stack import Stack, free_port
from tests.integration.topics import read_topic

ORDERFLOW = str(Path(sys.executable).with_name("orderflow"))
PARTNER_ID = 2001887
PARTNER_KEY = "e2e-partner-key-0123456789abcdef"
PUSH_KEY = "e2e-live-push-key-fedcba9876543210"
CONSUMERS = ("erp-sync", "stock-restore", "auto-cancel")


def fresh_database(stack: Stack) -> str:
    """A new, empty PostgreSQL database on the stack (SQLite when it has none)."""
    if stack.postgres_url is None:
        return f"sqlite:////tmp/orderflow-e2e-{uuid.uuid4().hex[:8]}.db"
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # a generated name, not input
    return stack.postgres_url.rsplit("/", 1)[0] + "/" + name


@dataclass(frozen=True)
class LedgerRow:
    shop_id: int
    order_sn: str
    item_id: int
    model_id: int
    to_state: str
    quantity: int


TOPIC_PREFIXES: list[str] = []
"""The topic-name prefix of every Pipeline made in this session (tests/e2e/conftest.py
deletes their topics at the end)."""


@dataclass
class Pipeline:
    """Settings shared by the test and the processes, and the processes themselves.

    ``database_url`` empty: a fresh database on the stack's PostgreSQL; a test that takes
    the database away passes a server of its own (``tests.e2e.postgres_instance``).
    ``replication_factor``: of the run's topics (3 on a three-broker cluster)."""

    stack: Stack
    workdir: Path
    webhook_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    metrics_urls: dict[str, str] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    database_url: str = ""
    replication_factor: int = 1
    commands: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        suffix = uuid.uuid4().hex[:8]
        TOPIC_PREFIXES.append(f"e2e{suffix}.")
        if not self.database_url:
            self.database_url = fresh_database(self.stack)
        self.settings = Settings(
            kafka_bootstrap_servers=self.stack.bootstrap_servers,
            schema_registry_url=self.stack.registry_url,
            database_url=self.database_url,
            topic_notices=f"e2e{suffix}.order-notices",
            topic_orders=f"e2e{suffix}.orders",
            topic_actions=f"e2e{suffix}.order-actions",
            topic_partitions=3,
            topic_replication_factor=self.replication_factor,
            # Groups of its own: members of another run's group (other topics) would take
            # part in this run's rebalances.
            enricher_group_id=f"e2e{suffix}-enricher",
            consumer_group_prefix=f"e2e{suffix}-",
            shopee_partner_id=PARTNER_ID,
            shopee_partner_key=PARTNER_KEY,
            shopee_push_key=PUSH_KEY,
            webhook_public_url=self.webhook_url,
        )
        with SchemaRegistryClient(self.stack.registry_url) as registry:
            create_topics(self.settings, registry)
        engine = create_engine(self.database_url)
        migrate(engine)
        engine.dispose()

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.webhook_port}/shopee/push"

    def env(self, sandbox: SandboxServer) -> dict[str, str]:
        s = self.settings
        values = {
            "ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
            "ORDERFLOW_SCHEMA_REGISTRY_URL": s.schema_registry_url,
            "ORDERFLOW_DATABASE_URL": s.database_url,
            "ORDERFLOW_TOPIC_NOTICES": s.topic_notices,
            "ORDERFLOW_TOPIC_ORDERS": s.topic_orders,
            "ORDERFLOW_TOPIC_ACTIONS": s.topic_actions,
            "ORDERFLOW_TOPIC_REPLICATION_FACTOR": str(s.topic_replication_factor),
            "ORDERFLOW_ENRICHER_GROUP_ID": s.enricher_group_id,
            "ORDERFLOW_CONSUMER_GROUP_PREFIX": s.consumer_group_prefix,
            "ORDERFLOW_SHOPEE_PARTNER_ID": str(PARTNER_ID),
            "ORDERFLOW_SHOPEE_PARTNER_KEY": PARTNER_KEY,
            "ORDERFLOW_SHOPEE_PUSH_KEY": PUSH_KEY,
            "ORDERFLOW_SHOPEE_BASE_URL": sandbox.base_url,
            "ORDERFLOW_WEBHOOK_PUBLIC_URL": self.webhook_url,
            "ORDERFLOW_WEBHOOK_PORT": str(self.webhook_port),
            "ORDERFLOW_LOG_LEVEL": "INFO",
            **self.extra_env,
        }
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
        return inherited | values

    def authorize(self, sandbox: SandboxServer, shop_id: int) -> None:
        """Store the shop's tokens through the real code exchange."""
        settings = self.settings.model_copy(update={"shopee_base_url": sandbox.base_url})
        engine = create_engine(self.database_url)
        try:
            with ShopeeClient.from_settings(settings, engine, Metrics()) as client:
                client.tokens.authorize(sandbox.state.authorize(shop_id), shop_id)
        finally:
            engine.dispose()

    def start(self, name: str, sandbox: SandboxServer, command: Sequence[str] = ()) -> None:
        """Start ``orderflow COMMAND`` (default ``orderflow NAME``) as the process ``name``,
        logging to ``NAME.<nth start>.log``."""
        metrics_port = free_port()
        env = self.env(sandbox) | {"ORDERFLOW_METRICS_PORT": str(metrics_port)}
        port = self.webhook_port if name == "webhook" else metrics_port
        self.metrics_urls[name] = f"http://127.0.0.1:{port}/metrics"
        self.starts[name] += 1
        self.commands[name] = list(command or [name])
        with (self.workdir / f"{name}.{self.starts[name]}.log").open("wb") as log:
            # The child keeps its own copy of the descriptor.
            self.processes[name] = subprocess.Popen(
                [ORDERFLOW, *(command or [name])], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        if name == "webhook":
            self._wait_ready(f"http://127.0.0.1:{self.webhook_port}/readyz", name)
        elif name in CONSUMERS:
            # Alive once it is wired (database migrated, registry answered) and serves its
            # health endpoints; a consumer that cannot start fails here, not minutes later.
            self._wait_ready(f"http://127.0.0.1:{metrics_port}/healthz", name, timeout=60)

    def exposition_problems(self, promtool: str) -> dict[str, str]:
        """Per running process, what ``promtool check metrics`` says is wrong with its
        ``/metrics`` (processes it accepts are left out)."""
        problems = {}
        for name in self.processes:
            body = httpx.get(self.metrics_urls[name], timeout=10).content
            checked = subprocess.run(
                [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60
            )
            if checked.returncode != 0 or checked.stdout.strip() or checked.stderr.strip():
                problems[name] = (checked.stdout + checked.stderr).decode(errors="replace")
        return problems

    def start_consumer(self, name: str, sandbox: SandboxServer, start: str = "earliest") -> None:
        """``orderflow consume NAME --from START`` as the process ``name``."""
        self.start(name, sandbox, ["consume", name, "--from", start])

    def _wait_ready(self, url: str, name: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited: see {self.workdir}/{name}.*.log")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{name} not ready within {timeout}s")

    def kill(self, name: str) -> None:
        """SIGKILL: no drain, no flush, no commit."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self, name: str, timeout: float = 30.0) -> int:
        """SIGTERM one process and wait for it to drain; its exit code (0 = clean)."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            return -9

    def restart(self, name: str, sandbox: SandboxServer) -> None:
        """Start ``name`` again with the command it was last started with."""
        self.start(name, sandbox, self.commands[name])

    def exited(self) -> dict[str, int]:
        """The processes that ended on their own, with their exit codes."""
        return {
            name: code
            for name, process in self.processes.items()
            if (code := process.poll()) is not None
        }

    def stop_all(self, timeout: float = 30.0) -> dict[str, int]:
        """SIGTERM every process and return their exit codes (0 = drained cleanly)."""
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        codes = {}
        for name, process in self.processes.items():
            try:
                codes[name] = process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = -9
        self.processes.clear()
        return codes

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for path in sorted(self.workdir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def notices(self) -> list[OrderNotice]:
        """Every notice on the notices topic (pushes, polls, lost pushes), partition by
        partition in offset order."""
        with SchemaRegistryClient(self.stack.registry_url) as registry:
            codec = AvroCodec(OrderNotice, self.settings.topic_notices, registry)
            records = read_topic(self.settings, self.settings.topic_notices)
            return [codec.decode(record.value or b"") for record in records]

    def events(self) -> list[OrderEvent]:
        with SchemaRegistryClient(self.stack.registry_url) as registry:
            codec = AvroCodec(OrderEvent, self.settings.topic_orders, registry)
            records = read_topic(self.settings, self.settings.topic_orders)
            return [codec.decode(record.value or b"") for record in records]

    def dead_letters(self) -> int:
        return len(read_topic(self.settings, f"{self.settings.topic_notices}.dlq.enricher"))

    def consumer_dead_letters(self) -> dict[str, int]:
        """Per consumer, the records on ``<orders topic>.dlq.<consumer>``."""
        return {
            name: len(read_topic(self.settings, dlq_topic(self.settings.topic_orders, name)))
            for name in CONSUMERS
        }

    # -- consumer groups ----------------------------------------------------------------------

    def group(self, consumer: str) -> str:
        return f"{self.settings.consumer_group_prefix}{consumer}"

    def unread(self, consumer: str, limit: int = 1, timeout: float = 30.0) -> int:
        """Records on the orders topic past the consumer group's committed offsets, counted
        up to ``limit`` (the default answers "caught up or not" cheaply)."""
        return self.unread_by(self.group(consumer), self.settings.topic_orders, limit, timeout)

    def enricher_unread(self, limit: int = 1, timeout: float = 30.0) -> int:
        """Records on the notices topic past the enricher group's committed offsets."""
        s = self.settings
        return self.unread_by(s.enricher_group_id, s.topic_notices, limit, timeout)

    def unread_by(self, group: str, topic: str, limit: int = 1, timeout: float = 30.0) -> int:
        """Records on ``topic`` past ``group``'s committed offsets, counted up to ``limit``.
        Read, not computed from offsets: the enricher writes in transactions, so a
        partition's end lies past a commit marker the group never has to commit."""
        # Assigned, not subscribed: it reads the group's offsets without joining the group,
        # and commits nothing. "earliest": a group that never committed has read nothing.
        reader = Consumer(
            self.settings,
            group_id=group,
            topics=[topic],
            assign=True,
            auto_offset_reset="earliest",
        )
        try:
            ends = reader.end_offsets_of(topic)
            found = 0
            deadline = time.monotonic() + timeout
            while found < limit and any(reader.position(*tp) < end for tp, end in ends.items()):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {topic} as {group} timed out")
                found += len(reader.poll(0.5))
            return found
        finally:
            reader.close()

    # -- the database -------------------------------------------------------------------------

    @contextmanager
    def engine(self) -> Iterator[Engine]:
        engine = create_engine(self.database_url)
        try:
            yield engine
        finally:
            engine.dispose()

    @contextmanager
    def erp(self) -> Iterator[ErpStore]:
        """The ERP store the consumers write (orders, stock, ledger totals)."""
        with self.engine() as engine:
            yield ErpStore(engine)

    def ledger(self) -> list[LedgerRow]:
        """Every stock ledger row (one per line transition), in the order written."""
        c = stock_ledger.c
        query = sa.select(
            c.shop_id, c.order_sn, c.item_id, c.model_id, c.to_state, c.quantity
        ).order_by(c.id)
        with self.engine() as engine, engine.connect() as conn:
            return [
                LedgerRow(
                    int(r.shop_id),
                    str(r.order_sn),
                    int(r.item_id),
                    int(r.model_id),
                    str(r.to_state),
                    int(r.quantity),
                )
                for r in conn.execute(query)
            ]

    def parked(self) -> dict[str, int]:
        """Records waiting for a blocked shop: the enricher's parked notices and each
        consumer's parked records."""
        counted = {name: 0 for name in ("enricher", *CONSUMERS)}
        with self.engine() as engine, engine.connect() as conn:
            counted["enricher"] = int(
                conn.execute(sa.select(sa.func.count()).select_from(parked_notices)).scalar_one()
            )
            c = consumer_parked.c
            for consumer, count in conn.execute(
                sa.select(c.consumer, sa.func.count()).group_by(c.consumer)
            ):
                counted[str(consumer)] = int(count)
        return counted

    def outbox_states(self) -> dict[tuple[int, str, str], str]:
        """Per ``(shop_id, order_sn, kind)``, the state of the Shopee call in the outbox."""
        c = shopee_outbox.c
        query = sa.select(c.shop_id, c.order_sn, c.kind, c.state)
        with self.engine() as engine, engine.connect() as conn:
            return {
                (int(r.shop_id), str(r.order_sn), str(r.kind)): str(r.state)
                for r in conn.execute(query)
            }
