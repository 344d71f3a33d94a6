from __future__ import annotations

from orderflow.kafka import Admin
from orderflow.settings import Settings
from orderflow.topics import dlq_topic, ensure_topics, plan
from schemas.registry import SchemaRegistryClient


def test_topics_are_created_once_and_schemas_keep_their_ids(
    settings: Settings, registry: SchemaRegistryClient
) -> None:
    admin = Admin(settings)
    try:
        first = ensure_topics(settings, admin, registry)
        second = ensure_topics(settings, admin, registry)
        names = {p.spec.name for p in plan(settings)}
        assert names <= admin.list_topics()
        assert admin.partitions(settings.topic_orders) == settings.topic_partitions
        assert dlq_topic(settings.topic_orders, "auto-cancel") in names
    finally:
        admin.close()
    assert all(": created" in line for line in first)
    assert [line.replace(": exists", ": created") for line in second] == first
