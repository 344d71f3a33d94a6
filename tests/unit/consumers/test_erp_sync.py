"""erp-sync into the ERP store: the newest snapshot of each order wins, stale and duplicate
events change nothing, and each write is recorded as one action."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa

from consumers.erp.outbox import ActionRecord
from consumers.erp.snapshot import Line, OrderSnapshot
from consumers.erp.store import ErpStore
from consumers.erp.tables import order_actions
from consumers.erp_sync import ErpSync, StoreTarget
from schemas.codec import AvroCodec
from schemas.models import OrderAction, OrderEvent
from schemas.registry import InMemorySchemaRegistry
from tests.unit.consumers.twins import (
    ACTIONS_TOPIC,
    SHOP,
    T0,
    delivery,
    migrated_engine,
    order_event,
)
from tests.unit.shopee.token_fakes import FakeClock


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        engine = self.engine = migrated_engine(tmp_path)
        self.store = ErpStore(engine)
        self.clock = FakeClock()
        codec = AvroCodec(OrderAction, ACTIONS_TOPIC, InMemorySchemaRegistry())
        self.actions = ActionRecord(engine, codec)
        self.handler = ErpSync(StoreTarget(self.store), clock=self.clock)

    def handle(self, *events: OrderEvent) -> list[str]:
        return self.handler.handle([delivery(e, offset) for offset, e in enumerate(events)])


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def ev(
    status: str, update_time: int, lines: Sequence[tuple[int, int, int]] = ((1001, 1, 1),)
) -> OrderEvent:
    return order_event("A", status, update_time=update_time, lines=lines)


STORED = ev("READY_TO_SHIP", T0, ((1001, 1, 2),))


@pytest.mark.parametrize(
    ("incoming", "outcome", "kept"),
    [
        (ev("SHIPPED", T0 + 1, ((1001, 1, 2),)), "applied", ("SHIPPED", T0 + 1)),
        (ev("UNPAID", T0 - 1, ((9, 9, 9),)), "unchanged", ("READY_TO_SHIP", T0)),
        (STORED, "unchanged", ("READY_TO_SHIP", T0)),
        # The same event from another source is the same snapshot: still a duplicate.
        (
            order_event("A", update_time=T0, lines=((1001, 1, 2),), source="push"),
            "unchanged",
            ("READY_TO_SHIP", T0),
        ),
        # Shopee's update_time has one-second resolution: same second, another status.
        (ev("PROCESSED", T0, ((1001, 1, 2),)), "applied", ("PROCESSED", T0)),
    ],
    ids=["newer", "stale", "duplicate", "duplicate from another source", "same second"],
)
def test_only_a_newer_snapshot_is_applied(
    rig: Rig, incoming: OrderEvent, outcome: str, kept: tuple[str, int]
) -> None:
    assert rig.handle(STORED) == ["applied"]
    assert rig.handle(incoming) == [outcome]
    (order,) = rig.store.orders()
    assert (order.status, order.update_time) == kept


def test_a_batch_is_applied_in_order_with_an_outcome_per_event(rig: Rig) -> None:
    batch = [
        ev("UNPAID", T0, ((1001, 1, 1),)),
        ev("UNPAID", T0, ((1001, 1, 1),)),  # duplicate
        ev("CANCELLED", T0 - 5),  # stale
        ev("READY_TO_SHIP", T0, ((1001, 1, 1), (1002, 3, 4))),  # same second, paid
        order_event("B", "SHIPPED", update_time=T0 + 7, shop_id=2, lines=()),
    ]
    assert rig.handle(*batch) == ["applied", "unchanged", "unchanged", "applied", "applied"]
    assert rig.store.orders() == [
        OrderSnapshot(2, "B", "SHIPPED", T0 + 7, ()),
        OrderSnapshot(SHOP, "A", "READY_TO_SHIP", T0, (Line(1001, 1, 1), Line(1002, 3, 4))),
    ]


def test_each_write_is_recorded_once(rig: Rig) -> None:
    first, second = ev("UNPAID", T0), ev("READY_TO_SHIP", T0 + 60, ((1001, 1, 3),))
    rig.handle(first, second)
    rig.handle(first, second)  # redelivered
    rig.handle(ev("UNPAID", T0 - 60))  # stale
    actions = rig.actions.all("erp-sync")
    assert [(a.kind, a.outcome, a.details["status"]) for a in actions] == [
        ("erp_upsert", "applied", "UNPAID"),
        ("erp_upsert", "applied", "READY_TO_SHIP"),
    ]
    assert [a.event_id for a in actions] == [first.event_id, second.event_id]
    assert [
        (line.item_id, line.model_id, line.quantity, line.sku) for line in actions[1].lines
    ] == [(1001, 1, 3, "SKU-1001-1")]


def test_each_action_is_stored_as_its_json_for_the_relay_to_encode(rig: Rig) -> None:
    rig.handle(ev("UNPAID", T0))
    with rig.engine.connect() as conn:
        ((detail, record_value),) = conn.execute(
            sa.select(order_actions.c.detail, order_actions.c.record_value)
        ).all()
    assert record_value is None  # encoded by the relay, on its own core
    assert json.loads(detail)["details"] == {"status": "UNPAID"}
    (action,) = ActionRecord(rig.engine).all()  # readable without the actions codec
    assert (action.kind, action.outcome) == ("erp_upsert", "applied")


def test_erp_sync_leaves_stock_alone(rig: Rig) -> None:
    rig.store.set_stock(1001, 1, 5, now=1)
    rig.handle(ev("READY_TO_SHIP", T0, ((1001, 1, 2),)), ev("CANCELLED", T0 + 1))
    (level,) = rig.store.stock()
    assert (level.on_hand, level.reserved) == (5, 0)


def test_on_sqlite_a_batch_is_handled_not_started(rig: Rig) -> None:
    # SQLite's writes are this process's own CPU: nothing to overlap, the runtime calls handle.
    assert rig.handler.start([delivery(STORED)]) is None
    assert rig.store.orders() == []
