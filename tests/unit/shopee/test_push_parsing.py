"""Every push sample of the reference (§10.3) parses into its typed model."""

from __future__ import annotations

import json

import pytest

from shopee.errors import MalformedPush
from shopee.models import LostPushMessage
from shopee.push import (
    AuthorizationExpiryPush,
    OrderStatusPush,
    ShippingDocumentPush,
    ShopAuthorizedPush,
    ShopDeauthorizedPush,
    TrackingNumberPush,
    UnknownPush,
    VerificationPush,
    parse_push,
    parse_push_object,
)
from tests.unit.shopee import reference_samples as samples


def test_official_order_status_push() -> None:
    push = parse_push(samples.PUSH_ORDER_STATUS_OFFICIAL.encode())
    assert isinstance(push, OrderStatusPush)
    assert push.shop_id == 727720655
    assert push.data.order_sn == "220810QSK8S7BX"
    assert push.data.status == "PROCESSED"
    assert push.data.completed_scenario is None
    assert push.data.update_time == 1660123127
    assert push.data.items == []
    assert push.timestamp == 1660123127
    assert push.msg_id is None


@pytest.mark.parametrize(
    ("raw", "order_sn", "msg_id"),
    [
        (samples.PUSH_ORDER_STATUS_LIVE, "251214B9XAB0ST", "64ca21a145e29bda3a6e31203c800e00"),
        (samples.PUSH_ORDER_STATUS_DEMO, "2512125BFTQGKJ", "85bb37f009e143af84852e17d50b572d"),
        (samples.PUSH_ORDER_STATUS_CSHARP, "2503119YA2XB8B", "275d49be9b484e63a5cba42115815b4a"),
    ],
)
def test_live_order_status_captures_with_msg_id(raw: str, order_sn: str, msg_id: str) -> None:
    push = parse_push(raw.encode())
    assert isinstance(push, OrderStatusPush)
    assert push.data.order_sn == order_sn
    assert push.msg_id == msg_id
    # "" and null both mean "no completed scenario".
    assert push.data.completed_scenario is None


def test_completed_scenario_is_kept_when_set() -> None:
    body = json.loads(samples.PUSH_ORDER_STATUS_OFFICIAL)
    body["data"]["status"] = "COMPLETED"
    body["data"]["completed_scenario"] = "RRAOC"
    push = parse_push(json.dumps(body).encode())
    assert isinstance(push, OrderStatusPush)
    assert push.data.completed_scenario == "RRAOC"


def test_old_in_cancel_push_without_completed_scenario() -> None:
    push = parse_push(samples.PUSH_IN_CANCEL_OLD.encode())
    assert isinstance(push, OrderStatusPush)
    assert push.data.status == "IN_CANCEL"
    assert push.shop_id == 123456


@pytest.mark.parametrize(
    ("raw", "forder_id", "tracking_no"),
    [
        (samples.PUSH_TRACKING_OFFICIAL, "4965804244309504855", "BR222263688572VSPXLM71894"),
        (samples.PUSH_TRACKING_LIVE, "5869348275461129055", "SPXID068120696021"),
    ],
)
def test_tracking_number_pushes(raw: str, forder_id: str, tracking_no: str) -> None:
    push = parse_push(raw.encode())
    assert isinstance(push, TrackingNumberPush)
    assert push.data.forder_id == forder_id
    assert push.data.tracking_no == tracking_no
    assert push.data.package_number.startswith("OFG")


def test_numeric_forder_id_keeps_every_digit() -> None:
    raw = samples.PUSH_TRACKING_OFFICIAL.replace('"4965804244309504855"', "4965804244309504855")
    push = parse_push(raw.encode())
    assert isinstance(push, TrackingNumberPush)
    assert push.data.forder_id == "4965804244309504855"


def test_verification_push() -> None:
    push = parse_push(samples.PUSH_VERIFICATION.encode())
    assert isinstance(push, VerificationPush)
    assert push.data.verify_info.startswith("This is a Verification message")
    assert push.timestamp is None


def test_shipping_document_push() -> None:
    push = parse_push(samples.PUSH_SHIPPING_DOCUMENT.encode())
    assert isinstance(push, ShippingDocumentPush)
    assert push.data.order_sn == "201118BCKPJQQ8"
    assert push.data.status == "READY"


def test_partner_level_authorisation_pushes() -> None:
    authorized = parse_push(samples.PUSH_SHOP_AUTHORIZED.encode())
    assert isinstance(authorized, ShopAuthorizedPush)
    assert authorized.partner_id == 2000002
    assert authorized.data.shop_id == 60011111

    cancelled = parse_push(samples.PUSH_SHOP_DEAUTHORIZED.encode())
    assert isinstance(cancelled, ShopDeauthorizedPush)
    assert cancelled.data.shop_id is None
    assert "cancelled its authorization" in cancelled.data.extra

    expired = parse_push(samples.PUSH_SHOP_AUTHORIZATION_EXPIRED.encode())
    assert isinstance(expired, ShopDeauthorizedPush)
    assert expired.data.shop_id == 22000000  # spelt "shopid" in this push
    assert expired.data.authorize_type == "expiry"


def test_authorization_expiry_push() -> None:
    push = parse_push(samples.PUSH_AUTHORIZATION_EXPIRY.encode())
    assert isinstance(push, AuthorizationExpiryPush)
    assert push.data.shop_expire_soon == [23213, 243242, 342343, 42342345656, 45345]
    assert push.data.expire_before == 1619740800
    assert (push.data.page_no, push.data.total_page) == (1, 2)


def test_unknown_code_is_kept_generic() -> None:
    raw = b'{"code": 29, "shop_id": 5, "timestamp": 1, "data": {"return_sn": "R1"}, "x": 1}'
    push = parse_push(raw)
    assert isinstance(push, UnknownPush)
    assert push.code == 29
    assert push.shop_id == 5
    assert push.data == {"return_sn": "R1"}
    assert push.model_extra == {"x": 1}


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"", "not JSON"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "JSON object"),
        (b'{"data": {}}', "'code'"),
        (b'{"code": "3", "data": {}}', "'code'"),
        (b'{"code": true, "data": {}}', "'code'"),
        (
            b'{"code": 3, "shop_id": 1, "data": {"status": "PROCESSED", "update_time": 1}}',
            "data.ordersn",
        ),
        (b'{"code": 3, "data": {"ordersn": "A", "status": "X", "update_time": 1}}', "shop_id"),
        (
            b'{"code": 3, "shop_id": 1, "data": {"ordersn": "A", "status": "X", '
            b'"update_time": "soon"}}',
            "data.update_time",
        ),
        (b'{"code": 4, "shop_id": 1, "data": {"ordersn": "A"}}', "tracking_no"),
    ],
)
def test_malformed_pushes_say_why(raw: bytes, why: str) -> None:
    with pytest.raises(MalformedPush) as caught:
        parse_push(raw)
    assert why in str(caught.value)


def test_lost_push_entries_become_pushes() -> None:
    envelope = json.loads(samples.LOST_PUSH_RESPONSE)
    entry = LostPushMessage.model_validate(envelope["response"]["push_message_list"][0])
    push = parse_push_object(entry.push_body())
    assert isinstance(push, OrderStatusPush)
    assert push.data.order_sn == "220810QSK8S7BX"
    assert push.shop_id == 727720655


def test_lost_push_data_as_a_json_string_of_the_inner_data() -> None:
    entry = LostPushMessage.model_validate(
        {
            "shop_id": 9,
            "code": 3,
            "timestamp": 5,
            "data": '{"ordersn": "X1", "status": "CANCELLED", "update_time": 4}',
        }
    )
    push = parse_push_object(entry.push_body())
    assert isinstance(push, OrderStatusPush)
    assert (push.shop_id, push.data.order_sn, push.data.status) == (9, "X1", "CANCELLED")


def test_lost_push_partner_level_entry_without_shop() -> None:
    entry = LostPushMessage.model_validate(
        {"code": 12, "timestamp": 5, "data": json.dumps({"shop_expire_soon": [1, 2]})}
    )
    push = parse_push_object(entry.push_body())
    assert isinstance(push, AuthorizationExpiryPush)
    assert push.data.shop_expire_soon == [1, 2]
