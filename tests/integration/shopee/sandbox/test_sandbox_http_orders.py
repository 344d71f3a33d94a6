"""get_order_list, get_order_detail, cancel_order and handle_buyer_cancellation over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shopee.sandbox import ManualClock, SandboxServer
from tests.integration.shopee.sandbox.support import MakeSandbox, ShopeeCaller, ShopSession

LIST = "/api/v2/order/get_order_list"
DETAIL = "/api/v2/order/get_order_detail"
CANCEL = "/api/v2/order/cancel_order"
BUYER_CANCEL = "/api/v2/order/handle_buyer_cancellation"
DAY = 86400
NOW = 1_700_000_000
ITEM = 23620853561
MODEL_A, MODEL_B = 221404189791, 221404189792


def shop_with_catalogue(sandbox: SandboxServer, caller: ShopeeCaller) -> ShopSession:
    state = sandbox.state
    shop_id = state.add_shop(region="SG")
    state.add_item(shop_id, item_id=ITEM, models=[(MODEL_A, "A", 1000), (MODEL_B, "B", 1000)])
    return caller.link_shop(shop_id)


@pytest.fixture
def clocked(
    make_sandbox: MakeSandbox, make_caller: Callable[[SandboxServer], ShopeeCaller]
) -> tuple[SandboxServer, ManualClock, ShopSession]:
    clock = ManualClock(NOW)
    sandbox = make_sandbox(clock, access_token_ttl_seconds=365 * DAY)
    return sandbox, clock, shop_with_catalogue(sandbox, make_caller(sandbox))


def list_orders(session: ShopSession, **params: Any) -> dict[str, Any]:
    query: dict[str, Any] = {
        "time_range_field": "create_time",
        "time_from": NOW - 10 * DAY,
        "time_to": NOW,
        "page_size": 100,
    }
    query.update(params)
    answer: dict[str, Any] = session.get(LIST, **query).json()
    return answer


@pytest.mark.parametrize(
    ("span", "accept_exact", "error"),
    [
        (15 * DAY, True, ""),
        (15 * DAY, False, "order.order_list_invalid_time"),
        (15 * DAY + 1, True, "order.order_list_invalid_time"),
        (0, True, "order.order_list_invalid_time"),
        (-60, True, "order.order_list_invalid_time"),
    ],
)
def test_the_list_window_is_at_most_fifteen_days(
    make_sandbox: MakeSandbox,
    make_caller: Callable[[SandboxServer], ShopeeCaller],
    span: int,
    accept_exact: bool,
    error: str,
) -> None:
    sandbox = make_sandbox(order_list_accept_exact_max_span=accept_exact)
    session = make_caller(sandbox).link_shop(sandbox.state.add_shop())
    now = sandbox.state.now()
    answer = list_orders(session, time_from=now - span, time_to=now)
    assert answer["error"] == error
    if error:
        assert answer["message"] == "Start time must be earlier than end time and diff in 15days."


@pytest.mark.parametrize(("page_size", "ok"), [(0, False), (1, True), (100, True), (101, False)])
def test_page_size_is_between_1_and_100(
    sandbox: SandboxServer, caller: ShopeeCaller, page_size: int, ok: bool
) -> None:
    session = caller.link_shop(sandbox.state.add_shop())
    now = sandbox.state.now()
    answer = list_orders(session, time_from=now - DAY, time_to=now, page_size=page_size)
    assert answer["error"] == ("" if ok else "error_param")


def test_required_list_parameters(sandbox: SandboxServer, caller: ShopeeCaller) -> None:
    session = caller.link_shop(sandbox.state.add_shop())
    now = sandbox.state.now()
    missing = session.get(LIST, time_from=now - DAY, time_to=now, page_size=10).json()
    assert missing["error"] == "error_param"
    assert "time_range_field" in missing["message"]
    bad_status = list_orders(session, time_from=now - DAY, time_to=now, order_status="RETRY_SHIP")
    assert bad_status["error"] == "error_param"


@pytest.mark.parametrize("cursor_style", ["keyset", "offset"])
def test_cursor_paging_returns_every_order_exactly_once(
    make_sandbox: MakeSandbox,
    make_caller: Callable[[SandboxServer], ShopeeCaller],
    cursor_style: str,
) -> None:
    sandbox = make_sandbox(ManualClock(NOW), order_list_cursor=cursor_style)
    session = shop_with_catalogue(sandbox, make_caller(sandbox))
    # Many orders share a create_time, so paging must not lose ties.
    created = {
        sandbox.state.create_order(
            session.shop_id, [(ITEM, MODEL_A, 1)], create_time=NOW - 5 * DAY + (n // 7) * 60
        )
        for n in range(237)
    }
    other_shop = sandbox.state.add_shop()
    other_item = sandbox.state.add_item(other_shop)
    sandbox.state.create_order(other_shop, [(other_item, 0, 1)], create_time=NOW - DAY)

    seen: list[str] = []
    cursor = '""'  # the official curl sample sends cursor="" literally
    pages = 0
    while True:
        answer = list_orders(session, page_size=50, cursor=cursor)
        assert answer["error"] == ""
        response = answer["response"]
        seen += [entry["order_sn"] for entry in response["order_list"]]
        pages += 1
        if not response["more"]:
            assert response["next_cursor"] == ""
            break
        cursor = response["next_cursor"]
        assert cursor
    assert pages == 5
    assert len(seen) == len(set(seen)) == 237
    assert set(seen) == created


def test_status_filter_and_the_optional_order_status_field(
    clocked: tuple[SandboxServer, ManualClock, ShopSession],
) -> None:
    sandbox, clock, session = clocked
    state = sandbox.state
    ready = state.create_order(session.shop_id, [(ITEM, MODEL_A, 1)])
    unpaid = state.create_order(session.shop_id, [(ITEM, MODEL_A, 1)], paid=False)
    clock.advance(10)
    window = {"time_from": NOW - DAY, "time_to": NOW + 60}

    plain = list_orders(session, **window)["response"]["order_list"]
    assert {entry["order_sn"] for entry in plain} == {ready, unpaid}
    assert all(set(entry) == {"order_sn"} for entry in plain)

    with_status = list_orders(session, response_optional_fields="order_status", **window)
    statuses = {e["order_sn"]: e["order_status"] for e in with_status["response"]["order_list"]}
    assert statuses == {ready: "READY_TO_SHIP", unpaid: "UNPAID"}

    only_unpaid = list_orders(session, order_status="UNPAID", **window)["response"]["order_list"]
    assert [entry["order_sn"] for entry in only_unpaid] == [unpaid]


def test_update_time_windows_see_changed_orders(
    clocked: tuple[SandboxServer, ManualClock, ShopSession],
) -> None:
    sandbox, clock, session = clocked
    order_sn = sandbox.state.create_order(session.shop_id, [(ITEM, MODEL_A, 1)])
    clock.advance(3600)
    sandbox.state.ship(order_sn)
    recent = list_orders(
        session, time_range_field="update_time", time_from=NOW + 1800, time_to=NOW + 3600
    )
    assert [e["order_sn"] for e in recent["response"]["order_list"]] == [order_sn]
    created_then = list_orders(
        session, time_range_field="create_time", time_from=NOW + 1800, time_to=NOW + 3600
    )
    assert created_then["response"]["order_list"] == []


def test_detail_takes_1_to_50_order_sns(
    clocked: tuple[SandboxServer, ManualClock, ShopSession],
) -> None:
    sandbox, _, session = clocked
    order_sns = [
        sandbox.state.create_order(session.shop_id, [(ITEM, MODEL_A, 1)]) for _ in range(51)
    ]
    too_many = session.get(DETAIL, order_sn_list=",".join(order_sns)).json()
    assert too_many["error"] == "error_param"
    none = session.get(DETAIL, order_sn_list="").json()
    assert none["error"] == "error_param"
    fifty = session.get(DETAIL, order_sn_list=",".join(order_sns[:50])).json()
    assert fifty["error"] == ""
    assert [o["order_sn"] for o in fifty["response"]["order_list"]] == order_sns[:50]
    calls = sandbox.state.call_log.snapshot("order.get_order_detail")
    assert [len(call.order_sn_list) for call in calls] == [51, 0, 50]


def test_detail_returns_optional_fields_only_when_asked(
    clocked: tuple[SandboxServer, ManualClock, ShopSession],
) -> None:
    sandbox, clock, session = clocked
    order_sn = sandbox.state.create_order(session.shop_id, [(ITEM, MODEL_A, 2), (ITEM, MODEL_B, 1)])
    clock.advance(60)
    sandbox.state.ship(order_sn)

    plain = session.get(DETAIL, order_sn_list=order_sn).json()["response"]["order_list"][0]
    assert set(plain) == {
        "order_sn",
        "region",
        "currency",
        "cod",
        "order_status",
        "message_to_seller",
        "create_time",
        "update_time",
        "days_to_ship",
        "ship_by_date",
    }
    assert plain["order_status"] == "PROCESSED" and plain["update_time"] == NOW + 60

    optional = "item_list,total_amount,pay_time,cancel_by,cancel_reason,package_list"
    full = session.get(DETAIL, order_sn_list=order_sn, response_optional_fields=optional).json()
    order = full["response"]["order_list"][0]
    assert order["pay_time"] == NOW
    assert isinstance(order["total_amount"], float)
    assert order["cancel_by"] == "" and order["cancel_reason"] == ""
    lines = {(line["item_id"], line["model_id"]): line for line in order["item_list"]}
    assert set(lines) == {(ITEM, MODEL_A), (ITEM, MODEL_B)}
    assert lines[(ITEM, MODEL_A)]["model_quantity_purchased"] == 2
    assert isinstance(lines[(ITEM, MODEL_A)]["model_discounted_price"], float)
    assert lines[(ITEM, MODEL_A)]["product_location_id"] == ["SGZ"]
    (package,) = order["package_list"]
    assert package["package_number"].startswith("OFG")
    assert package["logistics_status"] == "LOGISTICS_REQUEST_CREATED"
    assert package["item_list"][0]["product_location_id"] == "SGZ"


def test_detail_of_an_unknown_order_is_not_found(
    clocked: tuple[SandboxServer, ManualClock, ShopSession],
) -> None:
    _, _, session = clocked
    answer = session.get(DETAIL, order_sn_list="2404098R48U37H").json()
    assert answer["error"] == "error_not_found"
    assert answer["message"] == "Wrong parameters, detail: the order is not found."


def test_unknown_order_sns_can_be_skipped_with_a_warning(
    make_sandbox: MakeSandbox, make_caller: Callable[[SandboxServer], ShopeeCaller]
) -> None:
    sandbox = make_sandbox(unknown_order_sn="skip")
    session = shop_with_catalogue(sandbox, make_caller(sandbox))
    known = sandbox.state.create_order(session.shop_id, [(ITEM, MODEL_A, 1)])
    answer = session.get(DETAIL, order_sn_list=f"{known},2404098R48U37H").json()
    assert answer["error"] == ""
    assert [o["order_sn"] for o in answer["response"]["order_list"]] == [known]
    assert answer["warning"] == ["order_sn 2404098R48U37H is not found."]


def test_seller_cancel_out_of_stock_needs_lines_of_the_order(
    clocked: tuple[SandboxServer, ManualClock, ShopSession],
) -> None:
    sandbox, _, session = clocked
    state = sandbox.state
    order_sn = state.create_order(session.shop_id, [(ITEM, MODEL_A, 3)])
    assert state.stock(ITEM, MODEL_A) == 997

    no_items = session.post(CANCEL, {"order_sn": order_sn, "cancel_reason": "OUT_OF_STOCK"})
    assert no_items.json()["error"] == "error_param"
    wrong_line = session.post(
        CANCEL,
        {
            "order_sn": order_sn,
            "cancel_reason": "OUT_OF_STOCK",
            "item_list": [{"item_id": ITEM, "model_id": MODEL_B}],
        },
    )
    assert wrong_line.json()["error"] == "error_param"
    bad_reason = session.post(CANCEL, {"order_sn": order_sn, "cancel_reason": "NO_REASON"})
    assert bad_reason.json()["error"] == "error_param"
    assert state.order(order_sn).status == "READY_TO_SHIP"

    ok = session.post(
        CANCEL,
        {
            "order_sn": order_sn,
            "cancel_reason": "OUT_OF_STOCK",
            "item_list": [{"item_id": ITEM, "model_id": MODEL_A}],
        },
    ).json()
    assert ok["error"] == ""
    assert ok["response"]["update_time"] == state.order(order_sn).update_time
    order = state.order(order_sn)
    assert (order.status, order.cancel_by, order.cancel_reason) == (
        "CANCELLED",
        "seller",
        "Out of Stock",
    )
    assert state.stock(ITEM, MODEL_A) == 1000  # Shopee restores its own stock

    again = session.post(CANCEL, {"order_sn": order_sn, "cancel_reason": "CUSTOMER_REQUEST"})
    assert (again.json()["error"], again.json()["message"]) == (
        "order.error_limit",
        "Can not cancel this order.",
    )


def test_no_seller_cancel_once_a_tracking_number_exists(
    clocked: tuple[SandboxServer, ManualClock, ShopSession],
) -> None:
    sandbox, _, session = clocked
    order_sn = sandbox.state.create_order(session.shop_id, [(ITEM, MODEL_A, 1)])
    sandbox.state.ship(order_sn)
    answer = session.post(CANCEL, {"order_sn": order_sn, "cancel_reason": "CUSTOMER_REQUEST"})
    assert answer.json()["error"] == "order.error_limit"
    assert sandbox.state.order(order_sn).status == "PROCESSED"


@pytest.mark.parametrize(("allowed", "error"), [(False, "order.error_limit"), (True, "")])
def test_seller_cancel_of_unpaid_orders_is_configurable(
    make_sandbox: MakeSandbox,
    make_caller: Callable[[SandboxServer], ShopeeCaller],
    allowed: bool,
    error: str,
) -> None:
    sandbox = make_sandbox(seller_cancel_unpaid=allowed)
    session = shop_with_catalogue(sandbox, make_caller(sandbox))
    order_sn = sandbox.state.create_order(session.shop_id, [(ITEM, MODEL_A, 1)], paid=False)
    answer = session.post(CANCEL, {"order_sn": order_sn, "cancel_reason": "CUSTOMER_REQUEST"})
    assert answer.json()["error"] == error


def test_cancel_of_another_shops_order_is_not_found(
    clocked: tuple[SandboxServer, ManualClock, ShopSession],
    make_caller: Callable[[SandboxServer], ShopeeCaller],
) -> None:
    sandbox, _, session = clocked
    other = make_caller(sandbox).link_shop(sandbox.state.add_shop())
    order_sn = sandbox.state.create_order(session.shop_id, [(ITEM, MODEL_A, 1)])
    answer = other.post(CANCEL, {"order_sn": order_sn, "cancel_reason": "CUSTOMER_REQUEST"})
    assert answer.json()["error"] == "error_not_found"


def test_handle_buyer_cancellation_only_for_in_cancel(
    clocked: tuple[SandboxServer, ManualClock, ShopSession],
) -> None:
    sandbox, clock, session = clocked
    state = sandbox.state
    accepted = state.create_order(session.shop_id, [(ITEM, MODEL_A, 2)])
    rejected = state.create_order(session.shop_id, [(ITEM, MODEL_B, 1)])
    not_requested = session.post(BUYER_CANCEL, {"order_sn": accepted, "operation": "ACCEPT"})
    assert not_requested.json() | {"request_id": ""} == {
        "request_id": "",
        "error": "order.cancel_order_invalid_status",
        "message": "Invalid order_status.The order status should be IN_CANCEL.",
    }
    clock.advance(2 * 3600)  # past the buyer's free-cancel hour: a request, not a cancel
    assert state.buyer_cancel(accepted).status == "IN_CANCEL"
    state.ship(rejected)
    assert state.buyer_cancel(rejected).status == "IN_CANCEL"

    bad = session.post(BUYER_CANCEL, {"order_sn": accepted, "operation": "MAYBE"})
    assert bad.json()["error"] == "error_param"

    clock.advance(5)
    ok = session.post(BUYER_CANCEL, {"order_sn": accepted, "operation": "ACCEPT"}).json()
    assert ok["error"] == "" and ok["response"]["update_time"] == NOW + 2 * 3600 + 5
    order = state.order(accepted)
    assert (order.status, order.cancel_by) == ("CANCELLED", "buyer")
    assert state.stock(ITEM, MODEL_A) == 1000

    session.post(BUYER_CANCEL, {"order_sn": rejected, "operation": "REJECT"})
    assert state.order(rejected).status == "PROCESSED"
