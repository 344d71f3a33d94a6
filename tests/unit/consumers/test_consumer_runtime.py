"""The consumer runtime against in-memory twins: commit after the effect, poison to the dead
letters, transient failures read again, blocked shops parked and resumed, crashes, the
breaker, rebalances and lag."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from consumers.actions import ActionEncoder, ActionPublisher
from consumers.breaker import CircuitBreaker
from consumers.erp.outbox import ActionRecord
from consumers.parking import ParkedRecords
from consumers.publishing import InlineOutlet
from consumers.runtime import ConsumerRuntime, RuntimeConfig
from orderflow.failures import Blocked, Poison, Transient
from orderflow.kafka import ConsumedRecord
from orderflow.metrics import Metrics
from schemas.codec import AvroCodec, frame
from schemas.models import OrderAction, OrderEvent
from schemas.registry import InMemorySchemaRegistry
from shopee.errors import InvalidRequest, ReauthorizationRequired, ShopAccessLost
from tests.unit.consumers.twins import (
    ACTIONS_TOPIC,
    SHOP,
    T0,
    TOPIC,
    FakeProducer,
    InMemorySource,
    InstantStop,
    ScriptedHandler,
    Sent,
    StartingScriptedHandler,
    dead_letters,
    migrated_engine,
    order_event,
    sample,
)
from tests.unit.shopee.token_fakes import FakeClock

OTHER_SHOP = 2
DLQ = f"{TOPIC}.dlq.{ScriptedHandler.name}"
NAME = ScriptedHandler.name


@dataclass
class Rig:
    """One runtime and every twin around it."""

    runtime: ConsumerRuntime
    source: InMemorySource
    handler: ScriptedHandler
    producer: FakeProducer
    codec: AvroCodec[OrderEvent]
    parked: ParkedRecords
    actions: ActionRecord
    metrics: Metrics
    clock: FakeClock
    stop: InstantStop

    def add(self, *events: OrderEvent, partition: int = 0) -> list[ConsumedRecord]:
        return [self.source.append_event(self.codec, e, partition=partition) for e in events]

    def add_bytes(self, value: bytes, partition: int = 0) -> ConsumedRecord:
        return self.source.append(
            value, partition=partition, key=b"14701711:BAD", headers={"event_id": b"e-bad"}
        )

    def run_once(self) -> int:
        return self.runtime.run_once(self.stop)

    @property
    def dead_letters(self) -> list[Sent]:
        return self.producer.on(DLQ)

    def metric(self, name: str, **labels: str) -> float:
        return sample(self.metrics, name, **labels)


MakeRig = Callable[..., Rig]


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return migrated_engine(tmp_path)


@pytest.fixture
def make_rig(engine: Engine, metrics: Metrics) -> MakeRig:
    """A runtime over twins; rigs made in one test share the database and the schema
    registry, as a restarted process does."""
    registry = InMemorySchemaRegistry()

    def make(
        *,
        partitions: int = 1,
        breaker: CircuitBreaker | None = None,
        max_batch: int = 500,
        commit_interval: float = 0.0,
        starting: bool = False,
    ) -> Rig:
        source = InMemorySource(partitions=partitions)
        actions = ActionRecord(engine)
        handler = (StartingScriptedHandler if starting else ScriptedHandler)(actions)
        producer = FakeProducer()
        clock = FakeClock()
        parked = ParkedRecords(engine, handler.name)
        runtime = ConsumerRuntime(
            handler=handler,
            consumer=source,
            codec=AvroCodec(OrderEvent, TOPIC, registry),
            dead_letters=dead_letters(producer, metrics, handler.name),
            parked=parked,
            actions=InlineOutlet(
                ActionPublisher(
                    actions,
                    producer.as_producer(),
                    ActionEncoder(AvroCodec(OrderAction, ACTIONS_TOPIC, registry)),
                    consumer=handler.name,
                    clock=clock,
                ),
                metrics,
                consumer=handler.name,
            ),
            metrics=metrics,
            breaker=breaker or CircuitBreaker(),
            config=RuntimeConfig(
                max_batch=max_batch,
                poll_timeout=0.0,
                blocked_retry=300.0,
                commit_interval=commit_interval,
            ),
            clock=clock,
        )
        codec = AvroCodec(OrderEvent, TOPIC, registry)
        return Rig(
            runtime,
            source,
            handler,
            producer,
            codec,
            parked,
            actions,
            metrics,
            clock,
            InstantStop(),
        )

    return make


def events(*order_sns: str, shop_id: int = SHOP) -> list[OrderEvent]:
    return [order_event(sn, shop_id=shop_id) for sn in order_sns]


P0, P1 = (TOPIC, 0), (TOPIC, 1)


# -- commit after the effect ------------------------------------------------------------------


def test_offsets_are_committed_only_after_the_handler_returns(make_rig: MakeRig) -> None:
    seen_committed: list[dict[tuple[str, int], int]] = []
    r = make_rig(partitions=2)
    r.handler.on_call = lambda _: seen_committed.append(dict(r.source.committed))
    r.add(*events("A", "B", "C"))
    r.add(*events("D"), partition=1)
    assert r.run_once() == 4
    assert r.handler.calls == [["A", "B", "C", "D"]]
    assert seen_committed == [{}]
    assert r.source.committed == {P0: 3, P1: 1}

    r.add(*events("E"))
    assert r.run_once() == 1
    # While E was being handled, its offset (3) was not committed.
    assert seen_committed[-1] == {P0: 3, P1: 1}
    assert r.source.committed == {P0: 4, P1: 1}
    assert r.handler.applied == ["A", "B", "C", "D", "E"]
    assert (
        r.metric("orderflow_records_consumed_total", topic=TOPIC, consumer=NAME, outcome="applied")
        == 5
    )
    assert r.runtime.ready()


def test_the_actions_the_handler_recorded_are_published(make_rig: MakeRig) -> None:
    r = make_rig()
    r.add(*events("A", "B"))
    r.run_once()
    published = r.producer.on(ACTIONS_TOPIC)
    recorded = r.actions.all(NAME)
    assert [p.header("action_id") for p in published] == [a.action_id for a in recorded]
    assert [p.key for p in published] == [b"14701711:A", b"14701711:B"]
    assert r.actions.unpublished(NAME) == []
    # Redelivered events record nothing new, so nothing more is published.
    r.source.seek(TOPIC, 0, 0)
    r.run_once()
    r.run_once()
    assert len(r.producer.on(ACTIONS_TOPIC)) == 2


# -- poison -----------------------------------------------------------------------------------


def _valid(r: Rig) -> bytes:
    return r.codec.encode(order_event("OK"))


POISON_BYTES: list[tuple[str, Callable[[Rig], bytes]]] = [
    ("empty", lambda r: b""),
    ("not confluent framed", lambda r: b"{'order_sn': 'A'}"),
    ("truncated avro", lambda r: _valid(r)[:-10]),
    ("bytes left over", lambda r: _valid(r) + b"\x00\x01"),
    ("garbage body", lambda r: frame(r.codec.schema_id, b"\xff\xff\xff\xff\xff\xff\xff")),
]


@pytest.mark.parametrize(
    "make_value", [v for _, v in POISON_BYTES], ids=[n for n, _ in POISON_BYTES]
)
def test_bytes_that_are_not_an_event_are_dead_lettered_and_committed(
    make_rig: MakeRig, make_value: Callable[[Rig], bytes]
) -> None:
    r = make_rig()
    r.add(*events("A"))
    value = make_value(r)
    r.add_bytes(value)
    r.add(*events("B"))
    assert r.run_once() == 3
    assert r.handler.applied == ["A", "B"]
    (letter,) = r.dead_letters
    assert (letter.key, letter.value) == (b"14701711:BAD", value)
    assert letter.header("event_id") == "e-bad"  # the record's own headers are kept
    assert (letter.header("dlq.error") or "").startswith("not an OrderEvent")
    assert letter.header("dlq.original.topic") == TOPIC
    assert letter.header("dlq.original.partition") == "0"
    assert letter.header("dlq.original.offset") == "1"
    assert letter.header("dlq.consumer") == NAME
    assert letter.header("dlq.attempts") == "1"
    assert r.source.committed == {P0: 3}
    assert r.metric("orderflow_dead_letters_total", consumer=NAME) == 1
    assert r.metric("orderflow_decode_errors_total", topic=TOPIC) == 1
    assert (
        r.metric(
            "orderflow_records_consumed_total", topic=TOPIC, consumer=NAME, outcome="dead_letter"
        )
        == 1
    )


@pytest.mark.parametrize(
    "refusal",
    [Poison("the ERP refuses order B: unknown SKU"), InvalidRequest("bad parameters for B")],
    ids=["poison", "final shopee answer"],
)
def test_a_record_refused_for_good_is_dead_lettered_and_the_others_applied(
    make_rig: MakeRig, refusal: Exception
) -> None:
    r = make_rig()
    r.add(*events("A", "B", "C"))
    r.handler.fail("B", refusal)
    assert r.run_once() == 3
    # The batch failed, so its records were handled one by one to find the culprit.
    assert r.handler.calls == [["A", "B", "C"], ["A"], ["B"], ["C"]]
    assert r.handler.applied == ["A", "C"]
    (letter,) = r.dead_letters
    assert letter.header("dlq.original.offset") == "1"
    assert str(refusal) in (letter.header("dlq.error") or "")
    assert type(refusal).__name__ in (letter.header("dlq.error") or "")
    assert r.source.committed == {P0: 3}


# -- transient --------------------------------------------------------------------------------


def test_a_record_by_record_handler_is_not_asked_again_for_what_finished(
    make_rig: MakeRig,
) -> None:
    r = make_rig()
    r.handler.per_record = True
    r.add(*events("A", "X", "B"))
    r.add(
        order_event("C", shop_id=OTHER_SHOP), order_event("D"), order_event("E", shop_id=OTHER_SHOP)
    )
    r.handler.fail("X", Poison("refused"))
    r.handler.fail("C", ShopAccessLost("Shopee error shop_access_expired"))
    assert r.run_once() == 6
    # One call for the batch, then one for what followed each failure, nothing twice.
    assert r.handler.calls == [["A", "X", "B", "C", "D", "E"], ["B", "C", "D", "E"], ["D"]]
    assert r.handler.applied == ["A", "B", "D"]
    assert [d.header("dlq.original.offset") for d in r.dead_letters] == ["1"]
    assert [p.record.offset for p in r.parked.take(OTHER_SHOP)] == [3, 5]
    assert r.source.committed == {P0: 6}


def test_a_record_by_record_handler_failing_transiently_commits_what_finished(
    make_rig: MakeRig,
) -> None:
    r = make_rig()
    r.handler.per_record = True
    r.add(*events("A", "B", "C"))
    r.handler.fail("B", Transient("the database is away"), times=1)
    assert r.run_once() == 0
    assert r.source.committed == {P0: 1}
    assert r.source.seeks == [(TOPIC, 0, 1)]
    assert r.run_once() == 2
    assert r.handler.applied == ["A", "B", "C"]


def test_a_transient_failure_commits_what_finished_and_reads_the_rest_again(
    make_rig: MakeRig,
) -> None:
    r = make_rig(partitions=2)
    r.add(*events("A", "X", "B"))
    r.add(*events("C", "D"), partition=1)
    r.handler.fail("X", Poison("refused"), times=1)  # the batch fails, then one by one
    r.handler.fail("B", Transient("the ERP is busy"), times=1)

    assert r.run_once() == 0
    assert r.handler.applied == ["A", "X"]
    # A and X finished; nothing from B on was committed, C and D were not reached.
    assert r.source.committed == {P0: 2}
    assert r.source.seeks == [(TOPIC, 0, 2), (TOPIC, 1, 0)]
    assert r.metric("orderflow_consumer_transient_retries_total", consumer=NAME) == 1
    assert r.stop.waited == [1.0]

    assert r.run_once() == 3
    assert r.handler.applied == ["A", "X", "B", "C", "D"]
    assert r.source.committed == {P0: 3, P1: 2}


def test_a_transient_failure_never_commits_past_a_poison_record_not_yet_dead_lettered(
    make_rig: MakeRig,
) -> None:
    r = make_rig()
    r.add_bytes(b"poison")
    r.add(*events("A", "B"))
    r.handler.fail("B", Transient("the ERP is busy"), times=1)
    # The good records are handled as one batch first; it fails, so nothing finished.
    assert r.run_once() == 0
    assert r.source.committed == {}
    assert r.dead_letters == []
    assert r.run_once() == 3
    assert r.handler.applied == ["A", "B"]
    assert r.source.committed == {P0: 3}
    assert len(r.dead_letters) == 1  # dead-lettered once


def test_a_transient_failure_of_a_whole_batch_commits_nothing_and_backs_off(
    make_rig: MakeRig,
) -> None:
    r = make_rig()
    r.add(*events("A", "B", "C"))
    r.handler.fail("B", Transient("the ERP is busy"), times=2)
    assert r.run_once() == 0
    assert r.run_once() == 0
    assert r.source.committed == {}
    assert r.source.seeks == [(TOPIC, 0, 0), (TOPIC, 0, 0)]
    assert r.handler.applied == []  # all or nothing: the batch's transaction rolled back
    assert r.run_once() == 3
    assert r.handler.applied == ["A", "B", "C"]
    assert r.source.committed == {P0: 3}
    assert r.metric("orderflow_consumer_transient_retries_total", consumer=NAME) == 2
    # The backoff grows while failures last and starts over after a success.
    r.add(*events("D"))
    r.handler.fail("D", Transient("busy again"), times=1)
    r.run_once()
    assert r.stop.waited == [1.0, 2.0, 1.0]


def test_an_unknown_schema_id_is_waited_out_not_dead_lettered(make_rig: MakeRig) -> None:
    r = make_rig()
    r.add_bytes(frame(4242, b"\x02"))
    assert r.run_once() == 0
    assert r.dead_letters == []
    assert r.source.committed == {}
    assert r.source.seeks == [(TOPIC, 0, 0)]
    assert r.metric("orderflow_consumer_transient_retries_total", consumer=NAME) == 1


def test_a_commit_that_fails_is_made_with_the_next_batch(make_rig: MakeRig) -> None:
    r = make_rig()
    r.add(*events("A", "B"))
    r.source.fail_commits = 1
    assert r.run_once() == 0
    assert r.source.committed == {}
    assert r.metric("orderflow_consumer_transient_retries_total", consumer=NAME) == 1
    r.add(*events("C"))
    r.run_once()
    assert r.handler.applied == ["A", "B", "C"]
    assert r.source.committed == {P0: 3}


def test_a_transient_failure_whose_commit_also_fails_still_reads_the_rest_again(
    make_rig: MakeRig,
) -> None:
    r = make_rig()
    r.add(*events("A", "X", "B", "C"))
    r.handler.fail("X", Poison("refused"), times=1)  # the batch fails, then one by one
    r.handler.fail("B", Transient("the ERP is busy"), times=1)
    r.source.fail_commits = 1
    assert r.run_once() == 0
    assert r.source.committed == {}  # A and X finished, but their commit failed
    r.run_once()
    # B and C were never finished: they must not be skipped because a commit failed.
    assert r.handler.applied == ["A", "X", "B", "C"]
    assert r.source.committed == {P0: 4}


# -- batches started and finished later (erp-sync on PostgreSQL) -----------------------------


def starting_rig(make_rig: MakeRig, **options: int) -> tuple[Rig, StartingScriptedHandler]:
    r = make_rig(starting=True, **options)
    assert isinstance(r.handler, StartingScriptedHandler)
    return r, r.handler


def test_a_started_batch_is_finished_after_the_next_poll_and_before_the_next_start(
    make_rig: MakeRig,
) -> None:
    r, handler = starting_rig(make_rig)
    polls = r.source.poll

    def poll(timeout: float = 1.0, max_records: int | None = None) -> list[ConsumedRecord]:
        handler.log.append(f"poll {timeout}")
        return polls(timeout, max_records)

    r.source.poll = poll  # type: ignore[method-assign]
    r.add(*events("A", "B"))
    assert r.run_once() == 0  # started, not finished: nothing to commit yet
    assert r.handler.applied == []
    assert r.source.committed == {}
    r.add(*events("C"))
    assert r.run_once() == 2
    assert r.source.committed == {P0: 2}
    assert r.run_once() == 1
    assert r.source.committed == {P0: 3}
    assert r.handler.applied == ["A", "B", "C"]
    # With a batch in flight the poll does not wait: the batch is finished right after it.
    assert handler.log == [
        "poll 0.0",
        "start AB",
        "poll 0.0",
        "finish AB",
        "start C",
        "poll 0.0",
        "finish C",
    ]
    assert r.runtime.run_once() == 0
    assert handler.log[-1] == "poll 0.0"  # the rig's poll_timeout; nothing in flight


def test_a_started_batch_failing_transiently_is_read_again_with_what_was_read_after_it(
    make_rig: MakeRig,
) -> None:
    r, handler = starting_rig(make_rig, partitions=2)
    r.add(*events("A", "B"))
    handler.fail("B", Transient("the database is away"), times=1)
    r.run_once()
    r.add(*events("C"))  # read while A and B are in flight
    r.add(*events("D"), partition=1)
    assert r.run_once() == 0
    assert r.source.committed == {}
    # A and B, and everything read after them, are read again: P1 from D, not after it.
    assert r.source.seeks == [(TOPIC, 0, 0), (TOPIC, 1, 0)]
    assert r.metric("orderflow_consumer_transient_retries_total", consumer=NAME) == 1
    r.run_once()
    r.run_once()
    assert r.handler.applied == ["A", "B", "C", "D"]
    assert r.source.committed == {P0: 3, P1: 1}


def test_a_started_batch_refused_for_good_is_handled_record_by_record(
    make_rig: MakeRig,
) -> None:
    r, handler = starting_rig(make_rig)
    r.add(*events("A", "X", "B"))
    handler.fail("X", Poison("refused"), times=1)
    r.run_once()
    assert r.runtime.run_once() == 3
    assert handler.log == ["start AXB", "finish AXB"]
    assert handler.calls[1:] == [["A"], ["X"], ["B"]]
    assert r.handler.applied == ["A", "X", "B"]  # X's second try went through
    assert r.source.committed == {P0: 3}


def test_a_batch_that_fails_to_start_fails_when_it_is_finished(make_rig: MakeRig) -> None:
    r, handler = starting_rig(make_rig)
    r.add(*events("A", "B"))
    handler.start_fails = Transient("the database is away")
    assert r.run_once() == 0
    assert r.run_once() == 0  # the failure, settled as a transient one: read again
    assert r.source.seeks == [(TOPIC, 0, 0)]
    assert r.source.committed == {}
    r.run_once()
    assert r.run_once() == 2
    assert r.handler.applied == ["A", "B"]
    assert r.source.committed == {P0: 2}


def test_a_batch_the_handler_cannot_start_is_handled_at_once(make_rig: MakeRig) -> None:
    r, handler = starting_rig(make_rig)
    handler.can_start = False
    r.add(*events("A", "B"))
    assert r.run_once() == 2
    assert r.source.committed == {P0: 2}


def test_a_stop_finishes_the_batch_in_flight_and_commits_it(make_rig: MakeRig) -> None:
    r, handler = starting_rig(make_rig, max_batch=2)
    r.add(*events("A", "B", "C"))
    stop = InstantStop()
    polls = r.source.poll

    def poll(timeout: float = 1.0, max_records: int | None = None) -> list[ConsumedRecord]:
        stop.set()  # SIGTERM arrives while A and B are read, then started
        return polls(timeout, max_records)

    r.source.poll = poll  # type: ignore[method-assign]
    r.runtime.run(stop)
    assert handler.log == ["start AB", "finish AB"]
    assert r.handler.applied == ["A", "B"]
    assert r.source.committed == {P0: 2}


def test_parked_records_are_tried_after_the_batch_in_flight(make_rig: MakeRig) -> None:
    r, handler = starting_rig(make_rig)
    handler.block(SHOP, ShopAccessLost("Shopee error shop_access_expired"))
    r.add(order_event("A"), order_event("B", shop_id=OTHER_SHOP))
    r.run_once()
    r.run_once()  # the batch fails as a whole: A parked, B applied on its own
    assert r.handler.applied == ["B"]
    assert r.parked.count() == 1
    handler.unblock(SHOP)
    r.add(order_event("C", shop_id=OTHER_SHOP))
    r.run_once()  # C started
    r.clock.advance(300)
    r.run_once()
    assert handler.log[-2:] == ["start C", "finish C"]
    assert handler.calls[-2:] == [["C"], ["A"]]  # C finished, then the parked A
    assert r.handler.applied == ["B", "C", "A"]
    assert r.parked.count() == 0


# -- blocked shops ----------------------------------------------------------------------------


def test_a_blocked_shop_is_parked_the_others_flow_and_it_resumes_in_order(
    make_rig: MakeRig,
) -> None:
    r = make_rig()
    blocked = {"process": NAME, "shop_id": str(SHOP), "reason": "ShopAccessLost"}
    r.handler.block(SHOP, ShopAccessLost("Shopee error shop_access_expired"))
    r.add(
        order_event("A"),
        order_event("B", shop_id=OTHER_SHOP),
        order_event("C"),
        order_event("D", shop_id=OTHER_SHOP),
    )
    assert r.run_once() == 4
    assert r.handler.applied == ["B", "D"]
    assert r.source.committed == {P0: 4}  # parked records are committed: they are durable
    assert [p.record.offset for p in r.parked.take(SHOP)] == [0, 2]
    assert r.dead_letters == []  # a blocked shop is never dead-lettered
    assert r.metric("orderflow_shop_blocked", **blocked) == 1
    assert (
        r.metric("orderflow_records_consumed_total", topic=TOPIC, consumer=NAME, outcome="parked")
        == 2
    )

    # Later records of the shop are parked without asking the handler; others flow.
    r.add(order_event("E"), *events("F", shop_id=OTHER_SHOP))
    r.run_once()
    assert r.handler.calls[-1] == ["F"]
    assert r.handler.applied == ["B", "D", "F"]
    assert [p.record.offset for p in r.parked.take(SHOP)] == [0, 2, 4]

    # After blocked_retry the oldest parked record is tried; still blocked: all stay parked.
    r.clock.advance(300)
    r.run_once()
    assert r.handler.calls[-1] == ["A"]
    assert r.handler.applied == ["B", "D", "F"]
    assert r.parked.count() == 3
    assert r.metric("orderflow_shop_blocked", **blocked) == 1

    # The seller re-authorised; the next try is blocked_retry after the last one.
    r.handler.unblock(SHOP)
    r.clock.advance(299)
    r.run_once()
    assert r.parked.count() == 3
    r.clock.advance(1)
    r.run_once()
    assert r.handler.applied == ["B", "D", "F", "A", "C", "E"]
    assert r.parked.count() == 0
    assert r.metric("orderflow_shop_blocked", **blocked) == 0

    # The shop flows again.
    r.add(order_event("G"))
    r.run_once()
    assert r.handler.applied[-1] == "G"
    assert r.source.committed == {P0: 7}


def test_while_a_shop_is_blocked_the_other_shops_are_still_handled_as_one_batch(
    make_rig: MakeRig,
) -> None:
    r = make_rig()
    r.handler.block(SHOP, ShopAccessLost("Shopee error shop_access_expired"))
    r.add(order_event("A"))
    r.run_once()
    r.add(
        order_event("B", shop_id=OTHER_SHOP), order_event("C"), order_event("D", shop_id=OTHER_SHOP)
    )
    assert r.run_once() == 3
    assert r.handler.calls[-1] == ["B", "D"]
    assert [p.record.offset for p in r.parked.take(SHOP)] == [0, 2]
    assert r.source.committed == {P0: 4}


def test_a_transient_failure_of_parked_records_is_retried_soon_and_others_flow(
    make_rig: MakeRig,
) -> None:
    r = make_rig()
    r.handler.block(SHOP, ShopAccessLost("Shopee error shop_access_expired"))
    r.add(order_event("A"))
    r.run_once()
    r.handler.unblock(SHOP)
    r.handler.fail("A", Transient("Shopee is busy"), times=1)
    r.clock.advance(300)
    r.add(order_event("B", shop_id=OTHER_SHOP))
    assert r.run_once() == 1  # B flows although the parked A could not be handled yet
    assert r.handler.applied == ["B"]
    assert r.parked.count() == 1
    r.clock.advance(29)
    r.run_once()
    assert r.parked.count() == 1  # retried after the longest backoff, not at once
    r.clock.advance(1)
    r.run_once()
    assert r.handler.applied == ["B", "A"]
    assert r.parked.count() == 0


def test_a_shop_blocked_for_another_reason_on_retry_leaves_no_alert_behind(
    make_rig: MakeRig,
) -> None:
    r = make_rig()
    r.handler.block(SHOP, ShopAccessLost("Shopee error shop_access_expired"))
    r.add(order_event("A"))
    r.run_once()
    # On the retry the seller's authorisation turns out to be gone for good.
    r.handler.block(SHOP, ReauthorizationRequired("refresh token expired"))
    r.clock.advance(300)
    r.run_once()
    alerts = {
        reason: r.metric("orderflow_shop_blocked", process=NAME, shop_id=str(SHOP), reason=reason)
        for reason in ("ShopAccessLost", "ReauthorizationRequired")
    }
    assert alerts == {"ShopAccessLost": 0, "ReauthorizationRequired": 1}
    r.handler.unblock(SHOP)
    r.clock.advance(300)
    r.run_once()
    assert r.handler.applied == ["A"]
    assert (
        r.metric("orderflow_shop_blocked", process=NAME, shop_id=str(SHOP), reason="ShopAccessLost")
        == 0
    )
    assert (
        r.metric(
            "orderflow_shop_blocked",
            process=NAME,
            shop_id=str(SHOP),
            reason="ReauthorizationRequired",
        )
        == 0
    )


def test_parked_records_left_by_a_previous_run_are_tried_at_once(make_rig: MakeRig) -> None:
    before = make_rig()
    before.handler.block(SHOP, Blocked(SHOP, "daily quota spent"))
    before.add(*events("A", "B", "C"))
    before.run_once()
    assert before.parked.count() == 3

    after = make_rig()  # a restart: same database, quota reset
    after.handler.fail("B", Poison("B can never be written"))
    after.run_once()
    assert after.handler.applied == ["A", "C"]
    (letter,) = after.dead_letters
    assert letter.header("dlq.original.offset") == "1"
    assert after.parked.count() == 0
    assert (
        after.metric(
            "orderflow_shop_blocked", process=NAME, shop_id=str(SHOP), reason="daily quota spent"
        )
        == 0
    )


# -- crashes and the breaker ------------------------------------------------------------------


def test_a_crash_propagates_and_commits_only_finished_records(make_rig: MakeRig) -> None:
    r = make_rig()
    r.add(*events("A", "X", "B", "C"))
    r.handler.fail("X", Poison("refused"), times=1)  # the batch fails, then one by one
    r.handler.fail("B", RuntimeError("a bug"))
    with pytest.raises(RuntimeError, match="a bug"):
        r.run_once()
    assert r.handler.applied == ["A", "X"]
    assert r.source.committed == {P0: 2}
    assert r.dead_letters == []


def test_a_crash_in_a_whole_batch_commits_nothing(make_rig: MakeRig) -> None:
    r = make_rig()
    r.add(*events("A", "B"))
    r.handler.fail("B", KeyError("bug"))
    with pytest.raises(KeyError):
        r.run_once()
    assert r.source.committed == {}
    assert r.dead_letters == []


def test_the_breaker_stops_a_consumer_fed_only_poison(make_rig: MakeRig) -> None:
    r = make_rig(breaker=CircuitBreaker(window=10, threshold=0.5, min_dead_letters=3))
    for n in range(5):
        r.add_bytes(f"poison {n}".encode())
    r.add(*events("A"))
    assert r.run_once() == 0
    # Two dead letters; the third would have opened the breaker, so it was neither
    # dead-lettered nor committed.
    assert [d.header("dlq.original.offset") for d in r.dead_letters] == ["0", "1"]
    assert r.source.committed == {P0: 2}
    assert r.metric("orderflow_consumer_breaker_open", consumer=NAME) == 1
    assert not r.runtime.ready()
    # A (after the poison) was handled in the batch, but its offset is not committed.
    assert r.handler.applied == ["A"]

    polls = r.source.polls
    r.runtime.run(InstantStop(set_after_waits=3))
    assert r.source.polls == polls  # stopped: nothing more is read
    assert r.source.committed == {P0: 2}
    assert len(r.dead_letters) == 2


def test_a_stop_finishes_and_commits_the_batch_in_hand(make_rig: MakeRig) -> None:
    r = make_rig(max_batch=2)
    r.add(*events("A", "B", "C"))
    stop = InstantStop()
    r.handler.on_call = lambda _: stop.set()  # SIGTERM arrives while A and B are handled
    r.runtime.run(stop)
    assert r.handler.applied == ["A", "B"]
    assert r.source.committed == {P0: 2}
    assert r.source.polls == 1


def test_offsets_are_committed_at_most_once_per_interval_and_when_idle_once_due(
    make_rig: MakeRig,
) -> None:
    r = make_rig(max_batch=2, commit_interval=5.0)
    r.add(*events("A", "B", "C", "D", "E"))
    r.run_once()
    assert r.source.commits == [{P0: 2}]  # the first batch commits at once
    r.run_once()
    r.clock.advance(4.9)
    r.run_once()
    assert r.source.commits == [{P0: 2}]  # C, D and E are finished, held back
    assert r.handler.applied == ["A", "B", "C", "D", "E"]
    r.clock.advance(0.1)
    assert r.run_once() == 0  # nothing left to read; the held-back offsets are due
    assert r.source.commits == [{P0: 2}, {P0: 5}]


def test_a_failure_and_a_stop_commit_what_the_interval_held_back(make_rig: MakeRig) -> None:
    r = make_rig(max_batch=1, commit_interval=60.0)
    r.add(*events("A", "B", "C", "D", "E"))
    r.handler.fail("D", Transient("the ERP is busy"), times=1)
    assert [r.run_once() for _ in range(3)] == [1, 1, 1]
    assert r.source.commits == [{P0: 1}]  # B and C held back
    assert r.run_once() == 0  # D failed: what finished before it is committed at once
    assert r.source.committed == {P0: 3}
    stop = InstantStop()
    r.handler.on_call = lambda _: stop.set()
    r.runtime.run(stop)  # D is handled, then the stop commits it
    assert r.handler.applied == ["A", "B", "C", "D"]
    assert r.source.committed == {P0: 4}


# -- rebalances and lag -----------------------------------------------------------------------


def test_a_revoked_partition_gets_its_finished_offsets_committed(make_rig: MakeRig) -> None:
    r = make_rig(partitions=2)
    r.add(*events("A", "B"))
    r.add(*events("C"), partition=1)
    r.source.fail_commits = 1
    r.run_once()
    assert r.source.committed == {}
    r.runtime.on_revoked([P0])
    assert r.source.committed == {P0: 2}
    # Sent without waiting: kafka-python runs the listener on its I/O thread.
    assert r.source.sent_only == [{P0: 2}]
    r.runtime.on_revoked([P0])  # nothing left to commit there
    assert r.source.commits == [{P0: 2}]
    assert r.metric("orderflow_consumer_lag_records", consumer=NAME, partition="0") == 0
    r.runtime.on_revoked([P1])
    assert r.source.committed == {P0: 2, P1: 1}


def test_lag_is_reported_per_partition_and_in_seconds(make_rig: MakeRig) -> None:
    r = make_rig(max_batch=2)
    r.add(*events("A", "B", "C", "D", "E"))
    r.run_once()
    assert r.metric("orderflow_consumer_lag_records", consumer=NAME, partition="0") == 3
    # The fake clock is 1000 s after T0; the events were written at T0 + 1.
    assert r.clock() - T0 == 1000
    assert r.metric("orderflow_consumer_lag_seconds", consumer=NAME) == 999
    r.run_once()
    r.run_once()
    assert r.metric("orderflow_consumer_lag_records", consumer=NAME, partition="0") == 0
    assert r.metric("orderflow_consumer_lag_seconds", consumer=NAME) == 0
