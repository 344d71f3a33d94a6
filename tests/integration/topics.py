"""Reading a whole topic with a plain kafka-python consumer (no group, nothing committed)."""

from __future__ import annotations

import time

import kafka
from kafka.structs import TopicPartition

from orderflow.kafka import ConsumedRecord
from orderflow.settings import Settings


def read_topic(settings: Settings, topic: str, timeout: float = 30.0) -> list[ConsumedRecord]:
    """Every record on ``topic`` right now, partition by partition in offset order."""
    consumer = kafka.KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[ConsumedRecord] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end in {timeout}s")
            for raw_records in consumer.poll(timeout_ms=500).values():
                for raw in raw_records:
                    records.append(
                        ConsumedRecord(
                            topic=raw.topic,
                            partition=raw.partition,
                            offset=raw.offset,
                            key=raw.key,
                            value=raw.value,
                            headers={k: v or b"" for k, v in (raw.headers or [])},
                            timestamp_ms=int(raw.timestamp or 0),
                        )
                    )
        return records
    finally:
        consumer.close()
