"""A shop whose authorisation is revoked mid-run: auto-cancel parks its records (never
dead-letters them) while other shops flow, and handles them once it is authorised again."""

from __future__ import annotations

from collections import Counter

from tests.integration.consumers.conftest import ConsumerWorld, RunningConsumer
from tests.integration.consumers.events import sandbox_events


def test_a_revoked_shop_is_parked_while_others_flow_and_resumes_when_authorised(
    world: ConsumerWorld,
) -> None:
    world.configure(consumer_blocked_retry_seconds=1.0, auto_cancel_daily_budget=100)
    state = world.sandbox.state
    (shop_a, item_a), (shop_b, item_b) = world.add_shop(), world.add_shop()
    # The ERP holds none of either model: every paid order is short and is cancelled.

    def orders(shop: int, item: int, count: int) -> list[str]:
        return [state.create_order(shop, [(item, 0, 1)]) for _ in range(count)]

    before_a, before_b = orders(shop_a, item_a, 2), orders(shop_b, item_b, 2)
    during_a, during_b = orders(shop_a, item_a, 3), orders(shop_b, item_b, 3)
    events_a = sandbox_events(world.client, shop_a, before_a + during_a)
    events_b = sandbox_events(world.client, shop_b, before_b + during_b)
    auto_cancel = world.consumer("auto-cancel")

    world.writer.send(events_a[:2] + events_b[:2])
    world.catch_up(auto_cancel)
    assert sorted(world.cancel_calls()) == sorted(before_a + before_b)

    state.deauthorize(shop_a)
    world.writer.send([e for pair in zip(events_a[2:], events_b[2:], strict=True) for e in pair])
    auto_cancel.run_until(
        lambda: set(during_b) <= set(world.cancel_calls()) and world.parked("auto-cancel") == 3,
        "B's orders cancelled, A's parked",
    )
    # Tried again after the interval (and refused again), A's records stay parked.
    refused = len(world.cancel_calls(ok=False))
    auto_cancel.run_until(
        lambda: len(world.cancel_calls(ok=False)) > refused, "the parked records tried again"
    )

    assert world.parked("auto-cancel") == 3
    assert world.caught_up("auto-cancel")  # parked records are committed: the others flow
    assert _blocked(auto_cancel, shop_a) == 1
    assert _blocked(auto_cancel, shop_b) == 0
    assert not set(during_a) & set(world.cancel_calls())
    assert {state.order(sn).status for sn in during_a} == {"READY_TO_SHIP"}
    assert world.dead_letters("auto-cancel") == []

    world.authorize(shop_a)
    auto_cancel.run_until(
        lambda: world.parked("auto-cancel") == 0 and set(during_a) <= set(world.cancel_calls()),
        "A's parked orders cancelled",
    )

    every = before_a + before_b + during_a + during_b
    assert Counter(world.cancel_calls()) == Counter(every)  # once each
    assert {state.order(sn).status for sn in every} == {"CANCELLED"}
    assert _blocked(auto_cancel, shop_a) == 0
    assert world.dead_letters("auto-cancel") == []
    applied = [a for a in world.actions() if a.kind == "cancel_order" and a.outcome == "applied"]
    assert sorted(a.order_sn for a in applied) == sorted(every)


def _blocked(running: RunningConsumer, shop_id: int) -> float:
    return running.metric_sum("orderflow_shop_blocked", process="auto-cancel", shop_id=str(shop_id))
