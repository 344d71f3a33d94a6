from __future__ import annotations

from orderflow.settings import Settings
from orderflow.topics import ORDER_CONSUMERS, dlq_topic, plan
from schemas.models import OrderAction, OrderEvent, OrderNotice


def test_the_plan_names_the_contract_topics_and_one_dead_letter_topic_per_reader() -> None:
    plans = {p.spec.name: p for p in plan(Settings())}
    assert plans["shopee.order-notices"].record is OrderNotice
    assert plans["shopee.orders"].record is OrderEvent
    assert plans["shopee.order-actions"].record is OrderAction
    assert "shopee.order-notices.dlq.enricher" in plans
    for consumer in ORDER_CONSUMERS:
        assert plans[dlq_topic("shopee.orders", consumer)].record is None


def test_snapshots_compact_only_after_a_week() -> None:
    orders = next(p for p in plan(Settings()) if p.spec.name == "shopee.orders")
    assert orders.spec.configs["cleanup.policy"] == "compact"
    assert int(orders.spec.configs["min.compaction.lag.ms"]) >= 7 * 24 * 3600 * 1000


def test_min_insync_replicas_never_exceeds_the_replication_factor() -> None:
    for replicas in (1, 2, 3):
        for p in plan(Settings(topic_replication_factor=replicas)):
            assert int(p.spec.configs["min.insync.replicas"]) <= replicas
