from __future__ import annotations

import io
import struct
from datetime import UTC, datetime
from decimal import Decimal

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import AvroCodec, RecordDecodeError, frame, schema_for, unframe
from schemas.models import OrderAction, OrderEvent, OrderLine, OrderNotice, Record
from schemas.registry import InMemorySchemaRegistry, RegistryError, UnknownSchemaId
from schemas.wire import strip_logical_types, writer_plan
from tests.unit.schemas.strategies import actions, events, notices

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def codec_for(model: type[Record]) -> AvroCodec:  # type: ignore[type-arg]
    return AvroCodec(model, "shopee.test", InMemorySchemaRegistry())


EVERY_RECORD_TYPE = pytest.mark.parametrize(
    ("model", "strategy"),
    [(OrderNotice, notices), (OrderEvent, events), (OrderAction, actions)],
    ids=["OrderNotice", "OrderEvent", "OrderAction"],
)


@EVERY_RECORD_TYPE
def test_every_record_type_survives_a_round_trip(
    model: type[Record], strategy: st.SearchStrategy[Record]
) -> None:
    codec = codec_for(model)

    @settings(max_examples=150, deadline=None)
    @given(strategy)
    def round_trip(record: Record) -> None:
        assert codec.decode(codec.encode(record)) == record

    round_trip()


@EVERY_RECORD_TYPE
def test_the_bytes_are_exactly_fastavros_for_the_avsc(
    model: type[Record], strategy: st.SearchStrategy[Record]
) -> None:
    """The codec converts logical types itself; what it writes must stay byte for byte what
    fastavro writes from ``model_dump`` with the ``.avsc`` (the codec's path before), and
    fastavro's own reader must read it back to the same record."""
    codec = codec_for(model)
    avsc = fastavro.parse_schema(schema_for(model), named_schemas={})

    @settings(max_examples=150, deadline=None)
    @given(strategy)
    def same_bytes(record: Record) -> None:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, avsc, record.model_dump())
        data = codec.encode(record)
        assert data == frame(codec.schema_id, buffer.getvalue())
        assert (
            model.model_validate(fastavro.schemaless_reader(io.BytesIO(data[5:]), avsc)) == record
        )

    same_bytes()


def test_a_record_written_with_another_schema_is_resolved_against_ours() -> None:
    """A newer writer added a field: this codec reads what it knows, as before."""
    registry = InMemorySchemaRegistry()
    codec = AvroCodec(OrderEvent, "t", registry)
    newer = schema_for(OrderEvent)
    newer["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    newer_id = registry.register("t-value", newer)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(
        buffer, fastavro.parse_schema(newer), event().model_dump() | {"note": "hi"}
    )
    assert newer_id != codec.schema_id
    assert codec.decode(frame(newer_id, buffer.getvalue())) == event()


def test_our_schema_under_an_id_this_codec_never_registered_reads_the_same() -> None:
    """Another process registered it (here: as the second schema of the registry)."""
    registry = InMemorySchemaRegistry()
    registry.register("other-value", schema_for(OrderNotice))
    writer = AvroCodec(OrderEvent, "t", registry)
    data = writer.encode(event())
    reader = AvroCodec(OrderEvent, "t", registry)
    assert unframe(data)[0] == 2
    assert reader.decode(data) == event()


def event(**overrides: object) -> OrderEvent:
    fields: dict[str, object] = {
        "event_id": "e1",
        "shop_id": 727720655,
        "order_sn": "220810QSK8S7BX",
        "region": "SG",
        "currency": "SGD",
        "status": "READY_TO_SHIP",
        "create_time": NOW,
        "update_time": NOW,
        "source": "push",
        "emitted_at": NOW,
    }
    fields.update(overrides)
    return OrderEvent.model_validate(fields)


def test_frame_is_magic_byte_then_big_endian_schema_id() -> None:
    codec = codec_for(OrderEvent)
    data = codec.encode(event())
    assert data[0] == 0
    assert struct.unpack(">I", data[1:5])[0] == codec.schema_id
    assert unframe(data) == (codec.schema_id, data[5:])


def test_int64_ids_and_decimal_amounts_keep_their_value() -> None:
    codec = codec_for(OrderEvent)
    original = event(
        total_amount=Decimal("32119"),
        items=(
            OrderLine(
                item_id=23620853561,
                model_id=221404189791,
                quantity=1,
                original_price=Decimal("300000"),
                discounted_price=Decimal("12.3456"),
            ),
        ),
    )
    decoded = codec.decode(codec.encode(original))
    assert decoded.items[0].item_id == 23620853561
    assert decoded.items[0].discounted_price == Decimal("12.3456")
    assert decoded.total_amount == Decimal("32119")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "at least 5"),
        (b"\x00\x00\x01", "at least 5"),
        (b'{"json": true}', "magic byte"),
    ],
    ids=["empty", "short", "json"],
)
def test_bytes_that_are_not_a_record_raise_the_typed_error(data: bytes, reason: str) -> None:
    codec = codec_for(OrderEvent)
    codec.encode(event())  # registers the schema so id 1 exists
    with pytest.raises(RecordDecodeError, match=reason):
        codec.decode(data)


def test_an_unknown_schema_id_is_transient_and_decodes_once_the_registry_knows_it() -> None:
    """The writer registered the id before writing; a registry that does not know it yet is
    restarting or behind. Retrying must work: the miss is not remembered."""
    writer_registry = InMemorySchemaRegistry()
    data = AvroCodec(OrderEvent, "t", writer_registry).encode(event())
    reader_registry = InMemorySchemaRegistry()  # a registry that lost its schemas
    codec = AvroCodec(OrderEvent, "t", reader_registry)
    with pytest.raises(UnknownSchemaId, match="schema id 1 is unknown") as caught:
        codec.decode(data)
    assert isinstance(caught.value, RegistryError)
    assert not isinstance(caught.value, RecordDecodeError)
    assert caught.value.schema_id == 1

    reader_registry.register("t-value", schema_for(OrderEvent))  # the registry caught up
    assert codec.decode(data) == event()


def test_truncated_and_padded_bodies_raise_the_typed_error() -> None:
    codec = codec_for(OrderEvent)
    data = codec.encode(event())
    with pytest.raises(RecordDecodeError, match="does not match schema"):
        codec.decode(data[:-4])
    with pytest.raises(RecordDecodeError, match="left over"):
        codec.decode(data + b"\x00\x00")


def test_a_record_of_another_type_raises_the_typed_error() -> None:
    registry = InMemorySchemaRegistry()
    notice_codec = AvroCodec(OrderNotice, "t", registry)
    event_codec = AvroCodec(OrderEvent, "t", registry)
    notice = OrderNotice(event_id="n1", shop_id=1, order_sn="A", source="poll", received_at=NOW)
    with pytest.raises(RecordDecodeError):
        event_codec.decode(notice_codec.encode(notice))


def test_decoded_values_that_break_the_model_raise_the_typed_error() -> None:
    """A writer that bypassed the model (another team's producer) can still be refused."""
    registry = InMemorySchemaRegistry()
    codec = AvroCodec(OrderAction, "t", registry)
    raw = OrderAction(
        action_id="a",
        shop_id=1,
        order_sn="A",
        consumer="c",
        kind="k",
        outcome="applied",
        occurred_at=NOW,
    ).to_avro() | {"outcome": "exploded"}
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema_for(OrderAction)), raw)
    with pytest.raises(RecordDecodeError, match="invalid"):
        codec.decode(frame(codec.schema_id, buffer.getvalue()))


def forged(codec: AvroCodec, field: str, value: object, avro_type: object = None) -> bytes:  # type: ignore[type-arg]
    """An event() whose ``field`` holds ``value`` on the wire (as ``avro_type``, when given),
    framed with the codec's own schema id: a writer that bypassed the model."""
    schema = strip_logical_types(schema_for(codec.model))
    if avro_type is not None:
        next(f for f in schema["fields"] if f["name"] == field)["type"] = avro_type
    plain = writer_plan(schema_for(codec.model))(event()) | {field: value}
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), plain)
    return frame(codec.schema_id, buffer.getvalue())


@pytest.mark.parametrize(
    ("field", "value", "avro_type", "reason"),
    [
        ("source", "carrier-pigeon", None, "invalid"),  # not one of the Literal's values
        ("days_to_ship", 2**40, ["null", "long"], "invalid"),  # an Avro int read from a long
        ("total_amount", (10**20).to_bytes(9, "big", signed=True), None, "invalid"),
        ("emitted_at", 2**62, None, "does not match"),  # beyond any datetime
        ("create_time", -(2**62), None, "does not match"),
    ],
    ids=["literal", "int-range", "amount-range", "late-timestamp", "early-timestamp"],
)
def test_records_in_our_own_schema_are_still_validated(
    field: str, value: object, avro_type: object, reason: str
) -> None:
    """Reading our own schema skips fastavro's resolution, never the model's validation."""
    codec = codec_for(OrderEvent)
    with pytest.raises(RecordDecodeError, match=reason):
        codec.decode(forged(codec, field, value, avro_type))


def test_same_schema_registers_once() -> None:
    registry = InMemorySchemaRegistry()
    first = AvroCodec(OrderEvent, "a", registry).schema_id
    assert AvroCodec(OrderEvent, "b", registry).schema_id == first
    assert AvroCodec(OrderNotice, "a", registry).schema_id != first
