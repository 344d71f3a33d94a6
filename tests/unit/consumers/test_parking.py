"""Parked records on SQLite: kept in arrival order per consumer and shop, once per record,
byte for byte."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from consumers.parking import ParkedRecords
from orderflow.kafka import ConsumedRecord
from tests.unit.consumers.twins import TOPIC, migrated_engine

Park = Callable[[str], ParkedRecords]


@pytest.fixture
def parked(tmp_path: Path) -> Park:
    """Parked records of a consumer, all consumers sharing one database."""
    engine = migrated_engine(tmp_path)

    def make(consumer: str) -> ParkedRecords:
        return ParkedRecords(engine, consumer)

    return make


def record(
    offset: int,
    *,
    partition: int = 0,
    key: bytes | None = b"1:A",
    value: bytes = b"\x00\x00\x00\x00\x01body",
    headers: dict[str, bytes] | None = None,
) -> ConsumedRecord:
    kept = {"event_id": b"e"} if headers is None else headers
    return ConsumedRecord(TOPIC, partition, offset, key, value, kept)


def test_records_come_back_in_the_order_they_were_parked(parked: Park) -> None:
    store = parked("auto-cancel")
    store.park(1, "ShopAccessLost", [record(7), record(3, partition=1)], now=100)
    store.park(2, "ShopAccessLost", [record(8)], now=101)
    store.park(1, "ShopAccessLost", [record(9)], now=102)
    assert [(p.record.partition, p.record.offset) for p in store.take(1)] == [
        (0, 7),
        (1, 3),
        (0, 9),
    ]
    assert [p.record.offset for p in store.take(2)] == [8]
    assert [p.record.offset for p in store.take(1, limit=2)] == [7, 3]
    assert store.take(3) == []
    # take reads; it does not remove.
    assert store.count() == 4


def test_delete_removes_exactly_the_given_rows(parked: Park) -> None:
    store = parked("auto-cancel")
    store.park(1, "blocked", [record(1), record(2), record(3)], now=100)
    first, second, third = store.take(1)
    store.delete([first.id, third.id])
    assert [p.record.offset for p in store.take(1)] == [2]
    store.delete([])
    assert store.count() == 1
    store.delete([second.id])
    assert store.take(1) == [] and store.count() == 0 and store.shops() == {}


def test_a_record_parked_twice_is_kept_once(parked: Park) -> None:
    store = parked("auto-cancel")
    store.park(1, "blocked", [record(5)], now=100)
    # Redelivered after a crash before the offset was committed.
    store.park(1, "ShopAccessLost", [record(5), record(6)], now=200)
    assert [(p.record.offset, p.reason) for p in store.take(1)] == [
        (5, "blocked"),
        (6, "ShopAccessLost"),
    ]
    # The same offset on another partition is another record.
    store.park(1, "blocked", [record(5, partition=1)], now=300)
    assert store.count() == 3


def test_consumers_keep_their_own_records(parked: Park) -> None:
    mine, theirs = parked("auto-cancel"), parked("stock-restore")
    mine.park(1, "blocked", [record(1)], now=100)
    theirs.park(1, "blocked", [record(1)], now=100)  # the same record, another consumer
    theirs.park(2, "quota", [record(2)], now=100)
    assert mine.count() == 1 and theirs.count() == 2
    assert mine.shops() == {1: "blocked"}
    assert theirs.shops() == {1: "blocked", 2: "quota"}
    mine.delete([p.id for p in mine.take(1)])
    assert mine.count() == 0 and theirs.count() == 2


def test_shops_say_why_the_newest_record_was_parked(parked: Park) -> None:
    store = parked("auto-cancel")
    store.park(1, "ShopAccessLost", [record(1)], now=100)
    store.park(1, "DailyLimitReached", [record(2)], now=101)
    assert store.shops() == {1: "DailyLimitReached"}


def test_parking_nothing_writes_nothing(parked: Park) -> None:
    store = parked("auto-cancel")
    store.park(1, "blocked", [], now=100)
    assert store.count() == 0


@pytest.mark.parametrize(
    ("key", "value", "headers"),
    [
        (b"14701711:240501ABC", b"\x00\x00\x00\x00\x07\x02\xff\x00", {"event_id": b"e-1"}),
        (None, b"", {}),
        (
            b"\xff\xfe",
            bytes(range(256)),
            {"event_id": b"e-2", "source": b"lost_push", "odd": bytes(range(256))},
        ),
    ],
    ids=["avro", "no key, empty value, no headers", "every byte value"],
)
def test_records_round_trip_byte_for_byte(
    parked: Park, key: bytes | None, value: bytes, headers: dict[str, bytes]
) -> None:
    store = parked("auto-cancel")
    original = record(42, partition=3, key=key, value=value, headers=headers)
    store.park(1, "blocked", [original], now=100)
    (back,) = store.take(1)
    assert back.record == original
    assert dict(back.record.headers) == headers
