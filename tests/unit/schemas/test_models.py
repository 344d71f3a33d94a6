"""The pydantic models must say exactly what the .avsc files say (names, order, types,
optionality, defaults): the .avsc files are what subscribers read."""

from __future__ import annotations

import types
import typing
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import annotated_types
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from schemas.codec import SCHEMA_FILES, schema_for
from schemas.models import (
    _EVENT_ID_NAMESPACE,
    OrderEvent,
    OrderNotice,
    Record,
    make_event_id,
    uuid5_text,
)


def _int_kind(info_metadata: list[Any]) -> str:
    # Inside `X | None` pydantic keeps the Field(...) object; elsewhere it lifts its constraints.
    flat = [c for m in info_metadata for c in (m.metadata if isinstance(m, FieldInfo) else [m])]
    upper = next((m.le for m in flat if isinstance(m, annotated_types.Le)), None)
    return {2**63 - 1: "long", 2**31 - 1: "int"}.get(upper, f"unbounded int (le={upper})")


def model_shape(annotation: Any, metadata: list[Any]) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return model_shape(args[0], [*metadata, *annotation.__metadata__])
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        assert len(rest) == 1 and len(args) == 2, f"only X | None unions map to Avro: {annotation}"
        return ["null", model_shape(rest[0], metadata)]
    if origin is typing.Literal:
        return "string"
    if origin is tuple:
        return {"array": model_shape(args[0], [])}
    if origin is dict:
        assert args[0] is str
        return {"map": model_shape(args[1], [])}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return record_shape_of_model(annotation)
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return _int_kind(metadata)
    if annotation is str:
        return "string"
    if annotation is datetime:
        return "timestamp-millis"
    if annotation is Decimal:
        return "decimal(18,4)"
    raise AssertionError(f"no Avro mapping for {annotation}")


def record_shape_of_model(model: type[BaseModel]) -> dict[str, Any]:
    fields = []
    for name, info in model.model_fields.items():
        assert isinstance(info, FieldInfo)
        default: Any = "<required>"
        if not info.is_required():
            default = info.get_default(call_default_factory=True)
            default = list(default) if isinstance(default, tuple) else default
        fields.append((name, model_shape(info.annotation, list(info.metadata)), default))
    return {"record": model.__name__, "fields": fields}


def avro_shape(schema: Any) -> Any:
    if isinstance(schema, list):
        return [avro_shape(s) for s in schema]
    if isinstance(schema, str):
        return schema
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical == "decimal":
        return f"decimal({schema['precision']},{schema['scale']})"
    if logical:
        return logical
    if kind == "array":
        return {"array": avro_shape(schema["items"])}
    if kind == "map":
        return {"map": avro_shape(schema["values"])}
    if kind == "record":
        return {
            "record": schema["name"],
            "fields": [
                (f["name"], avro_shape(f["type"]), f.get("default", "<required>"))
                for f in schema["fields"]
            ],
        }
    return avro_shape(kind)


@pytest.mark.parametrize("model", list(SCHEMA_FILES), ids=lambda m: m.__name__)
def test_model_mirrors_its_avro_schema(model: type[Record]) -> None:
    assert record_shape_of_model(model) == avro_shape(schema_for(model))


def test_the_drift_check_notices_a_changed_field() -> None:
    schema = schema_for(OrderNotice)
    schema["fields"][2]["type"] = "int"  # shop_id: long -> int
    assert record_shape_of_model(OrderNotice) != avro_shape(schema)


def test_timestamps_are_utc_and_cut_to_milliseconds() -> None:
    local = datetime(2026, 1, 1, 8, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    notice = OrderNotice(event_id="e", shop_id=1, order_sn="A", source="push", received_at=local)
    assert notice.received_at == datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
    assert notice.received_at.tzinfo is UTC


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        OrderNotice(
            event_id="e", shop_id=1, order_sn="A", source="push", received_at=datetime(2026, 1, 1)
        )


@pytest.mark.parametrize("amount", ["0.00001", "100000000000000", "NaN"])
def test_amounts_outside_decimal_18_4_are_refused(amount: str) -> None:
    now = datetime.now(UTC)
    with pytest.raises(ValidationError):
        OrderEvent(
            event_id="e",
            shop_id=1,
            order_sn="A",
            region="SG",
            currency="SGD",
            status="S",
            create_time=now,
            update_time=now,
            source="push",
            emitted_at=now,
            total_amount=Decimal(amount),
        )


def test_event_ids_are_deterministic_and_distinguish_every_input() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    base = {
        "marketplace": "shopee",
        "shop_id": 1,
        "order_sn": "A",
        "status": "READY_TO_SHIP",
        "update_time": t,
        "source": "push",
    }
    first = make_event_id(**base)  # type: ignore[arg-type]
    assert make_event_id(**base) == first  # type: ignore[arg-type]
    variations = [
        {"shop_id": 2},
        {"order_sn": "B"},
        {"status": "SHIPPED"},
        {"status": None},
        {"update_time": t + timedelta(seconds=1)},
        {"update_time": None},
        {"source": "poll"},
        {"marketplace": "tiktok_shop"},
    ]
    ids = {make_event_id(**(base | change)) for change in variations}  # type: ignore[arg-type]
    assert first not in ids and len(ids) == len(variations)


def test_event_ids_without_a_discriminator_never_change() -> None:
    """Pinned before ``discriminator`` existed: ids already in Kafka and in subscribers'
    seen-sets must stay what they were."""
    at = datetime(2026, 11, 26, 9, 30, 15, 123000, tzinfo=UTC)
    status_push = make_event_id(
        marketplace="shopee",
        shop_id=727720655,
        order_sn="2404098R48U37H",
        status="READY_TO_SHIP",
        update_time=at,
        source="push",
    )
    assert status_push == "fa943235-ca5e-5a24-a237-f33fd5edbe84"
    assert tracking_push_id() == "6e58e2ae-ac33-5da1-9f03-af1b6ee9d1da"
    assert tracking_push_id(None) == "6e58e2ae-ac33-5da1-9f03-af1b6ee9d1da"


def tracking_push_id(discriminator: str | None = None) -> str:
    """A tracking-number push: no status, no update_time."""
    return make_event_id(
        marketplace="shopee",
        shop_id=727720655,
        order_sn="2404098R48U37H",
        status=None,
        update_time=None,
        source="push",
        discriminator=discriminator,
    )


def test_a_discriminator_tells_apart_pushes_without_update_time() -> None:
    first, second = tracking_push_id("msg-1"), tracking_push_id("msg-2")
    assert first != second
    assert tracking_push_id("msg-1") == first  # still deterministic
    assert tracking_push_id() not in {first, second, tracking_push_id("")}


@given(st.text())
def test_event_ids_are_uuid5_of_their_parts(name: str) -> None:
    assert uuid5_text(name) == str(uuid.uuid5(_EVENT_ID_NAMESPACE, name))
