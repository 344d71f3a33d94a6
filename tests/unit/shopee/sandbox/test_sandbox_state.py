"""SandboxState without HTTP: stock, lifecycle, cancellations, tokens and emitted pushes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shopee.sandbox import (
    InsufficientStock,
    InvalidTransition,
    ManualClock,
    SandboxConfig,
    SandboxState,
    ShopeeApiError,
)
from shopee.sandbox.render import order_detail

NOW = 1_700_000_000
ITEM = 23620853561
MODEL_A, MODEL_B = 221404189791, 221404189792


def make_state(**config: Any) -> tuple[SandboxState, ManualClock, int]:
    clock = ManualClock(NOW)
    state = SandboxState(SandboxConfig(**config), clock=clock)
    shop_id = state.add_shop(336094210, "SG")
    state.add_item(shop_id, item_id=ITEM, models=[(MODEL_A, "A", 10), (MODEL_B, "B", 5, 7.5)])
    return state, clock, shop_id


def pushes(state: SandboxState) -> list[dict[str, Any]]:
    return [message.payload() for message in state.pushes.messages()]


def test_creating_an_order_takes_stock_and_pushes_its_status() -> None:
    state, _, shop_id = make_state()
    order_sn = state.create_order(shop_id, [(ITEM, MODEL_A, 3), (ITEM, MODEL_B, 1)])
    assert (state.stock(ITEM, MODEL_A), state.stock(ITEM, MODEL_B)) == (7, 4)
    assert len(order_sn) == 14 and order_sn.startswith("231114")
    order = state.order(order_sn)
    assert (order.status, order.pay_time, order.create_time) == ("READY_TO_SHIP", NOW, NOW)
    (push,) = pushes(state)
    assert push["code"] == 3 and push["shop_id"] == shop_id and push["timestamp"] == NOW
    assert push["data"]["ordersn"] == order_sn and push["data"]["status"] == "READY_TO_SHIP"
    assert push["data"]["items"] == [] and push["data"]["update_time"] == NOW


def test_orders_cannot_take_more_than_the_stock_unless_oversold() -> None:
    state, _, shop_id = make_state()
    with pytest.raises(InsufficientStock):
        state.create_order(shop_id, [(ITEM, MODEL_B, 6)])
    assert state.stock(ITEM, MODEL_B) == 5 and state.orders() == []
    oversold = state.create_order(shop_id, [(ITEM, MODEL_B, 6)], allow_oversell=True)
    assert state.stock(ITEM, MODEL_B) == 0
    state.system_cancel(oversold)
    assert state.stock(ITEM, MODEL_B) == 5  # gives back what it took, not what it asked for


def test_the_happy_lifecycle_and_its_pushes() -> None:
    state, clock, shop_id = make_state()
    order_sn = state.create_order(shop_id, [(ITEM, MODEL_A, 1)], paid=False)
    assert state.order(order_sn).pay_time is None
    steps = ["READY_TO_SHIP", "PROCESSED", "SHIPPED", "TO_CONFIRM_RECEIVE", "COMPLETED"]
    for status in steps:
        clock.advance(60)
        state.advance(order_sn, status)
    order = state.order(order_sn)
    assert [status for _, status in order.history] == ["UNPAID", *steps]
    assert order.update_time == NOW + 300
    assert order.pay_time == NOW + 60 and order.pickup_done_time == NOW + 180
    assert order.package.logistics_status == "LOGISTICS_DELIVERY_DONE"
    assert order.completed_scenario == "NORMAL"

    codes = [p["code"] for p in pushes(state)]
    assert codes == [3, 3, 3, 4, 3, 3, 3]
    tracking = pushes(state)[3]["data"]
    assert tracking["tracking_no"] == order.package.tracking_number
    assert len(tracking["forder_id"]) == 19 and tracking["forder_id"].isdigit()
    assert pushes(state)[-1]["data"]["completed_scenario"] == "NORMAL"


def test_invalid_steps_are_refused_and_change_nothing() -> None:
    state, _, shop_id = make_state()
    order_sn = state.create_order(shop_id, [(ITEM, MODEL_A, 1)])
    with pytest.raises(InvalidTransition):
        state.deliver(order_sn)
    with pytest.raises(InvalidTransition):
        state.advance(order_sn, "UNPAID")
    assert state.order(order_sn).status == "READY_TO_SHIP"
    assert len(state.pushes.messages()) == 1


def test_retry_ship_gets_a_new_tracking_number() -> None:
    state, _, shop_id = make_state()
    order_sn = state.create_order(shop_id, [(ITEM, MODEL_A, 1)])
    first = state.ship(order_sn).package.tracking_number
    state.retry_ship(order_sn)
    assert state.order(order_sn).package.logistics_status == "LOGISTICS_PICKUP_RETRY"
    second = state.ship(order_sn).package
    assert second.tracking_number != first
    forder_ids = {p["data"]["forder_id"] for p in pushes(state) if p["code"] == 4}
    assert len(forder_ids) == 1


def test_buyer_cancel_is_immediate_in_the_first_hour_and_a_request_afterwards() -> None:
    state, clock, shop_id = make_state()
    early = state.create_order(shop_id, [(ITEM, MODEL_A, 2)])
    late = state.create_order(shop_id, [(ITEM, MODEL_A, 2)])
    clock.advance(3599)
    cancelled = state.buyer_cancel(early)
    assert (cancelled.status, cancelled.cancel_by) == ("CANCELLED", "buyer")
    assert cancelled.package.logistics_status == "LOGISTICS_INVALID"
    clock.advance(1)
    requested = state.buyer_cancel(late, reason="Need to change delivery address")
    assert requested.status == "IN_CANCEL"
    assert requested.buyer_cancel_reason == "Need to change delivery address"
    assert state.stock(ITEM, MODEL_A) == 8  # only the cancelled order gave its stock back


def test_handle_buyer_cancellation_accepts_or_returns_to_the_interrupted_status() -> None:
    state, _, shop_id = make_state()
    accepted = state.create_order(shop_id, [(ITEM, MODEL_A, 1)])
    rejected = state.create_order(shop_id, [(ITEM, MODEL_A, 1)])
    state.ship(rejected)
    for order_sn in (accepted, rejected):
        state.buyer_cancel(order_sn, request=True)

    state.handle_buyer_cancellation(accepted, "ACCEPT")
    state.handle_buyer_cancellation(rejected, "REJECT")
    assert state.order(accepted).status == "CANCELLED"
    assert state.order(rejected).status == "PROCESSED"
    with pytest.raises(ShopeeApiError) as raised:
        state.handle_buyer_cancellation(rejected, "ACCEPT")
    assert raised.value.error == "order.cancel_order_invalid_status"


def test_seller_cancel_rules() -> None:
    state, _, shop_id = make_state()
    order_sn = state.create_order(shop_id, [(ITEM, MODEL_A, 4)])
    with pytest.raises(ShopeeApiError) as missing_items:
        state.seller_cancel(order_sn, "OUT_OF_STOCK")
    assert missing_items.value.error == "error_param"
    with pytest.raises(ShopeeApiError) as other_region:
        state.seller_cancel(order_sn, "UNDELIVERABLE_AREA")
    assert other_region.value.error == "error_param"

    update_time = state.seller_cancel(order_sn, "OUT_OF_STOCK", [(ITEM, MODEL_A)])
    order = state.order(order_sn)
    assert update_time == order.update_time
    assert (order.cancel_by, order.cancel_reason) == ("seller", "Out of Stock")
    assert state.stock(ITEM, MODEL_A) == 10
    with pytest.raises(ShopeeApiError) as twice:
        state.seller_cancel(order_sn, "CUSTOMER_REQUEST")
    assert (twice.value.error, twice.value.message) == (
        "order.error_limit",
        "Can not cancel this order.",
    )


def test_out_of_stock_cancel_can_zero_the_named_models() -> None:
    state, _, shop_id = make_state(out_of_stock_cancel_zeroes_stock=True)
    order_sn = state.create_order(shop_id, [(ITEM, MODEL_A, 4), (ITEM, MODEL_B, 1)])
    state.seller_cancel(order_sn, "OUT_OF_STOCK", [(ITEM, MODEL_A)])
    assert (state.stock(ITEM, MODEL_A), state.stock(ITEM, MODEL_B)) == (0, 5)


def test_a_cancellation_restores_stock_only_once() -> None:
    state, _, shop_id = make_state()
    order_sn = state.create_order(shop_id, [(ITEM, MODEL_A, 4)])
    state.system_cancel(order_sn)
    assert state.stock(ITEM, MODEL_A) == 10
    with pytest.raises(InvalidTransition):
        state.system_cancel(order_sn)
    assert state.stock(ITEM, MODEL_A) == 10


def test_unpaid_orders_time_out_with_the_unpaid_reason() -> None:
    state, _, shop_id = make_state()
    order_sn = state.create_order(shop_id, [(ITEM, MODEL_A, 1)], paid=False)
    order = state.system_cancel(order_sn)
    assert (order.cancel_by, order.cancel_reason) == ("system", "Unpaid Order")
    assert order.package.logistics_status == "LOGISTICS_NOT_START"


def test_cod_orders_are_ready_to_ship_and_paid_on_delivery() -> None:
    state, clock, shop_id = make_state()
    order_sn = state.create_order(shop_id, [(ITEM, MODEL_A, 1)], cod=True)
    order = state.order(order_sn)
    assert (order.status, order.pay_time, order.payment_method) == (
        "READY_TO_SHIP",
        None,
        "Cash on Delivery",
    )
    assert "total_amount" in order_detail(order, ["total_amount"])
    for status in ("PROCESSED", "SHIPPED", "TO_CONFIRM_RECEIVE"):
        clock.advance(10)
        state.advance(order_sn, status)
    assert state.order(order_sn).pay_time == NOW + 30


def test_detail_rendering_keeps_optional_fields_out_unless_asked() -> None:
    state, _, shop_id = make_state()
    unpaid = state.order(state.create_order(shop_id, [(ITEM, MODEL_B, 2)], paid=False))
    plain = order_detail(unpaid, [])
    assert "item_list" not in plain and "total_amount" not in plain
    full = order_detail(unpaid, ["item_list", "total_amount", "pay_time", "package_list"])
    assert "total_amount" not in full  # only returned once the buyer paid
    assert full["pay_time"] is None and full["package_list"] == []
    (line,) = full["item_list"]
    assert (line["model_id"], line["model_quantity_purchased"]) == (MODEL_B, 2)
    assert line["model_original_price"] == 7.5
    # The optional fields are what JSON would carry: the rendering must be serialisable.
    json.dumps(full)


def test_list_entries_are_scoped_to_the_shop_and_the_window() -> None:
    state, _, shop_id = make_state()
    other = state.add_shop()
    other_item = state.add_item(other)
    inside = state.create_order(shop_id, [(ITEM, MODEL_A, 1)], create_time=NOW - 100)
    state.create_order(shop_id, [(ITEM, MODEL_A, 1)], create_time=NOW - 1000)
    state.create_order(other, [(other_item, 0, 1)], create_time=NOW - 100)
    entries = state.list_entries(shop_id, "create_time", NOW - 100, NOW, None)
    assert [entry.order_sn for entry in entries] == [inside]


def test_tokens_code_single_use_refresh_single_use_and_grace() -> None:
    state, clock, shop_id = make_state()
    code = state.authorize(shop_id)
    grant = state.exchange_code(code, shop_id)
    with pytest.raises(ShopeeApiError, match="Invalid code"):
        state.exchange_code(code, shop_id)
    state.check_shop_access(shop_id, grant.access_token)

    newer = state.refresh_access_token(grant.refresh_token, shop_id)
    with pytest.raises(ShopeeApiError, match="Invalid refresh_token"):
        state.refresh_access_token(grant.refresh_token, shop_id)
    clock.advance(299)
    state.check_shop_access(shop_id, grant.access_token)
    clock.advance(1)
    with pytest.raises(ShopeeApiError):
        state.check_shop_access(shop_id, grant.access_token)
    state.check_shop_access(shop_id, newer.access_token)

    with pytest.raises(ShopeeApiError) as wrong_shop:
        state.refresh_access_token(newer.refresh_token, state.add_shop())
    assert wrong_shop.value.error == "error_auth"  # that shop is not linked


def test_update_stock_is_absolute_and_reports_bad_entries() -> None:
    state, _, shop_id = make_state()
    result = state.update_stock(shop_id, ITEM, [(MODEL_A, 50), (MODEL_B, -1), (123, 1)])
    assert result.success_list == [{"model_id": MODEL_A, "location_id": "SGZ", "stock": 50}]
    assert [failure["model_id"] for failure in result.failure_list] == [MODEL_B, 123]
    assert (state.stock(ITEM, MODEL_A), state.stock(ITEM, MODEL_B)) == (50, 5)


def test_the_same_seed_builds_the_same_world() -> None:
    def world(seed: int) -> list[str]:
        state, _, shop_id = make_state(seed=seed)
        return [state.create_order(shop_id, [(ITEM, MODEL_A, 1)]) for _ in range(3)]

    assert world(5) == world(5)
    assert world(5) != world(6)
