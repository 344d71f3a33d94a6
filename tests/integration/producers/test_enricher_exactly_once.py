"""The enricher's exactly-once guarantee on the real broker: a batch that fails after some
of its events were sent is aborted (read_committed readers never see them), and a database
that missed the last commit is repaired from the orders topic before anything is emitted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlalchemy.exc

from orderflow.db import create_engine
from orderflow.kafka import Consumer
from producers.state import EmittedSnapshots, Snapshot, emitted_snapshots
from schemas.models import OrderNotice, make_event_id
from tests.integration.producers.conftest import World
from tests.integration.topics import read_topic


def _notices(shop_id: int, order_sns: Iterable[str], tag: str) -> list[OrderNotice]:
    return [
        OrderNotice(
            event_id=make_event_id(
                marketplace="shopee",
                shop_id=shop_id,
                order_sn=sn,
                status=None,
                update_time=None,
                source="poll",
                discriminator=tag,
            ),
            shop_id=shop_id,
            order_sn=sn,
            source="poll",
            received_at=datetime.now(UTC),
        )
        for sn in order_sns
    ]


def _consumer(world: World) -> Consumer:
    return Consumer(
        world.settings,
        group_id=f"enricher-{world.settings.topic_notices}",
        topics=[world.settings.topic_notices],
        max_poll_records=500,
    )


class _FailsOnce(EmittedSnapshots):
    """The real store, whose first lookup for ``shop_id`` fails as a lost connection would."""

    def __init__(self, engine: sa.Engine, shop_id: int) -> None:
        super().__init__(engine)
        self._shop_id = shop_id
        self.failed = False

    def latest(self, shop_id: int, order_sns: Iterable[str]) -> dict[str, Snapshot]:
        if shop_id == self._shop_id and not self.failed:
            self.failed = True
            raise sqlalchemy.exc.OperationalError("SELECT", {}, Exception("connection lost"))
        return super().latest(shop_id, order_sns)


def test_a_batch_that_fails_midway_is_aborted_then_emitted_once(world: World) -> None:
    second_shop, second_item = world.add_shop()
    state = world.sandbox.state
    first = [state.create_order(world.shop_id, [(world.item_id, 0, 1)]) for _ in range(20)]
    second = [state.create_order(second_shop, [(second_item, 0, 1)]) for _ in range(20)]
    world.notice_writer().write(
        _notices(world.shop_id, first, "a") + _notices(second_shop, second, "a")
    )
    flaky = _FailsOnce(create_engine(world.engine_url), second_shop)
    consumer = _consumer(world)
    enricher = world.enricher(consumer, snapshots=flaky)
    enricher.sleep = lambda _seconds: None
    try:
        # One shop's events are sent before the other shop's lookup fails: all are aborted.
        assert enricher.run_once() == 0
        assert flaky.failed
        assert read_topic(world.settings, world.settings.topic_orders) == []
        assert enricher.run_once() == 40
    finally:
        consumer.close()
    keys = Counter(r.key for r in read_topic(world.settings, world.settings.topic_orders))
    assert len(keys) == 40 and set(keys.values()) == {1}


def test_a_database_behind_the_topic_is_recovered_before_emitting(world: World) -> None:
    state = world.sandbox.state
    orders = [state.create_order(world.shop_id, [(world.item_id, 0, 1)]) for _ in range(30)]
    world.notice_writer().write(_notices(world.shop_id, orders, "first"))
    consumer = _consumer(world)
    try:
        assert world.enricher(consumer).run_once() == 30
    finally:
        consumer.close()
    # As if the process died after the Kafka commit and before remembering the snapshots.
    engine = create_engine(world.engine_url)
    with engine.begin() as conn:
        conn.execute(sa.delete(emitted_snapshots))

    # The same orders are noticed again (a poll overlap, a late duplicate push).
    world.notice_writer().write(_notices(world.shop_id, orders, "second"))
    consumer = _consumer(world)
    restarted = world.enricher(consumer)
    try:
        assert restarted.run_once() == 30
    finally:
        consumer.close()
    keys = Counter(r.key for r in read_topic(world.settings, world.settings.topic_orders))
    assert len(keys) == 30 and set(keys.values()) == {1}
    assert len(EmittedSnapshots(engine).latest(world.shop_id, orders)) == 30
