"""stock-restore on the ERP store: exactly what was taken comes back, once; shipped goods are
deducted; stock nobody took is never restored; the numbers are the same whichever consumer
sees an order first; released availability is pushed to Shopee as absolute values."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from consumers.auto_cancel import AutoCancel
from consumers.erp.ledger import LineState
from consumers.erp.outbox import ActionRecord, Outbox
from consumers.erp.store import ErpStore, StockCount
from consumers.stock_restore import StockRestore
from orderflow.metrics import Metrics
from schemas.models import OrderEvent
from shopee import client as api
from tests.unit.consumers.twins import (
    SHOP,
    T0,
    LineSpec,
    delivery,
    handle_one,
    migrated_engine,
    order_event,
)
from tests.unit.shopee.fake_shopee import Harness, make_harness, ok
from tests.unit.shopee.token_fakes import FakeClock

Levels = dict[tuple[int, int], tuple[int, int]]


def levels(store: ErpStore) -> Levels:
    return {(s.item_id, s.model_id): (s.on_hand, s.reserved) for s in store.stock()}


def assert_ledger_adds_up(store: ErpStore) -> None:
    stock = {key: value for key, value in levels(store).items() if value != (0, 0)}
    totals = {key: value for key, value in store.ledger_totals().items() if value != (0, 0)}
    assert stock == totals


class Rig:
    def __init__(self, engine_path: Path, shopee: Harness | None = None) -> None:
        self.engine = migrated_engine(engine_path.parent, engine_path.name)
        self.store = ErpStore(self.engine)
        self.actions = ActionRecord(self.engine)
        self.handler = StockRestore(
            self.store, shopee.client if shopee else None, clock=FakeClock()
        )
        self.store.import_stock([StockCount(1001, 1, 10), StockCount(1002, 1, 1)], now=1)

    def handle(self, event: OrderEvent) -> str:
        outcome = handle_one(self.handler, event)
        assert_ledger_adds_up(self.store)
        return outcome


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    """stock-restore with 10 of (1001, 1) and 1 of (1002, 1) on hand."""
    return Rig(tmp_path / "erp.db")


def ev(order_sn: str, status: str, *lines: LineSpec, at: int = T0) -> OrderEvent:
    return order_event(order_sn, status, update_time=at, lines=lines)


def test_a_cancelled_order_gives_back_exactly_what_was_reserved_once(rig: Rig) -> None:
    assert rig.handle(ev("A", "READY_TO_SHIP", (1001, 1, 3), (1002, 1, 1))) == "applied"
    assert levels(rig.store) == {(1001, 1): (10, 3), (1002, 1): (1, 1)}
    # The cancelled snapshot lists other quantities: what was taken is what comes back.
    cancelled = ev("A", "CANCELLED", (1001, 1, 5), at=T0 + 60)
    assert rig.handle(cancelled) == "applied"
    assert levels(rig.store) == {(1001, 1): (10, 0), (1002, 1): (1, 0)}
    assert rig.handle(cancelled) == "unchanged"
    assert rig.handle(ev("A", "READY_TO_SHIP", (1001, 1, 3), at=T0 + 120)) == "unchanged"
    assert levels(rig.store) == {(1001, 1): (10, 0), (1002, 1): (1, 0)}
    states = rig.store.line_states(SHOP, "A")
    assert {key: h.state for key, h in states.items()} == {
        (1001, 1): LineState.RELEASED,
        (1002, 1): LineState.RELEASED,
    }
    assert [(a.kind, a.outcome) for a in rig.actions.all("stock-restore")] == [
        ("stock_reserve", "applied"),
        ("stock_restore", "applied"),
    ]
    restored = rig.actions.all("stock-restore")[1]
    assert [(line.item_id, line.model_id, line.quantity) for line in restored.lines] == [
        (1001, 1, 3),
        (1002, 1, 1),
    ]


def test_a_shipped_order_is_deducted_and_never_restocked(rig: Rig) -> None:
    rig.handle(ev("A", "READY_TO_SHIP", (1001, 1, 3)))
    assert rig.handle(ev("A", "SHIPPED", (1001, 1, 3), at=T0 + 60)) == "applied"
    assert levels(rig.store)[(1001, 1)] == (7, 0)
    # Lost in delivery, returned: goods that left are not restocked automatically.
    assert rig.handle(ev("A", "CANCELLED", (1001, 1, 3), at=T0 + 120)) == "unchanged"
    assert rig.handle(ev("A", "SHIPPED", (1001, 1, 3), at=T0 + 60)) == "unchanged"
    assert levels(rig.store)[(1001, 1)] == (7, 0)
    assert [a.kind for a in rig.actions.all("stock-restore")] == ["stock_reserve", "stock_deduct"]


@pytest.mark.parametrize("first_seen", ["CANCELLED", "SHIPPED", "COMPLETED"])
def test_an_order_never_reserved_restores_nothing_ever(rig: Rig, first_seen: str) -> None:
    rig.handle(ev("A", first_seen, (1001, 1, 3)))
    assert levels(rig.store) == {(1001, 1): (10, 0), (1002, 1): (1, 0)}
    # An older open snapshot arriving later can never reserve for it.
    rig.handle(ev("A", "READY_TO_SHIP", (1001, 1, 3), at=T0 - 60))
    rig.handle(ev("A", "CANCELLED", (1001, 1, 3), at=T0 + 60))
    assert levels(rig.store) == {(1001, 1): (10, 0), (1002, 1): (1, 0)}
    assert rig.actions.all("stock-restore") == []  # closing a line moves no stock


def test_a_short_order_takes_nothing_and_stock_restore_does_not_cancel_it(rig: Rig) -> None:
    assert rig.handle(ev("A", "READY_TO_SHIP", (1001, 1, 3), (1002, 1, 2))) == "unchanged"
    assert levels(rig.store) == {(1001, 1): (10, 0), (1002, 1): (1, 0)}
    assert rig.handle(ev("A", "CANCELLED", (1001, 1, 3), (1002, 1, 2), at=T0 + 60)) == "applied"
    assert levels(rig.store) == {(1001, 1): (10, 0), (1002, 1): (1, 0)}


# -- whichever consumer sees an order first ---------------------------------------------------

# Stock: 10 of (1001, 1), 1 of (1002, 1).
SEQUENCE = [
    ev("A", "READY_TO_SHIP", (1001, 1, 3)),
    ev("B", "UNPAID", (1001, 1, 1), (1002, 1, 1)),
    ev("C", "CANCELLED", (1001, 1, 2)),  # first seen cancelled
    ev("D", "READY_TO_SHIP", (1001, 1, 8)),  # short: 6 available
    ev("A", "CANCELLED", (1001, 1, 3), at=T0 + 60),  # gives 3 back: D would fit now
    ev("D", "READY_TO_SHIP", (1001, 1, 8)),  # redelivered
    ev("B", "READY_TO_SHIP", (1001, 1, 1), (1002, 1, 1), at=T0 + 60),
    ev("B", "SHIPPED", (1001, 1, 1), (1002, 1, 1), at=T0 + 120),
    ev("D", "CANCELLED", (1001, 1, 8), at=T0 + 180),
    ev("C", "READY_TO_SHIP", (1001, 1, 2), at=T0 - 60),  # older than what was seen
    ev("A", "READY_TO_SHIP", (1001, 1, 3)),  # redelivered after its cancellation
]
# A given back, B shipped (1 of each), C and D never took anything.
FINAL: Levels = {(1001, 1): (9, 0), (1002, 1): (0, 0)}

Consumer = Callable[[OrderEvent], object]
Pick = Callable[[Consumer, Consumer], list[Consumer]]
# Who handles each event, in order, and how many cancel calls that makes (auto-cancel
# cancels D, the short order, when it sees D open before anything closed it).
ORDERS: dict[str, tuple[Pick, int]] = {
    "stock-restore only": (lambda restore, cancel: [restore], 0),
    "auto-cancel only": (lambda restore, cancel: [cancel], 1),
    "each event: stock-restore first": (lambda restore, cancel: [restore, cancel], 1),
    "each event: auto-cancel first": (lambda restore, cancel: [cancel, restore], 1),
}


@pytest.fixture
def shopee(tmp_path: Path, metrics: Metrics, clean_env: pytest.MonkeyPatch) -> Iterator[Harness]:
    """A Shopee that cancels whatever it is asked to, for shop SHOP."""
    harness = make_harness(tmp_path, metrics, max_retries=0)
    harness.client.tokens.authorize("code", SHOP)
    harness.shopee.handlers[api.CANCEL_ORDER_PATH] = lambda call: ok({"update_time": T0 + 90})
    harness.shopee.handlers[api.UPDATE_STOCK_PATH] = lambda call: ok({"success_list": []})
    yield harness
    harness.client.close()


def _consumers(rig: Rig, shopee: Harness, metrics: Metrics) -> tuple[Consumer, Consumer]:
    cancel = AutoCancel(
        store=rig.store,
        outbox=Outbox(rig.engine),
        actions=rig.actions,
        client=shopee.client,
        metrics=metrics,
        clock=shopee.clock,
    )

    def restore(event: OrderEvent) -> object:
        return rig.handle(event)

    def auto_cancel(event: OrderEvent) -> object:
        outcome = cancel.handle([delivery(event)])
        assert_ledger_adds_up(rig.store)
        return outcome

    return restore, auto_cancel


@pytest.mark.parametrize(("pick", "cancels"), list(ORDERS.values()), ids=list(ORDERS))
def test_the_numbers_do_not_depend_on_which_consumer_sees_an_order_first(
    tmp_path: Path, shopee: Harness, metrics: Metrics, pick: Pick, cancels: int
) -> None:
    rig = Rig(tmp_path / "erp.db")
    consumers = pick(*_consumers(rig, shopee, metrics))
    for event in SEQUENCE:
        for consume in consumers:
            consume(event)
    assert levels(rig.store) == FINAL
    assert len(shopee.shopee.calls_to(api.CANCEL_ORDER_PATH)) == cancels
    if cancels:
        # Being cancelled, D never took the stock A gave back, whoever saw it next.
        (d_line,) = rig.store.line_states(SHOP, "D").values()
        assert d_line.state is LineState.CLOSED


@pytest.mark.parametrize(("first", "cancels"), [("stock-restore", 0), ("auto-cancel", 1)])
def test_one_consumer_far_behind_the_other_changes_nothing(
    tmp_path: Path, shopee: Harness, metrics: Metrics, first: str, cancels: int
) -> None:
    rig = Rig(tmp_path / "erp.db")
    restore, cancel = _consumers(rig, shopee, metrics)
    lead, lag = (restore, cancel) if first == "stock-restore" else (cancel, restore)
    for event in SEQUENCE:
        lead(event)
    after_lead = levels(rig.store)
    for event in SEQUENCE:
        lag(event)
    assert after_lead == levels(rig.store) == FINAL
    assert len(shopee.shopee.calls_to(api.CANCEL_ORDER_PATH)) == cancels


# -- availability pushed to Shopee ------------------------------------------------------------


def _pushed(shopee: Harness) -> list[dict[str, Any]]:
    return [call.body for call in shopee.shopee.calls_to(api.UPDATE_STOCK_PATH) if call.body]


def _stock_list(*models: tuple[int, int]) -> list[dict[str, object]]:
    return [{"model_id": model, "seller_stock": [{"stock": stock}]} for model, stock in models]


def test_released_availability_is_pushed_as_absolute_values(
    tmp_path: Path, shopee: Harness
) -> None:
    rig = Rig(tmp_path / "erp.db", shopee)
    rig.store.import_stock([StockCount(1001, 2, 4), StockCount(3003, 1, 2)], now=2)
    rig.handle(ev("A", "READY_TO_SHIP", (1001, 1, 3), (1001, 2, 1), (3003, 1, 2)))
    rig.handle(ev("B", "READY_TO_SHIP", (1001, 1, 4)))  # still holds 4 of (1001, 1)
    assert _pushed(shopee) == []  # reservations push nothing
    rig.handle(ev("A", "CANCELLED", (1001, 1, 3), at=T0 + 60))
    first = [
        {"item_id": 1001, "stock_list": _stock_list((1, 6), (2, 4))},
        {"item_id": 3003, "stock_list": _stock_list((1, 2))},
    ]
    assert _pushed(shopee) == first
    # Absolute values make pushing again harmless; a redelivery pushes the same numbers.
    rig.handle(ev("A", "CANCELLED", (1001, 1, 3), at=T0 + 60))
    assert _pushed(shopee) == first + first


def test_nothing_is_pushed_for_stock_that_was_never_taken_or_that_shipped(
    tmp_path: Path, shopee: Harness
) -> None:
    rig = Rig(tmp_path / "erp.db", shopee)
    rig.handle(ev("A", "CANCELLED", (1001, 1, 3)))
    rig.handle(ev("B", "READY_TO_SHIP", (1001, 1, 1)))
    rig.handle(ev("B", "SHIPPED", (1001, 1, 1), at=T0 + 60))
    rig.handle(ev("B", "CANCELLED", (1001, 1, 1), at=T0 + 120))
    assert _pushed(shopee) == []


def test_availability_below_zero_is_pushed_as_zero(tmp_path: Path, shopee: Harness) -> None:
    rig = Rig(tmp_path / "erp.db", shopee)
    rig.handle(ev("A", "READY_TO_SHIP", (1001, 1, 2)))
    rig.handle(ev("B", "READY_TO_SHIP", (1001, 1, 8)))
    rig.store.set_stock(1001, 1, 5, now=3)  # a count found fewer than were promised
    rig.handle(ev("A", "CANCELLED", (1001, 1, 2), at=T0 + 60))
    assert _pushed(shopee) == [{"item_id": 1001, "stock_list": _stock_list((1, 0))}]


def test_more_than_fifty_models_of_an_item_are_pushed_in_calls_of_fifty(
    tmp_path: Path, shopee: Harness
) -> None:
    rig = Rig(tmp_path / "erp.db", shopee)
    models = range(1, 53)
    rig.store.import_stock([StockCount(5005, m, 1) for m in models], now=2)
    lines = [(5005, m, 1) for m in models]
    rig.handle(ev("A", "READY_TO_SHIP", *lines))
    rig.handle(ev("A", "CANCELLED", *lines, at=T0 + 60))
    pushed = _pushed(shopee)
    assert [len(body["stock_list"]) for body in pushed] == [50, 2]
    assert [entry["model_id"] for body in pushed for entry in body["stock_list"]] == list(models)
