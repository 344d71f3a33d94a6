"""The whole ingest side against the sandbox: every order change reaches ``shopee.orders``.

Phase 1: the sandbox drops 30% of pushes (first without a trace, then into the lost-push
store), duplicates 10% and reorders the rest, over 1,000+ orders. Every order's final
snapshot must equal the sandbox's state, with exactly one snapshot per (order,
update_time), and push, poll and lost_push must each have revealed changes.

Phase 2: the webhook, the enricher and the poller are each killed with SIGKILL mid-run and
restarted; afterwards no change is missing and none is repeated (the enricher commits events
and offsets in one Kafka transaction). Finally SIGTERM drains every process (exit 0).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from schemas.models import OrderEvent
from shopee.sandbox import SandboxServer
from shopee.sandbox.config import FaultConfig, SandboxConfig
from tests.e2e.pipeline import PARTNER_ID, PARTNER_KEY, PUSH_KEY, Pipeline
from tests.integration.stack import Stack

pytestmark = pytest.mark.timeout(900)

# Lifecycle steps at least 60 Shopee-seconds apart become 1.2 s: changes of one order fall in
# different seconds, so "one snapshot per (order, update_time)" is well defined.
LIFECYCLE_TIME_FACTOR = 0.02
MIN_ORDERS = 1000


def _latest(events: list[OrderEvent]) -> dict[tuple[int, str], OrderEvent]:
    latest: dict[tuple[int, str], OrderEvent] = {}
    for event in events:  # partition order is per-key order
        latest[(event.shop_id, event.order_sn)] = event
    return latest


def _mismatches(pipeline: Pipeline, sandbox: SandboxServer) -> list[str]:
    latest = _latest(pipeline.events())
    wrong = []
    for order in sandbox.state.orders():
        event = latest.get((order.shop_id, order.order_sn))
        truth = (order.status, order.update_time)
        seen = None if event is None else (event.status, int(event.update_time.timestamp()))
        if seen != truth:
            wrong.append(f"{order.order_sn}: stream {seen}, sandbox {truth}")
    return wrong


def _converge(pipeline: Pipeline, sandbox: SandboxServer, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    wrong: list[str] = []
    while time.monotonic() < deadline:
        wrong = _mismatches(pipeline, sandbox)
        if not wrong and sandbox.pushes.unfinished_count() == 0:
            return
        time.sleep(3)
    raise AssertionError(f"{len(wrong)} orders differ, e.g. {wrong[:5]}\n{pipeline.log_tail()}")


def _per_key_time_never_goes_back(events: list[OrderEvent]) -> None:
    last: dict[tuple[int, str], float] = {}
    for event in events:
        key = (event.shop_id, event.order_sn)
        assert event.update_time.timestamp() >= last.get(key, 0), key
        last[key] = event.update_time.timestamp()


def _one_snapshot_per_change(events: list[OrderEvent]) -> None:
    per_change = Counter((e.shop_id, e.order_sn, e.update_time) for e in events)
    repeated = [key for key, count in per_change.items() if count > 1]
    assert not repeated, f"{len(repeated)} repeated snapshots, e.g. {repeated[:3]}"


def test_every_order_change_reaches_the_orders_topic(stack: Stack, tmp_path: Path) -> None:
    pipeline = Pipeline(
        stack,
        tmp_path,
        extra_env={
            "ORDERFLOW_POLLER_INTERVAL_SECONDS": "1",
            "ORDERFLOW_POLLER_OVERLAP_SECONDS": "3",
            "ORDERFLOW_POLLER_SETTLE_SECONDS": "1",
            "ORDERFLOW_POLLER_INITIAL_LOOKBACK_SECONDS": "600",
            "ORDERFLOW_POLLER_PUSH_CONFIG_INTERVAL_SECONDS": "5",
            "ORDERFLOW_ENRICHER_LINGER_SECONDS": "0.2",
        },
    )
    faults = FaultConfig(
        push_drop_rate=0.3,
        push_duplicate_rate=0.1,
        push_reorder_max_delay_seconds=2.0,
        dropped_push_to_lost_store=False,
    )
    config = SandboxConfig(
        partner_id=PARTNER_ID,
        partner_key=PARTNER_KEY,
        push_key=PUSH_KEY,
        callback_url=pipeline.webhook_url,
        # Push retries after 0.3 s, 1.8 s and 10.8 s.
        time_factor=0.001,
        seed=7,
        faults=faults,
    )
    with SandboxServer(config) as sandbox:
        shops = [sandbox.state.add_shop(region="SG"), sandbox.state.add_shop(region="MY")]
        for shop_id in shops:
            for _ in range(4):
                sandbox.state.add_item(shop_id, None, [(0, "", 100_000)])
            pipeline.authorize(sandbox, shop_id)
        try:
            for name in ("webhook", "poller", "enricher"):
                pipeline.start(name, sandbox)

            # Phase 1: lossy, duplicated, reordered pushes.
            traffic = sandbox.start_traffic(
                40, seed=11, time_factor=LIFECYCLE_TIME_FACTOR, shop_ids=shops
            )
            started = time.monotonic()
            while traffic.stats["created"] < MIN_ORDERS:
                if time.monotonic() - started > 12:
                    # From now on Shopee knows the pushes it dropped: the lost-push drain.
                    sandbox.state.set_faults(
                        faults.model_copy(update={"dropped_push_to_lost_store": True})
                    )
                time.sleep(0.5)
            sandbox.stop_traffic()
            _converge(pipeline, sandbox)

            events = pipeline.events()
            _one_snapshot_per_change(events)
            sources = Counter(e.source for e in events)
            print(
                f"phase 1: {len(sandbox.state.orders())} orders, {len(events)} snapshots, "
                f"sources {dict(sources)}, pushes {sandbox.pushes.summary()}"
            )
            assert {"push", "poll", "lost_push"} <= set(sources), sources
            _per_key_time_never_goes_back(events)
            assert pipeline.dead_letters() == 0
            assert sandbox.pushes.summary()["lost_unconfirmed"] == 0
            orders_phase_1 = len(sandbox.state.orders())
            assert orders_phase_1 >= MIN_ORDERS

            # Phase 2: SIGKILL each process mid-run, restart it; nothing may go missing.
            sandbox.state.set_faults(FaultConfig())
            sandbox.start_traffic(20, seed=12, time_factor=LIFECYCLE_TIME_FACTOR, shop_ids=shops)
            for name in ("webhook", "enricher", "poller"):
                time.sleep(3)
                pipeline.kill(name)
                time.sleep(2)
                pipeline.start(name, sandbox)
            time.sleep(2)
            sandbox.stop_traffic()
            _converge(pipeline, sandbox)
            events = pipeline.events()
            _per_key_time_never_goes_back(events)
            # Transactions: a killed enricher's open batch is aborted, never half-visible.
            _one_snapshot_per_change(events)
            assert len(sandbox.state.orders()) > orders_phase_1
        finally:
            codes = pipeline.stop_all()
    assert codes == {"webhook": 0, "poller": 0, "enricher": 0}, pipeline.log_tail()
