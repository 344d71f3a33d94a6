"""Where a dead letter goes back to, and with which headers (pure)."""

from __future__ import annotations

import pytest

from consumers.replay import replay_headers, replay_target
from orderflow.kafka import ConsumedRecord


def _record(headers: dict[str, bytes]) -> ConsumedRecord:
    return ConsumedRecord("t.dlq.c", 0, 7, b"k", b"v", headers)


def test_back_to_the_original_topic_unless_told_otherwise() -> None:
    record = _record({"dlq.original.topic": b"shopee.orders", "event_id": b"e"})
    assert replay_target(record, None) == "shopee.orders"
    assert replay_target(record, "elsewhere") == "elsewhere"


def test_a_record_that_does_not_say_where_it_came_from_needs_to() -> None:
    with pytest.raises(ValueError, match="--to"):
        replay_target(_record({}), None)


def test_dead_letter_headers_are_dropped_the_rest_kept() -> None:
    record = _record(
        {"dlq.error": b"x", "dlq.attempts": b"3", "event_id": b"e1", "source": b"poll"}
    )
    assert replay_headers(record) == [("event_id", b"e1"), ("source", b"poll")]
