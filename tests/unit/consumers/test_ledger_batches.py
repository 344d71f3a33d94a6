"""A batch of events moving the stock ledger in one transaction (stock-restore, auto-cancel)
ends exactly where one transaction per event ends: the same stock, ledger rows, actions,
outbox calls, Shopee calls and outcomes, whatever the events and however they are cut into
batches. A failure inside a batch leaves none of it applied, and a poison event is found
and settled alone."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine

from consumers.auto_cancel import AutoCancel, AutoCancelConfig
from consumers.erp.outbox import ActionRecord, ActionRow, Outbox
from consumers.erp.snapshot import OrderSnapshot
from consumers.erp.store import ErpStore, LedgerResult, StockCount
from consumers.erp.tables import order_actions, shopee_outbox, stock_ledger
from consumers.runtime import Handler, PartialFailure
from consumers.stock_restore import StockRestore
from orderflow.db import create_engine
from orderflow.failures import Poison
from orderflow.metrics import Metrics
from schemas.models import OrderEvent
from shopee import client as api
from tests.unit.consumers.twins import SHOP, T0, delivery, migrated_engine, order_event
from tests.unit.shopee.fake_shopee import Harness, make_harness, ok
from tests.unit.shopee.token_fakes import FakeClock

MODELS = ((1001, 1), (1002, 1), (1003, 2))
# Every phase, and a status Shopee may add later.
STATUSES = (
    "UNPAID",
    "READY_TO_SHIP",
    "IN_CANCEL",
    "SHIPPED",
    "COMPLETED",
    "TO_RETURN",
    "CANCELLED",
    "SOMETHING_NEW",
)

lines = st.lists(
    st.tuples(st.sampled_from(MODELS), st.integers(0, 3)), max_size=3, unique_by=lambda t: t[0]
).map(lambda found: tuple((item, model, quantity) for (item, model), quantity in found))
events = st.builds(
    lambda sn, status, later, spec: order_event(sn, status, update_time=T0 + later, lines=spec),
    st.sampled_from("ABCD"),
    st.sampled_from(STATUSES),
    st.integers(0, 4),
    lines,
)
# Little stock: orders are often short (auto-cancel decides, the budget runs out).
stock = st.tuples(*(st.integers(0, 4) for _ in MODELS))
cuts = st.lists(st.integers(1, 7), min_size=1, max_size=5)


@pytest.fixture(scope="module")
def template() -> Iterator[Path]:
    """A migrated database, copied for each side of each example (migrating is slow)."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = migrated_engine(Path(tmp), "template.db")
        engine.dispose()
        yield Path(tmp) / "template.db"


def fresh_engine(template: Path, where: Path, name: str, on_hand: Sequence[int]) -> Engine:
    shutil.copy(template, where / name)
    engine = create_engine(f"sqlite:///{where / name}")
    ErpStore(engine).import_stock(
        [StockCount(item, model, n) for (item, model), n in zip(MODELS, on_hand, strict=True)],
        now=1,
    )
    return engine


def in_batches(events: Sequence[OrderEvent], cut: Sequence[int]) -> Iterator[list[OrderEvent]]:
    start, turn = 0, 0
    while start < len(events):
        size = cut[turn % len(cut)]
        yield list(events[start : start + size])
        start, turn = start + size, turn + 1


def handle_all(handler: Handler, batch: Sequence[OrderEvent]) -> list[str]:
    return handler.handle([delivery(event, offset) for offset, event in enumerate(batch)])


def state(engine: Engine) -> dict[str, Any]:
    """Everything the ledger consumers write, without ids and clock readings."""
    led, act, out = stock_ledger.c, order_actions.c, shopee_outbox.c
    store = ErpStore(engine)
    with engine.connect() as conn:
        return {
            "stock": store.stock(),
            "adds_up": {
                (s.item_id, s.model_id): (s.on_hand, s.reserved)
                for s in store.stock()
                if (s.on_hand, s.reserved) != (0, 0)
            }
            == {key: value for key, value in store.ledger_totals().items() if value != (0, 0)},
            "ledger": conn.execute(
                sa.select(
                    led.shop_id,
                    led.order_sn,
                    led.item_id,
                    led.model_id,
                    led.step,
                    led.from_state,
                    led.to_state,
                    led.quantity,
                    led.on_hand_delta,
                    led.reserved_delta,
                    led.order_status,
                    led.order_update_time,
                ).order_by(led.id)
            ).all(),
            "actions": conn.execute(
                sa.select(act.action_id, act.consumer, act.kind, act.outcome).order_by(act.id)
            ).all(),
            "outbox": conn.execute(
                sa.select(out.order_sn, out.kind, out.state, out.payload).order_by(out.id)
            ).all(),
        }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=st.lists(events, max_size=14), on_hand=stock, cut=cuts)
def test_stock_restore_in_batches_ends_as_event_by_event(
    template: Path, history: list[OrderEvent], on_hand: tuple[int, ...], cut: list[int]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sides = []
        for name, batches in (
            ("each", [[e] for e in history]),
            ("batch", in_batches(history, cut)),
        ):
            engine = fresh_engine(template, Path(tmp), f"{name}.db", on_hand)
            handler = StockRestore(ErpStore(engine), clock=FakeClock())
            outcomes = [o for batch in batches for o in handle_all(handler, batch)]
            sides.append((outcomes, state(engine)))
            engine.dispose()
    (each, each_state), (batched, batched_state) = sides
    assert each_state["adds_up"]
    assert batched == each
    assert batched_state == each_state


@dataclass
class CancelSide:
    handler: AutoCancel
    harness: Harness
    engine: Engine

    def shopee_calls(self) -> list[tuple[str, Any]]:
        return [(call.path, call.body) for call in self.harness.shopee.calls]


def cancel_side(template: Path, where: Path, name: str, on_hand: Sequence[int]) -> CancelSide:
    metrics = Metrics(CollectorRegistry())
    (where / name).mkdir()
    harness = make_harness(where / name, metrics, max_retries=0)
    harness.client.tokens.authorize("code", SHOP)
    harness.shopee.handlers[api.CANCEL_ORDER_PATH] = lambda call: ok({"update_time": T0 + 90})
    harness.shopee.handlers[api.HANDLE_BUYER_CANCELLATION_PATH] = lambda call: ok(
        {"update_time": T0 + 90}
    )
    engine = fresh_engine(template, where, f"{name}.db", on_hand)
    handler = AutoCancel(
        store=ErpStore(engine),
        outbox=Outbox(engine),
        actions=ActionRecord(engine),
        client=harness.client,
        metrics=metrics,
        # A budget of two: some short orders are cancelled, later ones left to a person.
        config=AutoCancelConfig(daily_budget=2),
        clock=harness.clock,
    )
    return CancelSide(handler, harness, engine)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=st.lists(events, max_size=14), on_hand=stock, cut=cuts)
def test_auto_cancel_in_batches_ends_as_event_by_event(
    template: Path, history: list[OrderEvent], on_hand: tuple[int, ...], cut: list[int]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sides = []
        for name, batches in (
            ("each", [[e] for e in history]),
            ("batch", in_batches(history, cut)),
        ):
            side = cancel_side(template, Path(tmp), name, on_hand)
            try:
                outcomes = [o for batch in batches for o in handle_all(side.handler, batch)]
                sides.append((outcomes, state(side.engine), side.shopee_calls()))
            finally:
                side.harness.client.close()
                side.engine.dispose()
    (each, each_state, each_calls), (batched, batched_state, batched_calls) = sides
    assert each_state["adds_up"]
    assert batched == each
    assert batched_state == each_state
    assert batched_calls == each_calls


# -- failures inside a batch --------------------------------------------------------------------


class PoisonedStore(ErpStore):
    """Refuses, for good, to move the ledger of order ``POISON`` (and so any batch with it)."""

    def apply_ledgers(
        self, snapshots: Sequence[OrderSnapshot], now: int, **options: Any
    ) -> list[LedgerResult]:
        if any(s.order_sn == "POISON" for s in snapshots):
            raise Poison("this order can never be applied")
        return super().apply_ledgers(snapshots, now, **options)

    def _apply_ledger(self, conn: sa.Connection, snapshot: OrderSnapshot, now: int) -> LedgerResult:
        if snapshot.order_sn == "POISON":
            raise Poison("this order can never be applied")
        return super()._apply_ledger(conn, snapshot, now)


def test_a_batch_that_fails_midway_leaves_nothing_applied(tmp_path: Path) -> None:
    engine = migrated_engine(tmp_path)
    store = ErpStore(engine)
    store.import_stock([StockCount(1001, 1, 10)], now=1)
    before = state(engine)
    batch = [order_event(sn, lines=((1001, 1, 2),)) for sn in ("A", "B", "C", "D")]

    def actions(i: int, result: LedgerResult) -> list[ActionRow]:
        # The third order's action cannot be stored: the batch fails at its last write.
        return [ActionRow(f"a{i}", SHOP, "C", None, "k", "applied", "{}", 1)] if i == 2 else []  # type: ignore[arg-type]

    with pytest.raises(sa.exc.IntegrityError):
        store.apply_ledgers([OrderSnapshot.from_event(e) for e in batch], T0, actions=actions)
    # The moves written before it failed: neither stock nor ledger show them.
    assert state(engine) == before


def test_a_poison_event_is_settled_alone_and_the_events_before_it_finish(tmp_path: Path) -> None:
    engine = migrated_engine(tmp_path)
    store = PoisonedStore(engine)
    store.import_stock([StockCount(1001, 1, 10)], now=1)
    handler = StockRestore(store, clock=FakeClock())
    batch = [order_event(sn, lines=((1001, 1, 2),)) for sn in ("A", "B", "POISON", "C")]
    with pytest.raises(PartialFailure) as failed:
        handle_all(handler, batch)
    # The runtime dead-letters POISON and hands C back: the event-by-event outcome.
    assert failed.value.outcomes == ["applied", "applied"]
    assert isinstance(failed.value.cause, Poison)
    assert [(s.on_hand, s.reserved) for s in store.stock()] == [(10, 4)]
    assert handle_all(handler, batch[3:]) == ["applied"]
    assert [(s.on_hand, s.reserved) for s in store.stock()] == [(10, 6)]
