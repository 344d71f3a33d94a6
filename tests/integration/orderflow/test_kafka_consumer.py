"""The adapter's group consumer against the real broker: committing from ``on_revoked``."""

from __future__ import annotations

import logging
import time

import kafka
import pytest
from kafka.structs import TopicPartition

from orderflow.kafka import Admin, Consumer, TopicSpec, client_config
from orderflow.settings import Settings


def _topic_with_records(settings: Settings, name: str, count: int) -> None:
    admin = Admin(settings)
    try:
        admin.create_topics([TopicSpec(name, 1, 1)])
    finally:
        admin.close()
    producer = kafka.KafkaProducer(**client_config(settings))
    try:
        for i in range(count):
            producer.send(name, key=b"k", value=str(i).encode())
        producer.flush(30)
    finally:
        producer.close()


def _read_all_then_close(settings: Settings, topic: str, group: str, *, wait: bool) -> None:
    """A member that reads ``topic`` to its end and, when its partitions are revoked (here:
    at close), commits them as ``ConsumerRuntime.on_revoked`` does."""
    consumer: Consumer | None = None

    def revoked(partitions: list[tuple[str, int]]) -> None:
        assert consumer is not None
        consumer.commit({tp: 3 for tp in partitions}, wait=wait)

    consumer = Consumer(settings, group_id=group, topics=[topic], on_revoked=revoked)
    read = 0
    deadline = time.monotonic() + 60
    while read < 3:
        assert time.monotonic() < deadline, f"read {read} of 3 records within 60 s"
        read += len(consumer.poll(0.5))
    consumer.close()


def _committed(settings: Settings, topic: str, group: str) -> int | None:
    reader = kafka.KafkaConsumer(**client_config(settings), group_id=group)
    try:
        return reader.committed(TopicPartition(topic, 0))
    finally:
        reader.close(autocommit=False)


def test_a_commit_sent_from_on_revoked_lands_when_the_member_closes(
    settings: Settings, unique: str
) -> None:
    topic, group = f"t{unique}.revoked", f"g{unique}"
    _topic_with_records(settings, topic, 3)
    _read_all_then_close(settings, topic, group, wait=False)
    deadline = time.monotonic() + 30
    while _committed(settings, topic, group) != 3:
        assert time.monotonic() < deadline, "the offset sent from on_revoked never landed"
        time.sleep(0.5)


def test_a_waiting_commit_from_on_revoked_fails_and_the_close_still_closes(
    settings: Settings, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Why on_revoked must not wait: kafka-python 3 runs the listener on its I/O thread. If a
    # kafka-python release changes that, this fails, and waiting becomes possible again.
    topic, group = f"t{unique}.revoked", f"g{unique}"
    _topic_with_records(settings, topic, 3)
    with caplog.at_level(logging.WARNING, logger="orderflow.kafka"):
        _read_all_then_close(settings, topic, group, wait=True)
    assert _committed(settings, topic, group) is None
    # kafka-python raised "User rebalance callback throws an error" and left its client open;
    # Consumer.close closed it anyway.
    assert "rebalance callback" in caplog.text
