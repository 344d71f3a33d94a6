"""The action outlets over an in-memory producer: the inline one on the caller's thread, and
the relay's loop driven through a real pipe (its process is exercised in
tests/integration/consumers/test_action_relay.py)."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from consumers.actions import (
    ActionEncoder,
    ActionPublisher,
    action_row,
    action_values,
    make_action,
)
from consumers.erp.outbox import ActionRecord, insert_actions
from consumers.publishing import ActionRelay, InlineOutlet
from orderflow.kafka import KafkaUnavailable
from orderflow.metrics import Metrics
from schemas.codec import AvroCodec
from schemas.models import OrderAction
from schemas.registry import InMemorySchemaRegistry
from tests.unit.consumers.twins import (
    ACTIONS_TOPIC,
    T0,
    FakeProducer,
    migrated_engine,
    order_event,
    sample,
)

NAME = "erp-sync"


@dataclass
class Rig:
    engine: Engine
    record: ActionRecord
    producer: FakeProducer
    publisher: ActionPublisher
    codec: AvroCodec[OrderAction]
    metrics: Metrics

    def record_actions(self, *order_sns: str) -> list[OrderAction]:
        recorded = [
            make_action(
                order_event(sn), consumer=NAME, kind="erp_upsert", outcome="applied", now=T0
            )
            for sn in order_sns
        ]
        for action in recorded:
            self.record.record(action)
        return recorded

    def published(self) -> list[OrderAction]:
        return [self.codec.decode(sent.value) for sent in self.producer.on(ACTIONS_TOPIC)]

    def counted(self) -> float:
        return sample(
            self.metrics,
            "orderflow_order_actions_total",
            consumer=NAME,
            kind="erp_upsert",
            outcome="applied",
        )


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    engine = migrated_engine(tmp_path)
    record = ActionRecord(engine)
    producer = FakeProducer()
    codec = AvroCodec(OrderAction, ACTIONS_TOPIC, InMemorySchemaRegistry())
    publisher = ActionPublisher(
        record, producer.as_producer(), ActionEncoder(codec), consumer=NAME, batch=2
    )
    return Rig(engine, record, producer, publisher, codec, Metrics())


# -- inline ---------------------------------------------------------------------------------------


def test_inline_publishes_leftovers_at_once_then_after_each_commit(rig: Rig) -> None:
    left = rig.record_actions("A", "B", "C")  # by a process that died before publishing
    outlet = InlineOutlet(rig.publisher, rig.metrics, consumer=NAME)
    outlet.poll()
    assert rig.published() == left

    more = rig.record_actions("D")
    outlet.poll()
    assert rig.published() == left  # nobody said anything was recorded
    outlet.committed()
    outlet.poll()
    assert rig.published() == left + more
    assert rig.counted() == 4
    assert rig.record.unpublished(NAME) == []


def test_actions_recorded_with_their_record_are_published_as_stored(rig: Rig) -> None:
    encoder = ActionEncoder(rig.codec)
    events = [order_event("A"), order_event("B", "CANCELLED")]
    values = [
        action_values(e, consumer=NAME, kind="erp_upsert", outcome="applied", now=T0)
        for e in events
    ]
    with rig.engine.begin() as conn:  # as erp-sync records them, in its transaction
        insert_actions(conn, [action_row(v, encoder) for v in values])
    InlineOutlet(rig.publisher, rig.metrics, consumer=NAME).poll()
    sent = rig.producer.on(ACTIONS_TOPIC)
    assert [s.value for s in sent] == [encoder.value(v) for v in values]
    assert [(s.header("action_id"), s.header("event_id")) for s in sent] == [
        (v["action_id"], e.event_id) for v, e in zip(values, events, strict=True)
    ]
    assert rig.published() == [OrderAction.model_validate(v) for v in values]


def test_inline_keeps_what_the_broker_did_not_acknowledge_for_the_next_poll(rig: Rig) -> None:
    recorded = rig.record_actions("A")
    outlet = InlineOutlet(rig.publisher, rig.metrics, consumer=NAME)
    rig.producer.refuse = 1
    with pytest.raises(KafkaUnavailable):
        outlet.poll()
    assert [a for _, a in rig.record.unpublished(NAME)] == recorded
    outlet.poll()  # the runtime's next batch, after its backoff
    assert rig.published() == recorded
    assert rig.counted() == 1


# -- the relay's loop -----------------------------------------------------------------------------


@pytest.fixture
def pipe() -> Iterator[tuple[Connection, Connection]]:
    ours, theirs = multiprocessing.Pipe()
    yield ours, theirs
    ours.close()
    theirs.close()


def relay(rig: Rig, conn: Connection, produced: list[tuple[float, float]]) -> ActionRelay:
    # produced: what the relay's producer counted so far, one reading per call.
    return ActionRelay(
        rig.publisher,
        conn,
        lambda: produced.pop(0) if len(produced) > 1 else produced[0],
        idle_seconds=0.0,
        backoff_base=0.001,
        backoff_max=0.002,
    )


def messages(conn: Connection) -> list[tuple[object, ...]]:
    got = []
    while conn.poll(0):
        got.append(conn.recv())
    return got


def test_the_relay_publishes_reports_answers_flushes_and_stops(
    rig: Rig, pipe: tuple[Connection, Connection]
) -> None:
    ours, theirs = pipe
    recorded = rig.record_actions("A", "B", "C")
    ours.send(("wake",))
    ours.send(("flush", 7))
    ours.send(("stop",))

    relay(rig, theirs, [(10.0, 0.0), (13.0, 1.0)]).run()

    assert rig.published() == recorded
    assert messages(ours) == [
        ("published", [("erp_upsert", "applied", 3)], 3.0, 1.0),
        ("flushed", 7),
    ]
    assert rig.record.unpublished(NAME) == []


def test_the_relay_retries_what_failed_and_answers_the_flush_once_it_is_out(
    rig: Rig, pipe: tuple[Connection, Connection]
) -> None:
    ours, theirs = pipe
    recorded = rig.record_actions("A")
    rig.producer.refuse = 2  # two attempts fail
    ours.send(("flush", 1))
    looping = threading.Thread(target=relay(rig, theirs, [(0.0, 0.0), (1.0, 2.0)]).run)
    looping.start()
    assert ours.poll(30)  # the first answer comes once the action is out
    answers = [ours.recv()]
    ours.send(("stop",))
    looping.join(30)

    assert rig.published() == recorded
    assert answers + messages(ours) == [
        ("published", [("erp_upsert", "applied", 1)], 1.0, 2.0),
        ("flushed", 1),
    ]


def test_the_relay_stops_when_its_consumer_is_gone(
    rig: Rig, pipe: tuple[Connection, Connection]
) -> None:
    ours, theirs = pipe
    ours.close()
    relay(rig, theirs, [(0.0, 0.0)]).run()  # returns: nothing to publish for, nobody to tell


def test_the_relay_gives_up_at_stop_when_the_broker_is_away(
    rig: Rig, pipe: tuple[Connection, Connection]
) -> None:
    ours, theirs = pipe
    recorded = rig.record_actions("A")
    rig.producer.refuse = 10
    ours.send(("stop",))
    relay(rig, theirs, [(0.0, 0.0)]).run()
    assert rig.published() == []
    # Left for the next relay of this consumer.
    assert [a for _, a in rig.record.unpublished(NAME)] == recorded


def test_a_failure_that_is_not_transient_ends_the_relay(
    rig: Rig, pipe: tuple[Connection, Connection]
) -> None:
    ours, theirs = pipe
    rig.record_actions("A")
    ours.send(("wake",))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    rig.producer.submit = broken  # type: ignore[assignment,method-assign]
    with pytest.raises(RuntimeError, match="a bug"):
        relay(rig, theirs, [(0.0, 0.0)]).run()
