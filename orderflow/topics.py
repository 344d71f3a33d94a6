"""The topics orderflow owns and the schemas registered for them.

``orderflow topics`` creates every topic that does not exist yet and registers each value
schema under ``<topic>-value`` with BACKWARD compatibility. Running it again changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import click

from orderflow.kafka import Admin, TopicSpec
from orderflow.settings import Settings, load_settings
from schemas.codec import schema_for
from schemas.models import OrderAction, OrderEvent, OrderNotice, Record
from schemas.registry import SchemaRegistryClient, subject_for

log = logging.getLogger(__name__)

# Who reads which topic; each reader gets its own dead-letter topic.
ENRICHER = "enricher"
ORDER_CONSUMERS = ("erp-sync", "stock-restore", "auto-cancel")

_DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicPlan:
    spec: TopicSpec
    record: type[Record] | None  # None: a dead-letter topic, whose records keep their bytes


def dlq_topic(topic: str, consumer: str) -> str:
    return f"{topic}.dlq.{consumer}"


def plan(settings: Settings) -> list[TopicPlan]:
    """Every topic with its settings, in creation order."""
    partitions, replicas = settings.topic_partitions, settings.topic_replication_factor
    min_isr = str(min(2, replicas))

    def spec(name: str, **configs: str) -> TopicSpec:
        return TopicSpec(name, partitions, replicas, {"min.insync.replicas": min_isr, **configs})

    plans = [
        TopicPlan(spec(settings.topic_notices, **{"retention.ms": str(7 * _DAY_MS)}), OrderNotice),
        # Compacted, but never before a week has passed: a consumer that is down for less
        # than that still sees every snapshot, and a new subscriber can rebuild current
        # state from the latest snapshot of every order.
        TopicPlan(
            spec(
                settings.topic_orders,
                **{"cleanup.policy": "compact", "min.compaction.lag.ms": str(7 * _DAY_MS)},
            ),
            OrderEvent,
        ),
        TopicPlan(spec(settings.topic_actions, **{"retention.ms": str(90 * _DAY_MS)}), OrderAction),
    ]
    dead_letters = [dlq_topic(settings.topic_notices, ENRICHER)] + [
        dlq_topic(settings.topic_orders, consumer) for consumer in ORDER_CONSUMERS
    ]
    plans += [
        TopicPlan(spec(name, **{"retention.ms": str(30 * _DAY_MS)}), None) for name in dead_letters
    ]
    return plans


def ensure_topics(settings: Settings, admin: Admin, registry: SchemaRegistryClient) -> list[str]:
    """Create missing topics and register schemas; returns one report line per topic."""
    plans = plan(settings)
    outcomes = admin.create_topics([p.spec for p in plans])
    report = []
    for p in plans:
        line = f"{p.spec.name}: {outcomes[p.spec.name]}"
        if p.record is not None:
            subject = subject_for(p.spec.name)
            registry.set_compatibility(subject, "BACKWARD")
            schema_id = registry.register(subject, schema_for(p.record))
            line += f", schema {p.record.__name__} id {schema_id} ({subject}, BACKWARD)"
        report.append(line)
    return report


def create_topics(settings: Settings, registry: SchemaRegistryClient) -> list[str]:
    """``ensure_topics`` with an admin client of its own, closed afterwards."""
    admin = Admin(settings)
    try:
        return ensure_topics(settings, admin, registry)
    finally:
        admin.close()


@click.command("topics")
def topics_command() -> None:
    """Create orderflow's topics (and dead-letter topics) and register their Avro schemas.

    Idempotent: existing topics are left as they are and an already registered schema keeps
    its id. Uses ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS, ORDERFLOW_SCHEMA_REGISTRY_URL,
    ORDERFLOW_TOPIC_* and ORDERFLOW_TOPIC_PARTITIONS / _REPLICATION_FACTOR.
    """
    settings = load_settings()
    with SchemaRegistryClient(settings.schema_registry_url) as registry:
        for line in create_topics(settings, registry):
            click.echo(line)
