"""The outbox of Shopee calls (at most one call of a kind per order, ever) and the record of
actions consumers took. Both are durable before the effect they describe, so a crash between
deciding and calling can be resolved without calling twice."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from consumers.erp import bulk
from consumers.erp.tables import order_actions, shopee_outbox
from orderflow.db import conflict_insert
from schemas.codec import AvroCodec
from schemas.models import OrderAction

CallState = Literal["pending", "sent", "succeeded", "failed", "unknown"]

# Namespace of the per-shop advisory lock the budget is counted under.
_BUDGET_LOCK_NAMESPACE = 0x4255

ClaimResult = Literal["claimed", "exists", "over_budget"]

# Forward only: a call is written pending, marked sent just before the request, and ends
# succeeded or failed; a call whose answer was lost is unknown until read back. The one step
# back, sent -> pending, is for an answer that proves the request was not applied (Shopee
# refused it with an error envelope, or the connection never opened), so sending again
# cannot make a second call take effect.
_MAY_FOLLOW: dict[str, frozenset[str]] = {
    "pending": frozenset({"sent", "failed"}),
    "sent": frozenset({"succeeded", "failed", "unknown", "pending"}),
    "unknown": frozenset({"succeeded", "failed"}),
    "succeeded": frozenset(),
    "failed": frozenset(),
}


@dataclass(frozen=True)
class OutboxCall:
    shop_id: int
    order_sn: str
    kind: str
    state: CallState
    payload: str
    attempts: int
    last_error: str | None
    updated_at: int = 0


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def claim(self, shop_id: int, order_sn: str, kind: str, payload: str, now: int) -> bool:
        """Write a pending call unless one of this kind exists for the order; True when this
        caller wrote it (and so is the one that may make the call)."""
        insert = conflict_insert(self._engine.dialect.name, shopee_outbox)
        statement = (
            insert.values(**_pending(shop_id, order_sn, kind, payload, now))
            .on_conflict_do_nothing(index_elements=["shop_id", "order_sn", "kind"])
            .returning(shopee_outbox.c.id)
        )
        with self._engine.begin() as conn:
            return len(conn.execute(statement).all()) == 1

    def spent(self, shop_id: int, kind: str, since: int) -> int:
        """Calls of ``kind`` the shop claimed since ``since`` (epoch seconds)."""
        c = shopee_outbox.c
        with self._engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(
                        c.shop_id == shop_id, c.kind == kind, c.created_at >= since
                    )
                ).scalar_one()
            )

    def move(
        self,
        shop_id: int,
        order_sn: str,
        kind: str,
        state: CallState,
        now: int,
        error: str | None = None,
    ) -> bool:
        """Move the call to ``state`` if that is forward from where it is (``sent`` counts an
        attempt); False, and nothing changes, otherwise."""
        c = shopee_outbox.c
        allowed = [before for before, after in _MAY_FOLLOW.items() if state in after]
        values: dict[str, Any] = {"state": state, "updated_at": now, "last_error": error}
        if state == "sent":
            values["attempts"] = c.attempts + 1
        with self._engine.begin() as conn:
            moved = conn.execute(
                sa.update(shopee_outbox)
                .where(
                    c.shop_id == shop_id,
                    c.order_sn == order_sn,
                    c.kind == kind,
                    c.state.in_(allowed),
                )
                .values(**values)
                .returning(c.id)
            ).all()
        return len(moved) == 1

    def get(self, shop_id: int, order_sn: str, kind: str) -> OutboxCall | None:
        c = shopee_outbox.c
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(shopee_outbox).where(
                    c.shop_id == shop_id, c.order_sn == order_sn, c.kind == kind
                )
            ).first()
        return None if row is None else _call(row)

    def orders_with(self, kind: str, orders: Collection[tuple[int, str]]) -> set[tuple[int, str]]:
        """Which of ``orders`` (``(shop_id, order_sn)``) have a call of ``kind``, in any
        state (``get`` for many orders at once)."""
        c, keys = shopee_outbox.c, sorted(orders)
        found: set[tuple[int, str]] = set()
        with self._engine.connect() as conn:
            # Chunks keep the IN list inside every database's parameter limit.
            for start in range(0, len(keys), 400):
                rows = conn.execute(
                    sa.select(c.shop_id, c.order_sn).where(
                        c.kind == kind,
                        sa.tuple_(c.shop_id, c.order_sn).in_(keys[start : start + 400]),
                    )
                )
                found.update((int(shop_id), str(order_sn)) for shop_id, order_sn in rows)
        return found

    def in_state(self, *states: CallState) -> list[OutboxCall]:
        """Calls left in ``states`` (e.g. pending, sent or unknown after a crash), oldest first."""
        c = shopee_outbox.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(shopee_outbox).where(c.state.in_(states)).order_by(c.id)
            ).all()
        return [_call(row) for row in rows]


def claim_within_budget(
    conn: sa.Connection,
    shop_id: int,
    order_sn: str,
    kind: str,
    payload: str,
    now: int,
    *,
    budget: int,
    since: int,
) -> ClaimResult:
    """Claim a call (as ``Outbox.claim``) unless the shop already claimed ``budget`` calls of
    this kind since ``since`` (epoch seconds); inside the caller's write transaction, so it is
    one decision with what the caller read under the same locks. Counting and claiming are
    one step under a per-shop lock, so replicas racing for a shop's last cancel of the day
    make one call between them."""
    c = shopee_outbox.c
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(:ns, :shop)"),
            {"ns": _BUDGET_LOCK_NAMESPACE, "shop": shop_id % 2**31},
        )
    exists = conn.execute(
        sa.select(c.id).where(c.shop_id == shop_id, c.order_sn == order_sn, c.kind == kind)
    ).first()
    if exists is not None:
        return "exists"
    spent = conn.execute(
        sa.select(sa.func.count()).where(
            c.shop_id == shop_id, c.kind == kind, c.created_at >= since
        )
    ).scalar_one()
    if int(spent) >= budget:
        return "over_budget"
    conn.execute(sa.insert(shopee_outbox).values(**_pending(shop_id, order_sn, kind, payload, now)))
    return "claimed"


def _pending(shop_id: int, order_sn: str, kind: str, payload: str, now: int) -> dict[str, Any]:
    return {
        "shop_id": shop_id,
        "order_sn": order_sn,
        "kind": kind,
        "state": "pending",
        "payload": payload,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def _call(row: sa.Row[Any]) -> OutboxCall:
    return OutboxCall(
        int(row.shop_id),
        str(row.order_sn),
        str(row.kind),
        row.state,
        str(row.payload),
        int(row.attempts),
        row.last_error,
        int(row.updated_at),
    )


class ActionRow(NamedTuple):
    """One ``order_actions`` row as it is written, in column order: the action's own columns,
    then the whole action either as JSON (``detail``) or as the Kafka record it is published
    as (the framed Avro value and the ``event_id`` header), or both."""

    action_id: str
    shop_id: int
    order_sn: str
    consumer: str
    kind: str
    outcome: str
    detail: str | None
    occurred_at: int  # epoch seconds
    event_id: str | None = None
    record_value: bytes | None = None

    @classmethod
    def of(cls, action: OrderAction) -> ActionRow:
        return cls(
            action.action_id,
            action.shop_id,
            action.order_sn,
            action.consumer,
            action.kind,
            action.outcome,
            action.model_dump_json(),
            int(action.occurred_at.timestamp()),
            action.event_id,
        )


def insert_actions(conn: sa.Connection, rows: Sequence[ActionRow]) -> None:
    """Keep each action once per ``action_id``, inside the caller's transaction (the one that
    made the effect durable)."""
    bulk.insert_rows(conn, order_actions, ActionRow._fields, rows, unless_exists=("action_id",))


class Unpublished(NamedTuple):
    """A recorded action not yet published: its row, what it was, and either its stored
    record (``record_value``, ``event_id``) or, for a row recorded without one, its JSON."""

    row_id: int
    kind: str
    outcome: str
    action_id: str
    shop_id: int
    order_sn: str
    event_id: str | None
    record_value: bytes | None
    detail: str | None


class ActionRecord:
    """Actions consumers took, kept (in the effect's own transaction) until published on
    ``shopee.order-actions``: an effect whose process dies before publishing is published
    by the next one.

    Reading actions back as ``OrderAction`` (``unpublished``, ``all``) needs ``codec`` for
    rows recorded with their Kafka record only (erp-sync's before 2026-12); publishing never
    does."""

    def __init__(self, engine: Engine, codec: AvroCodec[OrderAction] | None = None) -> None:
        self._engine = engine
        self._codec = codec

    def record(self, action: OrderAction) -> bool:
        """Keep ``action`` once per ``action_id``; True when it was new."""
        c = order_actions.c
        with self._engine.begin() as conn:
            inserted = conn.execute(
                conflict_insert(conn.dialect.name, order_actions)
                .values(ActionRow.of(action)._asdict())
                .on_conflict_do_nothing(index_elements=[c.action_id])
                .returning(c.id)
            )
            return len(inserted.all()) == 1

    def unpublished(self, consumer: str, limit: int = 500) -> list[tuple[int, OrderAction]]:
        """``consumer``'s actions not yet published, oldest first, with their row ids."""
        c = order_actions.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(c.id, c.detail, c.record_value)
                .where(c.published_at.is_(None), c.consumer == consumer)
                .order_by(c.id)
                .limit(limit)
            ).all()
        return [(int(r.id), self._action(r.detail, r.record_value)) for r in rows]

    @contextmanager
    def publishing(self, consumer: str, now: int, limit: int = 500) -> Iterator[list[Unpublished]]:
        """``consumer``'s oldest unpublished actions, marked published when the block ends
        without an error. On PostgreSQL the rows stay locked meanwhile and replicas skip
        them, so two replicas never publish the same action; SQLite serves one replica."""
        if self._engine.dialect.name != "postgresql":
            with self._engine.connect() as conn:
                pending = self._oldest_unpublished(conn, consumer, limit, lock=False)
            yield pending
            self.mark_published([p.row_id for p in pending], now)
            return
        with self._engine.begin() as conn:
            pending = self._oldest_unpublished(conn, consumer, limit, lock=True)
            yield pending
            _mark_published(conn, [p.row_id for p in pending], now)

    def _oldest_unpublished(
        self, conn: sa.Connection, consumer: str, limit: int, *, lock: bool
    ) -> list[Unpublished]:
        c = order_actions.c
        query = (
            sa.select(
                c.id,
                c.kind,
                c.outcome,
                c.action_id,
                c.shop_id,
                c.order_sn,
                c.event_id,
                c.record_value,
                # The JSON only where there is no record to send.
                sa.case((c.record_value.is_(None), c.detail)),
            )
            .where(c.published_at.is_(None), c.consumer == consumer)
            .order_by(c.id)
            .limit(limit)
        )
        if lock:
            query = query.with_for_update(skip_locked=True)
        return [Unpublished(*row) for row in conn.execute(query)]

    def mark_published(self, ids: Sequence[int], now: int) -> None:
        if ids:
            with self._engine.begin() as conn:
                _mark_published(conn, ids, now)

    def all(self, consumer: str | None = None) -> list[OrderAction]:
        """Every recorded action (of ``consumer``), oldest first."""
        c = order_actions.c
        query = sa.select(c.detail, c.record_value).order_by(c.id)
        if consumer is not None:
            query = query.where(c.consumer == consumer)
        with self._engine.connect() as conn:
            return [self._action(r.detail, r.record_value) for r in conn.execute(query)]

    def _action(self, detail: str | None, record_value: bytes | None) -> OrderAction:
        if detail is not None:
            return OrderAction.model_validate_json(detail)
        if record_value is None or self._codec is None:
            raise ValueError(
                "an action recorded as its Kafka record only is read with the actions codec: "
                "ActionRecord(engine, codec)"
            )
        return self._codec.decode(record_value)


def _mark_published(conn: sa.Connection, ids: Sequence[int], now: int) -> None:
    # One statement for the whole batch (an IN list of 500 ids costs SQLAlchemy more to
    # expand than the database to run).
    bulk.update_rows(conn, order_actions, ("id",), ("published_at",), [(i, now) for i in ids])
