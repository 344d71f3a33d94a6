"""The codec's hot path as it was before it stopped leaning on fastavro's logical types: the
"before" of `make bench`, and the reference the byte-identity tests compare against.

A faithful copy, kept apart from ``schemas/`` so that changes there cannot change it:
``model_dump`` then fastavro's writer with the ``.avsc`` schema as it is; on decode the writer
schema fetched by id and resolved by fastavro against the reader schema on every call, then
``model_validate``.
"""

from __future__ import annotations

import io
import json
import struct
import threading
from typing import Any, Generic, TypeVar

import fastavro

from schemas.codec import schema_for
from schemas.models import Record
from schemas.registry import SchemaRegistry, subject_for

R = TypeVar("R", bound=Record)

_HEADER = struct.Struct(">bI")


class BaselineCodec(Generic[R]):
    """Encode and decode like the codec did before; errors are fastavro's and pydantic's own."""

    def __init__(self, model: type[R], topic: str, registry: SchemaRegistry) -> None:
        self.model = model
        self.subject = subject_for(topic)
        self.schema = schema_for(model)
        self._parsed = fastavro.parse_schema(self.schema, named_schemas={})
        self._registry = registry
        self._schema_id: int | None = None
        self._writers: dict[int, Any] = {}
        self._lock = threading.Lock()

    @property
    def schema_id(self) -> int:
        if self._schema_id is None:
            self._schema_id = self._registry.register(self.subject, self.schema)
        return self._schema_id

    def encode(self, record: R) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, self._parsed, record.model_dump())
        return _HEADER.pack(0, self.schema_id) + buffer.getvalue()

    def decode(self, data: bytes) -> R:
        _, schema_id = _HEADER.unpack_from(data)
        body = data[_HEADER.size :]
        with self._lock:
            writer = self._writers.get(schema_id)
        if writer is None:
            text = self._registry.schema_by_id(schema_id)
            writer = fastavro.parse_schema(json.loads(text), named_schemas={})
            with self._lock:
                self._writers[schema_id] = writer
        buffer = io.BytesIO(body)
        raw = fastavro.schemaless_reader(buffer, writer, self._parsed)
        if buffer.tell() != len(body):
            raise ValueError("bytes left over after the record")
        return self.model.model_validate(raw)
