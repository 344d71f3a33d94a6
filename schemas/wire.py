"""Record values as the plain Avro values of their schema with the logical types taken out.

fastavro converts every ``timestamp-millis`` and ``decimal`` value it writes or reads through
generic conversions that look the logical type up again on each call. The codec instead parses
a copy of its schema with those logical types replaced by their underlying ``long``/``bytes``
and converts the values itself, with converters planned once per schema. The bytes on the wire
are exactly fastavro's: epoch milliseconds for timestamps, the big-endian two's-complement
unscaled integer in as few bytes as it fits for decimals.

Only what the event schemas use is supported: records, arrays, maps, ``["null", X]`` unions,
primitives, and those two logical types; anything else is refused when the plan is made.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import MAX_PREC, Context, Decimal
from typing import Any

Convert = Callable[[Any], Any]
"""One value to its other form; ``None`` in a plan means "the value is the same in both"."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
# Scaling must never round: a digit past the scale is refused, not cut.
_EXACT = Context(prec=MAX_PREC)


def strip_logical_types(schema: Any) -> Any:
    """A copy of ``schema`` in which every logical type is its underlying type."""
    if isinstance(schema, list):
        return [strip_logical_types(branch) for branch in schema]
    if isinstance(schema, dict):
        if "logicalType" in schema:
            return schema["type"]
        return {key: strip_logical_types(value) for key, value in schema.items()}
    return schema


def millis(value: datetime) -> int:
    """An aware datetime as Avro ``timestamp-millis``: milliseconds since the epoch."""
    return (value - _EPOCH) // _MILLISECOND


def from_millis(value: int) -> datetime:
    """Avro ``timestamp-millis`` as an aware UTC datetime; OverflowError beyond year 9999."""
    return _EPOCH + timedelta(milliseconds=value)


def decimal_to_bytes(precision: int, scale: int) -> Convert:
    """Avro ``decimal(precision, scale)`` on ``bytes``, refusing what would not round-trip."""
    limit = 10**precision

    def convert(value: Decimal) -> bytes:
        scaled = value.scaleb(scale, _EXACT)
        unscaled = int(scaled) if scaled.is_finite() else limit
        if unscaled != scaled or not -limit < unscaled < limit:
            raise ValueError(f"{value} does not fit decimal({precision},{scale})")
        return unscaled.to_bytes((unscaled.bit_length() + 8) // 8, "big", signed=True)

    return convert


def decimal_from_bytes(scale: int) -> Convert:
    """The unscaled big-endian integer back to a Decimal with exactly ``scale`` places."""

    def convert(value: bytes) -> Decimal:
        return Decimal(int.from_bytes(value, "big", signed=True)).scaleb(-scale)

    return convert


def _optional(convert: Convert) -> Convert:
    return lambda value: None if value is None else convert(value)


class _Planner:
    """Walks one schema; a record named again later converts as where it was defined."""

    def __init__(self, writing: bool) -> None:
        self.writing = writing
        self.named: dict[str, Convert | None] = {}

    def plan(self, schema: Any) -> Convert | None:
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return None
            if schema not in self.named:
                raise ValueError(f"unsupported Avro type reference {schema!r} (recursive?)")
            return self.named[schema]
        if isinstance(schema, list):
            return self._union(schema)
        logical = schema.get("logicalType")
        kind = schema["type"]
        if logical == "timestamp-millis" and kind == "long":
            return millis if self.writing else from_millis
        if logical == "decimal" and kind == "bytes":
            scale = int(schema.get("scale", 0))
            if self.writing:
                return decimal_to_bytes(int(schema["precision"]), scale)
            return decimal_from_bytes(scale)
        if logical is not None:
            raise ValueError(f"unsupported Avro logical type {logical!r} on {kind!r}")
        if kind == "record":
            return self._record(schema)
        if kind == "array":
            items = self.plan(schema["items"])
            if items is None:
                return None
            return lambda values: [items(value) for value in values]
        if kind == "map":
            values = self.plan(schema["values"])
            if values is None:
                return None
            return lambda mapping: {key: values(item) for key, item in mapping.items()}
        return self.plan(kind)

    def _union(self, branches: list[Any]) -> Convert | None:
        plans = [self.plan(branch) for branch in branches]
        converted = [convert for convert in plans if convert is not None]
        if not converted:
            return None
        if len(branches) == 2 and "null" in branches:
            return _optional(converted[0])
        raise ValueError(f"only [null, X] unions may carry converted values: {branches}")

    def _record(self, schema: dict[str, Any]) -> Convert | None:
        fields = [(field["name"], self.plan(field["type"])) for field in schema["fields"]]
        converted = tuple((name, convert) for name, convert in fields if convert is not None)
        plan: Convert | None
        if self.writing:
            plan = _model_to_plain(converted)
        else:
            plan = _plain_to_values(converted) if converted else None
        self.named[schema["name"]] = plan
        return plan


def _same(value: Any) -> Any:
    return value


def _model_to_plain(converted: tuple[tuple[str, Convert], ...]) -> Convert:
    if not converted:
        # fastavro only reads the record's fields: the model's own field dict will do.
        return vars

    def convert(model: Any) -> dict[str, Any]:
        plain = dict(vars(model))
        for name, field in converted:
            plain[name] = field(plain[name])
        return plain

    return convert


def _plain_to_values(converted: tuple[tuple[str, Convert], ...]) -> Convert:
    def convert(plain: dict[str, Any]) -> dict[str, Any]:
        # The dict is fastavro's fresh output, so it is converted in place.
        for name, field in converted:
            plain[name] = field(plain[name])
        return plain

    return convert


def writer_plan(schema: dict[str, Any]) -> Convert:
    """A record model to the dict fastavro writes with ``strip_logical_types(schema)``."""
    plan = _Planner(writing=True).plan(schema)
    assert plan is not None  # a record always needs its model turned into a dict
    return plan


def reader_plan(schema: dict[str, Any]) -> Convert:
    """What fastavro reads with ``strip_logical_types(schema)`` to the values the record's
    model validates (datetimes, decimals); the identity when nothing needs converting."""
    return _Planner(writing=False).plan(schema) or _same
