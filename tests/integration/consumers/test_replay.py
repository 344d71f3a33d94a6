"""``orderflow replay`` on the real broker: dead letters go back where they came from, once."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from consumers import deadletter
from consumers.deadletter import DeadLetters
from consumers.replay import replay_command
from orderflow.kafka import Admin, ConsumedRecord, Producer, TopicSpec
from orderflow.metrics import Metrics
from orderflow.settings import Settings
from tests.integration.topics import read_topic


def _env(settings: Settings) -> dict[str, str]:
    return {
        "ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "ORDERFLOW_SCHEMA_REGISTRY_URL": settings.schema_registry_url,
    }


@pytest.fixture
def dlq(settings: Settings) -> str:
    source, dead, other = (
        settings.topic_orders,
        f"{settings.topic_orders}.dlq.erp-sync",
        f"{settings.topic_orders}.fixed",
    )
    admin = Admin(settings)
    admin.create_topics([TopicSpec(name, 3, 1) for name in (source, dead, other)])
    admin.close()
    producer = Producer(settings, Metrics())
    letters = DeadLetters(producer, Metrics(), topic=dead, consumer="erp-sync")
    for n in range(5):
        original = ConsumedRecord(
            topic=source,
            partition=n % 3,
            offset=100 + n,
            key=f"1:ORDER{n}".encode(),
            value=f"value-{n}".encode(),
            headers={"event_id": f"e{n}".encode(), "source": b"push"},
        )
        letters.submit(original, "a bug, since fixed").result(30)
    producer.close()
    return dead


def test_dead_letters_go_back_to_their_topic_once(settings: Settings, dlq: str) -> None:
    runner = CliRunner()
    env = _env(settings)

    dry = runner.invoke(replay_command, ["--dlq", dlq, "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "would replay 5 records" in dry.output
    assert read_topic(settings, settings.topic_orders) == []

    first = runner.invoke(replay_command, ["--dlq", dlq], env=env)
    assert first.exit_code == 0, first.output
    assert f"replayed 5 records (5 to {settings.topic_orders})" in first.output
    back = read_topic(settings, settings.topic_orders)
    assert sorted(r.key or b"" for r in back) == [f"1:ORDER{n}".encode() for n in range(5)]
    for record in back:
        assert record.value == f"value-{(record.key or b'')[-1:].decode()}".encode()
        assert record.header("source") == "push" and record.header("event_id")
        assert not [name for name in record.headers if name.startswith(deadletter.PREFIX)]

    again = runner.invoke(replay_command, ["--dlq", dlq], env=env)
    assert again.exit_code == 0, again.output
    assert "replayed 0 records" in again.output
    assert len(read_topic(settings, settings.topic_orders)) == 5


def test_replay_to_another_topic(settings: Settings, dlq: str) -> None:
    target = f"{settings.topic_orders}.fixed"
    result = CliRunner().invoke(replay_command, ["--dlq", dlq, "--to", target], env=_env(settings))
    assert result.exit_code == 0, result.output
    assert len(read_topic(settings, target)) == 5
    assert read_topic(settings, settings.topic_orders) == []
