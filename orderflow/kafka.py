"""The only module that touches kafka-python, which ships no type information.

Everything else in orderflow sees these small typed wrappers: a producer that waits for
acks=all from an idempotent producer, a consumer that never commits on its own, and an
admin client that creates topics idempotently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import kafka
import kafka.errors
from kafka.structs import OffsetAndMetadata, TopicPartition

from orderflow.metrics import Metrics
from orderflow.settings import Settings

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


class KafkaUnavailable(Exception):
    """The broker could not be reached or did not acknowledge in time (transient)."""


def client_config(settings: Settings) -> dict[str, Any]:
    """Connection settings shared by producers, consumers and the admin client."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers.split(","),
        "client_id": settings.kafka_client_id,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        password = settings.kafka_sasl_password
        config["sasl_plain_password"] = password.get_secret_value() if password else None
    if settings.kafka_ssl_cafile:
        config["ssl_cafile"] = settings.kafka_ssl_cafile
    return config


@dataclass(frozen=True)
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Mapping[str, bytes] = field(default_factory=dict)
    timestamp_ms: int = 0

    def header(self, name: str) -> str | None:
        raw = self.headers.get(name)
        return None if raw is None else raw.decode("utf-8", "replace")


class Producer:
    """An idempotent, acks=all producer. ``send`` returns only once the broker has the record."""

    def __init__(
        self, settings: Settings, metrics: Metrics, *, linger_ms: int = 5, **overrides: Any
    ) -> None:
        self._metrics = metrics
        config = client_config(settings) | {
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": linger_ms,
            "compression_type": "gzip",
            "max_in_flight_requests_per_connection": 5,
            "request_timeout_ms": 15000,
            "delivery_timeout_ms": 30000,
        }
        config.update(overrides)
        try:
            self._producer = kafka.KafkaProducer(**config)
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailable(f"cannot create a Kafka producer: {exc}") from exc

    def send(
        self,
        topic: str,
        *,
        key: bytes,
        value: bytes,
        headers: Headers | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, int]:
        """Write one record and wait for the acknowledgement; returns (partition, offset)."""
        return self.send_many(topic, [(key, value, headers or [])], timeout=timeout)[0]

    def send_many(
        self,
        topic: str,
        records: Sequence[tuple[bytes, bytes, Headers]],
        *,
        timeout: float = 30.0,
    ) -> list[tuple[int, int]]:
        """Write records in order and wait until every one is acknowledged."""
        futures = [
            self._producer.send(topic, key=key, value=value, headers=headers)
            for key, value, headers in records
        ]
        self._producer.flush(timeout=timeout)
        placed: list[tuple[int, int]] = []
        for future in futures:
            try:
                metadata = future.get(timeout=timeout)
            except kafka.errors.KafkaError as exc:
                self._metrics.produce_errors.labels(topic).inc()
                raise KafkaUnavailable(
                    f"broker did not acknowledge a record on {topic}: {exc}"
                ) from exc
            self._metrics.records_produced.labels(topic).inc()
            placed.append((int(metadata.partition), int(metadata.offset)))
        return placed

    def connected(self) -> bool:
        return bool(self._producer.bootstrap_connected())

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout=timeout)
        self._producer.close(timeout=timeout)


class Consumer:
    """A group member that only commits what it is told to commit."""

    def __init__(
        self,
        settings: Settings,
        *,
        group_id: str,
        topics: Iterable[str],
        max_poll_records: int = 200,
        **overrides: Any,
    ) -> None:
        config = client_config(settings) | {
            "group_id": group_id,
            # Offsets are committed only after the side effect is durable.
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "isolation_level": "read_committed",
            "max_poll_records": max_poll_records,
            "session_timeout_ms": 30000,
            "heartbeat_interval_ms": 3000,
        }
        config.update(overrides)
        try:
            self._consumer = kafka.KafkaConsumer(**config)
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailable(f"cannot create a Kafka consumer: {exc}") from exc
        self._consumer.subscribe(list(topics))

    def poll(self, timeout: float = 1.0) -> list[ConsumedRecord]:
        batches = self._consumer.poll(timeout_ms=int(timeout * 1000))
        records: list[ConsumedRecord] = []
        for raw_records in batches.values():
            for raw in raw_records:
                records.append(
                    ConsumedRecord(
                        topic=raw.topic,
                        partition=raw.partition,
                        offset=raw.offset,
                        key=raw.key,
                        value=raw.value,
                        headers={name: value or b"" for name, value in (raw.headers or [])},
                        timestamp_ms=int(raw.timestamp or 0),
                    )
                )
        return records

    def commit(self, next_offsets: Mapping[tuple[str, int], int]) -> None:
        """Commit, per (topic, partition), the offset of the next record to read."""
        if not next_offsets:
            return
        self._consumer.commit(
            {
                TopicPartition(topic=topic, partition=partition): OffsetAndMetadata(
                    offset=offset, metadata="", leader_epoch=-1
                )
                for (topic, partition), offset in next_offsets.items()
            }
        )

    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Read ``(topic, partition)`` again from ``offset`` (used to retry without committing)."""
        self._consumer.seek(TopicPartition(topic=topic, partition=partition), offset)

    def connected(self) -> bool:
        return bool(self._consumer.bootstrap_connected())

    def close(self) -> None:
        # Never commit on close: only the runtime decides what is done.
        self._consumer.close(autocommit=False)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] = field(default_factory=dict)


class Admin:
    def __init__(self, settings: Settings) -> None:
        try:
            self._admin = kafka.KafkaAdminClient(**client_config(settings))
        except kafka.errors.KafkaError as exc:
            raise KafkaUnavailable(
                f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc}"
            ) from exc

    def create_topics(self, specs: Sequence[TopicSpec]) -> dict[str, str]:
        """Create the topics that do not exist yet; returns each topic's outcome
        ("created" or "exists"). Existing topics are left as they are."""
        existing = set(self._admin.list_topics())
        wanted = {spec.name: spec for spec in specs if spec.name not in existing}
        outcome = {spec.name: "exists" for spec in specs if spec.name in existing}
        if wanted:
            answer = self._admin.create_topics(
                {
                    spec.name: {
                        "num_partitions": spec.partitions,
                        "replication_factor": spec.replication_factor,
                        "configs": dict(spec.configs),
                    }
                    for spec in wanted.values()
                },
                timeout_ms=30000,
                raise_errors=False,
                wait_for_metadata=True,
            )
            for topic in answer["topics"]:
                error = kafka.errors.for_code(topic["error_code"])
                if error is kafka.errors.NoError:
                    outcome[topic["name"]] = "created"
                elif error is kafka.errors.TopicAlreadyExistsError:
                    outcome[topic["name"]] = "exists"  # another replica won the race
                else:
                    raise KafkaUnavailable(
                        f"could not create topic {topic['name']}: {error.__name__}: "
                        f"{topic.get('error_message')}"
                    )
        return outcome

    def list_topics(self) -> set[str]:
        return set(self._admin.list_topics())

    def partitions(self, topic: str) -> int:
        (description,) = self._admin.describe_topics([topic])
        return len(description["partitions"])

    def close(self) -> None:
        self._admin.close()
