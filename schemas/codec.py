"""Avro records in the Confluent wire format: byte 0, a 4-byte big-endian schema id, then
the Avro binary body.

Each schema is parsed once. Encoding registers the writer schema under the topic's subject
(once per process); decoding fetches the writer schema by the id in the frame (once per id)
and, when it is not this codec's own schema, resolves it against this codec's reader schema,
which is how old readers read new data and new readers read old data.

Failures come in the two kinds a consumer must tell apart: ``RecordDecodeError`` for bytes
that can never become a record (poison: dead-letter them), and ``RegistryError`` (with its
``UnknownSchemaId``) when the registry cannot say what the bytes mean right now (transient:
back off and retry the same record).
"""

from __future__ import annotations

import io
import json
import struct
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any, Generic, TypeVar

import fastavro
from pydantic import ValidationError

from schemas.models import OrderAction, OrderEvent, OrderNotice, Record
from schemas.registry import SchemaRegistry, canonical, subject_for
from schemas.wire import Convert, reader_plan, strip_logical_types, writer_plan

MAGIC_BYTE = 0
_HEADER = struct.Struct(">bI")

R = TypeVar("R", bound=Record)

SCHEMA_FILES: dict[type[Record], str] = {
    OrderNotice: "order_notice.avsc",
    OrderEvent: "order_event.avsc",
    OrderAction: "order_action.avsc",
}


class RecordDecodeError(Exception):
    """Bytes that are not a valid record of the expected type; the message says why.

    A consumer treats this as poison: the record goes to the dead-letter topic. A schema id
    the registry does not know is not this: it raises ``UnknownSchemaId`` (transient).
    """


def load_schema(file_name: str) -> dict[str, Any]:
    """The parsed JSON of one ``.avsc`` file shipped in ``schemas/avro``."""
    text = resources.files("schemas").joinpath("avro", file_name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _brief(exc: Exception, limit: int = 300) -> str:
    """An error's type and message, cut short: fastavro can print whole schemas."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def schema_for(model: type[Record]) -> dict[str, Any]:
    return load_schema(SCHEMA_FILES[model])


def frame(schema_id: int, body: bytes) -> bytes:
    return _HEADER.pack(MAGIC_BYTE, schema_id) + body


def unframe(data: bytes) -> tuple[int, bytes]:
    """The schema id and Avro body of a framed record, or RecordDecodeError."""
    if len(data) < _HEADER.size:
        raise RecordDecodeError(
            f"record is {len(data)} bytes; a Confluent-framed record has at least {_HEADER.size}"
        )
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != MAGIC_BYTE:
        raise RecordDecodeError(
            f"first byte is {data[0]:#04x}, not the Confluent magic byte 0x00: "
            "not written by a schema-registry-aware producer"
        )
    return schema_id, data[_HEADER.size :]


@dataclass(frozen=True)
class _Reader:
    """How to read the bodies written with one schema id."""

    schema: Any  # the parsed schema fastavro reads the body with
    resolve_to: Any  # this codec's schema when the writer's differs, else None: no resolution
    to_values: Convert  # fastavro's output to the values the model validates


class AvroCodec(Generic[R]):
    """Encode and decode one record type for one topic. Thread-safe.

    Records written with this codec's own schema (under whatever id) are read with that
    schema alone, its logical types converted by ``schemas.wire``; only records written with
    another schema are resolved against it by fastavro. Either way the decoded record is
    validated by its model, and the bytes written are exactly fastavro's for the ``.avsc``.
    """

    def __init__(self, model: type[R], topic: str, registry: SchemaRegistry) -> None:
        self.model = model
        self.topic = topic
        self.subject = subject_for(topic)
        self.schema = schema_for(model)
        self._canonical = canonical(self.schema)
        self._parsed = fastavro.parse_schema(self.schema, named_schemas={})
        # Logical types taken out: fastavro writes and reads plain longs and bytes, and
        # schemas.wire converts them with plans made here, once.
        self._plain = fastavro.parse_schema(strip_logical_types(self.schema), named_schemas={})
        self._to_plain = writer_plan(self.schema)
        self._own = _Reader(self._plain, None, reader_plan(self.schema))
        self._registry = registry
        self._schema_id: int | None = None
        self._readers: dict[int, _Reader] = {}
        self._lock = threading.Lock()

    @property
    def schema_id(self) -> int:
        """This codec's writer schema id, registering the schema on first use."""
        if self._schema_id is None:
            schema_id = self._registry.register(self.subject, self.schema)
            with self._lock:
                self._readers[schema_id] = self._own
            self._schema_id = schema_id
        return self._schema_id

    def encode(self, record: R) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, self._plain, self._to_plain(record))
        return frame(self.schema_id, buffer.getvalue())

    def decode(self, data: bytes) -> R:
        """The record in ``data``, validated by its model.

        RecordDecodeError if the bytes are not one (poison). UnknownSchemaId if the frame's
        schema id is unknown to the registry, RegistryError if the registry could not be
        asked: both transient, not the record's fault; decoding it again later may succeed.
        """
        schema_id, body = unframe(data)
        reader = self._reader(schema_id)
        buffer = io.BytesIO(body)
        try:
            raw = reader.to_values(
                fastavro.schemaless_reader(buffer, reader.schema, reader.resolve_to)
            )
        except Exception as exc:
            raise RecordDecodeError(
                f"Avro body does not match schema id {schema_id} for {self.model.__name__}: "
                f"{_brief(exc)}"
            ) from exc
        if buffer.tell() != len(body):
            raise RecordDecodeError(
                f"{len(body) - buffer.tell()} bytes left over after the {self.model.__name__} "
                f"record (schema id {schema_id}): the body is not one Avro record"
            )
        try:
            return self.model.model_validate(raw)
        except ValidationError as exc:
            raise RecordDecodeError(
                f"decoded {self.model.__name__} is invalid: {_brief(exc)}"
            ) from exc

    def _reader(self, schema_id: int) -> _Reader:
        with self._lock:
            cached = self._readers.get(schema_id)
        if cached is not None:
            return cached
        # UnknownSchemaId passes through: the id was registered by whoever wrote the record.
        text = self._registry.schema_by_id(schema_id)
        try:
            if canonical(text) == self._canonical:
                reader = self._own
            else:
                writer = fastavro.parse_schema(json.loads(text), named_schemas={})
                reader = _Reader(writer, self._parsed, _unchanged)
        except Exception as exc:
            raise RecordDecodeError(f"schema id {schema_id} is not a usable Avro schema") from exc
        with self._lock:
            self._readers[schema_id] = reader
        return reader


def _unchanged(values: Any) -> Any:
    return values
