"""One chaos run's world: the sandbox, the six orderflow processes on a Kafka and a database,
seeded traffic, a supervisor that restarts what dies, convergence, and the read-back.

    with ChaosWorld(stack, workdir, scale, faults=...) as world:
        world.start_traffic()
        ...                      # the scenario's trouble, timed with world.wait(...)
        world.stop_traffic()
        result = world.finish("name", faults=3, details={...})

``finish`` waits (bounded) until everything has settled, reads the :class:`Observation`,
judges it, and stops every process with SIGTERM. The processes are the real console script
(``tests.e2e.pipeline.Pipeline``), so a SIGKILL loses what a real crash loses.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from chaos.checks import (
    AckedPush,
    CancelCall,
    Observation,
    OrderKey,
    OrderState,
    erp_differences,
    judge,
)
from chaos.results import ScenarioResult
from consumers.erp.store import StockCount
from shopee.sandbox import FaultConfig, SandboxConfig, SandboxServer
from shopee.sandbox.pushes import PushMessage
from tests.e2e.pipeline import CONSUMERS, PARTNER_ID, PARTNER_KEY, PUSH_KEY, Pipeline
from tests.integration.stack import Stack

PROCESSES = ("webhook", "poller", "enricher", *CONSUMERS)
PY_SPY = str(Path(sys.executable).with_name("py-spy"))
# Lifecycle steps at least 60 Shopee-seconds apart become 1.2 s, so an order's changes fall
# in different seconds; push retries come 0.3 s, 1.8 s and 10.8 s after a failed delivery.
LIFECYCLE_TIME_FACTOR = 0.02
PUSH_TIME_FACTOR = 0.001
SANDBOX_STOCK = 100_000  # Shopee's own stock: never what stops an order
PLENTY = 1_000_000
SHORT_ON_HAND = (0, 5, 10)  # ERP stock of one model per shop: soon short, so auto-cancel acts

# Settings of the processes, shortened so a run of minutes sees every mechanism at work. What
# each figure then depends on is in docs/reliability.md.
ENV = {
    "ORDERFLOW_POLLER_INTERVAL_SECONDS": "1",
    "ORDERFLOW_POLLER_OVERLAP_SECONDS": "3",
    "ORDERFLOW_POLLER_SETTLE_SECONDS": "1",
    "ORDERFLOW_POLLER_INITIAL_LOOKBACK_SECONDS": "600",
    "ORDERFLOW_POLLER_PUSH_CONFIG_INTERVAL_SECONDS": "5",
    # A poller SIGKILLed mid-window holds that shop's lease until it runs out.
    "ORDERFLOW_POLLER_LEASE_SECONDS": "20",
    "ORDERFLOW_POLLER_BLOCKED_RETRY_SECONDS": "5",
    "ORDERFLOW_ENRICHER_LINGER_SECONDS": "0.2",
    "ORDERFLOW_CONSUMER_BLOCKED_RETRY_SECONDS": "5",
    # Every short order is cancelled: the budget guardrail has tests of its own.
    "ORDERFLOW_AUTO_CANCEL_DAILY_BUDGET": "1000000",
}


# Longer than anything the pipeline legitimately waits out without visible progress: a
# consumer group's 30 s session, the consumers' 30 s backoff, a cancel's 30 s in-flight time.
STALL_SECONDS = 75.0


@dataclass(frozen=True)
class Scale:
    """How much traffic a scenario runs, and how long it may take to settle afterwards."""

    rate: float  # new orders per second
    traffic_seconds: float
    converge_seconds: float


FULL = Scale(rate=8.0, traffic_seconds=90.0, converge_seconds=150.0)
# For `make test`: the same scenario, a fraction of the traffic.
TRIMMED = Scale(rate=5.0, traffic_seconds=20.0, converge_seconds=120.0)


class SetupFailed(Exception):
    """The world could not be built (Kafka, the registry or the database did not answer, a
    process did not start): nothing was judged yet, so the scenario may be tried again."""


@dataclass(frozen=True)
class Crash:
    """A process that ended on its own mid-run (the supervisor started it again)."""

    name: str
    code: int
    at: float  # seconds into the run


class ChaosWorld:
    """The sandbox and the pipeline for one scenario; see the module docstring."""

    def __init__(
        self,
        stack: Stack,
        workdir: Path,
        scale: Scale,
        *,
        faults: FaultConfig | None = None,
        database_url: str = "",
        replication_factor: int = 1,
        env: Mapping[str, str] | None = None,
        seed: int = 1,
    ) -> None:
        self.scale = scale
        self.seed = seed
        self.started = time.monotonic()
        self.crashes: list[Crash] = []
        self.exit_codes: dict[str, int] = {}
        workdir.mkdir(parents=True, exist_ok=True)
        # A stable transactional id, as a StatefulSet would give: a restarted enricher fences
        # its killed predecessor's open transaction at once instead of after its timeout.
        try:
            self.pipeline = Pipeline(
                stack,
                workdir,
                extra_env={**ENV, **(env or {})},
                database_url=database_url,
                replication_factor=replication_factor,
            )
        except Exception as exc:
            raise SetupFailed(f"topics, schemas or database: {exc}") from exc
        self.pipeline.extra_env["ORDERFLOW_ENRICHER_TRANSACTIONAL_ID"] = (
            f"{self.pipeline.settings.enricher_group_id}-0"
        )
        config = SandboxConfig(
            partner_id=PARTNER_ID,
            partner_key=PARTNER_KEY,
            push_key=PUSH_KEY,
            callback_url=self.pipeline.webhook_url,
            time_factor=PUSH_TIME_FACTOR,
            seed=seed,
            faults=faults or FaultConfig(),
        )
        self.sandbox = SandboxServer(config)
        self.shops: list[int] = []
        self.traffic_started: float | None = None

    # -- set-up and tear-down ----------------------------------------------------------------

    def __enter__(self) -> ChaosWorld:
        self.sandbox.start()
        try:
            self._populate()
            for name in ("webhook", "poller", "enricher"):
                self.pipeline.start(name, self.sandbox)
            for name in CONSUMERS:
                # Every group from the start of the run's topics: nothing may be missed.
                self.pipeline.start_consumer(name, self.sandbox, "earliest")
        except Exception as exc:
            self.close()
            raise SetupFailed(f"starting the pipeline: {exc}") from exc
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop traffic, SIGTERM every process (their exit codes are kept), stop the sandbox."""
        self.sandbox.stop_traffic()
        self.exit_codes |= self.pipeline.stop_all()
        self.sandbox.stop()

    def _populate(self) -> None:
        """Per shop an item with two variants and two without; one model per shop is short
        in the ERP, the others plentiful. Every shop authorised through the real code
        exchange."""
        state = self.sandbox.state
        self.shops = [state.add_shop(region=region) for region in ("SG", "MY", "SG")]
        counts: list[StockCount] = []
        for shop_id, short in zip(self.shops, SHORT_ON_HAND, strict=True):
            item = state.add_item(
                shop_id, None, [(1, "V-1", SANDBOX_STOCK), (2, "V-2", SANDBOX_STOCK)]
            )
            counts += [StockCount(item, 1, short), StockCount(item, 2, PLENTY)]
            for _ in range(2):
                single = state.add_item(shop_id, None, [(0, "", SANDBOX_STOCK)])
                counts.append(StockCount(single, 0, PLENTY))
            self.pipeline.authorize(self.sandbox, shop_id)
        with self.pipeline.erp() as erp:
            erp.import_stock(counts, int(time.time()))

    # -- running -----------------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def traffic_elapsed(self) -> float:
        """Seconds since the traffic started (0 before)."""
        if self.traffic_started is None:
            return 0.0
        return time.monotonic() - self.traffic_started

    def start_traffic(self) -> None:
        self.traffic_started = time.monotonic()
        self.sandbox.start_traffic(
            self.scale.rate,
            seed=self.seed + 1,
            time_factor=LIFECYCLE_TIME_FACTOR,
            shop_ids=self.shops,
        )

    def stop_traffic(self) -> None:
        self.sandbox.stop_traffic()

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass, restarting any process that ended on its own meanwhile."""
        deadline = time.monotonic() + seconds
        while True:
            self.supervise()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.5, left))

    def supervise(self) -> None:
        """Restart what died, as an orchestrator would, and remember that it did."""
        for name, code in self.pipeline.exited().items():
            self.crashes.append(Crash(name, code, round(self.elapsed(), 1)))
            self.pipeline.restart(name, self.sandbox)

    def kill_and_restart(self, name: str) -> None:
        self.pipeline.kill(name)
        self.pipeline.restart(name, self.sandbox)

    # -- settling and reading back -------------------------------------------------------------

    def settled(self) -> bool:
        """Nothing in flight anywhere, and the ERP equals Shopee (which did not move while
        that was checked: auto-cancel's calls change Shopee, and those changes come back
        through ingest)."""
        pipeline, pushes = self.pipeline, self.sandbox.pushes
        if pushes.unfinished_count() or pushes.summary()["lost_unconfirmed"]:
            return False
        if pipeline.enricher_unread() or any(pipeline.unread(name) for name in CONSUMERS):
            return False
        if self._open_outbox_calls() or any(pipeline.parked().values()):
            return False
        truth = self.truth()
        if self.erp_orders() != truth:
            return False
        return not any(pipeline.unread(name) for name in CONSUMERS) and self.truth() == truth

    def progress(self) -> tuple[int, ...]:
        """What is still to do, in numbers: it changes while the pipeline makes progress."""
        pipeline, pushes = self.pipeline, self.sandbox.pushes
        return (
            pushes.unfinished_count(),
            pushes.summary()["lost_unconfirmed"],
            pipeline.enricher_unread(limit=100_000),
            *(pipeline.unread(name, limit=100_000) for name in CONSUMERS),
            self._open_outbox_calls(),
            sum(pipeline.parked().values()),
            len(erp_differences(self.truth(), self.erp_orders())),
        )

    def converge(self) -> bool:
        """Wait until :meth:`settled`, at most ``scale.converge_seconds``, and no longer than
        ``STALL_SECONDS`` while nothing moves (a wedged process does not get better)."""
        deadline = time.monotonic() + self.scale.converge_seconds
        last, moved = self.progress(), time.monotonic()
        while time.monotonic() < deadline:
            self.supervise()
            if self.settled():
                return True
            time.sleep(2)
            now = self.progress()
            if now != last:
                last, moved = now, time.monotonic()
            elif time.monotonic() - moved > STALL_SECONDS:
                return False
        return False

    def truth(self) -> dict[OrderKey, OrderState]:
        return {
            (order.shop_id, order.order_sn): OrderState(
                order.status,
                order.update_time,
                tuple(sorted((line.item_id, line.model_id, line.quantity) for line in order.lines)),
            )
            for order in self.sandbox.state.orders()
        }

    def erp_orders(self) -> dict[OrderKey, OrderState]:
        with self.pipeline.erp() as erp:
            return {
                (order.shop_id, order.order_sn): OrderState(
                    order.status,
                    order.update_time,
                    tuple(sorted((ln.item_id, ln.model_id, ln.quantity) for ln in order.lines)),
                )
                for order in erp.orders()
            }

    def _open_outbox_calls(self) -> int:
        states = self.pipeline.outbox_states().values()
        return sum(1 for state in states if state not in ("succeeded", "failed"))

    def acked_pushes(self) -> list[AckedPush]:
        """Every push the webhook answered 2xx (in time or not), once per delivery attempt."""
        by_id: dict[str, PushMessage] = {m.msg_id: m for m in self.sandbox.pushes.messages()}
        acked = []
        for attempt in self.sandbox.pushes.attempts():
            status = attempt.result.http_status
            if status is None or not 200 <= status < 300:
                continue
            payload = by_id[attempt.msg_id].payload()
            data = payload["data"]
            update_time = data.get("update_time") if payload["code"] == 3 else None
            acked.append(
                AckedPush(
                    attempt.msg_id,
                    int(payload["shop_id"]),
                    str(data["ordersn"]),
                    None if update_time is None else int(update_time),
                )
            )
        return acked

    def cancel_calls(self) -> list[CancelCall]:
        return [
            CancelCall(str(call.body["order_sn"]), call.handled, call.applied)
            for call in self.sandbox.state.call_log.snapshot("order.cancel_order")
            if isinstance(call.body, dict) and "order_sn" in call.body
        ]

    def observe(self) -> Observation:
        pipeline = self.pipeline
        with pipeline.erp() as erp:
            stock = {(s.item_id, s.model_id): (s.on_hand, s.reserved) for s in erp.stock()}
            ledger = erp.ledger_totals()
        unread = {name: pipeline.unread(name, limit=100_000) for name in CONSUMERS}
        unread["enricher"] = pipeline.enricher_unread(limit=100_000)
        return Observation(
            truth=self.truth(),
            erp=self.erp_orders(),
            stock=stock,
            ledger=ledger,
            cancel_calls=tuple(self.cancel_calls()),
            acked_pushes=tuple(self.acked_pushes()),
            notice_msg_ids=frozenset(n.msg_id for n in pipeline.notices() if n.msg_id),
            unread=unread,
            open_outbox_calls=self._open_outbox_calls(),
            parked=pipeline.parked(),
            pending_pushes=self.sandbox.pushes.unfinished_count(),
            unconfirmed_lost_pushes=self.sandbox.pushes.summary()["lost_unconfirmed"],
            dead_letters={"enricher": pipeline.dead_letters(), **pipeline.consumer_dead_letters()},
        )

    def push_faults(self) -> dict[str, int]:
        """Pushes the sandbox dropped (never delivered) and duplicated (delivered twice)."""
        deliveries = Counter(d.message.msg_id for d in self.sandbox.pushes.deliveries())
        messages = self.sandbox.pushes.messages()
        return {
            "dropped": sum(1 for m in messages if deliveries[m.msg_id] == 0),
            "duplicated": sum(1 for m in messages if deliveries[m.msg_id] > 1),
        }

    def dump_stacks(self) -> None:
        """Every live process's threads (py-spy) into ``stacks-NAME.txt`` in the workdir:
        what a process that stopped making progress is waiting for."""
        for name, process in self.pipeline.processes.items():
            if process.poll() is not None:
                continue
            dumped = subprocess.run(  # noqa: S603 - our own tool on our own child
                [PY_SPY, "dump", "--pid", str(process.pid)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            (self.pipeline.workdir / f"stacks-{name}.txt").write_text(dumped.stdout + dumped.stderr)

    def finish(
        self, name: str, *, faults: int, details: Mapping[str, Any] | None = None
    ) -> ScenarioResult:
        """Converge, read back, judge, stop every process; the scenario's result."""
        converging = time.monotonic()
        converged = self.converge()
        converge_seconds = time.monotonic() - converging
        if not converged:
            self.dump_stacks()
        observation = self.observe()
        verdict = judge(observation)
        orders = len(observation.truth)
        pushes = len(self.sandbox.pushes.messages())
        calls = Counter(call.api for call in self.sandbox.calls)
        cancels = self.cancel_calls()
        events = len(self.pipeline.events())
        self.close()
        unclean = {n: code for n, code in self.exit_codes.items() if code != 0}
        return ScenarioResult(
            name=name,
            orders=orders,
            pushes=pushes,
            faults=faults,
            verdict=verdict,
            seconds=self.elapsed(),
            details={
                **(details or {}),
                "converged": converged,
                "converge_seconds": round(converge_seconds, 1),
                "crashes": [vars(crash) for crash in self.crashes],
                "unclean_exits": unclean,
                "push_deliveries": self.sandbox.pushes.summary(),
                "api_calls": dict(sorted(calls.items())),
                "cancels_applied": sum(1 for call in cancels if call.applied),
                "events": events,
                "workdir": str(self.pipeline.workdir),
            },
        )
