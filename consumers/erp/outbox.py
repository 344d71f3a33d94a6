"""The outbox of Shopee calls (at most one call of a kind per order, ever) and the record of
actions consumers took. Both are durable before the effect they describe, so a crash between
deciding and calling can be resolved without calling twice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from consumers.erp.tables import order_actions, shopee_outbox
from orderflow.db import conflict_insert

CallState = Literal["pending", "sent", "succeeded", "failed", "unknown"]

# Forward only: a call is written pending, marked sent just before the request, and ends
# succeeded or failed; a call whose answer was lost is unknown until read back.
_MAY_FOLLOW: dict[str, frozenset[str]] = {
    "pending": frozenset({"sent", "failed"}),
    "sent": frozenset({"succeeded", "failed", "unknown"}),
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


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def claim(self, shop_id: int, order_sn: str, kind: str, payload: str, now: int) -> bool:
        """Write a pending call unless one of this kind exists for the order; True when this
        caller wrote it (and so is the one that may make the call)."""
        insert = conflict_insert(self._engine.dialect.name, shopee_outbox)
        statement = (
            insert.values(
                shop_id=shop_id,
                order_sn=order_sn,
                kind=kind,
                state="pending",
                payload=payload,
                attempts=0,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["shop_id", "order_sn", "kind"])
            .returning(shopee_outbox.c.id)
        )
        with self._engine.begin() as conn:
            return len(conn.execute(statement).all()) == 1

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

    def in_state(self, *states: CallState) -> list[OutboxCall]:
        """Calls left in ``states`` (e.g. pending, sent or unknown after a crash), oldest first."""
        c = shopee_outbox.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(shopee_outbox).where(c.state.in_(states)).order_by(c.id)
            ).all()
        return [_call(row) for row in rows]


def _call(row: sa.Row[Any]) -> OutboxCall:
    return OutboxCall(
        int(row.shop_id),
        str(row.order_sn),
        str(row.kind),
        row.state,
        str(row.payload),
        int(row.attempts),
        row.last_error,
    )


@dataclass(frozen=True)
class RecordedAction:
    action_id: str
    shop_id: int
    order_sn: str
    consumer: str
    kind: str
    outcome: str
    detail: str
    occurred_at: int


class ActionRecord:
    """Actions consumers took, kept until published on ``shopee.order-actions``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, action: RecordedAction) -> bool:
        """Keep ``action`` once per ``action_id``; True when it was new."""
        insert = conflict_insert(self._engine.dialect.name, order_actions)
        statement = (
            insert.values(
                action_id=action.action_id,
                shop_id=action.shop_id,
                order_sn=action.order_sn,
                consumer=action.consumer,
                kind=action.kind,
                outcome=action.outcome,
                detail=action.detail,
                occurred_at=action.occurred_at,
            )
            .on_conflict_do_nothing(index_elements=["action_id"])
            .returning(order_actions.c.id)
        )
        with self._engine.begin() as conn:
            return len(conn.execute(statement).all()) == 1

    def unpublished(self, limit: int = 500) -> list[RecordedAction]:
        c = order_actions.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(order_actions).where(c.published_at.is_(None)).order_by(c.id).limit(limit)
            ).all()
        return [
            RecordedAction(
                str(r.action_id),
                int(r.shop_id),
                str(r.order_sn),
                str(r.consumer),
                str(r.kind),
                str(r.outcome),
                str(r.detail),
                int(r.occurred_at),
            )
            for r in rows
        ]

    def mark_published(self, action_ids: list[str], now: int) -> None:
        if action_ids:
            c = order_actions.c
            with self._engine.begin() as conn:
                conn.execute(
                    sa.update(order_actions)
                    .where(c.action_id.in_(action_ids), c.published_at.is_(None))
                    .values(published_at=now)
                )
