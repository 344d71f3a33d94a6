"""Every API sample of the reference (§10, after its repairs) parses into the typed models."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from shopee.models import (
    AppPushConfig,
    CancelItem,
    CancelReason,
    LostPushPage,
    ModelStock,
    OrderDetailList,
    OrderListPage,
    StockUpdateResult,
    TokenGrant,
    UpdateTimeResult,
)
from tests.unit.shopee import reference_samples as samples


def _load(text: str) -> dict[str, Any]:
    # The client decodes floats as Decimal; do the same so the models see what it sees.
    value = json.loads(text, parse_float=Decimal)
    assert isinstance(value, dict)
    return value


def test_the_broken_official_samples_really_are_broken() -> None:
    for text in (
        samples.ORDER_DETAIL_OFFICIAL,
        samples.TOKEN_GET_OFFICIAL,
        samples.ORDER_LIST_WITH_STATUS_BR_GUIDE,
    ):
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)


def test_order_list_page() -> None:
    page = OrderListPage.model_validate(_load(samples.ORDER_LIST_OK)["response"])
    assert page.more is True
    assert page.next_cursor == "20"
    assert len(page.order_list) == 10
    assert page.order_list[0].order_sn == "201218V2Y6E59M"
    # The official sample omits order_status although it was asked for.
    assert page.order_list[0].order_status is None


def test_order_list_with_status_from_the_br_guide() -> None:
    page = OrderListPage.model_validate(
        _load(samples.repaired_order_list_with_status())["response"]
    )
    assert [entry.order_status for entry in page.order_list] == [
        "READY_TO_SHIP",
        "PENDING_INVOICE",  # not a documented status; kept as text
    ]


def test_order_detail_official_sample() -> None:
    envelope = _load(samples.repaired_order_detail())
    (order,) = OrderDetailList.model_validate(envelope["response"]).order_list
    assert order.order_sn == "2404098R48U37H"
    assert order.order_status == "COMPLETED"
    assert order.total_amount == Decimal("32119")
    assert order.pay_time == 1712817766
    assert order.cod is True
    assert order.cancel_reason is None  # "" means no cancellation
    assert order.buyer_cancel_reason is None
    assert order.buyer_user_id == 1170319091
    assert order.payment_method == "Cash on Delivery"
    assert order.recipient_address is not None
    assert order.recipient_address.region == "VN"
    (item,) = order.item_list
    assert item.item_id == 23620853561  # beyond int32
    assert item.model_id == 221404189791
    assert item.model_discounted_price == Decimal("48000")
    assert item.model_quantity_purchased == 1
    assert item.product_location_id == ["VN10XX2UZ"]
    (package,) = order.package_list
    assert package.logistics_channel_id == 18080
    assert package.item_list[0].product_location_id == ["VN10XX2UZ"]  # a bare string there
    # Unknown fields stay available.
    assert order.model_extra is not None
    assert order.model_extra["invoice_data"] is None
    assert package.model_extra is not None
    assert package.model_extra["sorting_group"] == "North"


def test_money_keeps_decimal_precision() -> None:
    envelope = _load(samples.repaired_order_detail())
    envelope["response"]["order_list"][0]["total_amount"] = Decimal("19.99")
    envelope["response"]["order_list"][0]["item_list"][0]["model_original_price"] = 0.1
    (order,) = OrderDetailList.model_validate(envelope["response"]).order_list
    assert order.total_amount == Decimal("19.99")
    assert order.item_list[0].model_original_price == Decimal("0.1")


@pytest.mark.parametrize("absent", [None, "", "-"])
def test_absent_markers_mean_none(absent: object) -> None:
    order = {
        "order_sn": "A",
        "order_status": "UNPAID",
        "create_time": 1,
        "update_time": 2,
        "pay_time": absent,
        "total_amount": absent,
        "cancel_reason": absent,
        "item_list": absent,
    }
    (parsed,) = OrderDetailList.model_validate({"order_list": [order]}).order_list
    assert parsed.pay_time is None
    assert parsed.total_amount is None
    assert parsed.cancel_reason is None
    assert parsed.item_list == []


def test_order_detail_requires_its_identity() -> None:
    with pytest.raises(ValidationError):
        OrderDetailList.model_validate({"order_list": [{"order_status": "UNPAID"}]})


def test_cancel_and_buyer_cancellation_answers() -> None:
    assert UpdateTimeResult.model_validate(_load(samples.CANCEL_OK)["response"]).update_time == (
        1603184533
    )
    answer = _load(samples.BUYER_CANCELLATION_OK)["response"]
    assert UpdateTimeResult.model_validate(answer).update_time == 14981918191


def test_cancel_request_samples_match_our_shapes() -> None:
    request = _load(samples.CANCEL_REQUEST_OUT_OF_STOCK)
    assert CancelReason(request["cancel_reason"]) is CancelReason.OUT_OF_STOCK
    items = [CancelItem.model_validate(item) for item in request["item_list"]]
    assert [item.model_dump(include={"item_id", "model_id"}) for item in items] == (
        request["item_list"]
    )
    partial = _load(samples.CANCEL_REQUEST_PARTIAL)["partial_cancel_item_list"][0]
    assert CancelItem.model_validate(partial).model_id == 327890123


def test_token_answers() -> None:
    first = TokenGrant.model_validate(_load(samples.repaired_token_get()))
    assert first.access_token == "6b5a46716e474d6f6e59777659459849"
    assert first.shop_id_list == [368765100, 368765098, 368765097]
    assert first.expire_in == 1767001812
    refreshed = TokenGrant.model_validate(_load(samples.REFRESH_OK))
    assert refreshed.refresh_token == "516c6b577753554375764a63704d7245"
    assert (refreshed.expire_in, refreshed.shop_id, refreshed.partner_id) == (
        14400,
        322300222,
        2001887,
    )


def test_error_envelopes_are_not_token_grants() -> None:
    for text in (samples.TOKEN_GET_INVALID_CODE, samples.REFRESH_INVALID):
        with pytest.raises(ValidationError):
            TokenGrant.model_validate(_load(text))


def test_update_stock_samples() -> None:
    for text in (
        samples.UPDATE_STOCK_REQUEST,
        samples.UPDATE_STOCK_GUIDE_NO_MODEL,
        samples.UPDATE_STOCK_GUIDE_MODELS,
    ):
        request = _load(text)
        stock = [ModelStock.model_validate(entry) for entry in request["stock_list"]]
        assert all(entry.seller_stock for entry in stock)
    placeholder = ModelStock.model_validate(_load(samples.UPDATE_STOCK_REQUEST)["stock_list"][0])
    assert placeholder.seller_stock[0].location_id is None  # "-" placeholder
    result = StockUpdateResult.model_validate(_load(samples.UPDATE_STOCK_RESPONSE)["response"])
    assert result.success_list[0].location_id is None
    assert result.failure_list[0].failed_reason is None


def test_lost_push_page() -> None:
    page = LostPushPage.model_validate(_load(samples.LOST_PUSH_RESPONSE)["response"])
    assert page.has_next_page is False
    assert page.last_message_id == 176610
    assert page.push_message_list[0].data["data"]["ordersn"] == "220810QSK8S7BX"


def test_lost_push_data_string_that_is_not_json_is_refused() -> None:
    with pytest.raises(ValidationError, match="not JSON"):
        LostPushPage.model_validate({"push_message_list": [{"code": 3, "data": "{oops"}]})


def test_app_push_config() -> None:
    config = AppPushConfig.model_validate(
        {
            "callback_url": "https://open.shopee.com/",
            "live_push_status": "suspended",
            "suspended_time": 1577416181,
            "blocked_shop_id": [10010, 20020, 30030],
            "push_config_on_list": [1, 2, 3],
            "push_config_off_list": [4, 5],
        }
    )
    assert config.live_push_status == "suspended"
    assert config.push_config_on_list == [1, 2, 3]
