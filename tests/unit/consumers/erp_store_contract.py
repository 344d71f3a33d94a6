"""What the ERP store must do, run against SQLite (unit) and PostgreSQL (integration).

Each check gets a freshly migrated engine. After every change the checks compare stock with
what the ledger adds up to (the store's invariant)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from consumers.erp.ledger import Holding, LineState, Shortage
from consumers.erp.outbox import ActionRecord, ActionRow, Outbox
from consumers.erp.snapshot import Line, OrderSnapshot
from consumers.erp.store import ErpStore, StockCount, StockLevel
from consumers.erp.tables import erp_order_lines, erp_orders
from orderflow.db import create_engine
from schemas.models import ActionLine, OrderAction


def order(
    sn: str, status: str, update_time: int, *lines: tuple[int, int, int], shop: int = 1
) -> OrderSnapshot:
    return OrderSnapshot(shop, sn, status, update_time, tuple(Line(*line) for line in lines))


def levels(store: ErpStore) -> dict[tuple[int, int], tuple[int, int]]:
    return {(s.item_id, s.model_id): (s.on_hand, s.reserved) for s in store.stock()}


def assert_ledger_adds_up(store: ErpStore) -> None:
    stock = {key: value for key, value in levels(store).items() if value != (0, 0)}
    totals = {key: value for key, value in store.ledger_totals().items() if value != (0, 0)}
    assert stock == totals


def orders_keep_only_the_newest_snapshot(engine: Engine) -> None:
    store = ErpStore(engine)
    assert store.apply_order(order("A", "UNPAID", 100, (1, 1, 2), (1, 2, 1)), now=1)
    assert not store.apply_order(order("A", "UNPAID", 100, (1, 1, 2), (1, 2, 1)), now=2)
    assert not store.apply_order(order("A", "CANCELLED", 90, (9, 9, 9)), now=3)  # stale
    assert store.apply_order(order("A", "READY_TO_SHIP", 110, (1, 1, 3)), now=4)
    assert store.apply_orders(
        [order("B", "UNPAID", 5, (2, 1, 1)), order("B", "UNPAID", 4), order("A", "SHIPPED", 120)],
        now=5,
    ) == [True, False, True]
    assert store.orders() == [
        order("A", "SHIPPED", 120),  # a snapshot without lines clears them
        order("B", "UNPAID", 5, (2, 1, 1)),
    ]
    store.apply_order(order("A", "SHIPPED", 130, (1, 1, 1), (1, 1, 1)), now=6)
    assert store.orders()[0].lines == (Line(1, 1, 1), Line(1, 1, 1))
    store.apply_order(order("A", "UNPAID", 1, (5, 5, 5), shop=2), now=7)  # other shop, same sn
    assert [(o.shop_id, o.order_sn) for o in store.orders()] == [(1, "A"), (1, "B"), (2, "A")]


def one_batch_decides_each_snapshot_against_the_ones_before_it(engine: Engine) -> None:
    store = ErpStore(engine)
    store.apply_order(order("A", "UNPAID", 100, (1, 1, 1)), now=1)
    batch = [
        order("A", "READY_TO_SHIP", 110, (1, 1, 2)),
        order("A", "IN_CANCEL", 110, (1, 1, 2)),  # the same second, another status: later
        order("A", "IN_CANCEL", 110, (1, 1, 2)),  # a duplicate
        order("A", "READY_TO_SHIP", 105),  # older than what the batch already stored
        order("C", "UNPAID", 7, (3, 3, 1)),  # new
        order("C", "READY_TO_SHIP", 8, (3, 3, 4)),  # new, then newer in the same batch
    ]
    assert store.apply_orders(batch, now=2) == [True, True, False, False, True, True]
    assert store.orders() == [
        order("A", "IN_CANCEL", 110, (1, 1, 2)),
        order("C", "READY_TO_SHIP", 8, (3, 3, 4)),
    ]


def lines_are_written_only_when_they_change(engine: Engine) -> None:
    """A snapshot that only moves the status leaves the stored lines alone (the store keeps a
    digest of them with the order); changed lines, reordered lines and orders stored before
    the digest existed get their lines written."""
    store = ErpStore(engine)
    lines = erp_order_lines.c

    def tamper(sql: sa.Executable) -> None:
        with engine.begin() as conn:
            conn.execute(sql)

    store.apply_orders([order("A", "UNPAID", 100, (1, 1, 2), (1, 2, 1))], now=1)
    # The lines of A changed behind the store's back: a status-only snapshot must not touch
    # them, which shows it did not rewrite them.
    tamper(sa.update(erp_order_lines).where(lines.line_no == 2).values(quantity=7))
    assert store.apply_orders([order("A", "READY_TO_SHIP", 110, (1, 1, 2), (1, 2, 1))], now=2)
    assert store.orders()[0].lines == (Line(1, 1, 2), Line(1, 2, 7))
    # Reordered lines are other lines (line numbers follow the order).
    assert store.apply_orders([order("A", "PROCESSED", 120, (1, 2, 1), (1, 1, 2))], now=3)
    assert store.orders() == [order("A", "PROCESSED", 120, (1, 2, 1), (1, 1, 2))]
    # Stored without a digest (before migration 0007): its lines are written at its next
    # change, even an unchanged one.
    tamper(sa.update(erp_order_lines).where(lines.line_no == 1).values(quantity=9))
    tamper(sa.update(erp_orders).values(lines_digest=None))
    assert store.apply_orders([order("A", "SHIPPED", 130, (1, 2, 1), (1, 1, 2))], now=4)
    assert store.orders() == [order("A", "SHIPPED", 130, (1, 2, 1), (1, 1, 2))]
    # New lines replace the old ones, fewer or more.
    assert store.apply_orders([order("A", "SHIPPED", 140, (3, 3, 3))], now=5)
    assert store.orders() == [order("A", "SHIPPED", 140, (3, 3, 3))]


def orders_started_and_finished_later_are_stored_as_applied_ones(engine: Engine) -> None:
    """``start_orders`` then its finish does what ``apply_orders`` does (on PostgreSQL the
    second half on the store's writer thread), actions included; a failure in either half
    stores nothing of the batch."""
    store = ErpStore(engine)
    store.apply_orders([order("A", "UNPAID", 100, (1, 1, 1))], now=1)

    def recorded(sn: str) -> Callable[[int], ActionRow]:
        return lambda i: ActionRow.of(_action(f"{sn}-{i}", sn, "erp-sync"))

    batch = [
        order("A", "READY_TO_SHIP", 110, (1, 1, 1)),
        order("B", "UNPAID", 5, (2, 2, 2)),
        order("A", "UNPAID", 90),  # stale
    ]
    finish = store.start_orders(batch, now=2, actions=recorded("x"))
    assert finish() == [True, True, False]
    assert store.orders() == [batch[0], batch[1]]
    assert [a.action_id for a in ActionRecord(engine).all()] == ["x-0", "x-1"]

    def broken(i: int) -> ActionRow:
        return ActionRow.of(_action("y", "C", "erp-sync"))._replace(kind=None)  # type: ignore[arg-type]

    failing = [order("C", "UNPAID", 7, (3, 3, 3)), order("A", "SHIPPED", 120, (1, 1, 1))]
    with pytest.raises(sa.exc.DBAPIError):
        store.start_orders(failing, now=3, actions=broken)()
    assert store.orders() == [batch[0], batch[1]]  # neither C nor A's SHIPPED
    assert len(ActionRecord(engine).all()) == 2


def a_batch_larger_than_one_statement_is_written_whole(engine: Engine) -> None:
    # More keys than one SQLite statement may bind (999 parameters, two per key), across
    # shops whose key order differs from the order the batch arrives in.
    store = ErpStore(engine)
    first = [
        order(f"{n:04d}", "UNPAID", 100, (n, 1, 1), (n, 2, 2), shop=2 - n % 2) for n in range(1200)
    ]
    assert store.apply_orders(first, now=1) == [True] * 1200
    second = [
        order(f"{n:04d}", "READY_TO_SHIP", 99 + n % 3, (n, 1, 5), shop=2 - n % 2)
        for n in reversed(range(1200))
    ]
    assert store.apply_orders(second, now=2) == [n % 3 != 0 for n in reversed(range(1200))]
    stored = {(o.shop_id, o.order_sn): o for o in store.orders()}
    assert len(stored) == 1200
    for n in range(1200):
        got = stored[(2 - n % 2, f"{n:04d}")]
        expected = second[1199 - n] if n % 3 else first[n]
        assert got == expected, n


def a_refused_cancel_does_not_keep_the_order_from_taking_stock(engine: Engine) -> None:
    store, outbox = ErpStore(engine), Outbox(engine)
    store.set_stock(1, 1, 1, now=1)
    short = order("A", "READY_TO_SHIP", 100, (1, 1, 2))
    assert store.apply_ledger(short, now=2).short
    outbox.claim(1, "A", "cancel_order", "{}", now=3)
    store.set_stock(1, 1, 5, now=4)
    # Being cancelled: stock that came back is not taken by the order going away.
    assert store.apply_ledger(order("A", "PROCESSED", 110, (1, 1, 2)), now=5).transitions == []
    outbox.move(1, "A", "cancel_order", "sent", now=6)
    outbox.move(1, "A", "cancel_order", "failed", now=7, error="Can not cancel this order")
    # Shopee refused: the order stays and ships, so it takes its stock like any other.
    assert store.apply_ledger(order("A", "PROCESSED", 120, (1, 1, 2)), now=8).reserved
    assert levels(store) == {(1, 1): (5, 2)}
    assert_ledger_adds_up(store)


def a_cancel_is_claimed_only_for_an_order_that_holds_no_stock(engine: Engine) -> None:
    store = ErpStore(engine)
    store.set_stock(1, 1, 1, now=1)
    covered = order("A", "READY_TO_SHIP", 100, (1, 1, 1))
    short = order("B", "READY_TO_SHIP", 100, (1, 1, 1))
    assert store.apply_ledger(covered, now=2).reserved
    assert store.apply_ledger(short, now=2).short

    def claim(snapshot: OrderSnapshot) -> str:
        return store.claim_cancel(snapshot, "{}", now=3, budget=1, since=0)

    assert claim(covered) == "covered"
    assert claim(short) == "claimed"
    assert claim(short) == "exists"
    assert claim(order("C", "READY_TO_SHIP", 100, (1, 1, 1))) == "over_budget"
    assert Outbox(engine).get(1, "A", "cancel_order") is None


def reserve_then_ship_deducts_once(engine: Engine) -> None:
    store = ErpStore(engine)
    store.set_stock(1, 1, 10, now=1)
    store.set_stock(1, 2, 5, now=1)
    placed = order("A", "READY_TO_SHIP", 100, (1, 1, 3), (1, 2, 1), (1, 1, 1))
    result = store.apply_ledger(placed, now=2)
    assert result.reserved and result.short == []
    assert levels(store) == {(1, 1): (10, 4), (1, 2): (5, 1)}
    assert store.apply_ledger(placed, now=3).transitions == []  # redelivered
    assert store.line_states(1, "A") == {
        (1, 1): Holding(LineState.RESERVED, 4),
        (1, 2): Holding(LineState.RESERVED, 1),
    }
    assert_ledger_adds_up(store)
    shipped = order("A", "SHIPPED", 200, (1, 1, 4), (1, 2, 1))
    assert len(store.apply_ledger(shipped, now=4).transitions) == 2
    assert store.apply_ledger(shipped, now=5).transitions == []
    assert levels(store) == {(1, 1): (6, 0), (1, 2): (4, 0)}
    # Cancelled after shipping (lost, returned): nothing comes back automatically.
    assert store.apply_ledger(order("A", "CANCELLED", 300, (1, 1, 4)), now=6).transitions == []
    assert levels(store) == {(1, 1): (6, 0), (1, 2): (4, 0)}
    assert_ledger_adds_up(store)


def cancel_before_shipping_releases_exactly_what_was_taken(engine: Engine) -> None:
    store = ErpStore(engine)
    store.set_stock(1, 1, 3, now=1)
    store.apply_ledger(order("A", "UNPAID", 100, (1, 1, 2)), now=2)
    # A later snapshot says 5, but this system took 2: exactly 2 go back.
    result = store.apply_ledger(order("A", "CANCELLED", 200, (1, 1, 5)), now=3)
    assert [(t.after, t.quantity) for t in result.transitions] == [(LineState.RELEASED, 2)]
    assert levels(store) == {(1, 1): (3, 0)}
    for replay in (order("A", "CANCELLED", 200, (1, 1, 5)), order("A", "UNPAID", 100, (1, 1, 2))):
        assert store.apply_ledger(replay, now=4).transitions == []
    assert levels(store) == {(1, 1): (3, 0)}
    assert_ledger_adds_up(store)


def first_seen_cancelled_then_an_older_snapshot_reserves_nothing(engine: Engine) -> None:
    store = ErpStore(engine)
    store.set_stock(1, 1, 3, now=1)
    result = store.apply_ledger(order("A", "CANCELLED", 200, (1, 1, 2)), now=2)
    assert [t.after for t in result.transitions] == [LineState.CLOSED]
    assert store.apply_ledger(order("A", "READY_TO_SHIP", 100, (1, 1, 2)), now=3).transitions == []
    assert levels(store) == {(1, 1): (3, 0)}
    # Likewise first seen shipped: closed, and no deduction of stock never taken.
    store.apply_ledger(order("B", "COMPLETED", 200, (1, 1, 1)), now=4)
    store.apply_ledger(order("B", "READY_TO_SHIP", 100, (1, 1, 1)), now=5)
    store.apply_ledger(order("B", "SHIPPED", 150, (1, 1, 1)), now=6)
    assert levels(store) == {(1, 1): (3, 0)}
    assert store.line_states(1, "B") == {(1, 1): Holding(LineState.CLOSED, 1)}
    assert_ledger_adds_up(store)


def a_short_order_reserves_nothing_and_names_the_short_lines(engine: Engine) -> None:
    store = ErpStore(engine)
    store.import_stock([StockCount(1, 1, 5), StockCount(1, 2, 1)], now=1)
    result = store.reserve_if_available(
        order("A", "READY_TO_SHIP", 100, (1, 1, 2), (1, 2, 2), (1, 3, 1)), now=2
    )
    assert not result.reserved and result.transitions == []
    assert result.short == [Shortage(1, 2, 2, 1), Shortage(1, 3, 1, 0)]
    assert levels(store) == {(1, 1): (5, 0), (1, 2): (1, 0), (1, 3): (0, 0)}
    assert store.line_states(1, "A") == {}
    # Restocked: the same order now fits.
    store.set_stock(1, 2, 2, now=3)
    store.set_stock(1, 3, 1, now=3)
    assert store.reserve_if_available(
        order("A", "READY_TO_SHIP", 100, (1, 1, 2), (1, 2, 2), (1, 3, 1)), now=4
    ).reserved
    assert [s.available for s in store.stock()] == [3, 0, 0]
    assert_ledger_adds_up(store)


def stock_counts_are_absolute_and_keep_reservations(engine: Engine) -> None:
    store = ErpStore(engine)
    store.set_stock(7, 1, 10, now=1)
    store.apply_ledger(order("A", "PROCESSED", 100, (7, 1, 4)), now=2)
    store.set_stock(7, 1, 6, now=3)  # counted on the shelf, reserved goods included
    assert store.stock() == [StockLevel(7, 1, 6, 4)]
    assert store.stock()[0].available == 2
    store.import_stock([StockCount(7, 1, 1), StockCount(7, 2, 3), StockCount(7, 1, 8)], now=4)
    assert levels(store) == {(7, 1): (8, 4), (7, 2): (3, 0)}
    store.apply_ledger(order("A", "SHIPPED", 200, (7, 1, 4)), now=5)
    assert levels(store) == {(7, 1): (4, 0), (7, 2): (3, 0)}
    store.import_stock([], now=6)
    assert_ledger_adds_up(store)


def racing_reservations_never_oversell(engine: Engine) -> None:
    """Threads, each with its own engine like a replica, reserve an order for the last units
    of one model; as many succeed as the stock covers, and one order applied by many threads
    at once is reserved once."""
    store = ErpStore(engine)
    store.set_stock(1, 1, 5, now=1)
    orders = [order(f"R{i}", "READY_TO_SHIP", 100, (1, 1, 1)) for i in range(12)]
    orders += [order("TWICE", "READY_TO_SHIP", 100, (1, 1, 1))] * 4
    outcomes: list[bool] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(len(orders))

    def reserve(snapshot: OrderSnapshot) -> None:
        try:
            replica = create_engine(engine.url.render_as_string(hide_password=False))
            try:
                gate.wait()
                outcomes.append(ErpStore(replica).reserve_if_available(snapshot, now=2).reserved)
            finally:
                replica.dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reserve, args=(o,)) for o in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(outcomes) == 5
    assert levels(store) == {(1, 1): (5, 5)}
    assert_ledger_adds_up(store)


def a_batch_of_ledger_moves_is_each_move_in_turn(engine: Engine) -> None:
    store = ErpStore(engine)
    store.set_stock(1, 1, 3, now=1)
    batch = [
        order("A", "READY_TO_SHIP", 100, (1, 1, 2)),
        order("B", "READY_TO_SHIP", 100, (1, 1, 2)),  # short: 1 left
        order("A", "CANCELLED", 110, (1, 1, 2)),  # gives 2 back
        order("B", "READY_TO_SHIP", 105, (1, 1, 2)),  # covered now
        order("C", "SHIPPED", 100, (2, 2, 1)),  # closed, a model new to the store
    ]
    results = store.apply_ledgers(batch, now=2)
    assert [([t.after for t in r.transitions], r.short) for r in results] == [
        ([LineState.RESERVED], []),
        ([], [Shortage(1, 1, 2, 1)]),
        ([LineState.RELEASED], []),
        ([LineState.RESERVED], []),
        ([LineState.CLOSED], []),
    ]
    assert levels(store) == {(1, 1): (3, 2), (2, 2): (0, 0)}
    assert_ledger_adds_up(store)
    # Stopping at the first short order leaves the rest alone.
    again = [order("D", "READY_TO_SHIP", 100, (1, 1, 5)), order("E", "UNPAID", 100, (1, 1, 1))]
    assert len(store.apply_ledgers(again, now=3, stop_when_short=True)) == 1
    assert store.line_states(1, "E") == {}


def racing_ledger_batches_never_oversell_nor_deadlock(engine: Engine) -> None:
    """Replicas (stock-restore's and auto-cancel's) move batches of the same orders over the
    same models in opposite orders at once: each order is reserved once, stock is never
    oversold, and nobody waits for a lock another holds while it waits for theirs."""
    store = ErpStore(engine)
    for model in (1, 2, 3):
        store.set_stock(1, model, 4, now=1)
    orders = [
        order(f"O{i}", "READY_TO_SHIP", 100, (1, 1 + i % 3, 1), (1, 1 + (i + 1) % 3, 1))
        for i in range(9)
    ]
    errors: list[BaseException] = []
    gate = threading.Barrier(4)

    def move(batch: list[OrderSnapshot]) -> None:
        try:
            replica = create_engine(engine.url.render_as_string(hide_password=False))
            try:
                gate.wait()
                ErpStore(replica).apply_ledgers(batch, now=2)
            finally:
                replica.dispose()
        except BaseException as exc:
            errors.append(exc)

    batches = [orders, orders[::-1], orders[3:] + orders[:3], orders[::2] + orders[1::2]]
    threads = [threading.Thread(target=move, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    reserved = [
        o.order_sn
        for o in orders
        if any(h.state is LineState.RESERVED for h in store.line_states(1, o.order_sn).values())
    ]
    on_hand, held = zip(*levels(store).values(), strict=True)
    assert on_hand == (4, 4, 4)
    assert all(h <= 4 for h in held)  # never oversold
    assert sum(held) == 2 * len(reserved)  # each order took both its lines or none
    assert_ledger_adds_up(store)


def racing_writers_of_new_orders_keep_the_newest_snapshot(engine: Engine) -> None:
    """Replicas writing batches of the same new orders at once (no stored row to lock yet):
    whichever inserts first, every order ends with the newest snapshot and its lines, and
    a writer reports a snapshot stored only when it was newer than what it found."""
    keys = [f"N{i:03d}" for i in range(150)]
    batches = {
        100: [order(sn, "UNPAID", 100, (1, 1, 1)) for sn in keys],
        200: [order(sn, "READY_TO_SHIP", 200, (2, 2, 2), (3, 3, 3)) for sn in reversed(keys)],
        150: [order(sn, "UNPAID", 150, (4, 4, 4)) for sn in keys[::2]],
    }
    written: dict[int, list[bool]] = {}
    errors: list[BaseException] = []
    gate = threading.Barrier(len(batches))

    def write(update_time: int) -> None:
        try:
            replica = create_engine(engine.url.render_as_string(hide_password=False))
            try:
                gate.wait()
                written[update_time] = ErpStore(replica).apply_orders(batches[update_time], now=1)
            finally:
                replica.dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert written[200] == [True] * len(keys)  # the newest always wins
    assert ErpStore(engine).orders() == sorted(batches[200], key=lambda o: o.order_sn)


def an_outbox_call_is_claimed_once_and_only_moves_forward(engine: Engine) -> None:
    outbox = Outbox(engine)
    assert outbox.claim(1, "A", "cancel_order", '{"reason": "OUT_OF_STOCK"}', now=1)
    assert not outbox.claim(1, "A", "cancel_order", "{}", now=2)
    assert outbox.claim(1, "A", "handle_buyer_cancellation", "{}", now=2)
    assert outbox.claim(2, "A", "cancel_order", "{}", now=2)
    assert not outbox.move(1, "A", "cancel_order", "succeeded", now=3)  # never sent
    assert outbox.move(1, "A", "cancel_order", "sent", now=3)
    assert outbox.move(1, "A", "cancel_order", "unknown", now=4, error="timeout")
    assert [c.order_sn for c in outbox.in_state("sent", "unknown")] == ["A"]
    assert not outbox.move(1, "A", "cancel_order", "sent", now=5)  # never called again
    assert outbox.move(1, "A", "cancel_order", "succeeded", now=6)
    assert not outbox.move(1, "A", "cancel_order", "failed", now=7)
    call = outbox.get(1, "A", "cancel_order")
    assert call is not None and (call.state, call.attempts) == ("succeeded", 1)
    assert call.payload == '{"reason": "OUT_OF_STOCK"}'
    assert outbox.get(1, "B", "cancel_order") is None


def _action(action_id: str, order_sn: str, consumer: str) -> OrderAction:
    return OrderAction(
        action_id=action_id,
        shop_id=1,
        order_sn=order_sn,
        consumer=consumer,
        kind="stock_reserve",
        lines=(ActionLine(item_id=7, model_id=8, quantity=2),),
        outcome="applied",
        details={"update_time": "10"},
        occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


def actions_are_recorded_once_and_published_once(engine: Engine) -> None:
    actions = ActionRecord(engine)
    first = _action("a1", "A", "auto-cancel")
    assert actions.record(first)
    assert not actions.record(first)
    assert actions.record(_action("a2", "B", "auto-cancel"))
    assert actions.record(_action("a3", "B", "erp-sync"))
    pending = actions.unpublished("auto-cancel")
    assert [a for _, a in pending] == [first, _action("a2", "B", "auto-cancel")]
    actions.mark_published([pending[0][0]], now=12)
    assert [a.action_id for _, a in actions.unpublished("auto-cancel")] == ["a2"]
    assert [a.action_id for _, a in actions.unpublished("erp-sync")] == ["a3"]
    assert [a.action_id for a in actions.all()] == ["a1", "a2", "a3"]


CHECKS: list[Callable[[Engine], None]] = [
    orders_keep_only_the_newest_snapshot,
    one_batch_decides_each_snapshot_against_the_ones_before_it,
    lines_are_written_only_when_they_change,
    orders_started_and_finished_later_are_stored_as_applied_ones,
    a_batch_larger_than_one_statement_is_written_whole,
    a_refused_cancel_does_not_keep_the_order_from_taking_stock,
    a_cancel_is_claimed_only_for_an_order_that_holds_no_stock,
    reserve_then_ship_deducts_once,
    cancel_before_shipping_releases_exactly_what_was_taken,
    first_seen_cancelled_then_an_older_snapshot_reserves_nothing,
    a_short_order_reserves_nothing_and_names_the_short_lines,
    stock_counts_are_absolute_and_keep_reservations,
    racing_reservations_never_oversell,
    a_batch_of_ledger_moves_is_each_move_in_turn,
    racing_ledger_batches_never_oversell_nor_deadlock,
    racing_writers_of_new_orders_keep_the_newest_snapshot,
    an_outbox_call_is_claimed_once_and_only_moves_forward,
    actions_are_recorded_once_and_published_once,
]
