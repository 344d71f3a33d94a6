"""The consumer runtime on the real broker, registry and database: poison to the dead-letter
topic byte for byte, the breaker, where a new group starts, SIGTERM, and the OrderActions
every effect publishes."""

from __future__ import annotations

import time

from consumers import deadletter
from schemas.codec import frame
from schemas.models import order_key
from tests.integration.consumers.conftest import ConsumerProcess, ConsumerWorld, wait_for
from tests.integration.consumers.events import headers_of, invalid_event, order_event

SHOP = 777001
ITEM, MODEL = 5001, 7


def test_poison_is_dead_lettered_byte_for_byte_and_the_consumer_carries_on(
    world: ConsumerWorld,
) -> None:
    now = int(time.time())
    writer = world.writer
    writer.send([order_event(SHOP, "ORDER-A", update_time=now - 100)])
    garbage_key, garbage = b"777001:GARBAGE", b"\x7fnot Confluent Avro at all"
    garbage_headers = [("event_id", b"e-garbage"), ("source", b"push")]
    garbage_at = writer.send_raw(garbage_key, garbage, garbage_headers)
    invalid = invalid_event(order_event(SHOP, "ORDER-INVALID", update_time=now - 90))
    invalid_bytes = writer.codec.encode(invalid)
    invalid_at = writer.send_raw(
        order_key(SHOP, "ORDER-INVALID"), invalid_bytes, headers_of(invalid)
    )
    writer.send(
        [
            order_event(SHOP, "ORDER-A", update_time=now - 50, status="PROCESSED"),
            order_event(SHOP, "ORDER-B", update_time=now - 40),
        ]
    )

    erp = world.consumer("erp-sync")
    erp.run_until(lambda: world.caught_up("erp-sync"), "every record committed")

    letters = {record.key: record for record in world.dead_letters("erp-sync")}
    assert set(letters) == {garbage_key, order_key(SHOP, "ORDER-INVALID")}
    for key, value, headers, (partition, offset), error in [
        (garbage_key, garbage, garbage_headers, garbage_at, "not an OrderEvent"),
        (
            order_key(SHOP, "ORDER-INVALID"),
            invalid_bytes,
            headers_of(invalid),
            invalid_at,
            "OrderEvent is invalid",
        ),
    ]:
        letter = letters[key]
        assert letter.value == value
        for name, raw in headers:
            assert letter.headers[name] == raw
        assert error in (letter.header(deadletter.ERROR) or "")
        assert letter.header(deadletter.TOPIC) == world.settings.topic_orders
        assert letter.header(deadletter.PARTITION) == str(partition)
        assert letter.header(deadletter.OFFSET) == str(offset)
        assert letter.header(deadletter.CONSUMER) == "erp-sync"
        assert letter.header(deadletter.ATTEMPTS) == "1"
    assert "carrier-pigeon" in (letters[order_key(SHOP, "ORDER-INVALID")].header("dlq.error") or "")

    # The valid events around the poison were applied, the newest snapshot winning.
    stored = {(o.order_sn, o.status, o.update_time) for o in world.store.orders()}
    assert stored == {("ORDER-A", "PROCESSED", now - 50), ("ORDER-B", "READY_TO_SHIP", now - 40)}
    assert erp.metric("orderflow_dead_letters_total", consumer="erp-sync") == 2


def test_an_unknown_schema_id_is_retried_not_dead_lettered(world: ConsumerWorld) -> None:
    # The registry may not know an id yet (a producer registered it in another region):
    # the record waits, uncommitted, instead of being thrown away.
    key = order_key(SHOP, "ORDER-FUTURE")
    partition, offset = world.writer.send_raw(key, frame(2**31 - 7, b"\x02body"))
    erp = world.consumer("erp-sync")
    erp.runtime.config.backoff_base = 0.01
    erp.runtime.config.backoff_max = 0.05

    erp.run_until(
        lambda: erp.metric("orderflow_consumer_transient_retries_total", consumer="erp-sync") >= 3,
        "retried three times",
    )

    committed, _ = world.offsets("erp-sync")
    assert committed[partition] == offset
    assert world.dead_letters("erp-sync") == []
    assert world.store.orders() == []


def test_the_breaker_stops_a_consumer_fed_only_poison(world: ConsumerWorld) -> None:
    # One key: every record on one partition, in this order.
    placed = [world.writer.send_raw(b"777001:POISON", f"poison {n}".encode()) for n in range(50)]
    erp = world.consumer("erp-sync").start()

    wait_for(
        lambda: erp.metric("orderflow_consumer_breaker_open", consumer="erp-sync") == 1,
        "the breaker opens",
    )
    erp.stop()

    allowed = world.settings.consumer_breaker_min_dead_letters - 1
    letters = world.dead_letters("erp-sync")
    assert [letter.header(deadletter.OFFSET) for letter in letters] == [
        str(offset) for _, offset in placed[:allowed]
    ]
    tripping_partition, tripping_offset = placed[allowed]
    committed, _ = world.offsets("erp-sync")
    assert committed[tripping_partition] == tripping_offset
    assert not erp.runtime.ready()


def test_every_effect_is_published_as_an_order_action_once(world: ConsumerWorld) -> None:
    now = int(time.time())
    world.store.set_stock(ITEM, MODEL, 5, now)
    new = order_event(SHOP, "ORDER-X", update_time=now - 60, lines=[(ITEM, MODEL, 2)])
    cancelled = order_event(
        SHOP, "ORDER-X", update_time=now - 30, status="CANCELLED", lines=[(ITEM, MODEL, 2)]
    )
    erp, auto_cancel = world.consumer("erp-sync"), world.consumer("auto-cancel")
    world.writer.send([new])
    world.catch_up(erp, auto_cancel)
    # stock-restore sees the cancellation first: it releases what auto-cancel reserved.
    world.writer.send([cancelled])
    restore = world.consumer("stock-restore")
    world.catch_up(erp, restore)

    actions = world.actions()
    assert sorted((a.consumer, a.kind, a.event_id) for a in actions) == sorted(
        [
            ("auto-cancel", "stock_reserve", new.event_id),
            ("erp-sync", "erp_upsert", new.event_id),
            ("erp-sync", "erp_upsert", cancelled.event_id),
            ("stock-restore", "stock_restore", cancelled.event_id),
        ]
    )
    assert len({a.action_id for a in actions}) == len(actions)
    for action in actions:
        assert action.outcome == "applied"
        assert [(line.item_id, line.model_id, line.quantity) for line in action.lines] == [
            (ITEM, MODEL, 2)
        ]
    (level,) = world.store.stock()
    assert (level.on_hand, level.reserved) == (5, 0)

    # Redelivered (a producer retry, a replay): every consumer reads both events again.
    world.writer.send([new, cancelled])
    world.catch_up(erp, auto_cancel, restore)

    assert sorted(a.action_id for a in world.actions()) == sorted(a.action_id for a in actions)
    (level,) = world.store.stock()
    assert (level.on_hand, level.reserved) == (5, 0)


# -- as processes -----------------------------------------------------------------------------


def test_erp_sync_reads_from_the_earliest_and_drains_on_sigterm(world: ConsumerWorld) -> None:
    now = int(time.time())
    # Two batches and more: SIGTERM most likely lands while one is in hand.
    events = [order_event(SHOP, f"ORDER-{n:05d}", update_time=now - 600) for n in range(1200)]
    world.writer.send(events)
    erp = world.process("erp-sync")

    wait_for(lambda: _stored(world) > 0 or erp.process.poll() is not None, "a first batch")
    erp.assert_running()
    assert erp.terminate() == 0, erp.output()

    # Every record is its own order at its own offset: what was applied is exactly what was
    # committed, so a restarted consumer neither skips nor repeats an effect.
    committed, _ = world.offsets("erp-sync")
    assert _stored(world) == sum(committed.values()) > 0
    assert "orderflow erp-sync stopped" in erp.output()
    # The relay published every stored order's action before the process exited.
    assert len(world.actions()) == _stored(world)

    again = world.process("erp-sync")
    # Serving /metrics: started, its SIGTERM handler set (the first process may have applied
    # everything already, so the group is caught up before this one has even started).
    wait_for(lambda: again.metrics() != "" or again.process.poll() is not None, "a restart")
    again.assert_running()
    wait_for(lambda: world.caught_up("erp-sync"), "the rest after a restart")
    assert again.terminate() == 0, again.output()
    assert _stored(world) == len(events)
    assert sorted(a.order_sn for a in world.actions()) == sorted(e.order_sn for e in events)


def test_a_new_group_from_latest_skips_what_is_already_there(world: ConsumerWorld) -> None:
    now = int(time.time())
    old = [order_event(SHOP, f"OLD-{n}", update_time=now - 60) for n in range(3)]
    world.writer.send(old)
    erp = world.process("erp-sync", "--from", "latest")
    _wait_positioned(world, erp)

    new = [order_event(SHOP, f"NEW-{n}", update_time=now - 30) for n in range(3)]
    world.writer.send(new)
    wait_for(lambda: _stored(world) == len(new) and _lag_is_zero(world, erp), "the new events")

    assert erp.terminate() == 0, erp.output()
    assert sorted(o.order_sn for o in world.store.orders()) == sorted(e.order_sn for e in new)


def test_auto_cancel_starts_at_the_end_by_default(world: ConsumerWorld) -> None:
    now = int(time.time())
    world.store.set_stock(ITEM, MODEL, 10, now)
    old = order_event(SHOP, "OLD", update_time=now - 60, lines=[(ITEM, MODEL, 1)])
    world.writer.send([old])
    auto_cancel = world.process("auto-cancel")
    _wait_positioned(world, auto_cancel)

    new = order_event(SHOP, "NEW", update_time=now - 30, lines=[(ITEM, MODEL, 3)])
    world.writer.send([new])
    wait_for(
        lambda: bool(world.store.line_states(SHOP, "NEW")) and _lag_is_zero(world, auto_cancel),
        "the new order reserved",
    )

    assert auto_cancel.terminate() == 0, auto_cancel.output()
    assert world.store.line_states(SHOP, "OLD") == {}
    (level,) = world.store.stock()
    assert (level.on_hand, level.reserved) == (10, 3)


def _stored(world: ConsumerWorld) -> int:
    return len(world.store.orders())


def _wait_positioned(world: ConsumerWorld, process: ConsumerProcess) -> None:
    """Until the process has fetched from every partition: its group's start position is
    resolved, so what is written from now on is after it."""

    def positioned() -> bool:
        process.assert_running()
        return all(
            process.metric(
                "orderflow_consumer_lag_records", consumer=process.name, partition=str(p)
            )
            is not None
            for p in range(world.settings.topic_partitions)
        )

    wait_for(positioned, f"{process.name} reads every partition")


def _lag_is_zero(world: ConsumerWorld, process: ConsumerProcess) -> bool:
    return all(
        process.metric("orderflow_consumer_lag_records", consumer=process.name, partition=str(p))
        == 0
        for p in range(world.settings.topic_partitions)
    )
