"""Actions as consumers record them: deterministic ids, and rows built from JSON values that
read back as exactly the OrderAction the model path builds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.actions import ActionEncoder, action_id, action_row, action_values, make_action
from consumers.erp.outbox import ActionRow, Unpublished
from schemas.codec import AvroCodec
from schemas.models import OrderAction, OrderEvent, order_key
from schemas.registry import InMemorySchemaRegistry
from tests.unit.consumers.twins import ACTIONS_TOPIC, order_event
from tests.unit.schemas.strategies import actions, events, ids, text


def unpublished(row: ActionRow) -> Unpublished:
    """The row as the publisher reads it back (the JSON only when no record is stored)."""
    return Unpublished(
        1,
        row.kind,
        row.outcome,
        row.action_id,
        row.shop_id,
        row.order_sn,
        row.event_id,
        row.record_value,
        row.detail if row.record_value is None else None,
    )


NAMESPACE = uuid.UUID("6f726465-7266-6c6f-7700-616374696f6e")
facts = st.lists(st.integers() | text, max_size=3)
# Up to the year 2200, with sub-millisecond parts that must be cut, not rounded.
moments = st.floats(min_value=0, max_value=7_258_118_400, allow_nan=False)


@given(shop_id=ids, order_sn=text, kind=text, facts=facts)
def test_an_action_id_is_the_name_based_uuid_of_its_parts(
    shop_id: int, order_sn: str, kind: str, facts: list[object]
) -> None:
    name = "|".join([str(shop_id), order_sn, kind, *(str(f) for f in facts)])
    assert action_id(shop_id, order_sn, kind, *facts) == str(uuid.uuid5(NAMESPACE, name))


@settings(max_examples=60)
@given(
    event=events,
    now=moments,
    lines=st.lists(st.tuples(ids, ids, st.integers(0, 99)), max_size=3),
    error=st.none() | st.text(max_size=2500),
    details=st.dictionaries(text, st.integers() | text, max_size=3),
)
def test_a_row_of_json_values_reads_back_as_the_action_the_model_path_builds(
    event: OrderEvent,
    now: float,
    lines: list[tuple[int, int, int]],
    error: str | None,
    details: dict[str, object],
) -> None:
    options = {
        "consumer": "erp-sync",
        "kind": "erp_upsert",
        "outcome": "applied",
        "now": now,
        "lines": lines,
        "error": error,
        "details": details,
        "facts": ("x", 1),
    }
    codec = AvroCodec(OrderAction, ACTIONS_TOPIC, InMemorySchemaRegistry())
    encoder = ActionEncoder(codec)
    values = action_values(event, **options)  # type: ignore[arg-type]
    row, with_record = action_row(values), action_row(values, encoder)
    model = make_action(event, **options)  # type: ignore[arg-type]

    assert OrderAction.model_validate_json(row.detail) == model
    assert row == ActionRow.of(model)._replace(detail=row.detail)
    # Its record, whether stored with it (instead of the JSON) or encoded by the publisher
    # from the JSON, is the one the codec writes for the model.
    assert with_record == row._replace(detail=None, record_value=codec.encode(model))
    for stored in (row, with_record):
        assert encoder.record(unpublished(stored)) == (
            order_key(model.shop_id, model.order_sn),
            codec.encode(model),
            [("action_id", model.action_id.encode()), ("event_id", event.event_id.encode())]
            if event.event_id
            else [("action_id", model.action_id.encode())],
        )
    assert model.occurred_at == datetime.fromtimestamp(now, UTC).replace(
        microsecond=datetime.fromtimestamp(now, UTC).microsecond // 1000 * 1000
    )


def test_an_action_names_each_line_by_the_event_s_sku() -> None:
    event = order_event("A", lines=((1001, 1, 2), (1002, 7, 1)))
    values = action_values(
        event,
        consumer="erp-sync",
        kind="erp_upsert",
        outcome="applied",
        now=1_700_000_000.123456,
        lines=[(1002, 7, 1), (9, 9, 9)],
    )
    assert values["lines"] == [
        {"item_id": 1002, "model_id": 7, "sku": "SKU-1002-7", "quantity": 1},
        {"item_id": 9, "model_id": 9, "sku": None, "quantity": 9},
    ]
    assert values["occurred_at"] == "2023-11-14T22:13:20.123000+00:00"


@settings(max_examples=60, deadline=None)  # generating events takes most of it
@given(event=events, now=moments)
def test_every_line_names_the_event_s_lines_as_listing_them_does(
    event: OrderEvent, now: float
) -> None:
    listed = [(line.item_id, line.model_id, line.quantity) for line in event.items]
    options = {"consumer": "erp-sync", "kind": "erp_upsert", "outcome": "applied", "now": now}
    assert action_values(event, every_line=True, **options) == action_values(  # type: ignore[arg-type]
        event,
        lines=listed,
        **options,  # type: ignore[arg-type]
    )


@given(action=actions)
def test_a_stored_action_is_published_as_the_codec_encodes_its_model(action: OrderAction) -> None:
    codec = AvroCodec(OrderAction, ACTIONS_TOPIC, InMemorySchemaRegistry())
    key, value, headers = ActionEncoder(codec).record(unpublished(ActionRow.of(action)))
    assert key == order_key(action.shop_id, action.order_sn)
    assert value == codec.encode(action)
    assert headers == [("action_id", action.action_id.encode())] + (
        [("event_id", action.event_id.encode())] if action.event_id else []
    )


@given(action=actions)
def test_a_row_of_a_model_keeps_it_whole(action: OrderAction) -> None:
    row = ActionRow.of(action)
    assert OrderAction.model_validate_json(row.detail) == action
    assert (row.action_id, row.consumer, row.kind, row.outcome) == (
        action.action_id,
        action.consumer,
        action.kind,
        action.outcome,
    )
    assert row.occurred_at == int(action.occurred_at.timestamp())
