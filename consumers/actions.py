"""OrderActions: what consumers did, kept with the effect and published on the actions topic.

An action is written in the same database transaction as the effect it describes
(``consumers.erp.outbox.insert_actions``), so an effect never happens without its record.
``ActionPublisher`` then puts the consumer's unpublished actions on
``shopee.order-actions`` and marks them published once the broker acknowledged them: a
process that dies in between leaves them unpublished, and they are published by the next
publisher of that consumer (at least once; the ``action_id`` is deterministic, so subscribers
drop repeats by it). Where the publisher runs is ``consumers.publishing``'s business.

A consumer that records an action per event (erp-sync) builds it as its JSON values
(``action_values``) and stores those (``action_row``): no model is built or validated on the
way, and the row reads back as the same ``OrderAction`` that ``make_action`` builds. The
publisher encodes it (``ActionEncoder``) on its own core. Rows written by earlier versions of
erp-sync hold the encoded record instead of the JSON (``action_row`` with an encoder); both
publish the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal, TypedDict

import fastavro
import pydantic_core

from consumers.erp.ledger import LineState
from consumers.erp.outbox import ActionRecord, ActionRow, Unpublished
from consumers.erp.store import LedgerResult
from orderflow.kafka import Headers, KafkaUnavailable, Outcome, Producer
from schemas.codec import AvroCodec, frame
from schemas.models import OrderAction, OrderEvent, order_key
from schemas.wire import millis, strip_logical_types

ActionOutcome = Literal["applied", "skipped", "dry_run", "rejected", "failed"]

# Fixed forever: changing it would change every action id.
_ACTION_NAMESPACE = uuid.UUID("6f726465-7266-6c6f-7700-616374696f6e").bytes


def action_id(shop_id: int, order_sn: str, kind: str, *facts: object) -> str:
    """The deterministic id of "this effect on this order": equal effects, equal ids.

    The name-based (version 5) UUID of the parts in the action namespace, as ``uuid.uuid5``
    makes it, without building ``UUID`` objects: erp-sync makes one per event."""
    name = "|".join(map(str, (shop_id, order_sn, kind, *facts))).encode()
    digest = hashlib.sha1(_ACTION_NAMESPACE + name, usedforsecurity=False).hexdigest()
    # RFC 4122: the version (5) replaces the top nibble of octet 6, the variant (binary 10)
    # the top two bits of octet 8.
    variant = "89ab"[int(digest[16], 16) & 3]
    return f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-{variant}{digest[17:20]}-{digest[20:32]}"


class ActionLineJson(TypedDict):
    item_id: int
    model_id: int
    sku: str | None
    quantity: int


class ActionJson(TypedDict):
    """An ``OrderAction`` as its JSON values (``occurred_at`` an ISO 8601 string)."""

    action_id: str
    marketplace: str
    shop_id: int
    order_sn: str
    consumer: str
    kind: str
    lines: list[ActionLineJson]
    outcome: ActionOutcome
    error: str | None
    event_id: str | None
    details: dict[str, str]
    occurred_at: str


def action_values(
    event: OrderEvent,
    *,
    consumer: str,
    kind: str,
    outcome: ActionOutcome,
    now: float,
    lines: Iterable[tuple[int, int, int]] = (),
    every_line: bool = False,
    error: str | None = None,
    details: Mapping[str, object] | None = None,
    facts: tuple[object, ...] = (),
) -> ActionJson:
    """An OrderAction about ``event``'s order, as JSON values: about ``lines`` (item, model,
    quantity), or with ``every_line``, about each of the event's lines as it is. ``facts``
    tell apart effects of one kind on one order (an ERP write per update_time, a
    buyer-cancellation answer per request)."""
    if every_line:
        # erp-sync, once per event: the lines straight from the event, no lookup.
        line_values: list[ActionLineJson] = [
            {
                "item_id": line.item_id,
                "model_id": line.model_id,
                "sku": line.model_sku or line.item_sku,
                "quantity": line.quantity,
            }
            for line in event.items
        ]
    else:
        skus = {(i.item_id, i.model_id): i.model_sku or i.item_sku for i in event.items}
        line_values = [
            {"item_id": item, "model_id": model, "sku": skus.get((item, model)), "quantity": qty}
            for item, model, qty in lines
        ]
    return {
        "action_id": action_id(event.shop_id, event.order_sn, kind, *facts),
        "marketplace": event.marketplace,
        "shop_id": event.shop_id,
        "order_sn": event.order_sn,
        "consumer": consumer,
        "kind": kind,
        "lines": line_values,
        "outcome": outcome,
        "error": None if error is None else error[:2000],
        "event_id": event.event_id,
        "details": {key: str(value) for key, value in (details or {}).items()},
        "occurred_at": _timestamp(now),
    }


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
    """``action_values`` as a validated ``OrderAction``."""
    values = action_values(
        event,
        consumer=consumer,
        kind=kind,
        outcome=outcome,
        now=now,
        lines=lines,
        error=error,
        details=details,
        facts=facts,
    )
    return OrderAction.model_validate(values)


def action_row(values: ActionJson, encoder: ActionEncoder | None = None) -> ActionRow:
    """The ``order_actions`` row of an action given as its JSON values: kept as JSON, or,
    with ``encoder``, as its Kafka record (encoded here, once, instead of by the publisher;
    the record holds every field, so the JSON is not written as well)."""
    return ActionRow(
        values["action_id"],
        values["shop_id"],
        values["order_sn"],
        values["consumer"],
        values["kind"],
        values["outcome"],
        # pydantic-core's encoder: a quarter of the json module's time, once per action.
        pydantic_core.to_json(values).decode() if encoder is None else None,
        _millis(values["occurred_at"]) // 1000,
        values["event_id"],
        None if encoder is None else encoder.value(values),
    )


@lru_cache(maxsize=4)
def _millis(timestamp: str) -> int:
    """An ISO 8601 timestamp of ``_timestamp`` as epoch milliseconds (cached likewise)."""
    return millis(datetime.fromisoformat(timestamp))


@lru_cache(maxsize=4)
def _timestamp(now: float) -> str:
    """``now`` as OrderAction keeps a timestamp (UTC, to the millisecond), in ISO 8601. A
    batch's actions share one ``now``: the cache makes that one conversion."""
    moment = datetime.fromtimestamp(now, UTC)
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000).isoformat()


class ActionEncoder:
    """Actions to their Kafka records for one topic: the bytes ``codec.encode`` writes for
    the same ``OrderAction``, from its values, without building the model."""

    def __init__(self, codec: AvroCodec[OrderAction]) -> None:
        self._codec = codec
        # The codec's schema with its logical types taken out, parsed once: the values carry
        # occurred_at as epoch milliseconds, as the wire does.
        self._plain = fastavro.parse_schema(strip_logical_types(codec.schema), named_schemas={})

    @property
    def topic(self) -> str:
        return self._codec.topic

    def value(self, values: ActionJson) -> bytes:
        """The framed Avro value of an action given as its JSON values."""
        plain: dict[str, object] = {**values, "occurred_at": _millis(values["occurred_at"])}
        body = io.BytesIO()
        fastavro.schemaless_writer(body, self._plain, plain)
        return frame(self._codec.schema_id, body.getvalue())

    def record(self, action: Unpublished) -> tuple[bytes, bytes, Headers]:
        """Key, framed Avro value and headers (``action_id``, ``event_id``) of a recorded
        action: its stored record, or, for a row recorded without one, its JSON encoded."""
        value, event_id = action.record_value, action.event_id
        if value is None:
            assert action.detail is not None  # a row has one or the other
            # pydantic-core's parser: less than half the json module's time.
            values = pydantic_core.from_json(action.detail)
            value, event_id = self.value(values), values["event_id"]
        headers = [("action_id", action.action_id.encode())]
        if event_id:
            headers.append(("event_id", event_id.encode()))
        return order_key(action.shop_id, action.order_sn), value, headers


class _Acknowledgements:
    """Counts one batch's acknowledgements as the producer's I/O thread reports them."""

    def __init__(self, expected: int) -> None:
        self._left = expected
        self._failure: KafkaUnavailable | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        if expected == 0:
            self._done.set()

    def settle(self, outcome: Outcome) -> None:
        with self._lock:
            if isinstance(outcome, KafkaUnavailable) and self._failure is None:
                self._failure = outcome
            self._left -= 1
            if self._left == 0:
                self._done.set()

    def wait(self, timeout: float) -> None:
        """Return once every record is acknowledged; ``KafkaUnavailable`` if one was not."""
        if not self._done.wait(timeout):
            raise KafkaUnavailable(
                f"{self._left} order actions not acknowledged within {timeout:.0f}s"
            )
        if self._failure is not None:
            raise self._failure


class ActionPublisher:
    """Publishes one consumer's recorded actions."""

    def __init__(
        self,
        record: ActionRecord,
        producer: Producer,
        encoder: ActionEncoder,
        *,
        consumer: str,
        batch: int = 500,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._record = record
        self._producer = producer
        self._encoder = encoder
        self._consumer = consumer
        self._batch = batch
        self._clock = clock

    def publish_pending(self) -> Counter[tuple[str, str]]:
        """Publish every unpublished action of this consumer; how many were published, by
        kind and outcome. Raises ``KafkaUnavailable`` (transient) and leaves the rest for
        the next call."""
        published: Counter[tuple[str, str]] = Counter()
        topic = self._encoder.topic
        while True:
            with self._record.publishing(
                self._consumer, int(self._clock()), limit=self._batch
            ) as pending:
                if not pending:
                    return published
                acknowledged = _Acknowledgements(len(pending))
                for action in pending:
                    key, value, headers = self._encoder.record(action)
                    self._producer.enqueue(
                        topic, key=key, value=value, headers=headers, on_done=acknowledged.settle
                    )
                acknowledged.wait(30.0)
            published.update((action.kind, action.outcome) for action in pending)
            if len(pending) < self._batch:
                return published


_LEDGER_KINDS = {
    LineState.RESERVED: "stock_reserve",
    LineState.RELEASED: "stock_restore",
    LineState.DEDUCTED: "stock_deduct",
}


def ledger_actions(
    event: OrderEvent, result: LedgerResult, *, consumer: str, now: float
) -> list[ActionRow]:
    """One action per kind of stock change the ledger made for the order (a line closed
    without a stock change is not a side effect and is not reported)."""
    by_kind: dict[str, list[tuple[int, int, int]]] = {}
    for t in result.transitions:
        kind = _LEDGER_KINDS.get(t.after)
        if kind is not None:
            by_kind.setdefault(kind, []).append((t.item_id, t.model_id, t.quantity))
    return [
        action_row(
            action_values(
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
        )
        for kind, lines in by_kind.items()
    ]
