"""The traffic generator on a manual clock: arrival rate, valid lifecycles, reproducibility."""

from __future__ import annotations

import random
from collections import Counter
from itertools import pairwise

import pytest

from shopee.sandbox import LifecycleOdds, ManualClock, SandboxConfig, SandboxState
from shopee.sandbox.model import ORDER_STATUSES, TERMINAL_STATUSES
from shopee.sandbox.rules import TRANSITIONS
from shopee.sandbox.traffic import TrafficGenerator, next_step
from shopee.sandbox.world import populate

NOW = 1_700_000_000.0


def run(
    seed: int, *, seconds: float = 20.0, rate: float = 5.0
) -> tuple[SandboxState, TrafficGenerator]:
    clock = ManualClock(NOW)
    state = SandboxState(SandboxConfig(seed=seed), clock=clock)
    populate(state, shops=2, items_per_shop=3, stock=10_000)
    # 0.0001: a simulated week is about a minute of sandbox clock.
    generator = TrafficGenerator(state, rate=rate, seed=seed, time_factor=0.0001)
    elapsed = 0.0
    while elapsed < seconds:
        clock.advance(0.5)
        elapsed += 0.5
        generator.tick(clock.now())
    return state, generator


@pytest.mark.parametrize("status", sorted(ORDER_STATUSES))
def test_every_planned_step_is_a_transition_the_status_allows(status: str) -> None:
    rng = random.Random(1)
    for _ in range(200):
        step = next_step(status, rng, LifecycleOdds())
        if status in TERMINAL_STATUSES:
            assert step is None
            continue
        assert step is not None and step.delay >= 0
        assert step.action in {
            "pay",
            "ship",
            "pickup",
            "retry_ship",
            "deliver",
            "complete",
            "to_return",
            "buyer_cancel",
            "buyer_request_cancel",
            "system_cancel",
            "accept_cancel",
        }


def test_orders_arrive_at_the_rate_and_reach_an_end() -> None:
    state, generator = run(seed=4, seconds=20, rate=5)
    created = generator.stats["created"]
    assert 60 <= created <= 140  # Poisson with mean 100
    # Let every lifecycle finish: no more arrivals, just time.
    generator.set_rate(0)
    clock = state.clock
    assert isinstance(clock, ManualClock)
    for _ in range(400):
        clock.advance(1)
        generator.tick(clock.now())
    assert generator.stats["created"] == created
    statuses = Counter(order.status for order in state.orders())
    assert set(statuses) <= TERMINAL_STATUSES, statuses
    assert statuses["COMPLETED"] > statuses["CANCELLED"] > 0
    for order in state.orders():
        history = [status for _, status in order.history]
        for before, after in pairwise(history):
            assert after in TRANSITIONS[before], history
    seen = {status for order in state.orders() for _, status in order.history}
    assert {"UNPAID", "RETRY_SHIP", "TO_RETURN", "IN_CANCEL"} <= seen


def test_the_same_seed_makes_the_same_traffic() -> None:
    def fingerprint(seed: int) -> list[tuple[str, str, int]]:
        state, _ = run(seed, seconds=10)
        return [(o.order_sn, o.status, o.update_time) for o in state.orders()]

    assert fingerprint(9) == fingerprint(9)
    assert fingerprint(9) != fingerprint(10)


def test_a_step_overtaken_by_the_seller_is_replanned() -> None:
    clock = ManualClock(NOW)
    state = SandboxState(SandboxConfig(), clock=clock)
    populate(state, shops=1, items_per_shop=1, stock=1000)
    odds = LifecycleOdds(
        unpaid_share=0, cod_share=0, ready_buyer_cancels=0, ready_buyer_requests_cancel=0
    )
    generator = TrafficGenerator(state, rate=10, seed=1, time_factor=0.0001, odds=odds)
    while not generator.order_sns:
        clock.advance(0.1)
        generator.tick(clock.now())
    order_sn = generator.order_sns[0]
    generator.set_rate(0)
    state.seller_cancel(order_sn, "CUSTOMER_REQUEST")
    for _ in range(100):
        clock.advance(1)
        generator.tick(clock.now())
    assert state.order(order_sn).status == "CANCELLED"
    assert generator.stats["replanned"] >= 1
