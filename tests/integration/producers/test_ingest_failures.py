"""Failures on the ingest side, each handled by its kind: a missing order is dead-lettered
alone, a blocked shop is parked (enricher) or skipped (poller) while the others carry on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consumers import deadletter
from orderflow.kafka import Consumer
from producers.poller import Poller, PollerConfig
from producers.state import Leases, ParkedNotices, ShopAuthorizations, Watermarks
from schemas.models import OrderNotice, make_event_id
from tests.integration.producers.conftest import World
from tests.integration.topics import read_topic


def _notice(shop_id: int, order_sn: str) -> OrderNotice:
    return OrderNotice(
        event_id=make_event_id(
            marketplace="shopee",
            shop_id=shop_id,
            order_sn=order_sn,
            status="READY_TO_SHIP",
            update_time=None,
            source="push",
            discriminator=order_sn,
        ),
        shop_id=shop_id,
        order_sn=order_sn,
        status="READY_TO_SHIP",
        source="push",
        received_at=datetime.now(UTC),
    )


def _consumer(world: World) -> Consumer:
    return Consumer(
        world.settings,
        group_id=f"enricher-{world.settings.topic_notices}",
        topics=[world.settings.topic_notices],
        max_poll_records=500,
    )


@pytest.mark.sandbox(unknown_order_sn="error")
def test_an_order_shopee_does_not_return_is_dead_lettered_alone(world: World) -> None:
    state = world.sandbox.state
    real = [state.create_order(world.shop_id, [(world.item_id, 0, 1)]) for _ in range(49)]
    world.notice_writer().write([_notice(world.shop_id, sn) for sn in [*real, "2611269NOSUCH"]])
    consumer = _consumer(world)
    enricher = world.enricher(consumer)
    enricher.config.missing_retry_delay = 0.01
    try:
        assert enricher.run_once() == 50
    finally:
        consumer.close()

    events = read_topic(world.settings, world.settings.topic_orders)
    assert sorted(r.key for r in events) == sorted(f"{world.shop_id}:{sn}".encode() for sn in real)
    (dead,) = read_topic(world.settings, f"{world.settings.topic_notices}.dlq.enricher")
    assert dead.key == f"{world.shop_id}:2611269NOSUCH".encode()
    assert "2611269NOSUCH" in (dead.header(deadletter.ERROR) or "")
    assert dead.header(deadletter.CONSUMER) == "enricher"
    assert dead.header(deadletter.TOPIC) == world.settings.topic_notices
    assert dead.header(deadletter.ATTEMPTS) == str(1 + enricher.config.missing_retries)
    assert world.notice_writer()._codec.decode(dead.value or b"").order_sn == "2611269NOSUCH"


def test_a_blocked_shops_notices_are_parked_and_come_back(world: World) -> None:
    blocked_shop, blocked_item = world.add_shop()
    state = world.sandbox.state
    fine = [state.create_order(world.shop_id, [(world.item_id, 0, 1)]) for _ in range(3)]
    held = [state.create_order(blocked_shop, [(blocked_item, 0, 1)]) for _ in range(2)]
    state.deauthorize(blocked_shop)  # its calls now answer shop_no_linked
    notices = [_notice(world.shop_id, sn) for sn in fine]
    notices += [_notice(blocked_shop, sn) for sn in held]
    world.notice_writer().write(notices)

    consumer = _consumer(world)
    enricher = world.enricher(consumer)
    try:
        assert enricher.run_once() == 5
        events = read_topic(world.settings, world.settings.topic_orders)
        assert {r.key for r in events} == {f"{world.shop_id}:{sn}".encode() for sn in fine}
        parked = ParkedNotices(enricher.parked._engine)
        assert parked.counts() == {blocked_shop: 2}
        assert read_topic(world.settings, f"{world.settings.topic_notices}.dlq.enricher") == []
        blocked = world.metrics.shop_blocked.labels("enricher", str(blocked_shop), "ShopAccessLost")
        assert blocked._value.get() == 1

        # The seller authorises again; once the retry time passes the notices come back.
        world.client.tokens.authorize(state.authorize(blocked_shop), blocked_shop)
        enricher.config.blocked_retry = 0
        enricher._blocked_until[blocked_shop] = (0.0, "ShopAccessLost")
        enricher.run_once()  # re-publishes the parked notices, then processes them
        enricher.run_once()
    finally:
        consumer.close()
    events = read_topic(world.settings, world.settings.topic_orders)
    assert {r.key for r in events} == {
        f"{shop}:{sn}".encode()
        for shop, sns in ((world.shop_id, fine), (blocked_shop, held))
        for sn in sns
    }
    assert parked.counts() == {}


def test_the_poller_skips_a_blocked_shop_and_carries_on_with_the_others(world: World) -> None:
    other_shop, other_item = world.add_shop()
    state = world.sandbox.state
    for shop, item in ((world.shop_id, world.item_id), (other_shop, other_item)):
        for _ in range(3):
            state.create_order(shop, [(item, 0, 1)])
    state.deauthorize(other_shop)
    engine = world.client.tokens.store._engine  # type: ignore[attr-defined]
    poller = Poller(
        client=world.client,
        notices=world.notice_writer(),
        watermarks=Watermarks(engine),
        leases=Leases(engine),
        authorizations=ShopAuthorizations(engine),
        metrics=world.metrics,
        config=PollerConfig(initial_lookback=3600, settle=0),
    )
    poller.run_once()

    notices = read_topic(world.settings, world.settings.topic_notices)
    polled = [r for r in notices if r.header("source") == "poll"]
    assert {int((r.key or b"0:").split(b":")[0]) for r in polled} == {world.shop_id}
    assert len(polled) == 3
    # The sandbox has no callback URL, so every push went to the lost-push store, which the
    # poller drained (it is partner level: blocked shops' pushes are still recovered).
    assert {r.header("source") for r in notices} == {"poll", "lost_push"}
    assert world.sandbox.pushes.summary()["lost_unconfirmed"] == 0
    assert Watermarks(engine).get(world.shop_id) is not None
    assert Watermarks(engine).get(other_shop) is None  # never moves without proof
    blocked = world.metrics.shop_blocked.labels("poller", str(other_shop), "ShopAccessLost")
    assert blocked._value.get() == 1
    assert world.metrics.push_subscription_status.labels("Normal")._value.get() == 1
