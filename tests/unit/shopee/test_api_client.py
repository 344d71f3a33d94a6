"""The typed client over httpx.MockTransport: wire format, paging, batching, errors, retries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orderflow.metrics import Metrics
from shopee import client as api
from shopee.errors import (
    AuthError,
    CannotCancel,
    FinalError,
    InvalidRequest,
    MalformedResponse,
    OutcomeUnknown,
    RetryableError,
)
from shopee.models import (
    BuyerCancellationOperation,
    CancelItem,
    CancelReason,
    ModelStock,
    SellerStock,
    TimeRangeField,
)
from tests.unit.shopee.fake_shopee import Call, Handler, Harness, Reply, error, make_harness, ok

SHOP = 14701711
DAY = 86400


@pytest.fixture
def h(tmp_path: Path, metrics: Metrics, clean_env: pytest.MonkeyPatch) -> Iterator[Harness]:
    harness = make_harness(tmp_path, metrics)
    harness.client.tokens.authorize("code", SHOP)
    yield harness
    harness.client.close()


def _count(h: Harness, api_name: str, outcome: str) -> float:
    value = h.metrics.registry.get_sample_value(
        "orderflow_shopee_requests_total", {"api": api_name, "outcome": outcome}
    )
    return value or 0.0


# --- wire format -----------------------------------------------------------------------------


def test_order_list_request_is_signed_and_complete(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: ok(
        {
            "more": False,
            "next_cursor": "",
            "order_list": [{"order_sn": "A", "order_status": "UNPAID"}],
        }
    )
    page = h.client.get_order_list(SHOP, time_from=1000, time_to=2000)
    assert [(e.order_sn, e.order_status) for e in page.order_list] == [("A", "UNPAID")]
    (call,) = h.shopee.calls_to(api.ORDER_LIST_PATH)
    assert call.method == "GET"
    assert call.query["shop_id"] == str(SHOP)
    assert call.query["access_token"] == "access-1"
    assert call.query["timestamp"] == str(int(h.clock()))
    assert call.query["time_range_field"] == "update_time"
    assert (call.query["time_from"], call.query["time_to"]) == ("1000", "2000")
    assert call.query["page_size"] == "100"
    assert call.query["cursor"] == ""
    assert call.query["response_optional_fields"] == "order_status"
    assert _count(h, "order.get_order_list", "ok") == 1
    assert (
        h.metrics.registry.get_sample_value(
            "orderflow_shopee_request_seconds_count", {"api": "order.get_order_list"}
        )
        == 1
    )


def test_auth_exchange_is_public_signed_with_a_json_body(h: Harness) -> None:
    (call,) = h.shopee.calls_to("/api/v2/auth/token/get")
    assert call.method == "POST"
    assert call.body == {"code": "code", "shop_id": SHOP, "partner_id": 2001887}


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"time_from": 0, "time_to": 15 * DAY}, "longer than"),
        ({"time_from": 10, "time_to": 10}, "before"),
        ({"time_from": 0, "time_to": 10, "page_size": 101}, "page_size"),
        ({"time_from": 0, "time_to": 10, "page_size": 0}, "page_size"),
        ({"time_from": 0, "time_to": 10, "order_status": "RETRY_SHIP"}, "cannot filter"),
    ],
)
def test_order_list_limits_are_checked_before_sending(
    h: Harness, kwargs: dict[str, int | str], why: str
) -> None:
    with pytest.raises(InvalidRequest, match=why):
        h.client.get_order_list(SHOP, **kwargs)  # type: ignore[arg-type]
    assert h.shopee.calls_to(api.ORDER_LIST_PATH) == []


# --- paging ----------------------------------------------------------------------------------


def _paged_orders(orders: dict[str, int], page_size: int = 3) -> Handler:
    """A get_order_list that pages ``orders`` (order_sn -> update_time) with opaque cursors."""

    def handler(call: Call) -> Reply:
        start, end = int(call.query["time_from"]), int(call.query["time_to"])
        assert end - start <= 14 * DAY
        matching = sorted(sn for sn, t in orders.items() if start <= t <= end)
        offset = int(call.query["cursor"].removeprefix("c") or 0)
        page = matching[offset : offset + page_size]
        more = offset + page_size < len(matching)
        return ok(
            {
                "more": more,
                "next_cursor": f"c{offset + page_size}" if more else "",
                "order_list": [{"order_sn": sn, "order_status": "READY_TO_SHIP"} for sn in page],
            }
        )

    return handler


def test_iter_orders_follows_every_window_and_page_once(h: Harness) -> None:
    # 40 orders over 60 days, one exactly on a window boundary (asked about twice).
    orders = {f"O{n:03}": n * int(1.5 * DAY) for n in range(40)}
    orders["EDGE"] = 14 * DAY
    h.shopee.handlers[api.ORDER_LIST_PATH] = _paged_orders(orders)
    found = [e.order_sn for e in h.client.iter_orders(SHOP, time_from=0, time_to=60 * DAY)]
    assert sorted(found) == sorted(orders)
    assert len(found) == len(set(found))
    calls = h.shopee.calls_to(api.ORDER_LIST_PATH)
    assert {(c.query["time_from"], c.query["time_to"]) for c in calls} == {
        ("0", str(14 * DAY)),
        (str(14 * DAY), str(28 * DAY)),
        (str(28 * DAY), str(42 * DAY)),
        (str(42 * DAY), str(56 * DAY)),
        (str(56 * DAY), str(60 * DAY)),
    }
    assert any(c.query["cursor"] for c in calls)


def test_iter_orders_passes_the_status_filter_and_time_field(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = _paged_orders({"A": 5})
    list(
        h.client.iter_orders(
            SHOP,
            time_from=0,
            time_to=10,
            time_range_field=TimeRangeField.CREATE_TIME,
            order_status="CANCELLED",
        )
    )
    (call,) = h.shopee.calls_to(api.ORDER_LIST_PATH)
    assert call.query["order_status"] == "CANCELLED"
    assert call.query["time_range_field"] == "create_time"


def test_a_cursor_that_does_not_move_stops_the_iteration(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: ok(
        {"more": True, "next_cursor": "same", "order_list": [{"order_sn": "A"}]}
    )
    with pytest.raises(MalformedResponse, match="next_cursor"):
        list(h.client.iter_orders(SHOP, time_from=0, time_to=10))
    assert len(h.shopee.calls_to(api.ORDER_LIST_PATH)) == 2


# --- details ---------------------------------------------------------------------------------


def _details(call: Call) -> Reply:
    sns = call.query["order_sn_list"].split(",")
    return ok(
        {
            "order_list": [
                {
                    "order_sn": sn,
                    "order_status": "READY_TO_SHIP",
                    "create_time": 1,
                    "update_time": 2,
                }
                for sn in sns
                if sn != "GONE"
            ]
        }
    )


def test_details_are_fetched_in_batches_of_fifty(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_DETAIL_PATH] = _details
    sns = [f"S{n:03}" for n in range(120)] + ["S000", "GONE"]
    details = h.client.get_order_detail(SHOP, sns)
    assert [d.order_sn for d in details] == [f"S{n:03}" for n in range(120)]
    calls = h.shopee.calls_to(api.ORDER_DETAIL_PATH)
    assert [len(c.query["order_sn_list"].split(",")) for c in calls] == [50, 50, 21]
    fields = set(calls[0].query["response_optional_fields"].split(","))
    for needed in (
        "item_list",
        "total_amount",
        "pay_time",
        "cancel_by",
        "cancel_reason",
        "buyer_cancel_reason",
        "package_list",
        "shipping_carrier",
        "payment_method",
    ):
        assert needed in fields


def test_no_orders_no_calls(h: Harness) -> None:
    assert h.client.get_order_detail(SHOP, []) == []
    assert h.shopee.calls_to(api.ORDER_DETAIL_PATH) == []


# --- cancellation ----------------------------------------------------------------------------


def test_out_of_stock_needs_item_list_before_anything_is_sent(h: Harness) -> None:
    with pytest.raises(InvalidRequest, match="item_list"):
        h.client.cancel_order(SHOP, "A", CancelReason.OUT_OF_STOCK)
    assert h.shopee.calls_to(api.CANCEL_ORDER_PATH) == []


def test_cancel_sends_reason_and_lines(h: Harness) -> None:
    h.shopee.handlers[api.CANCEL_ORDER_PATH] = lambda call: ok({"update_time": 1603184533})
    items = [CancelItem(item_id=23620853561, model_id=221404189791)]
    assert h.client.cancel_order(SHOP, "A", CancelReason.OUT_OF_STOCK, items) == 1603184533
    (call,) = h.shopee.calls_to(api.CANCEL_ORDER_PATH)
    assert call.body == {
        "order_sn": "A",
        "cancel_reason": "OUT_OF_STOCK",
        "item_list": [{"item_id": 23620853561, "model_id": 221404189791}],
    }


def test_cannot_cancel_is_final_and_not_retried(h: Harness) -> None:
    h.shopee.handlers[api.CANCEL_ORDER_PATH] = lambda call: error(
        "order.error_limit", "Can not cancel this order."
    )
    with pytest.raises(CannotCancel):
        h.client.cancel_order(SHOP, "A", CancelReason.CUSTOMER_REQUEST)
    assert len(h.shopee.calls_to(api.CANCEL_ORDER_PATH)) == 1
    assert _count(h, "order.cancel_order", "final") == 1


def test_cancel_is_not_resent_when_its_outcome_is_unknown(h: Harness) -> None:
    h.shopee.handlers[api.CANCEL_ORDER_PATH] = lambda call: (502, b"<html>bad gateway</html>")
    with pytest.raises(OutcomeUnknown):
        h.client.cancel_order(SHOP, "A", CancelReason.CUSTOMER_REQUEST)
    assert len(h.shopee.calls_to(api.CANCEL_ORDER_PATH)) == 1


def test_cancel_is_retried_when_shopee_refused_it_unprocessed(h: Harness) -> None:
    replies = iter([error("error_rate_limit", "Too many requests."), ok({"update_time": 7})])
    h.shopee.handlers[api.CANCEL_ORDER_PATH] = lambda call: next(replies)
    assert h.client.cancel_order(SHOP, "A", CancelReason.CUSTOMER_REQUEST) == 7
    assert len(h.shopee.calls_to(api.CANCEL_ORDER_PATH)) == 2


def test_buyer_cancellation_answer(h: Harness) -> None:
    h.shopee.handlers[api.HANDLE_BUYER_CANCELLATION_PATH] = lambda call: ok({"update_time": 9})
    assert h.client.handle_buyer_cancellation(SHOP, "A", BuyerCancellationOperation.ACCEPT) == 9
    (call,) = h.shopee.calls_to(api.HANDLE_BUYER_CANCELLATION_PATH)
    assert call.body == {"order_sn": "A", "operation": "ACCEPT"}


# --- retries and error envelopes -------------------------------------------------------------


def test_transient_errors_are_retried_with_backoff(h: Harness) -> None:
    replies = iter(
        [
            error("error_server", "System error."),
            (502, b"<html>bad gateway</html>"),
            error("error_system_busy", "busy", status=500),
            ok({"more": False, "order_list": []}),
        ]
    )
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: next(replies)
    h.client.get_order_list(SHOP, time_from=0, time_to=10)
    assert len(h.shopee.calls_to(api.ORDER_LIST_PATH)) == 4
    # random() is 0.5: half of 0.5 s, 1 s, 2 s.
    assert h.slept == [0.25, 0.5, 1.0]
    assert _count(h, "order.get_order_list", "retryable") == 3
    assert _count(h, "order.get_order_list", "ok") == 1
    # Each attempt is signed afresh with the clock of its own moment.
    stamps = [c.query["timestamp"] for c in h.shopee.calls_to(api.ORDER_LIST_PATH)]
    assert stamps == sorted(stamps) and stamps[0] != stamps[-1]


def test_retries_stop_at_the_configured_maximum(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: error("error_server", "System error.")
    with pytest.raises(RetryableError):
        h.client.get_order_list(SHOP, time_from=0, time_to=10)
    assert len(h.shopee.calls_to(api.ORDER_LIST_PATH)) == 4  # 1 + shopee_max_retries


@pytest.mark.parametrize(
    "reply",
    [
        error("error_param", "Wrong parameters"),
        error("invalid_partner_id", "Invalid partner_id, please have a check.", status=403),
        (404, {"message": "not here"}),
        (200, b"not json"),
        (200, [1, 2]),
    ],
)
def test_final_answers_are_not_retried(h: Harness, reply: Reply) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: reply
    with pytest.raises(FinalError):
        h.client.get_order_list(SHOP, time_from=0, time_to=10)
    assert len(h.shopee.calls_to(api.ORDER_LIST_PATH)) == 1
    assert h.slept == []


def test_the_envelope_decides_not_the_http_status(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: (
        500,
        {"error": "", "response": {"more": False}},
    )
    with pytest.raises(OutcomeUnknown):
        h.client.get_order_list(SHOP, time_from=0, time_to=10)
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: error("error_param", "bad", status=500)
    with pytest.raises(FinalError):
        h.client.get_order_list(SHOP, time_from=0, time_to=10)


def test_transport_failures_are_wrapped_and_retried(h: Harness) -> None:
    failures = iter([httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])

    def flaky(call: Call) -> Reply:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return ok({"more": False, "order_list": []})

    h.shopee.handlers[api.ORDER_LIST_PATH] = flaky
    h.client.get_order_list(SHOP, time_from=0, time_to=10)
    assert len(h.shopee.calls_to(api.ORDER_LIST_PATH)) == 3


def test_timeouts_surface_as_outcome_unknown_with_the_cause(h: Harness) -> None:
    def slow(call: Call) -> Reply:
        raise httpx.ReadTimeout("slow")

    h.shopee.handlers[api.CANCEL_ORDER_PATH] = slow
    with pytest.raises(OutcomeUnknown) as caught:
        h.client.cancel_order(SHOP, "A", CancelReason.CUSTOMER_REQUEST)
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


# --- access token rejected: refresh, retry once ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("invalid_acceess_token", "Invalid access_token, please have a check."),
        ("invalid_access_token", ""),
        ("error_auth", "Invalid access_token."),
    ],
)
def test_rejected_access_token_is_refreshed_and_the_call_retried_once(
    h: Harness, name: str, message: str
) -> None:
    def handler(call: Call) -> Reply:
        if call.query["access_token"] == "access-1":
            return error(name, message, status=403)
        return ok({"more": False, "order_list": [{"order_sn": "A"}]})

    h.shopee.handlers[api.ORDER_LIST_PATH] = handler
    page = h.client.get_order_list(SHOP, time_from=0, time_to=10)
    assert [e.order_sn for e in page.order_list] == ["A"]
    tokens = [c.query["access_token"] for c in h.shopee.calls_to(api.ORDER_LIST_PATH)]
    assert tokens == ["access-1", "access-2"]
    (refresh,) = h.shopee.calls_to("/api/v2/auth/access_token/get")
    assert refresh.body == {"refresh_token": "refresh-1", "shop_id": SHOP, "partner_id": 2001887}
    stored = h.client.tokens.store.load(SHOP)
    assert stored is not None and stored.refresh_token == "refresh-2"


def test_a_second_rejection_propagates_instead_of_looping(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: error(
        "invalid_acceess_token", "Invalid access_token, please have a check."
    )
    with pytest.raises(AuthError):
        h.client.get_order_list(SHOP, time_from=0, time_to=10)
    assert len(h.shopee.calls_to(api.ORDER_LIST_PATH)) == 2
    assert len(h.shopee.calls_to("/api/v2/auth/access_token/get")) == 1


def test_permission_error_auth_does_not_refresh(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: error(
        "error_auth", "No permission to current api."
    )
    with pytest.raises(FinalError):
        h.client.get_order_list(SHOP, time_from=0, time_to=10)
    assert h.shopee.calls_to("/api/v2/auth/access_token/get") == []


def test_access_token_near_expiry_is_refreshed_before_the_call(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: ok({"more": False, "order_list": []})
    h.clock.advance(14400 - 1800 + 1)  # inside the default 30-minute margin
    h.client.get_order_list(SHOP, time_from=0, time_to=10)
    (call,) = h.shopee.calls_to(api.ORDER_LIST_PATH)
    assert call.query["access_token"] == "access-2"


# --- stock, push config, lost pushes ---------------------------------------------------------


def test_update_stock_sends_absolute_values(h: Harness) -> None:
    h.shopee.handlers[api.UPDATE_STOCK_PATH] = lambda call: ok(
        {"success_list": [{"model_id": 5, "stock": 3}], "failure_list": []}
    )
    result = h.client.update_stock(
        SHOP, 1000, [ModelStock(model_id=5, seller_stock=[SellerStock(stock=3)])]
    )
    assert result.success_list[0].stock == 3
    (call,) = h.shopee.calls_to(api.UPDATE_STOCK_PATH)
    assert call.body == {
        "item_id": 1000,
        "stock_list": [{"model_id": 5, "seller_stock": [{"stock": 3}]}],
    }


@pytest.mark.parametrize("count", [0, 51])
def test_update_stock_model_count_is_checked(h: Harness, count: int) -> None:
    stock = [ModelStock(model_id=n, seller_stock=[SellerStock(stock=1)]) for n in range(count)]
    with pytest.raises(InvalidRequest):
        h.client.update_stock(SHOP, 1, stock)


def test_model_list(h: Harness) -> None:
    h.shopee.handlers[api.MODEL_LIST_PATH] = lambda call: ok(
        {
            "tier_variation": [{"name": "Size"}],
            "model": [
                {
                    "model_id": 221404189791,
                    "model_sku": "SKU-1",
                    "stock_info_v2": {"seller_stock": [{"stock": 4}]},
                }
            ],
        }
    )
    models = h.client.get_model_list(SHOP, 23620853561)
    assert models.model[0].model_sku == "SKU-1"
    assert models.model[0].stock_info_v2 is not None
    assert models.model[0].stock_info_v2.seller_stock[0].stock == 4
    assert h.shopee.calls_to(api.MODEL_LIST_PATH)[0].query["item_id"] == "23620853561"


def test_lost_pushes_with_dash_placeholders_and_string_data(h: Harness) -> None:
    h.shopee.handlers[api.LOST_PUSH_PATH] = lambda call: (
        200,
        {
            "error": "-",
            "message": "-",
            "warning": "-",
            "request_id": "r",
            "response": {
                "push_message_list": [
                    {
                        "shop_id": SHOP,
                        "code": 3,
                        "timestamp": 5,
                        "data": '{"ordersn": "A", "status": "CANCELLED", "update_time": 4}',
                    }
                ],
                "has_next_page": True,
                "last_message_id": 176610,
            },
        },
    )
    h.shopee.handlers[api.CONFIRM_LOST_PUSH_PATH] = lambda call: (
        200,
        {"error": "-", "message": "-"},
    )
    page = h.client.get_lost_push_message()
    assert page.has_next_page is True
    assert page.push_message_list[0].data["ordersn"] == "A"
    h.client.confirm_consumed_lost_push_message(176610)
    (confirm,) = h.shopee.calls_to(api.CONFIRM_LOST_PUSH_PATH)
    assert confirm.body == {"last_message_id": 176610}


def test_app_push_config(h: Harness) -> None:
    h.shopee.handlers[api.APP_PUSH_CONFIG_PATH] = lambda call: ok(
        {"callback_url": "https://x/cb", "live_push_status": "Normal"}
    )
    assert h.client.get_app_push_config().live_push_status == "Normal"
