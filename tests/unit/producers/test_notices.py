"""Pushes and list entries become notices with stable, distinct event ids (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from producers.notices import notice_from_list_entry, notice_from_push
from shopee.models import OrderListEntry
from shopee.push import OrderStatusPush, TrackingNumberPush, parse_push


def _status_push(status: str = "READY_TO_SHIP", update_time: int = 1764060000) -> OrderStatusPush:
    body = {
        "data": {"ordersn": "2211250AB12CD", "status": status, "update_time": update_time},
        "shop_id": 601234,
        "code": 3,
        "timestamp": 1764060001,
        "msg_id": "m1",
    }
    push = parse_push(json.dumps(body).encode())
    assert isinstance(push, OrderStatusPush)
    return push


def _tracking_push(tracking_no: str, package: str = "OFG1") -> TrackingNumberPush:
    body = {
        "data": {
            "ordersn": "2211250AB12CD",
            "forder_id": "5",
            "package_number": package,
            "tracking_no": tracking_no,
        },
        "shop_id": 601234,
        "code": 4,
        "timestamp": 1764060001,
    }
    push = parse_push(json.dumps(body).encode())
    assert isinstance(push, TrackingNumberPush)
    return push


def test_an_order_status_push_carries_status_and_update_time() -> None:
    notice = notice_from_push(_status_push(), source="push", received_at=1764060002.5)
    assert notice.shop_id == 601234
    assert notice.order_sn == "2211250AB12CD"
    assert notice.status == "READY_TO_SHIP"
    assert notice.update_time == datetime.fromtimestamp(1764060000, UTC)
    assert notice.push_code == 3
    assert notice.msg_id == "m1"
    assert notice.received_at == datetime(2025, 11, 25, 8, 40, 2, 500000, tzinfo=UTC)


def test_event_ids_are_stable_for_the_same_change_and_distinct_otherwise() -> None:
    first = notice_from_push(_status_push(), source="push", received_at=1)
    again = notice_from_push(_status_push(), source="push", received_at=2)
    later = notice_from_push(_status_push("PROCESSED", 1764060100), source="push", received_at=3)
    lost = notice_from_push(_status_push(), source="lost_push", received_at=4)
    assert first.event_id == again.event_id
    assert len({first.event_id, later.event_id, lost.event_id}) == 3


def test_tracking_number_pushes_without_update_time_get_distinct_ids() -> None:
    one = notice_from_push(_tracking_push("SPXID1"), source="push", received_at=1)
    other = notice_from_push(_tracking_push("SPXID2"), source="push", received_at=1)
    second_package = notice_from_push(
        _tracking_push("SPXID1", "OFG2"), source="push", received_at=1
    )
    repeated = notice_from_push(_tracking_push("SPXID1"), source="push", received_at=9)
    assert one.update_time is None and one.status is None and one.push_code == 4
    assert len({one.event_id, other.event_id, second_package.event_id}) == 3
    assert repeated.event_id == one.event_id


def test_a_list_entry_becomes_a_poll_or_backfill_notice() -> None:
    entry = OrderListEntry(order_sn="2211250AB12CD", order_status="SHIPPED")
    poll = notice_from_list_entry(601234, entry, source="poll", found_at=1764060000)
    backfill = notice_from_list_entry(601234, entry, source="backfill", found_at=1764060000)
    assert poll.status == "SHIPPED" and poll.update_time is None and poll.push_code is None
    assert poll.source == "poll" and backfill.source == "backfill"
    assert poll.event_id != backfill.event_id
