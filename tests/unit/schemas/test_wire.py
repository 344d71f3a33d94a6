"""The codec's own logical-type conversions write and read exactly what fastavro's do."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.wire import decimal_from_bytes, decimal_to_bytes, from_millis, millis, reader_plan

TIMESTAMP = {"type": "long", "logicalType": "timestamp-millis"}
DECIMAL = {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 4}

# Before and after the epoch, at millisecond precision (what the models keep).
instants = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2500, 1, 1), timezones=st.just(UTC)
).map(lambda t: t - timedelta(microseconds=t.microsecond % 1000))

# decimal(18,4) values in every spelling a model accepts: 4 places, fewer, none, E+n.
unscaled = st.integers(min_value=-(10**18) + 1, max_value=10**18 - 1)
amounts = st.builds(
    lambda n, spell: spell(Decimal(n).scaleb(-4)),
    unscaled,
    st.sampled_from([lambda d: d, lambda d: d.normalize(), lambda d: d.quantize(Decimal("0.1"))]),
).filter(lambda d: d.as_tuple().exponent >= -4 and abs(d) < 10**14)  # type: ignore[operator]


def written(schema: Any, value: Any) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), value)
    return buffer.getvalue()


def read(schema: Any, body: bytes) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(body), fastavro.parse_schema(schema), None)


@given(instants)
def test_timestamps_match_fastavros_timestamp_millis(instant: datetime) -> None:
    assert written("long", millis(instant)) == written(TIMESTAMP, instant)
    assert from_millis(millis(instant)) == read(TIMESTAMP, written(TIMESTAMP, instant)) == instant


@given(amounts)
def test_decimals_match_fastavros_decimal_18_4(amount: Decimal) -> None:
    body = written("bytes", decimal_to_bytes(18, 4)(amount))
    assert body == written(DECIMAL, amount)
    ours = decimal_from_bytes(4)(read("bytes", body))
    theirs = read(DECIMAL, body)
    assert ours == amount and str(ours) == str(theirs)  # same value, same exponent


@pytest.mark.parametrize(
    "amount",
    [
        "0.00001",
        "1.23456",
        "1.0000000000000000000000000001",  # more digits than the default context keeps
        "100000000000000",
        "-100000000000000",
        "NaN",
        "Infinity",
    ],
)
def test_decimals_that_do_not_fit_are_refused_not_cut(amount: str) -> None:
    """The models refuse these already; a record built around validation must not lose
    digits silently either."""
    with pytest.raises(ValueError, match="does not fit"):
        decimal_to_bytes(18, 4)(Decimal(amount))


def test_trailing_zeros_past_the_scale_lose_nothing_and_are_written() -> None:
    """fastavro refuses "1.00000" for its spelling; its value fits, so it is written as 1.0000
    (the models refuse that spelling before it gets here)."""
    assert decimal_to_bytes(18, 4)(Decimal("1.00000")) == decimal_to_bytes(18, 4)(Decimal("1"))


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "int", "logicalType": "date"},
        ["null", "string", TIMESTAMP],
        "io.orderflow.events.Undefined",
    ],
    ids=["unsupported-logical-type", "wide-union", "unknown-name"],
)
def test_what_the_plans_cannot_convert_is_refused_up_front(schema: Any) -> None:
    record = {"type": "record", "name": "R", "fields": [{"name": "f", "type": schema}]}
    with pytest.raises(ValueError, match=r"unsupported|unions"):
        reader_plan(record)
