"""End to end: a push received by the webhook -> its order's row committed in the ERP store,
p50 and p99 at a fixed offered rate, against a bare chain of the same hops in the same run.

**The pipeline** runs as deployed: the six ``orderflow`` commands, each a process of its own
with the production defaults (6 partitions, the enricher's 0.25 s linger and Kafka
transactions, the poller's 60 s interval, INFO logs): ``webhook``, ``poller``, ``enricher``,
``consume erp-sync``, ``consume stock-restore`` and ``consume auto-cancel``. Only erp-sync is
on the measured path, but a deployment runs the others beside it on the same machine, broker
and database, so they run here too (the ERP stock is plentiful: auto-cancel reserves and never
cancels, so no extra order changes arise). The poller lists once at its start; whether its
next round (60 s later) falls inside the measured window depends on start-up times, so its
share of the load is small, as it is in production. The database is a new one on the stack's
PostgreSQL, which is what a production deployment uses (SQLite serves one replica only); only
a stack without PostgreSQL falls back to a SQLite file, and the notes say so. Topics and
consumer groups are new for every run.

**The load**: the Shopee sandbox, in a process of its own (Shopee is not part of the system
under test, and must not compete with the measuring thread for one interpreter lock), creates
new orders as a Poisson process at ``RATE`` orders/s over two shops and delivers each one's
signed code-3 push to the callback URL with ``PUSH_SENDERS`` deliveries in flight, as Shopee
does. With ``time_factor`` 1 an order's next lifecycle step is at least 60 s away, so within
the run every order is one push and one change.

**The measurement**: for every push, *received* is when the webhook got it: the
``received_at`` it stamps on the ``OrderNotice`` (its own clock, once the body is read,
verified and parsed; millisecond resolution), read back from the notices topic. Time a push
spends queued in front of the webhook (in the sandbox or the listen backlog) is therefore
not in the figure; the notes show it, and ``e2e_orders_per_s`` falls short of the offered rate
when it grows. *Committed* is when a row reflecting that change (same ``update_time`` and
status, or newer) is visible in ``erp_orders``: a thread polls the rows of the orders still
outstanding every ``POLL_INTERVAL`` seconds and notes the time each query started. A row
first seen by a query was committed after the previous query started and before this one did,
so a latency is overstated by at most one polling period (about 50-60 ms, half that on
average) and never understated. The first ``WARMUP`` seconds of traffic are not measured; the
changes received in the next ``MEASURE`` seconds are, and each gets up to ``DRAIN`` seconds
after the traffic stops to be committed (one never committed counts as infinitely late).
Before the traffic, one probe order goes through the whole chain, so consumer group joins and
first connections are not measured.

**The baseline** (``benchmarks/e2e_baseline.py``): endpoint -> Kafka -> relay -> Kafka -> sink
-> the same database, three bare processes, driven by a sandbox with the same seed (the same
arrivals) and measured the same way, with the endpoint's own receipt stamp. Ratio = pipeline /
baseline: how far above the floor of these hops the pipeline sits.

Figures: ``e2e_latency_p50_ms``, ``e2e_latency_p99_ms`` (target: at most 2,000 ms) and
``e2e_orders_per_s``, the changes committed per second during the window (target: at least
95% of the offered rate, without which the p99 would not be "at 200 orders/s"). The notes
split each side's latency at its second topic (the OrderEvent's record timestamp, the relayed
record's) and give the CPU each process used during the window.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from benchmarks import e2e_baseline
from benchmarks.cpu import machine_seconds, process_seconds
from benchmarks.report import Bound, Figure, figure, print_table
from benchmarks.stack import running_stack
from consumers.erp.store import ErpStore
from consumers.erp.tables import erp_orders
from orderflow.db import create_engine, migrate
from orderflow.kafka import read_since
from orderflow.metrics import Metrics
from orderflow.settings import Settings
from orderflow.topics import create_topics
from schemas.codec import AvroCodec
from schemas.models import OrderEvent, OrderNotice
from schemas.registry import SchemaRegistryClient
from shopee.client import ShopeeClient
from shopee.sandbox import SandboxServer
from shopee.sandbox.config import SandboxConfig
from tests.integration.stack import Stack, free_port
from tests.integration.topics import delete_topics_with_prefixes

RATE = 200.0  # offered orders/s
WARMUP = 5.0
MEASURE = 20.0
DRAIN = 30.0
READY_TIMEOUT = 90.0
# The tracker's (and the push forwarder's) period. Each poll reads the rows of every order
# still outstanding: at 20 ms the harness took ~0.2 of the 2 cores it shares with the
# pipeline, more as the backlog grew (a slow minute fed itself). Latencies are overstated by
# at most one period, against a 2 s target.
POLL_INTERVAL = 0.05
# Pushes the sandbox keeps in flight at once. Shopee does not say how many it sends in
# parallel; enough that the offered rate does not depend on how fast the receiver answers
# (200/s at up to 150 ms an answer), few enough not to fight over the sandbox's own GIL.
PUSH_SENDERS = 32
SEED = 91126
ITEMS_PER_SHOP = 4
STOCK = 1_000_000  # Shopee's and the ERP's, per model: no order is short
P99_TARGET = Bound("value", "<=", 2000)
RATE_TARGET = Bound("value", ">=", 0.95 * RATE)

HOST = "127.0.0.1"
PARTNER_ID = 2001887
PARTNER_KEY = "bench-e2e-partner-key-0123456789abcdef"
PUSH_KEY = "bench-e2e-push-key-fedcba9876543210"
ORDERFLOW = str(Path(sys.executable).with_name("orderflow"))
# (process name, command): every process of a deployment.
COMMANDS = (
    ("webhook", ("webhook",)),
    ("poller", ("poller",)),
    ("enricher", ("enricher",)),
    ("erp-sync", ("consume", "erp-sync")),
    ("stock-restore", ("consume", "stock-restore")),
    ("auto-cancel", ("consume", "auto-cancel")),
)

ChangeKey = tuple[int, str, str, int]
"""One order change: (shop_id, order_sn, status, update_time in epoch seconds)."""


# -- pure parts --------------------------------------------------------------------------------


def push_change(payload: Mapping[str, object]) -> ChangeKey | None:
    """The change an order status push (code 3) announces; None for any other push."""
    data = payload.get("data")
    if payload.get("code") != 3 or not isinstance(data, Mapping):
        return None
    return (
        int(str(payload["shop_id"])),
        str(data["ordersn"]),
        str(data["status"]),
        int(str(data["update_time"])),
    )


def reflects(status: str, update_time: int, change: ChangeKey) -> bool:
    """Whether a stored row (status, update_time) shows ``change`` or a later one."""
    return update_time > change[3] or (update_time == change[3] and status == change[2])


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (the smallest value with at least q% at or below it)."""
    if not values:
        raise ValueError("no values to take a percentile of")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered), math.ceil(q / 100 * len(ordered))) - 1)]


@dataclass(frozen=True)
class Measured:
    """What one side did in the measured window."""

    latencies: tuple[float, ...]  # seconds, of the changes received in the window; inf = never
    committed_in_window: int  # rows that became visible during the window
    window: float  # seconds

    @property
    def received(self) -> int:
        return len(self.latencies)

    @property
    def missing(self) -> int:
        return sum(1 for x in self.latencies if math.isinf(x))

    @property
    def per_second(self) -> float:
        return self.committed_in_window / self.window

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)


def measure(
    received: Mapping[ChangeKey, float],
    committed: Mapping[ChangeKey, float],
    window: tuple[float, float],
) -> Measured:
    """Latency of every change received within ``window`` (committed minus received, inf
    when never committed), and how many changes were committed within it."""
    start, end = window
    latencies = tuple(
        committed.get(key, math.inf) - at for key, at in received.items() if start <= at < end
    )
    if not latencies:
        raise RuntimeError(f"no push was received in the {end - start:.0f} s measured")
    inside = sum(1 for at in committed.values() if start <= at < end)
    return Measured(latencies, inside, end - start)


def hop_latencies(
    received: Mapping[ChangeKey, float],
    points: Sequence[Mapping[ChangeKey, float]],
    window: tuple[float, float],
) -> list[list[float]]:
    """Seconds between consecutive ``points`` (each: when a change passed it) of the changes
    received within ``window`` that passed every point: one list per pair."""
    start, end = window
    hops: list[list[float]] = [[] for _ in points[1:]]
    for key, at in received.items():
        if start <= at < end and all(key in point for point in points):
            for i, (earlier, later) in enumerate(itertools.pairwise(points)):
                hops[i].append(later[key] - earlier[key])
    return hops


# -- watching the sink ---------------------------------------------------------------------------


Pushed = tuple[ChangeKey, float]
"""A change the sandbox pushed, and when it was seen in the sandbox's outbox."""


class CommitTracker:
    """Notes when each change the sandbox pushed becomes visible in ``table`` (any table with
    ``shop_id``, ``order_sn``, ``status``, ``update_time``).

    A background thread polls every ``interval`` seconds: it takes the changes ``pushed``
    hands it (those pushed since its last call), then reads the rows of the orders still
    outstanding (by primary key, so the cost follows the backlog, not the table) and stamps
    each newly visible change with the time its query started."""

    def __init__(
        self,
        engine: Engine,
        table: sa.Table,
        pushed: Callable[[], list[Pushed]],
        interval: float,
    ) -> None:
        self._engine = engine
        self._table = table
        self._pushed = pushed
        self._interval = interval
        self._lock = threading.Lock()
        self._outstanding: dict[tuple[int, str], ChangeKey] = {}
        self._committed: dict[ChangeKey, float] = {}
        self._emitted: dict[ChangeKey, float] = {}
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="commit-tracker", daemon=True)

    def __enter__(self) -> CommitTracker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(10)

    @property
    def committed(self) -> dict[ChangeKey, float]:
        self._raise_if_failed()
        with self._lock:
            return dict(self._committed)

    @property
    def emitted(self) -> dict[ChangeKey, float]:
        """When each push was first seen in the sandbox's outbox (at most one polling period
        after the sandbox emitted it)."""
        self._raise_if_failed()
        with self._lock:
            return dict(self._emitted)

    def outstanding(self) -> int:
        self._raise_if_failed()
        with self._lock:
            return len(self._outstanding)

    def wait(self, done: Callable[[CommitTracker], bool], timeout: float) -> bool:
        """Whether ``done`` came true within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not done(self):
            if time.monotonic() > deadline:
                return False
            time.sleep(self._interval)
        return True

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError("the commit tracker stopped") from self._error

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                began = time.monotonic()
                self._take_new_pushes()
                self._look()
                self._stopping.wait(max(0.0, self._interval - (time.monotonic() - began)))
        except Exception as exc:  # noqa: BLE001 - handed to the caller by its next read
            self._error = exc

    def _take_new_pushes(self) -> None:
        pushed = self._pushed()
        with self._lock:
            for change, seen in pushed:
                self._outstanding[(change[0], change[1])] = change
                self._emitted.setdefault(change, seen)

    def _look(self) -> None:
        with self._lock:
            wanted = dict(self._outstanding)
        if not wanted:
            return
        c = self._table.c
        order_sns = sorted({order_sn for _, order_sn in wanted})
        found = []
        looked_at = time.time()
        with self._engine.connect() as conn:
            for i in range(0, len(order_sns), 500):
                query = sa.select(c.shop_id, c.order_sn, c.status, c.update_time).where(
                    c.order_sn.in_(order_sns[i : i + 500])
                )
                found += list(conn.execute(query))
        with self._lock:
            for row in found:
                key = (int(row.shop_id), str(row.order_sn))
                change = self._outstanding.get(key)
                if change is not None and reflects(str(row.status), int(row.update_time), change):
                    self._committed[change] = looked_at
                    del self._outstanding[key]


# -- the load ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shop:
    shop_id: int
    models: tuple[tuple[int, int], ...]  # (item_id, model_id)


def _sandbox_config(callback_url: str) -> SandboxConfig:
    return SandboxConfig(
        partner_id=PARTNER_ID,
        partner_key=PARTNER_KEY,
        push_key=PUSH_KEY,
        callback_url=callback_url,
        time_factor=1.0,
        seed=SEED,
        push_delivery_concurrency=PUSH_SENDERS,
    )


def _stock_shops(sandbox: SandboxServer) -> list[Shop]:
    shops = []
    for region in ("SG", "MY"):
        shop_id = sandbox.state.add_shop(region=region)
        items = [
            sandbox.state.add_item(shop_id, None, [(0, "", STOCK)]) for _ in range(ITEMS_PER_SHOP)
        ]
        shops.append(Shop(shop_id, tuple((item_id, 0) for item_id in items)))
    return shops


@dataclass(frozen=True)
class SandboxSetup:
    base_url: str
    shops: list[Shop]
    auth_codes: dict[int, str]  # shop_id -> a fresh authorisation code


def _serve_sandbox(commands: Connection, pushed: Queue[list[Pushed]], callback_url: str) -> None:
    """The sandbox process: set up, then answer ``probe``, ``start``, ``stop``, ``exit``;
    meanwhile forward every change it pushes to ``pushed``."""
    with SandboxServer(_sandbox_config(callback_url)) as sandbox:
        shops = _stock_shops(sandbox)
        codes = {shop.shop_id: sandbox.state.authorize(shop.shop_id) for shop in shops}
        stopping = threading.Event()

        def forward() -> None:
            taken = 0
            while not stopping.wait(POLL_INTERVAL):
                seen = time.time()
                messages = sandbox.pushes.messages()[taken:]
                taken += len(messages)
                changes = [(c, seen) for m in messages if (c := push_change(m.payload()))]
                if changes:
                    pushed.put(changes)

        forwarder = threading.Thread(target=forward, name="push-forwarder", daemon=True)
        forwarder.start()
        commands.send(SandboxSetup(sandbox.base_url, shops, codes))
        traffic = None
        while (command := commands.recv()) != "exit":
            if command == "probe":
                commands.send(
                    sandbox.state.create_order(shops[0].shop_id, [(*shops[0].models[0], 1)])
                )
            elif command == "start":
                traffic = sandbox.start_traffic(
                    RATE, seed=SEED, shop_ids=[s.shop_id for s in shops]
                )
                commands.send(None)
            elif command == "stop":
                sandbox.stop_traffic()
                commands.send(0 if traffic is None else traffic.stats["created"])
            else:
                raise ValueError(f"unknown command {command!r}")
        stopping.set()
        forwarder.join(5)


class SandboxProcess:
    """The Shopee sandbox in a process of its own, as Shopee is not inside the system under
    test: its push senders and API answers do not compete with the measuring thread (or it
    with them) for one interpreter lock."""

    def __init__(self, callback_url: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._commands, theirs = context.Pipe()
        self._pushed: Queue[list[Pushed]] = context.Queue()
        self._process = context.Process(
            target=_serve_sandbox,
            args=(theirs, self._pushed, callback_url),
            name="sandbox",
            daemon=True,
        )

    def __enter__(self) -> SandboxProcess:
        self._process.start()
        self.setup: SandboxSetup = self._ask(None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process.is_alive():
            self._commands.send("exit")
            self._process.join(20)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def _ask(self, command: str | None, timeout: float = 60.0) -> Any:
        if command is not None:
            self._commands.send(command)
        if not self._commands.poll(timeout):
            raise RuntimeError(
                f"the sandbox did not answer {command or 'set-up'} in {timeout:.0f} s"
            )
        return self._commands.recv()

    @property
    def pid(self) -> int:
        if self._process.pid is None:
            raise RuntimeError("the sandbox process has not started")
        return self._process.pid

    def probe(self) -> str:
        """Place one order now; its order_sn."""
        return str(self._ask("probe"))

    def start_traffic(self) -> None:
        self._ask("start")

    def stop_traffic(self) -> int:
        """Stop new orders; how many the traffic created."""
        return int(self._ask("stop"))

    def pushed(self) -> list[Pushed]:
        """The changes pushed since the last call."""
        changes: list[Pushed] = []
        while True:
            try:
                changes += self._pushed.get_nowait()
            except queue.Empty:
                return changes


@dataclass(frozen=True)
class _Window:
    measured: tuple[float, float]
    cpu: dict[str, float | None]  # cores used during the window, by process; "machine" too
    waited: dict[str, float | None]  # seconds per second its threads waited for a core
    created: int  # orders the traffic created
    traffic_seconds: float


def _drive(sandbox: SandboxProcess, tracker: CommitTracker, pids: Mapping[str, int]) -> _Window:
    """A probe order through the whole chain, then ``RATE`` orders/s for ``WARMUP`` +
    ``MEASURE`` seconds, then up to ``DRAIN`` seconds for the last of them to be committed."""
    probe = sandbox.probe()
    if not tracker.wait(lambda t: any(key[1] == probe for key in t.committed), READY_TIMEOUT):
        raise TimeoutError(f"a probe order did not reach the sink within {READY_TIMEOUT:.0f} s")
    sandbox.start_traffic()
    started = time.time()
    window = (started + WARMUP, started + WARMUP + MEASURE)
    time.sleep(WARMUP)
    pids = {**_with_relays(pids), "sandbox": sandbox.pid}
    before, waited_before = _cpu_now(pids), _waits(pids)
    time.sleep(max(0.0, window[1] - time.time()))
    after, waited_after = _cpu_now(pids), _waits(pids)
    created = sandbox.stop_traffic()
    traffic_seconds = time.time() - started
    # What is not committed by then counts as never committed (an infinite latency).
    tracker.wait(lambda t: t.outstanding() == 0, DRAIN)
    return _Window(
        window,
        _per_second(before, after),
        _per_second(waited_before, waited_after),
        created,
        traffic_seconds,
    )


def _per_second(
    before: Mapping[str, float | None], after: Mapping[str, float | None]
) -> dict[str, float | None]:
    """Seconds (of CPU, or of waiting) per second of the measured window, by process (None
    where /proc is missing)."""
    rates: dict[str, float | None] = {}
    for name, start in before.items():
        end = after[name]
        rates[name] = None if start is None or end is None else (end - start) / MEASURE
    return rates


def run_queue_seconds(pid: int) -> float | None:
    """Seconds the threads of ``pid`` have spent runnable but waiting for a core (the
    scheduler's run_delay, summed over the threads alive now). A latency that grows while
    this does is the machine's, not the code's."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    total = 0
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/schedstat") as stat:
                total += int(stat.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the thread ended between the listing and the read
    return total / 1e9


def _with_relays(pids: Mapping[str, int]) -> dict[str, int]:
    """``pids`` and, for each process that has one, its action relay (the child process an
    ``orderflow consume`` publishes OrderActions from), as "NAME relay"."""
    found = dict(pids)
    for name, pid in pids.items():
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as listing:
                children = [int(child) for child in listing.read().split()]
        except OSError:
            continue
        for child in children:
            try:
                with open(f"/proc/{child}/cmdline", "rb") as cmdline:
                    command = cmdline.read()
            except OSError:
                continue
            # multiprocessing's spawn runs the relay; its resource tracker is another child.
            if b"spawn_main" in command:
                found[f"{name} relay"] = child
    return found


def _waits(pids: Mapping[str, int]) -> dict[str, float | None]:
    return {name: run_queue_seconds(pid) for name, pid in pids.items()}


def _cpu_now(pids: Mapping[str, int]) -> dict[str, float | None]:
    seconds: dict[str, float | None] = {name: process_seconds(pid) for name, pid in pids.items()}
    seconds["this process"] = time.process_time()
    seconds["machine"] = machine_seconds()
    return seconds


# -- the two sides ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    measured: Measured
    window: _Window
    # Seconds from the sandbox's push to the receiver, from there to the record on the
    # chain's second topic, and from there to the committed row.
    hops: list[list[float]]
    seen_by_processes: str = ""  # the pipeline's own metrics, summarised

    def hops_note(self, name: str, middle: str) -> str:
        def spread(values: list[float]) -> str:
            if not values:
                return "n/a"
            return f"{percentile(values, 50) * 1000:,.0f}/{percentile(values, 99) * 1000:,.0f} ms"

        delivered, relayed, stored = map(spread, self.hops)
        return (
            f"{name} hops, p50/p99: received -> {middle} {relayed}; -> row committed "
            f"{stored}; (before that, not in the figure: sandbox push -> received {delivered})"
        )


def _side(
    tracker: CommitTracker,
    received: Mapping[ChangeKey, float],
    middle: Mapping[ChangeKey, float],
    window: _Window,
) -> Side:
    committed = tracker.committed
    return Side(
        measure(received, committed, window.measured),
        window,
        hop_latencies(received, [tracker.emitted, received, middle, committed], window.measured),
    )


def _bare_side(stack: Stack, database_url: str, unique: str) -> Side:
    chain = e2e_baseline.BareChain(
        bootstrap_servers=stack.bootstrap_servers,
        database_url=database_url,
        raw_topic=f"bench{unique}.bare-pushes",
        relayed_topic=f"bench{unique}.bare-relayed",
        group_prefix=f"bench{unique}-bare-",
        partitions=Settings.model_fields["topic_partitions"].default,
        port=free_port(),
    )
    engine = create_engine(database_url)
    try:
        with (
            SandboxProcess(chain.url) as sandbox,
            e2e_baseline.running(chain) as pids,
            CommitTracker(
                engine, e2e_baseline.bare_orders, sandbox.pushed, POLL_INTERVAL
            ) as tracker,
        ):
            window = _drive(sandbox, tracker, pids)
        received = e2e_baseline.receipts(engine)
    finally:
        engine.dispose()
    return _side(tracker, received, e2e_baseline.relayed_times(chain), window)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class _Processes:
    """``orderflow`` commands as processes of their own, logging into ``workdir``."""

    def __init__(self, workdir: Path, env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.env = dict(env)
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.metrics_urls: dict[str, str] = {}

    def start(self, commands: Sequence[tuple[str, Sequence[str]]], webhook_port: int) -> None:
        """Start every command at once (as a deployment rolls out), then wait until each
        answers: the webhook's ``/readyz`` (Kafka reachable), the others' ``/healthz``."""
        urls = {}
        for name, command in commands:
            metrics_port = free_port()
            env = self.env | {"ORDERFLOW_METRICS_PORT": str(metrics_port)}
            port = webhook_port if name == "webhook" else metrics_port
            urls[name] = f"http://{HOST}:{port}/{'readyz' if name == 'webhook' else 'healthz'}"
            self.metrics_urls[name] = f"http://{HOST}:{port}/metrics"
            with (self.workdir / f"{name}.log").open("wb") as log:
                self.running[name] = subprocess.Popen(
                    [ORDERFLOW, *command], env=env, stdout=log, stderr=subprocess.STDOUT
                )
        deadline = time.monotonic() + READY_TIMEOUT
        for name, url in urls.items():
            while not _answers(url):
                self.check(name)
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{name} not ready within {READY_TIMEOUT:.0f} s\n{self.tail()}"
                    )
                time.sleep(0.1)

    def check(self, name: str | None = None) -> None:
        """RuntimeError with the logs when a process (or ``name``) has exited."""
        for each, process in self.running.items():
            if (name is None or each == name) and process.poll() is not None:
                raise RuntimeError(f"{each} exited with {process.returncode}\n{self.tail()}")

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.running.items()}

    def metrics(self, name: str) -> str:
        """The Prometheus exposition of process ``name``."""
        response = httpx.get(self.metrics_urls[name], timeout=10)
        response.raise_for_status()
        return response.text

    def stop(self) -> dict[str, int]:
        """SIGTERM every process; their exit codes (-9: killed after 30 s)."""
        for process in self.running.values():
            process.send_signal(signal.SIGTERM)
        codes = {}
        for name, process in self.running.items():
            try:
                codes[name] = process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = -9
        return codes

    def tail(self, lines: int = 15) -> str:
        return "\n".join(
            f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            for path in sorted(self.workdir.glob("*.log"))
        )


def _pipeline_settings(stack: Stack, database_url: str, unique: str, webhook_url: str) -> Settings:
    return Settings(
        kafka_bootstrap_servers=stack.bootstrap_servers,
        schema_registry_url=stack.registry_url,
        database_url=database_url,
        topic_notices=f"bench{unique}.order-notices",
        topic_orders=f"bench{unique}.orders",
        topic_actions=f"bench{unique}.order-actions",
        enricher_group_id=f"bench{unique}-enricher",
        consumer_group_prefix=f"bench{unique}-",
        shopee_partner_id=PARTNER_ID,
        shopee_partner_key=PARTNER_KEY,
        shopee_push_key=PUSH_KEY,
        webhook_public_url=webhook_url,
    )


def _env(settings: Settings, shopee_base_url: str, webhook_port: int) -> dict[str, str]:
    values = {
        "ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "ORDERFLOW_SCHEMA_REGISTRY_URL": settings.schema_registry_url,
        "ORDERFLOW_DATABASE_URL": settings.database_url,
        "ORDERFLOW_TOPIC_NOTICES": settings.topic_notices,
        "ORDERFLOW_TOPIC_ORDERS": settings.topic_orders,
        "ORDERFLOW_TOPIC_ACTIONS": settings.topic_actions,
        "ORDERFLOW_ENRICHER_GROUP_ID": settings.enricher_group_id,
        "ORDERFLOW_CONSUMER_GROUP_PREFIX": settings.consumer_group_prefix,
        "ORDERFLOW_SHOPEE_PARTNER_ID": str(PARTNER_ID),
        "ORDERFLOW_SHOPEE_PARTNER_KEY": PARTNER_KEY,
        "ORDERFLOW_SHOPEE_PUSH_KEY": PUSH_KEY,
        "ORDERFLOW_SHOPEE_BASE_URL": shopee_base_url,
        "ORDERFLOW_WEBHOOK_PUBLIC_URL": str(settings.webhook_public_url),
        "ORDERFLOW_WEBHOOK_PORT": str(webhook_port),
        "ORDERFLOW_HTTP_HOST": HOST,
    }
    # Everything else (the stack's ORDERFLOW_* included) stays out: the defaults are the
    # deployed configuration.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    return inherited | values


def _prepare(settings: Settings, sandbox: SandboxSetup) -> None:
    """What a deployment has before traffic: topics and schemas, the migrated database, every
    shop authorised through the real code exchange, and the ERP's stock."""
    with SchemaRegistryClient(settings.schema_registry_url) as registry:
        create_topics(settings, registry)
    engine = create_engine(settings.database_url)
    try:
        migrate(engine)
        client_settings = settings.model_copy(update={"shopee_base_url": sandbox.base_url})
        with ShopeeClient.from_settings(client_settings, engine, Metrics()) as client:
            for shop_id, code in sandbox.auth_codes.items():
                client.tokens.authorize(code, shop_id)
        store = ErpStore(engine)
        for shop in sandbox.shops:
            for item_id, model_id in shop.models:
                store.set_stock(item_id, model_id, STOCK, int(time.time()))
    finally:
        engine.dispose()


def _notice_receipts(settings: Settings) -> dict[ChangeKey, float]:
    """When the webhook received each push, from the notices it wrote."""
    received: dict[ChangeKey, float] = {}
    with SchemaRegistryClient(settings.schema_registry_url) as registry:
        codec = AvroCodec(OrderNotice, settings.topic_notices, registry)
        for record in read_since(settings, settings.topic_notices):
            notice = codec.decode(record.value or b"")
            if notice.source != "push" or notice.update_time is None or notice.status is None:
                continue
            key = (
                notice.shop_id,
                notice.order_sn,
                notice.status,
                int(notice.update_time.timestamp()),
            )
            at = notice.received_at.timestamp()
            received[key] = min(at, received.get(key, at))
    return received


def _event_times(settings: Settings) -> dict[ChangeKey, float]:
    """When the enricher produced the snapshot of each change (the record's timestamp; its
    transaction commits a little later)."""
    produced: dict[ChangeKey, float] = {}
    with SchemaRegistryClient(settings.schema_registry_url) as registry:
        codec = AvroCodec(OrderEvent, settings.topic_orders, registry)
        for record in read_since(settings, settings.topic_orders):
            event = codec.decode(record.value or b"")
            key = (event.shop_id, event.order_sn, event.status, int(event.update_time.timestamp()))
            at = record.timestamp_ms / 1000
            produced[key] = min(at, produced.get(key, at))
    return produced


def _pipeline_side(stack: Stack, database_url: str, unique: str, workdir: Path) -> Side:
    webhook_port = free_port()
    webhook_url = f"http://{HOST}:{webhook_port}/shopee/push"
    settings = _pipeline_settings(stack, database_url, unique, webhook_url)
    engine = create_engine(database_url)
    try:
        with SandboxProcess(webhook_url) as sandbox:
            _prepare(settings, sandbox.setup)
            processes = _Processes(workdir, _env(settings, sandbox.setup.base_url, webhook_port))
            try:
                processes.start(COMMANDS, webhook_port)
                with CommitTracker(engine, erp_orders, sandbox.pushed, POLL_INTERVAL) as tracker:
                    window = _drive(sandbox, tracker, processes.pids())
                processes.check()
                seen = _as_the_processes_saw_it(processes)
            finally:
                codes = processes.stop()
        if any(codes.values()):
            print(f"  note: not every process drained cleanly on SIGTERM: {codes}")
            print(processes.tail())
        received = _notice_receipts(settings)
        emitted = _event_times(settings)
    finally:
        engine.dispose()
    return replace(_side(tracker, received, emitted, window), seen_by_processes=seen)


def histogram_mean(exposition: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The mean of histogram ``name`` (``_sum / _count`` over the series matching
    ``labels``) in a Prometheus exposition; ValueError when it has no observations (an
    empty answer is not a zero)."""
    total = count = 0.0
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if labels and any(sample.labels.get(k) != v for k, v in labels.items()):
                continue
            if sample.name == f"{name}_sum":
                total += sample.value
            elif sample.name == f"{name}_count":
                count += sample.value
    if not count:
        raise ValueError(f"{name} {dict(labels or {})} has no observations")
    return total / count


def _as_the_processes_saw_it(processes: _Processes) -> str:
    """Means over the run (probe and warm-up included) from the processes' own metrics."""
    webhook = processes.metrics("webhook")
    enricher = processes.metrics("enricher")
    erp_sync = processes.metrics("erp-sync")
    answered = histogram_mean(webhook, "orderflow_webhook_ack_seconds")
    detail = histogram_mean(
        enricher, "orderflow_shopee_request_seconds", {"api": "order.get_order_detail"}
    )
    batch = histogram_mean(enricher, "orderflow_enricher_detail_batch_orders")
    applied = histogram_mean(
        erp_sync, "orderflow_consumer_processing_seconds", {"consumer": "erp-sync"}
    )
    return (
        f"as the processes saw it, means over the run: webhook received -> answered "
        f"{answered * 1000:,.0f} ms; enricher get_order_detail {detail * 1000:,.0f} ms for "
        f"{batch:.0f} orders a batch; erp-sync batch {applied * 1000:,.0f} ms"
    )


# -- the database --------------------------------------------------------------------------------


@contextmanager
def _fresh_database(stack: Stack, workdir: Path) -> Iterator[str]:
    """A new database on the stack's PostgreSQL, dropped afterwards (a SQLite file in
    ``workdir`` when the stack has none)."""
    if stack.postgres_url is None:
        yield f"sqlite:///{workdir / 'e2e.db'}"
        return
    name = f"bench_e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # a generated name, not input
    try:
        yield stack.postgres_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- the benchmark ---------------------------------------------------------------------------------


def _cpu_note(side: str, window: _Window) -> str:
    def cores(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2f}"

    parts = [
        f"{name} {cores(used)}"
        + (f" (+{cores(window.waited[name])} waiting)" if name in window.waited else "")
        for name, used in window.cpu.items()
    ]
    return (
        f"{side}: CPU in cores over the window (+ seconds per second runnable but waiting for "
        f"a core): {', '.join(parts)}, of {os.cpu_count()}"
    )


def run(stack: Stack | None = None) -> list[Figure]:
    started = time.monotonic()
    unique = uuid.uuid4().hex[:10]
    with (
        running_stack(stack) as found,
        tempfile.TemporaryDirectory() as tmp,
        _fresh_database(found, Path(tmp)) as database_url,
    ):
        try:
            bare = _bare_side(found, database_url, unique)
            pipeline = _pipeline_side(found, database_url, unique, Path(tmp))
        finally:
            settings = Settings(kafka_bootstrap_servers=found.bootstrap_servers)
            delete_topics_with_prefixes(settings, [f"bench{unique}."])
    ms = 1000.0
    p, b = pipeline.measured, bare.measured
    figures = [
        figure("e2e_latency_p50_ms", "ms", p.percentile(50) * ms, b.percentile(50) * ms),
        figure(
            "e2e_latency_p99_ms", "ms", p.percentile(99) * ms, b.percentile(99) * ms, P99_TARGET
        ),
        figure("e2e_orders_per_s", "orders/s", p.per_second, b.per_second, RATE_TARGET),
    ]
    database = "PostgreSQL" if found.postgres_url else "SQLite (the stack has no PostgreSQL)"
    notes = [
        f"offered {RATE:.0f} orders/s (Poisson) over 2 shops; {WARMUP:g} s warm-up, "
        f"{MEASURE:g} s measured; the traffic created {pipeline.window.created:,} orders "
        f"(pipeline) and {bare.window.created:,} (baseline) in "
        f"{pipeline.window.traffic_seconds:.1f} s / {bare.window.traffic_seconds:.1f} s",
        f"pushes received in the window: pipeline {p.received:,}, baseline {b.received:,}; "
        f"never committed: {p.missing}, {b.missing}",
        f"pipeline p99.9 {p.percentile(99.9) * ms:,.0f} ms, max {max(p.latencies) * ms:,.0f} ms;"
        f" baseline p99.9 {b.percentile(99.9) * ms:,.0f} ms, max {max(b.latencies) * ms:,.0f} ms",
        f"database: {database}, fresh for this run, like the topics bench{unique}.*",
        f"committed = first poll (every {POLL_INTERVAL * ms:.0f} ms) that sees the row: "
        "latencies are overstated by at most one polling period",
        "baseline: bare endpoint -> Kafka -> relay -> Kafka -> sink upsert, 3 processes "
        "(benchmarks/e2e_baseline.py); ratio = value / baseline",
        pipeline.hops_note("pipeline", "OrderEvent on the orders topic"),
        pipeline.seen_by_processes,
        bare.hops_note("baseline", "record on the relayed topic"),
        _cpu_note("pipeline", pipeline.window),
        _cpu_note("baseline", bare.window),
        f"the whole benchmark took {time.monotonic() - started:.0f} s",
    ]
    print_table(
        "e2e: push received by the webhook -> ERP row committed, all six processes, against "
        "a bare chain of the same hops",
        figures,
        notes,
    )
    return figures


if __name__ == "__main__":
    run()
