"""OrderActions: what consumers did, kept with the effect and published on the actions topic.

An action is written in the same database transaction as the effect it describes
(``consumers.erp.outbox.insert_actions``), so an effect never happens without its record.
``ActionPublisher`` then puts the consumer's unpublished actions on
``shopee.order-actions`` and marks them published once the broker acknowledged them: a
process that dies in between publishes them on its next batch (at least once; the
``action_id`` is deterministic, so subscribers drop repeats by it).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Literal

from consumers.erp.ledger import LineState
from consumers.erp.outbox import ActionRecord
from consumers.erp.store import LedgerResult
from orderflow.kafka import Producer, wait_all
from orderflow.metrics import Metrics
from schemas.codec import AvroCodec
from schemas.models import ActionLine, OrderAction, OrderEvent, order_key

ActionOutcome = Literal["applied", "skipped", "dry_run", "rejected", "failed"]

# Fixed forever: changing it would change every action id.
_ACTION_NAMESPACE = uuid.UUID("6f726465-7266-6c6f-7700-616374696f6e")


def action_id(shop_id: int, order_sn: str, kind: str, *facts: object) -> str:
    """The deterministic id of "this effect on this order": equal effects, equal ids."""
    parts = [str(shop_id), order_sn, kind, *(str(fact) for fact in facts)]
    return str(uuid.uuid5(_ACTION_NAMESPACE, "|".join(parts)))


def make_action(
    event: OrderEvent,
    *,
    consumer: str,
    kind: str,
    outcome: ActionOutcome,
    now: float,
    lines: Iterable[tuple[int, int, int]] = (),
    error: str | None = None,
    details: Mapping[str, object] | None = None,
    facts: tuple[object, ...] = (),
) -> OrderAction:
    """An OrderAction about ``event``'s order. ``facts`` tell apart effects of one kind on one
    order (an ERP write per update_time, a buyer-cancellation answer per request)."""
    skus = {(i.item_id, i.model_id): i.model_sku or i.item_sku for i in event.items}
    return OrderAction(
        action_id=action_id(event.shop_id, event.order_sn, kind, *facts),
        marketplace=event.marketplace,
        shop_id=event.shop_id,
        order_sn=event.order_sn,
        consumer=consumer,
        kind=kind,
        lines=tuple(
            ActionLine(item_id=item, model_id=model, sku=skus.get((item, model)), quantity=qty)
            for item, model, qty in lines
        ),
        outcome=outcome,
        error=None if error is None else error[:2000],
        event_id=event.event_id,
        details={key: str(value) for key, value in (details or {}).items()},
        occurred_at=datetime.fromtimestamp(now, UTC),
    )


class ActionPublisher:
    """Publishes one consumer's recorded actions."""

    def __init__(
        self,
        record: ActionRecord,
        producer: Producer,
        codec: AvroCodec[OrderAction],
        metrics: Metrics,
        *,
        consumer: str,
        batch: int = 500,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._record = record
        self._producer = producer
        self._codec = codec
        self._metrics = metrics
        self._consumer = consumer
        self._batch = batch
        self._clock = clock

    def publish_pending(self) -> int:
        """Publish every unpublished action of this consumer; how many were published.
        Raises ``KafkaUnavailable`` (transient) and leaves the rest for the next call."""
        published = 0
        while True:
            with self._record.publishing(
                self._consumer, int(self._clock()), limit=self._batch
            ) as pending:
                if not pending:
                    return published
                futures = [
                    self._producer.submit(
                        self._codec.topic,
                        key=order_key(action.shop_id, action.order_sn),
                        value=self._codec.encode(action),
                        headers=[("action_id", action.action_id.encode())]
                        + ([("event_id", action.event_id.encode())] if action.event_id else []),
                    )
                    for _, action in pending
                ]
                wait_all(futures, time.monotonic() + 30.0, what="order actions")
            for _, action in pending:
                self._metrics.order_actions.labels(
                    action.consumer, action.kind, action.outcome
                ).inc()
            published += len(pending)
            if len(pending) < self._batch:
                return published


_LEDGER_KINDS = {
    LineState.RESERVED: "stock_reserve",
    LineState.RELEASED: "stock_restore",
    LineState.DEDUCTED: "stock_deduct",
}


def ledger_actions(
    event: OrderEvent, result: LedgerResult, *, consumer: str, now: float
) -> list[OrderAction]:
    """One action per kind of stock change the ledger made for the order (a line closed
    without a stock change is not a side effect and is not reported)."""
    by_kind: dict[str, list[tuple[int, int, int]]] = {}
    for t in result.transitions:
        kind = _LEDGER_KINDS.get(t.after)
        if kind is not None:
            by_kind.setdefault(kind, []).append((t.item_id, t.model_id, t.quantity))
    return [
        make_action(
            event,
            consumer=consumer,
            kind=kind,
            outcome="applied",
            now=now,
            lines=lines,
            details={"status": event.status},
            # Each line changes state once per kind; the lines name the effect.
            facts=tuple(f"{item}/{model}" for item, model, _ in sorted(lines)),
        )
        for kind, lines in by_kind.items()
    ]
