"""The enricher's decisions: emit or not, which source revealed a change, and the event
built from Shopee's official get_order_detail sample (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from producers.enricher import event_from_detail, revealing_source, should_emit
from producers.state import Snapshot
from schemas.models import OrderNotice, make_event_id
from shopee.models import OrderDetail
from tests.unit.shopee.reference_samples import repaired_order_detail

EMITTED_AT = datetime(2026, 11, 26, tzinfo=UTC)


def _detail(update_time: int = 1000, status: str = "READY_TO_SHIP") -> OrderDetail:
    return OrderDetail(order_sn="X1", order_status=status, create_time=900, update_time=update_time)


@pytest.mark.parametrize(
    ("emitted", "update_time", "status", "expected"),
    [
        (None, 1000, "READY_TO_SHIP", True),  # never emitted
        (Snapshot(999, "UNPAID"), 1000, "READY_TO_SHIP", True),  # newer
        (Snapshot(1000, "READY_TO_SHIP"), 1000, "READY_TO_SHIP", False),  # duplicate
        (Snapshot(1001, "PROCESSED"), 1000, "READY_TO_SHIP", False),  # stale
        (Snapshot(1001, "PROCESSED"), 1000, "CANCELLED", False),  # stale, other status
        # Two changes within one second share the update_time: the later one is emitted.
        (Snapshot(1000, "READY_TO_SHIP"), 1000, "PROCESSED", True),
    ],
)
def test_should_emit(
    emitted: Snapshot | None, update_time: int, status: str, expected: bool
) -> None:
    assert should_emit(_detail(update_time, status), emitted) is expected


def _notice(source: str, update_time: int | None) -> OrderNotice:
    when = None if update_time is None else datetime.fromtimestamp(update_time, UTC)
    return OrderNotice(
        event_id=make_event_id(
            marketplace="shopee",
            shop_id=1,
            order_sn="X1",
            status=None,
            update_time=when,
            source=source,
        ),
        shop_id=1,
        order_sn="X1",
        update_time=when,
        source=source,  # type: ignore[arg-type]
        received_at=EMITTED_AT,
    )


@pytest.mark.parametrize(
    ("notices", "update_time", "expected"),
    [
        ([_notice("poll", None)], 1000, "poll"),
        ([_notice("poll", None), _notice("push", 1000)], 1000, "push"),
        # The push was about an earlier change; the exact match wins.
        ([_notice("push", 900), _notice("lost_push", 1000)], 1000, "lost_push"),
        # No exact match: the most direct source among them.
        ([_notice("backfill", None), _notice("poll", None)], 1000, "poll"),
        ([_notice("poll", None), _notice("push", 900)], 1000, "push"),
    ],
)
def test_revealing_source(notices: list[OrderNotice], update_time: int, expected: str) -> None:
    assert revealing_source(notices, update_time) == expected


def test_the_official_detail_sample_becomes_a_full_snapshot() -> None:
    raw = json.loads(repaired_order_detail())["response"]["order_list"][0]
    detail = OrderDetail.model_validate(raw)
    event = event_from_detail(
        727720655, detail, previous_status="READY_TO_SHIP", source="push", emitted_at=EMITTED_AT
    )
    assert event.order_sn == detail.order_sn
    assert event.status == detail.order_status
    assert event.previous_status == "READY_TO_SHIP"
    assert event.update_time == datetime.fromtimestamp(detail.update_time, UTC)
    assert event.currency == detail.currency and event.region == detail.region
    assert len(event.items) == len(detail.item_list) > 0
    for line, item in zip(event.items, detail.item_list, strict=True):
        assert (line.item_id, line.model_id) == (item.item_id, item.model_id)
        assert line.quantity == item.model_quantity_purchased
        assert line.original_price == item.model_original_price
    assert len(event.packages) == len(detail.package_list)
    assert event.total_amount == detail.total_amount
    assert event.event_id == make_event_id(
        marketplace="shopee",
        shop_id=727720655,
        order_sn=detail.order_sn,
        status=detail.order_status,
        update_time=event.update_time,
        source="push",
    )


def test_amounts_finer_than_the_schema_are_rounded_not_refused() -> None:
    detail = OrderDetail(
        order_sn="X1",
        order_status="READY_TO_SHIP",
        create_time=900,
        update_time=1000,
        total_amount=Decimal("10.123456"),
    )
    event = event_from_detail(1, detail, previous_status=None, source="poll", emitted_at=EMITTED_AT)
    assert event.total_amount == Decimal("10.1235")
