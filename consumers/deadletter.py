"""Dead letters: a poison record's original bytes, on ``<topic>.dlq.<consumer>``, with why.

The record keeps its key and value byte for byte (so ``orderflow replay`` can re-publish it
after a fix) and gains headers saying what went wrong and where it came from.
"""

from __future__ import annotations

from concurrent.futures import Future

from orderflow.kafka import ConsumedRecord, Headers, Placed, Producer
from orderflow.metrics import Metrics

# Header names other tools (replay, dashboards, people) rely on; all start with PREFIX.
PREFIX = "dlq."
ERROR = "dlq.error"
TOPIC = "dlq.original.topic"
PARTITION = "dlq.original.partition"
OFFSET = "dlq.original.offset"
CONSUMER = "dlq.consumer"
ATTEMPTS = "dlq.attempts"


def dead_letter_headers(
    record: ConsumedRecord, *, consumer: str, error: str, attempts: int
) -> Headers:
    """The record's own headers plus the dead-letter ones (which replace older ones, so a
    record dead-lettered twice says why the last time)."""
    kept = [(name, value) for name, value in record.headers.items() if not name.startswith(PREFIX)]
    return [
        *kept,
        (ERROR, error[:2000].encode()),
        (TOPIC, record.topic.encode()),
        (PARTITION, str(record.partition).encode()),
        (OFFSET, str(record.offset).encode()),
        (CONSUMER, consumer.encode()),
        (ATTEMPTS, str(attempts).encode()),
    ]


class DeadLetters:
    """Writes one consumer's poison records to its dead-letter topic."""

    def __init__(self, producer: Producer, metrics: Metrics, *, topic: str, consumer: str):
        self._producer = producer
        self._metrics = metrics
        self.topic = topic
        self.consumer = consumer

    def submit(self, record: ConsumedRecord, error: str, *, attempts: int = 1) -> Future[Placed]:
        future = self._producer.submit(
            self.topic,
            key=record.key,
            value=record.value or b"",
            headers=dead_letter_headers(
                record, consumer=self.consumer, error=error, attempts=attempts
            ),
        )
        self._metrics.dead_letters.labels(self.consumer).inc()
        return future
