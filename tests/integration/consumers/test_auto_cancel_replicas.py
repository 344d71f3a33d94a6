"""Two auto-cancel replicas (members of one consumer group) racing for the last units of one
model: through Kafka, the runtime and PostgreSQL, against the Shopee sandbox.

The store-level race is in the contract suite; here the orders arrive on three partitions
held by two group members, and every decision goes through the real runtime, outbox and
Shopee client.
"""

from __future__ import annotations

import time
from collections import Counter

from consumers.erp.ledger import Holding, LineState
from tests.integration.consumers.conftest import ConsumerProcess, ConsumerWorld, wait_for
from tests.integration.consumers.events import sandbox_events

ON_HAND = 10
ORDERS = 30


def test_replicas_never_oversell_and_cancel_each_short_order_once(
    world: ConsumerWorld, postgres_url: str
) -> None:
    assert world.settings.database_url.startswith("postgresql")  # several replicas need it
    # The budget is not the subject here.
    world.configure(auto_cancel_daily_budget=ORDERS)
    shop, item = world.add_shop()
    state = world.sandbox.state
    order_sns = [state.create_order(shop, [(item, 0, 1)], paid=False) for _ in range(ORDERS)]
    for order_sn in order_sns:
        state.pay(order_sn)
    events = sandbox_events(world.client, shop, order_sns)
    assert {e.status for e in events} == {"READY_TO_SHIP"}
    world.store.set_stock(item, 0, ON_HAND, int(time.time()))

    # Two processes, as two pods run: one group, each member with partitions of its own.
    replicas = [world.process("auto-cancel", "--from", "earliest") for _ in range(2)]
    wait_for(lambda: all(_fetching(replica) for replica in replicas), "both replicas fetch")
    world.writer.send(events)
    wait_for(lambda: world.caught_up("auto-cancel"), "every order decided")
    # Redelivered, every event is read again (by whichever replica holds it now).
    world.writer.send(events)
    wait_for(lambda: world.caught_up("auto-cancel"), "every redelivered order decided")
    consumed = [r.metric_sum("orderflow_records_consumed_total") for r in replicas]
    for replica in replicas:
        assert replica.terminate() == 0, replica.output()

    (level,) = world.store.stock()
    assert (level.on_hand, level.reserved) == (ON_HAND, ON_HAND)
    assert world.store.ledger_totals() == {(item, 0): (ON_HAND, ON_HAND)}

    calls = Counter(world.cancel_calls(ok=None))
    assert set(calls.values()) == {1}, calls
    cancelled = set(calls)
    assert len(cancelled) == ORDERS - ON_HAND
    assert set(world.cancel_calls()) == cancelled  # every call succeeded
    assert {o.order_sn for o in state.orders(shop) if o.status == "CANCELLED"} == cancelled
    for order_sn in order_sns:
        held = world.store.line_states(shop, order_sn)
        if order_sn in cancelled:
            assert held == {}, order_sn
        else:
            assert held == {(item, 0): Holding(LineState.RESERVED, 1)}, order_sn

    assert all(consumed), f"a replica idled: {consumed}"
    assert world.dead_letters("auto-cancel") == []
    # Replicas publish their consumer's actions at least once each; subscribers drop repeats
    # by action_id, as here.
    applied = {a.action_id: a for a in world.actions() if a.kind == "cancel_order"}.values()
    assert sorted(a.order_sn for a in applied) == sorted(cancelled)
    assert {a.outcome for a in applied} == {"applied"}


def _fetching(replica: ConsumerProcess) -> bool:
    """Whether the process holds partitions and has fetched from them (a group member)."""
    replica.assert_running()
    return bool(replica.samples("orderflow_consumer_lag_records"))
