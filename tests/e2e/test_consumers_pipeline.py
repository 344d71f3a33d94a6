"""The consumers end to end: the ERP store ends equal to Shopee, and its stock to its ledger,
through crashes, a database outage and a consumer that starts minutes late.

One run, on the real broker and registry, against the sandbox, with a PostgreSQL server of
the test's own (``tests.e2e.postgres_instance``) holding the ERP and the ingest state, so it
can be taken away without touching the shared stack:

* 3 shops, 12 models; the ERP holds plenty of 8 of them and little of 4, so orders for those
  come up short. Traffic at 25 orders/s until 1,000+ orders, then 5/s while the trouble goes
  on; buyers cancel on their own (the traffic generator's odds);
* webhook, poller, enricher, erp-sync and stock-restore start first; auto-cancel starts
  ``--from earliest`` 95 s later and works through that backlog, then keeps up;
* SIGKILL and restart, five times: stock-restore and erp-sync early, erp-sync right after
  the database was stopped for 10 s and started again, auto-cancel while it cancels its
  backlog, stock-restore once auto-cancel has caught up (so it falls behind auto-cancel:
  the seller restocks the short models then, and stock-restore meets orders auto-cancel
  cancelled while there is stock again).

Then, once every change has reached every consumer (including the cancellations auto-cancel
caused, which flow back through ingest): every sandbox order is in ``erp_orders`` with its
status, update_time and lines; for every model ``on_hand`` and ``reserved`` equal the ledger,
nothing is oversold and every line sits in the ledger state its order's status calls for; at
most one ``cancel_order`` reached Shopee per order, only for orders that never held a
reservation, naming only lines of short models; every paid open order holds its stock or was
taken up by auto-cancel; no dead letters; SIGTERM stops every process with exit code 0. One
summary line gives the figures.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from consumers.erp.ledger import Phase, phase_of
from consumers.erp.store import StockCount
from shopee.sandbox import SandboxServer
from shopee.sandbox.config import SandboxConfig
from shopee.sandbox.traffic import TrafficGenerator
from tests.e2e.pipeline import CONSUMERS, PARTNER_ID, PARTNER_KEY, PUSH_KEY, Pipeline
from tests.e2e.postgres_instance import PostgresInstance, PostgresUnavailable
from tests.integration.stack import Stack

pytestmark = [
    pytest.mark.timeout(900),
    # kafka-python 3.0 sometimes leaves a socket of a client it closed while a metadata
    # refresh was in flight; the test's own short-lived readers (group offsets, topics) meet
    # that race. Only that warning is let through: the pipeline's processes are not in here.
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]

# Lifecycle steps at least 60 Shopee-seconds apart become 1.2 s (see test_ingest_pipeline):
# an order's changes fall in different seconds.
LIFECYCLE_TIME_FACTOR = 0.02
MIN_ORDERS = 1000
RATE, SLOW_RATE = 25.0, 5.0
SANDBOX_STOCK = 100_000  # Shopee's own stock: never what stops an order
PLENTY = 1_000_000
# ERP stock of the short models: each runs out within seconds at 25 orders/s, some sooner.
SHORT_ON_HAND = (30, 60, 120, 250)
RESTOCK = 100  # added to each short model late in the run
AUTO_CANCEL_DELAY = 95.0
OUTAGE_SECONDS = 10.0

ENV = {
    "ORDERFLOW_POLLER_INTERVAL_SECONDS": "1",
    "ORDERFLOW_POLLER_OVERLAP_SECONDS": "3",
    "ORDERFLOW_POLLER_SETTLE_SECONDS": "1",
    "ORDERFLOW_POLLER_INITIAL_LOOKBACK_SECONDS": "600",
    "ORDERFLOW_POLLER_PUSH_CONFIG_INTERVAL_SECONDS": "5",
    "ORDERFLOW_ENRICHER_LINGER_SECONDS": "0.2",
    # Every short order is cancelled: the budget guardrail has tests of its own.
    "ORDERFLOW_AUTO_CANCEL_DAILY_BUDGET": "1000000",
    "ORDERFLOW_CONSUMER_BLOCKED_RETRY_SECONDS": "5",
}

Model = tuple[int, int]
OrderKey = tuple[int, str]
# Per order: status, update_time and its lines as (item_id, model_id, quantity), sorted.
Orders = dict[OrderKey, tuple[str, int, list[tuple[int, int, int]]]]
# Ledger states a line may end in, by the phase of its order's final status ("none": no
# ledger row, an open order stock could not cover).
ALLOWED_STATES = {
    Phase.OPEN: {"none", "reserved"},
    Phase.SHIPPED: {"deducted", "closed"},
    Phase.CANCELLED: {"released", "closed", "deducted"},
}


@dataclass(frozen=True)
class Catalogue:
    shops: list[int]
    short: dict[Model, int]  # model -> the little the ERP has on hand
    plentiful: list[Model]


@pytest.fixture
def own_postgres() -> Iterator[PostgresInstance]:
    try:
        instance = PostgresInstance.create()
    except PostgresUnavailable as exc:
        pytest.skip(f"needs a PostgreSQL server of its own to stop and start: {exc}")
    try:
        instance.start()
        yield instance
    finally:
        instance.remove()


def _catalogue(sandbox: SandboxServer) -> Catalogue:
    """Per shop an item with two variants and two without; every third model is short."""
    state = sandbox.state
    shops = [state.add_shop(region="SG"), state.add_shop(region="MY"), state.add_shop(region="SG")]
    models: list[Model] = []
    for shop_id in shops:
        item = state.add_item(shop_id, None, [(1, "V-1", SANDBOX_STOCK), (2, "V-2", SANDBOX_STOCK)])
        models += [(item, 1), (item, 2)]
        for _ in range(2):
            models.append((state.add_item(shop_id, None, [(0, "", SANDBOX_STOCK)]), 0))
    short = dict(zip(models[1::3], SHORT_ON_HAND, strict=True))
    return Catalogue(shops, short, [m for m in models if m not in short])


def _truth(sandbox: SandboxServer) -> Orders:
    return {
        (order.shop_id, order.order_sn): (
            order.status,
            order.update_time,
            sorted((line.item_id, line.model_id, line.quantity) for line in order.lines),
        )
        for order in sandbox.state.orders()
    }


def _erp_differences(pipeline: Pipeline, truth: Orders) -> list[str]:
    with pipeline.erp() as erp:
        stored: Orders = {
            (order.shop_id, order.order_sn): (
                order.status,
                order.update_time,
                sorted((line.item_id, line.model_id, line.quantity) for line in order.lines),
            )
            for order in erp.orders()
        }
    return [
        f"{key[1]}: ERP {stored.get(key)}, sandbox {truth.get(key)}"
        for key in sorted(set(truth) | set(stored))
        if stored.get(key) != truth.get(key)
    ]


def _alive_or_fail(pipeline: Pipeline) -> None:
    exited = {n: p.returncode for n, p in pipeline.processes.items() if p.poll() is not None}
    if exited:
        raise AssertionError(f"processes exited mid-run: {exited}\n{pipeline.log_tail()}")


def _converge(pipeline: Pipeline, sandbox: SandboxServer, timeout: float = 240.0) -> None:
    """Until every consumer group has read everything, the ERP equals the sandbox, and
    neither moved while that was checked (auto-cancel's calls change the sandbox, and
    those changes come back through ingest)."""
    deadline = time.monotonic() + timeout
    wrong: list[str] = []
    behind: dict[str, int] = {}
    while time.monotonic() < deadline:
        _alive_or_fail(pipeline)
        behind = {name: pipeline.unread(name, limit=1000) for name in CONSUMERS}
        if not any(behind.values()) and sandbox.pushes.unfinished_count() == 0:
            truth = _truth(sandbox)
            wrong = _erp_differences(pipeline, truth)
            if (
                not wrong
                and not any(pipeline.unread(name) for name in CONSUMERS)
                and _truth(sandbox) == truth
            ):
                return
        time.sleep(3)
    raise AssertionError(
        f"not converged: unread records per consumer {behind}; {len(wrong)} orders differ, "
        f"e.g. {wrong[:5]}\n{pipeline.log_tail()}"
    )


class Run:
    """The scenario's clock: waits for a point of the schedule or for something to happen,
    and slows the traffic down once it has created enough orders."""

    def __init__(self, pipeline: Pipeline, traffic: TrafficGenerator) -> None:
        self.pipeline = pipeline
        self.traffic = traffic
        self.started = time.monotonic()
        self.slowed = False

    def at(self, seconds: float) -> None:
        self.until(lambda: self.elapsed() >= seconds, latest=seconds + 1, what="time")

    def until(
        self, done: Callable[[], bool], *, latest: float, what: str, every: float = 0.2
    ) -> None:
        """Wait until ``done()`` (asked every ``every`` seconds); fail if that is not so
        ``latest`` seconds into the run."""
        asked = -every
        while True:
            if time.monotonic() - asked >= every:
                asked = time.monotonic()
                if done():
                    return
            if self.elapsed() > latest:
                raise AssertionError(
                    f"{what} not within {latest:.0f}s of the run\n{self.pipeline.log_tail()}"
                )
            if not self.slowed and self.traffic.stats["created"] >= MIN_ORDERS:
                self.traffic.set_rate(SLOW_RATE)
                self.slowed = True
            _alive_or_fail(self.pipeline)
            time.sleep(0.2)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _grown(count: Callable[[], int], by: int) -> Callable[[], bool]:
    """Whether ``count()`` has grown by ``by`` since now."""
    target = count() + by
    return lambda: count() >= target


def test_consumers_keep_the_erp_equal_to_shopee_through_crashes_and_an_outage(
    stack: Stack, tmp_path: Path, own_postgres: PostgresInstance
) -> None:
    began = time.monotonic()
    pipeline = Pipeline(stack, tmp_path, extra_env=ENV, database_url=own_postgres.url)
    config = SandboxConfig(
        partner_id=PARTNER_ID,
        partner_key=PARTNER_KEY,
        push_key=PUSH_KEY,
        callback_url=pipeline.webhook_url,
        time_factor=0.001,  # push retries after 0.3 s, 1.8 s and 10.8 s
        seed=21,
    )
    # Per kill: the consumer, and how many records it had not yet committed.
    kills: list[tuple[str, int]] = []

    def kill(name: str) -> None:
        unread = pipeline.unread(name, limit=100_000)
        pipeline.kill(name)
        kills.append((name, unread))
        pipeline.start_consumer(name, sandbox)

    def cancel_calls() -> int:
        return len(sandbox.state.call_log.snapshot("order.cancel_order"))

    with SandboxServer(config) as sandbox:
        catalogue = _catalogue(sandbox)
        for shop_id in catalogue.shops:
            pipeline.authorize(sandbox, shop_id)
        with pipeline.erp() as erp:
            counts = [StockCount(i, m, n) for (i, m), n in catalogue.short.items()]
            counts += [StockCount(i, m, PLENTY) for i, m in catalogue.plentiful]
            erp.import_stock(counts, int(time.time()))
        try:
            for name in ("webhook", "poller", "enricher"):
                pipeline.start(name, sandbox)
            for name in ("erp-sync", "stock-restore"):
                pipeline.start_consumer(name, sandbox)
            traffic = sandbox.start_traffic(
                RATE, seed=23, time_factor=LIFECYCLE_TIME_FACTOR, shop_ids=catalogue.shops
            )
            run = Run(pipeline, traffic)
            run.at(12)
            kill("stock-restore")
            run.at(28)
            kill("erp-sync")
            run.at(45)
            # Every process loses its database (the consumers' store and ledger, the ingest
            # state) for a while; nothing may be lost or done twice, and nobody may crash.
            own_postgres.stop()
            run.at(45 + OUTAGE_SECONDS)
            own_postgres.start()
            run.at(70)
            kill("erp-sync")
            run.at(AUTO_CANCEL_DELAY)
            pipeline.start_consumer("auto-cancel", sandbox, "earliest")
            auto_cancel_late = run.elapsed()
            # While it cancels its backlog: calls made but not yet committed must never be
            # made again.
            run.until(_grown(cancel_calls, 20), latest=160, what="auto-cancel's first cancels")
            kill("auto-cancel")
            # Caught up (its restart first waits out the dead member's 30 s session), it is
            # the first to see new orders. Now stock-restore falls behind it (killed, it
            # waits out its own session) while auto-cancel cancels short orders; then the
            # seller restocks the short models. When stock-restore reaches the orders
            # auto-cancel cancelled meanwhile, there is stock, and it must still not take any
            # for them.
            run.until(
                lambda: pipeline.unread("auto-cancel", limit=300) < 100,
                latest=260,
                what="auto-cancel catching up",
                every=2.0,
            )
            kill("stock-restore")
            run.until(_grown(cancel_calls, 5), latest=300, what="cancels while stock-restore lags")
            restore_behind = pipeline.unread("stock-restore", limit=100_000)
            with pipeline.erp() as erp:
                levels = {(s.item_id, s.model_id): s.on_hand for s in erp.stock()}
                erp.import_stock(
                    [StockCount(i, m, levels[(i, m)] + RESTOCK) for i, m in catalogue.short],
                    int(time.time()),
                )
            run.at(run.elapsed() + 20)
            run.until(
                lambda: traffic.stats["created"] >= MIN_ORDERS, latest=300, what="enough orders"
            )
            sandbox.stop_traffic()
            traffic_seconds = run.elapsed()

            converging = time.monotonic()
            _converge(pipeline, sandbox)
            converge_seconds = time.monotonic() - converging
            figures = _assert_consumers_correct(pipeline, sandbox, catalogue)
            # Every process's /metrics, after a run that touched every metric it has, is
            # valid exposition (CI installs promtool; without it this check is left out).
            promtool = shutil.which("promtool")
            if promtool is not None:
                assert pipeline.exposition_problems(promtool) == {}
        finally:
            codes = pipeline.stop_all()
    assert codes == dict.fromkeys(("webhook", "poller", "enricher", *CONSUMERS), 0), (
        pipeline.log_tail()
    )
    print(
        f"consumers e2e: {figures['orders']} orders, {figures['events']} events, "
        f"{figures['cancels']} cancels ({figures['cancel_refused']} refused), "
        f"{figures['buyer_answers']} buyer requests answered, {figures['restores']} lines "
        f"restored, {figures['reserved_now']} lines reserved, {len(kills)} SIGKILLs "
        f"(consumer, records unread) {kills}, database down {OUTAGE_SECONDS:.0f}s, auto-cancel "
        f"{auto_cancel_late:.0f}s late, restock with stock-restore {restore_behind} records "
        f"behind, traffic {traffic_seconds:.0f}s, converged in "
        f"{converge_seconds:.0f}s, {time.monotonic() - began:.0f}s in all"
    )


def _assert_consumers_correct(
    pipeline: Pipeline, sandbox: SandboxServer, catalogue: Catalogue
) -> dict[str, int]:
    """Every acceptance criterion on the converged state; the figures for the summary."""
    orders = sandbox.state.orders()
    assert len(orders) >= MIN_ORDERS

    # Stock: on_hand and reserved are what the ledger says; nothing oversold.
    with pipeline.erp() as erp:
        stock = {(s.item_id, s.model_id): s for s in erp.stock()}
        totals = erp.ledger_totals()
    assert set(totals) <= set(stock)
    for key, level in stock.items():
        assert (level.on_hand, level.reserved) == totals.get(key, (0, 0)), key
        assert level.available >= 0, f"{key} oversold: {level}"
    for key, on_hand in catalogue.short.items():
        assert stock[key].on_hand <= on_hand + RESTOCK, "a short model gained stock from nowhere"

    # The ledger: every line in the state its order's final status calls for.
    ledger = pipeline.ledger()
    state: dict[tuple[int, str, int, int], str] = {}
    for row in ledger:  # in the order written: the last row is the line's state
        state[(row.shop_id, row.order_sn, row.item_id, row.model_id)] = row.to_state
    misplaced = []
    for order in orders:
        for line in order.lines:
            found = state.get((order.shop_id, order.order_sn, line.item_id, line.model_id))
            if (found or "none") not in ALLOWED_STATES[phase_of(order.status)]:
                misplaced.append(f"{order.order_sn} {order.status} {line.item_id}: {found}")
    assert not misplaced, f"{len(misplaced)} lines in the wrong ledger state: {misplaced[:5]}"
    ever_reserved = {(r.shop_id, r.order_sn) for r in ledger if r.to_state == "reserved"}

    # auto-cancel: at most one cancel_order per order, ever, naming only lines of the order
    # whose model the ERP was short of; an order it cancelled never held a reservation (one
    # whose cancel Shopee refused stays in force and may take stock like any other).
    by_sn = {order.order_sn: order for order in orders}
    calls = sandbox.state.call_log.snapshot("order.cancel_order")
    per_order = Counter(call.body["order_sn"] for call in calls)
    repeated = {sn: n for sn, n in per_order.items() if n > 1}
    assert not repeated, f"cancel_order sent more than once: {repeated}"
    for call in calls:
        order = by_sn[call.body["order_sn"]]
        assert call.body["cancel_reason"] == "OUT_OF_STOCK", call.body
        named = {(entry["item_id"], entry["model_id"]) for entry in call.body["item_list"]}
        assert named, call.body
        assert named <= set(catalogue.short), f"{order.order_sn}: {named} was not short"
        assert named <= {(line.item_id, line.model_id) for line in order.lines}, call.body
    cancelled = [call for call in calls if call.ok]
    assert cancelled, "no order was cancelled for want of stock: the scenario did not bite"
    for call in cancelled:
        order = by_sn[call.body["order_sn"]]
        assert (order.status, order.cancel_by) == ("CANCELLED", "seller"), order.order_sn
    reserved_and_cancelled = [
        call.body["order_sn"]
        for call in cancelled
        if (by_sn[call.body["order_sn"]].shop_id, call.body["order_sn"]) in ever_reserved
    ]
    assert not reserved_and_cancelled, (
        f"{len(reserved_and_cancelled)} orders cancelled for want of stock held a reservation "
        f"at some time, e.g. {reserved_and_cancelled[:5]}"
    )

    # Every call auto-cancel claimed reached its end; a paid order still open either holds
    # its stock or was taken up by auto-cancel (whatever Shopee answered).
    outbox = pipeline.outbox_states()
    unfinished = {key: s for key, s in outbox.items() if s not in ("succeeded", "failed")}
    assert not unfinished, unfinished
    claimed = {(shop_id, sn) for shop_id, sn, kind in outbox if kind == "cancel_order"}
    for call in cancelled:
        assert outbox.get((call.shop_id or 0, call.body["order_sn"], "cancel_order")) == (
            "succeeded"
        ), call.body["order_sn"]
    neglected = [
        order.order_sn
        for order in orders
        if order.status == "READY_TO_SHIP"
        and (order.shop_id, order.order_sn) not in ever_reserved
        and (order.shop_id, order.order_sn) not in claimed
    ]
    assert not neglected, f"{len(neglected)} paid orders neither covered nor cancelled"

    # Buyer cancellation requests: answered at most once per request (the order leaves
    # IN_CANCEL when answered, so at most once per order here).
    answers = sandbox.state.call_log.snapshot("order.handle_buyer_cancellation")
    per_request = Counter(call.body["order_sn"] for call in answers)
    assert all(n == 1 for n in per_request.values()), per_request
    answered = [call for call in answers if call.ok]

    dead = pipeline.consumer_dead_letters()
    assert dead == dict.fromkeys(CONSUMERS, 0), dead
    assert pipeline.dead_letters() == 0

    current = Counter(state.values())
    return {
        "orders": len(orders),
        "events": len(pipeline.events()),
        "cancels": len(cancelled),
        "cancel_refused": len(calls) - len(cancelled),
        "buyer_answers": len(answered),
        "restores": sum(1 for row in ledger if row.to_state == "released"),
        "reserved_now": current["reserved"],
    }
