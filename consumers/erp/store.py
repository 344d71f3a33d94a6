"""The ERP store: orders as erp-sync writes them, stock per model, and the stock ledger.

Guarantees callers rely on, on SQLite and PostgreSQL alike:

* ``apply_orders`` keeps, per order, only the snapshot with the newest ``update_time``; an
  order and its lines change together or not at all.
* ``apply_ledger`` moves an order's lines through the ledger's state machine
  (``consumers.erp.ledger``) and changes stock in the same transaction as the ledger rows.
  The ledger's unique key makes every transition happen once, so redelivery, replays and
  consumers racing on one order change the numbers once. Reservations are all or nothing:
  an order is reserved only when available stock covers every line, so stock is never
  oversold, even by replicas racing for the last units of a model.
* ``apply_ledgers`` does what ``apply_ledger`` does for each of a batch of orders, in order,
  in one transaction: all of them or, after a failure or a crash, none.
* For every model, ``on_hand`` and ``reserved`` equal ``ledger_totals()``: the order
  transitions plus the operator's stock counts (``set_stock``, ``import_stock``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from consumers.erp import bulk
from consumers.erp.ledger import (
    Holding,
    LineState,
    Phase,
    Shortage,
    Transition,
    phase_of,
    plan_transitions,
    shortages,
    stock_moves,
)
from consumers.erp.outbox import ActionRow, ClaimResult, claim_within_budget, insert_actions
from consumers.erp.snapshot import Line, OrderSnapshot
from consumers.erp.tables import (
    erp_order_lines,
    erp_orders,
    erp_stock,
    shopee_outbox,
    stock_adjustments,
    stock_ledger,
)
from orderflow.db import conflict_insert, write_transaction

T = TypeVar("T")
ModelKey = tuple[int, int]
OrderKey = tuple[int, str]

# Namespace of the per-order advisory locks (the other key is a hash of the order).
_ORDER_LOCK_NAMESPACE = 0x4552
# The outbox kind of an OUT_OF_STOCK cancellation (consumers.auto_cancel makes the call).
CANCEL_ORDER_KIND = "cancel_order"
# Unique violation, deadlock, serialisation failure: a racer got there first; try again.
_RETRY_SQLSTATES = frozenset({"23505", "40P01", "40001"})


@dataclass(frozen=True)
class StockLevel:
    item_id: int
    model_id: int
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True)
class StockCount:
    """An absolute count of one model on hand (what ``stock set`` and ``stock import`` take)."""

    item_id: int
    model_id: int
    on_hand: int


@dataclass(frozen=True)
class LedgerResult:
    """What ``apply_ledger`` did to one order: the transitions written and, when available
    stock could not cover the order, exactly the short lines (then nothing was reserved)."""

    transitions: list[Transition] = field(default_factory=list)
    short: list[Shortage] = field(default_factory=list)

    @property
    def reserved(self) -> bool:
        return any(t.after is LineState.RESERVED for t in self.transitions)


class ErpStore:
    def __init__(self, engine: Engine, *, attempts: int = 5) -> None:
        self._engine = engine
        self._attempts = attempts
        self._postgres = engine.dialect.name == "postgresql"
        self._writer: ThreadPoolExecutor | None = None  # start_orders' second steps

    # -- orders (erp-sync) -------------------------------------------------------------

    def apply_order(self, snapshot: OrderSnapshot, now: int) -> bool:
        """Store ``snapshot`` if it is newer than the stored one; True when it was."""
        return self.apply_orders([snapshot], now)[0]

    def apply_orders(
        self,
        snapshots: Sequence[OrderSnapshot],
        now: int,
        *,
        actions: Callable[[int], ActionRow] | None = None,
    ) -> list[bool]:
        """Store a batch in one transaction; per snapshot, whether it was newer and stored.
        ``actions(i)`` describes storing ``snapshots[i]``; it is recorded in the same
        transaction for each snapshot that was stored."""

        def work(conn: sa.Connection) -> list[bool]:
            written, write = self._apply_orders(conn, snapshots, now, actions)
            write(conn)
            return written

        return self._in_write_transaction(work)

    @property
    def writes_in_background(self) -> bool:
        """Whether ``start_orders`` leaves writes to its writer thread (PostgreSQL)."""
        return self._postgres

    def start_orders(
        self,
        snapshots: Sequence[OrderSnapshot],
        now: int,
        *,
        actions: Callable[[int], ActionRow] | None = None,
    ) -> Callable[[], list[bool]]:
        """``apply_orders`` in two steps, for a caller with other work meanwhile: the stored
        orders are read and locked, the batch decided and its new orders inserted here; the
        remaining writes and the commit run on the store's writer thread. The returned call
        waits for them and returns what ``apply_orders`` returns, or raises what it raises.

        On PostgreSQL the second step is most of the server's work per batch (the actions,
        the lines, the updates); the caller (erp-sync) reads and decodes its next batch
        while the server does it. The writer thread only hands prepared rows to the driver
        and waits, so it hardly competes with the caller for the interpreter. SQLite does
        all of it here: its writes are this process's own CPU."""

        def again() -> list[bool]:
            return self.apply_orders(snapshots, now, actions=actions)

        if not self.writes_in_background:
            written = again()
            return lambda: written
        conn = self._engine.connect()
        try:
            written, write = self._apply_orders(conn, snapshots, now, actions)
        except BaseException as exc:
            _abandon(conn)
            if not _retryable(exc):
                raise
            written = again()  # a racer got there first: from the start, with retries
            return lambda: written
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="erp-store-writer")
        return self._writer.submit(_finish, conn, write, written, again).result

    def _apply_orders(
        self,
        conn: sa.Connection,
        snapshots: Sequence[OrderSnapshot],
        now: int,
        actions: Callable[[int], ActionRow] | None,
    ) -> tuple[list[bool], Callable[[sa.Connection], None]]:
        """Decide the batch against what is stored and insert its new orders; what was
        decided, and the writes left to do (in the same transaction), whose results nobody
        needs."""
        # A few statements per batch, not three per snapshot, each handed the whole batch
        # (consumers.erp.bulk). What is stored is read (and locked) first, so deciding in
        # Python decides as the database would.
        heads = self._order_heads(conn, sorted({(s.shop_id, s.order_sn) for s in snapshots}))
        written, newest = _in_turn(snapshots, heads)
        digests = {key: snapshot.lines_digest() for key, snapshot in newest.items()}
        inserted = bulk.insert_new_rows(
            conn,
            erp_orders,
            _ORDER_COLUMNS,
            [
                _order_row(s, now, digests[key])
                for key, s in sorted(newest.items())
                if key not in heads
            ],
            key=_ORDER_KEY,
        )
        raced = {key for key in newest if key not in heads and key not in inserted}
        if raced:
            # Another writer stored these orders since they were read (a new order had no row
            # to lock): decide again against what it stored.
            heads.update(self._order_heads(conn, sorted(raced)))
            written, newest = _in_turn(snapshots, heads)
        updates = [
            _order_row(s, now, digests[key])
            for key, s in sorted(newest.items())
            if key not in inserted
        ]
        # Lines are written for new orders and for stored orders whose lines changed: most
        # snapshots only move the status, and rewriting the same lines was most of the
        # database's work per snapshot.
        changed = sorted(
            key for key in newest if key not in heads or heads[key].lines_digest != digests[key]
        )
        lines = [
            (shop_id, order_sn, number, line.item_id, line.model_id, line.quantity)
            for shop_id, order_sn in changed
            for number, line in enumerate(newest[(shop_id, order_sn)].lines, start=1)
        ]
        recorded = [] if actions is None else [actions(i) for i, ok in enumerate(written) if ok]

        def write(conn: sa.Connection) -> None:
            bulk.update_rows(conn, erp_orders, _ORDER_KEY, _ORDER_COLUMNS[2:], updates)
            bulk.delete_keys(conn, erp_order_lines, _ORDER_KEY, [k for k in changed if k in heads])
            bulk.insert_rows(conn, erp_order_lines, _LINE_COLUMNS, lines)
            insert_actions(conn, recorded)

        return written, write

    def _order_heads(self, conn: sa.Connection, keys: list[OrderKey]) -> dict[OrderKey, _Head]:
        """What is stored of the orders in ``keys`` that exist, locked (PostgreSQL) in key
        order until the transaction ends."""
        rows = bulk.select_keys(conn, erp_orders, _ORDER_KEY, _HEAD_COLUMNS, keys, lock=True)
        return {
            (int(shop_id), str(order_sn)): _Head(str(status), int(update_time), digest)
            for shop_id, order_sn, status, update_time, digest in rows
        }

    def orders(self) -> list[OrderSnapshot]:
        """Every stored order with its lines, by shop and order number."""
        o, c = erp_orders.c, erp_order_lines.c
        with self._engine.connect() as conn:
            heads = conn.execute(sa.select(erp_orders).order_by(o.shop_id, o.order_sn)).all()
            lines: dict[tuple[int, str], list[Line]] = {}
            for row in conn.execute(
                sa.select(erp_order_lines).order_by(c.shop_id, c.order_sn, c.line_no)
            ):
                lines.setdefault((int(row.shop_id), str(row.order_sn)), []).append(
                    Line(int(row.item_id), int(row.model_id), int(row.quantity))
                )
        return [
            OrderSnapshot(
                int(h.shop_id),
                str(h.order_sn),
                str(h.status),
                int(h.update_time),
                tuple(lines.get((int(h.shop_id), str(h.order_sn)), ())),
            )
            for h in heads
        ]

    # -- the ledger (auto-cancel, stock-restore) ----------------------------------------

    def apply_ledger(
        self,
        snapshot: OrderSnapshot,
        now: int,
        *,
        actions: Callable[[LedgerResult], Sequence[ActionRow]] | None = None,
    ) -> LedgerResult:
        """Move the order's lines as its status says, against what the ledger holds, and
        change stock to match, in one transaction. Reservations are all or nothing.
        ``actions(result)`` describes what was done; it is recorded in the same transaction."""

        def work(conn: sa.Connection) -> LedgerResult:
            result = self._apply_ledger(conn, snapshot, now)
            if actions is not None:
                insert_actions(conn, actions(result))
            return result

        return self._in_write_transaction(work)

    def apply_ledgers(
        self,
        snapshots: Sequence[OrderSnapshot],
        now: int,
        *,
        actions: Callable[[int, LedgerResult], Sequence[ActionRow]] | None = None,
        stop_when_short: bool = False,
    ) -> list[LedgerResult]:
        """``apply_ledger`` for each snapshot in turn, in one transaction: the results, and the
        stock and ledger they leave, are those of as many ``apply_ledger`` calls in the same
        order (each sees what the ones before it wrote), but a failure, or a crash, leaves
        none of them applied. ``actions(i, result)`` describes what ``snapshots[i]`` did. With
        ``stop_when_short``, the snapshots after the first one that stock could not cover are
        left alone (a caller that decides about a short order before going on)."""

        def work(conn: sa.Connection) -> list[LedgerResult]:
            return self._apply_ledgers(conn, snapshots, now, actions, stop_when_short)

        return self._in_write_transaction(work)

    def _apply_ledgers(
        self,
        conn: sa.Connection,
        snapshots: Sequence[OrderSnapshot],
        now: int,
        actions: Callable[[int, LedgerResult], Sequence[ActionRow]] | None,
        stop_when_short: bool,
    ) -> list[LedgerResult]:
        # What _apply_ledger reads for each order (its lines' holdings, whether it is being
        # cancelled, its models' stock) is read for the whole batch at once, under the same
        # locks, and kept up to date here as the batch moves; what it writes is written at
        # the end, a statement per table. A transaction sees only its own writes to what it
        # locked, so each order decides on exactly what _apply_ledger would read.
        orders = sorted({(s.shop_id, s.order_sn) for s in snapshots})
        if self._postgres:
            # One statement; the sort in the subquery is the order the locks are taken in.
            conn.execute(
                sa.text(
                    "SELECT pg_advisory_xact_lock(:ns, hashtext(k)) "
                    "FROM (SELECT k FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS o"
                ),
                {"ns": _ORDER_LOCK_NAMESPACE, "keys": [f"{shop}:{sn}" for shop, sn in orders]},
            )
        held = self._held_many(conn, orders)
        cancelling = self._cancelling_many(conn, orders)
        models = {key for s in snapshots for key in s.quantities()}
        models.update(key for holdings in held.values() for key in holdings)
        # Stock rows in key order (PostgreSQL: locked), before any order moves: two batches
        # taking them as each order comes would each hold what the other waits for.
        levels = self._stock_levels(conn, sorted(models))
        moved: set[ModelKey] = set()
        ledger_rows: list[tuple[Any, ...]] = []
        action_rows: list[ActionRow] = []
        results: list[LedgerResult] = []
        for i, snapshot in enumerate(snapshots):
            order = (snapshot.shop_id, snapshot.order_sn)
            holdings = held.setdefault(order, {})
            planned = plan_transitions(snapshot.status, snapshot.quantities(), holdings)
            if order in cancelling and any(t.after is LineState.RESERVED for t in planned):
                planned = [t for t in planned if t.after is not LineState.RESERVED]
            result = LedgerResult()
            if planned:
                keys = sorted({(t.item_id, t.model_id) for t in planned})
                missing = [key for key in keys if key not in levels]
                if missing:  # a model new to the store: its row, as _apply_ledger makes it
                    levels.update(self._lock_stock(conn, missing, now))
                short = shortages(planned, {key: levels[key].available for key in keys})
                if short:
                    planned = [t for t in planned if t.after is not LineState.RESERVED]
                for t in planned:
                    key = (t.item_id, t.model_id)
                    before = holdings.get(key)
                    # The quantity stays the one reserved at step 1 (as _held reads it).
                    holdings[key] = Holding(
                        t.after, t.quantity if before is None else before.quantity
                    )
                    ledger_rows.append(_ledger_row(snapshot, t, now))
                for move in stock_moves(planned):
                    key = (move.item_id, move.model_id)
                    level = levels[key]
                    levels[key] = StockLevel(
                        key[0],
                        key[1],
                        level.on_hand + move.on_hand_delta,
                        level.reserved + move.reserved_delta,
                    )
                    moved.add(key)
                result = LedgerResult(planned, short)
            results.append(result)
            if actions is not None:
                action_rows.extend(actions(i, result))
            if stop_when_short and result.short:
                break
        bulk.insert_rows(conn, stock_ledger, _LEDGER_COLUMNS, ledger_rows)
        # The rows are locked: their new values are what the moves added up to.
        bulk.update_rows(
            conn,
            erp_stock,
            ("item_id", "model_id"),
            ("on_hand", "reserved", "updated_at"),
            [(*key, levels[key].on_hand, levels[key].reserved, now) for key in sorted(moved)],
        )
        insert_actions(conn, action_rows)
        return results

    def _held_many(
        self, conn: sa.Connection, orders: Sequence[OrderKey]
    ) -> dict[OrderKey, dict[ModelKey, Holding]]:
        """``_held`` of each of ``orders``."""
        c = stock_ledger.c
        held: dict[OrderKey, dict[ModelKey, Holding]] = {}
        for start in range(0, len(orders), 400):
            rows = conn.execute(
                sa.select(c.shop_id, c.order_sn, c.item_id, c.model_id, c.to_state, c.quantity)
                .where(sa.tuple_(c.shop_id, c.order_sn).in_(orders[start : start + 400]))
                .order_by(c.step)
            )
            for row in rows:
                holdings = held.setdefault((int(row.shop_id), str(row.order_sn)), {})
                key = (int(row.item_id), int(row.model_id))
                quantity = holdings[key].quantity if key in holdings else int(row.quantity)
                holdings[key] = Holding(LineState(row.to_state), quantity)
        return held

    def _cancelling_many(self, conn: sa.Connection, orders: Sequence[OrderKey]) -> set[OrderKey]:
        """Which of ``orders`` ``_cancelling`` holds for."""
        c = shopee_outbox.c
        found: set[OrderKey] = set()
        for start in range(0, len(orders), 400):
            rows = conn.execute(
                sa.select(c.shop_id, c.order_sn).where(
                    sa.tuple_(c.shop_id, c.order_sn).in_(orders[start : start + 400]),
                    c.kind == CANCEL_ORDER_KIND,
                    c.state != "failed",
                )
            )
            found.update((int(shop_id), str(order_sn)) for shop_id, order_sn in rows)
        return found

    def _stock_levels(
        self, conn: sa.Connection, keys: Sequence[ModelKey]
    ) -> dict[ModelKey, StockLevel]:
        """The stock rows of ``keys`` that exist, locked (PostgreSQL) in key order."""
        s = erp_stock.c
        levels: dict[ModelKey, StockLevel] = {}
        # Chunks keep the IN list inside every database's parameter limit.
        for start in range(0, len(keys), 400):
            rows = conn.execute(
                sa.select(erp_stock)
                .where(sa.tuple_(s.item_id, s.model_id).in_(keys[start : start + 400]))
                .order_by(s.item_id, s.model_id)
                .with_for_update()
            )
            levels.update({(int(r.item_id), int(r.model_id)): _level(r) for r in rows})
        return levels

    def claim_cancel(
        self, snapshot: OrderSnapshot, payload: str, now: int, *, budget: int, since: int
    ) -> ClaimResult | Literal["covered"]:
        """Claim the OUT_OF_STOCK cancel of an order that was short (``Outbox``'s rules and
        the shop's daily budget), unless the order took stock meanwhile (``covered``: stock
        came back and another consumer reserved it). One transaction under the order's lock,
        so an order is never both reserved and cancelled for want of stock."""

        def work(conn: sa.Connection) -> ClaimResult | Literal["covered"]:
            self._lock_order(conn, snapshot)
            held = self._held(conn, snapshot.shop_id, snapshot.order_sn)
            if any(h.state is LineState.RESERVED for h in held.values()):
                return "covered"
            return claim_within_budget(
                conn,
                snapshot.shop_id,
                snapshot.order_sn,
                CANCEL_ORDER_KIND,
                payload,
                now,
                budget=budget,
                since=since,
            )

        return self._in_write_transaction(work)

    def reserve_if_available(self, snapshot: OrderSnapshot, now: int) -> LedgerResult:
        """Auto-cancel's first look at a not yet shipped order: reserve every line if stock
        covers them all, else reserve nothing and report exactly the short lines. Lines
        already reserved or closed are left as they are."""
        if phase_of(snapshot.status) is not Phase.OPEN:
            raise ValueError(f"an order in status {snapshot.status} does not take stock")
        return self.apply_ledger(snapshot, now)

    def line_states(self, shop_id: int, order_sn: str) -> dict[ModelKey, Holding]:
        with self._engine.connect() as conn:
            return self._held(conn, shop_id, order_sn)

    def _apply_ledger(self, conn: sa.Connection, snapshot: OrderSnapshot, now: int) -> LedgerResult:
        self._lock_order(conn, snapshot)
        quantities = snapshot.quantities()
        held = self._held(conn, snapshot.shop_id, snapshot.order_sn)
        planned = plan_transitions(snapshot.status, quantities, held)
        if any(t.after is LineState.RESERVED for t in planned) and self._cancelling(conn, snapshot):
            # Being cancelled for want of stock: stock that came back since must not be
            # taken by the order that is going away (whichever consumer sees it next).
            planned = [t for t in planned if t.after is not LineState.RESERVED]
        if not planned:
            return LedgerResult()
        levels = self._lock_stock(conn, sorted({(t.item_id, t.model_id) for t in planned}), now)
        short = shortages(planned, {key: level.available for key, level in levels.items()})
        if short:
            planned = [t for t in planned if t.after is not LineState.RESERVED]
        if planned:
            conn.execute(
                sa.insert(stock_ledger),
                [
                    dict(zip(_LEDGER_COLUMNS, _ledger_row(snapshot, t, now), strict=True))
                    for t in planned
                ],
            )
        s = erp_stock.c
        for move in stock_moves(planned):
            conn.execute(
                sa.update(erp_stock)
                .where(s.item_id == move.item_id, s.model_id == move.model_id)
                .values(
                    on_hand=s.on_hand + move.on_hand_delta,
                    reserved=s.reserved + move.reserved_delta,
                    updated_at=now,
                )
            )
        return LedgerResult(planned, short)

    def _lock_order(self, conn: sa.Connection, snapshot: OrderSnapshot) -> None:
        if self._postgres:
            # One order's lines change one transaction at a time; stock rows are then locked
            # in key order, so racing orders wait for each other instead of deadlocking.
            # (SQLite: the write transaction holds the whole database.)
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:ns, hashtext(:key))"),
                {"ns": _ORDER_LOCK_NAMESPACE, "key": f"{snapshot.shop_id}:{snapshot.order_sn}"},
            )

    def _cancelling(self, conn: sa.Connection, snapshot: OrderSnapshot) -> bool:
        c = shopee_outbox.c
        return (
            conn.execute(
                sa.select(c.id).where(
                    c.shop_id == snapshot.shop_id,
                    c.order_sn == snapshot.order_sn,
                    c.kind == CANCEL_ORDER_KIND,
                    # A cancel Shopee refused (or that did not happen) leaves the order in
                    # force: it takes stock like any other.
                    c.state != "failed",
                )
            ).first()
            is not None
        )

    def _held(self, conn: sa.Connection, shop_id: int, order_sn: str) -> dict[ModelKey, Holding]:
        c = stock_ledger.c
        rows = conn.execute(
            sa.select(c.item_id, c.model_id, c.to_state, c.quantity)
            .where(c.shop_id == shop_id, c.order_sn == order_sn)
            .order_by(c.step)
        )
        held: dict[ModelKey, Holding] = {}
        for row in rows:
            key = (int(row.item_id), int(row.model_id))
            state = LineState(row.to_state)
            # The quantity stays the one reserved at step 1, whatever later steps record.
            quantity = held[key].quantity if key in held else int(row.quantity)
            held[key] = Holding(state, quantity)
        return held

    # -- stock -------------------------------------------------------------------------

    def set_stock(self, item_id: int, model_id: int, on_hand: int, now: int) -> None:
        """Set one model's absolute count on hand (its reservations are unchanged)."""
        self.import_stock([StockCount(item_id, model_id, on_hand)], now, source="set")

    def import_stock(
        self, counts: Sequence[StockCount], now: int, *, source: str = "import"
    ) -> None:
        """Set absolute counts on hand for many models in one transaction (the last count of
        a model wins). Each change is recorded as an adjustment so the ledger still adds up."""
        latest = {(c.item_id, c.model_id): c.on_hand for c in counts}
        if not latest:
            return

        def write(conn: sa.Connection) -> None:
            levels = self._lock_stock(conn, sorted(latest), now)
            s = erp_stock.c
            for key, on_hand in sorted(latest.items()):
                conn.execute(
                    sa.update(erp_stock)
                    .where(s.item_id == key[0], s.model_id == key[1])
                    .values(on_hand=on_hand, updated_at=now)
                )
            conn.execute(
                sa.insert(stock_adjustments),
                [
                    {
                        "item_id": key[0],
                        "model_id": key[1],
                        "on_hand_delta": on_hand - levels[key].on_hand,
                        "on_hand_after": on_hand,
                        "source": source,
                        "recorded_at": now,
                    }
                    for key, on_hand in sorted(latest.items())
                ],
            )

        self._in_write_transaction(write)

    def stock(self) -> list[StockLevel]:
        """Every model the store knows, by item and model."""
        s = erp_stock.c
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(erp_stock).order_by(s.item_id, s.model_id))
            return [_level(row) for row in rows]

    def ledger_totals(self) -> dict[ModelKey, tuple[int, int]]:
        """Per model, ``(on_hand, reserved)`` as the ledger and the stock counts add up."""
        totals: dict[ModelKey, tuple[int, int]] = {}
        led, adj = stock_ledger.c, stock_adjustments.c
        with self._engine.connect() as conn:
            moved = conn.execute(
                sa.select(
                    led.item_id,
                    led.model_id,
                    sa.func.sum(led.on_hand_delta),
                    sa.func.sum(led.reserved_delta),
                ).group_by(led.item_id, led.model_id)
            ).all()
            counted = conn.execute(
                sa.select(adj.item_id, adj.model_id, sa.func.sum(adj.on_hand_delta)).group_by(
                    adj.item_id, adj.model_id
                )
            ).all()
        for item, model, on_hand, reserved in moved:
            totals[(int(item), int(model))] = (int(on_hand), int(reserved))
        for item, model, on_hand in counted:
            before = totals.get((int(item), int(model)), (0, 0))
            totals[(int(item), int(model))] = (before[0] + int(on_hand), before[1])
        return totals

    def _lock_stock(
        self, conn: sa.Connection, keys: list[ModelKey], now: int
    ) -> dict[ModelKey, StockLevel]:
        """Create missing stock rows (zero) and lock all of ``keys``, in key order."""
        insert = conflict_insert(conn.dialect.name, erp_stock)
        conn.execute(
            insert.on_conflict_do_nothing(index_elements=["item_id", "model_id"]),
            [
                {"item_id": i, "model_id": m, "on_hand": 0, "reserved": 0, "updated_at": now}
                for i, m in keys
            ],
        )
        return self._stock_levels(conn, keys)

    # -- transactions ------------------------------------------------------------------

    def _in_write_transaction(self, work: Callable[[sa.Connection], T]) -> T:
        for attempt in range(1, self._attempts + 1):
            try:
                with write_transaction(self._engine) as conn:
                    return work(conn)
            except sa.exc.DBAPIError as exc:
                if not _retryable(exc) or attempt == self._attempts:
                    raise
        raise AssertionError("unreachable")


def _retryable(exc: BaseException) -> bool:
    """A racer got there first (``_RETRY_SQLSTATES``): the transaction may be tried again."""
    return (
        isinstance(exc, sa.exc.DBAPIError)
        and getattr(exc.orig, "sqlstate", None) in _RETRY_SQLSTATES
    )


def _abandon(conn: sa.Connection) -> None:
    """Roll back and close ``conn`` after a failure (which the caller raises: a failure to
    roll back on a broken connection must not hide it)."""
    with contextlib.suppress(sa.exc.SQLAlchemyError):
        conn.rollback()
    with contextlib.suppress(sa.exc.SQLAlchemyError):
        conn.close()


def _finish(
    conn: sa.Connection,
    write: Callable[[sa.Connection], None],
    written: list[bool],
    again: Callable[[], list[bool]],
) -> list[bool]:
    """``start_orders``' second step, on the writer thread: the writes left and the commit."""
    try:
        write(conn)
        conn.commit()
    except BaseException as exc:
        _abandon(conn)
        if not _retryable(exc):
            raise
        return again()
    conn.close()
    return written


_LEDGER_COLUMNS = (
    "shop_id",
    "order_sn",
    "item_id",
    "model_id",
    "step",
    "from_state",
    "to_state",
    "quantity",
    "on_hand_delta",
    "reserved_delta",
    "order_status",
    "order_update_time",
    "recorded_at",
)


def _ledger_row(snapshot: OrderSnapshot, t: Transition, now: int) -> tuple[Any, ...]:
    """The ``stock_ledger`` row of ``t``, in ``_LEDGER_COLUMNS`` order."""
    return (
        snapshot.shop_id,
        snapshot.order_sn,
        t.item_id,
        t.model_id,
        t.step,
        t.before.value,
        t.after.value,
        t.quantity,
        t.on_hand_delta,
        t.reserved_delta,
        snapshot.status,
        snapshot.update_time,
        now,
    )


_ORDER_KEY = ("shop_id", "order_sn")
_ORDER_COLUMNS = ("shop_id", "order_sn", "status", "update_time", "synced_at", "lines_digest")
_HEAD_COLUMNS = ("shop_id", "order_sn", "status", "update_time", "lines_digest")
_LINE_COLUMNS = ("shop_id", "order_sn", "line_no", "item_id", "model_id", "quantity")


class _Head(NamedTuple):
    """An order as stored: what decides whether a snapshot supersedes it and whether its
    lines need writing."""

    status: str
    update_time: int
    lines_digest: str | None


def _order_row(
    snapshot: OrderSnapshot, now: int, lines_digest: str
) -> tuple[int, str, str, int, int, str]:
    return (
        snapshot.shop_id,
        snapshot.order_sn,
        snapshot.status,
        snapshot.update_time,
        now,
        lines_digest,
    )


def _in_turn(
    snapshots: Sequence[OrderSnapshot], heads: dict[OrderKey, _Head]
) -> tuple[list[bool], dict[OrderKey, OrderSnapshot]]:
    """Per snapshot, whether it supersedes its order as stored (``heads``) and as left by the
    batch's earlier snapshots; and per order, the last snapshot that did."""
    current = {key: (head.status, head.update_time) for key, head in heads.items()}
    written: list[bool] = []
    newest: dict[OrderKey, OrderSnapshot] = {}
    for snapshot in snapshots:
        key = (snapshot.shop_id, snapshot.order_sn)
        ok = _supersedes(snapshot, current.get(key))
        if ok:
            current[key] = (snapshot.status, snapshot.update_time)
            newest[key] = snapshot
        written.append(ok)
    return written, newest


def _supersedes(snapshot: OrderSnapshot, head: tuple[str, int] | None) -> bool:
    """Whether ``snapshot`` replaces the stored ``(status, update_time)``: newer, or the same
    second with another status. Shopee's update_time has one-second resolution and the
    enricher emits the later of two such changes after the earlier one (same time and status
    is a duplicate)."""
    if head is None:
        return True
    status, update_time = head
    return update_time < snapshot.update_time or (
        update_time == snapshot.update_time and status != snapshot.status
    )


def _level(row: sa.Row[Any]) -> StockLevel:
    return StockLevel(int(row.item_id), int(row.model_id), int(row.on_hand), int(row.reserved))
