"""Facts about the Kafka adapter that do not need a broker."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.cluster import ClusterMetadata
from kafka.partitioner.default import DefaultPartitioner
from kafka.partitioner.default import murmur2 as kafka_murmur2
from kafka.producer.record_accumulator import RecordAccumulator
from kafka.record import util
from kafka.structs import TopicPartition

from orderflow.kafka import _DirectAppend, _WakeupGate, murmur2


def test_record_checksums_use_the_native_crc32c() -> None:
    # Without the crc32c package kafka-python checksums every batch in pure Python
    # (tens of microseconds per record): a dependency, not an optimisation to lose silently.
    assert util.crc32c_c is not None


class _SenderTwin:
    """kafka-python's Sender as far as the wake-up gate sees it: ``wakeup`` and the client's
    ``poll``, which blocks (in the test: is suspended) until ``timeout_ms`` or a wake-up."""

    def __init__(self) -> None:
        self.wakeups = 0
        self.polls: list[float | None] = []
        self._client = self
        self.while_polling: Callable[[], None] = lambda: None

    def wakeup(self) -> None:
        self.wakeups += 1

    def poll(self, timeout_ms: float | None = None, future: object = None) -> None:
        self.polls.append(timeout_ms)
        self.while_polling()


def _gated(linger_ms: float = 5) -> tuple[_SenderTwin, Callable[[], None]]:
    sender = _SenderTwin()
    _WakeupGate.install(sender, linger_seconds=linger_ms / 1000)
    return sender, sender.wakeup


def test_a_new_batch_wakes_the_io_thread_when_it_is_awake_or_asleep_for_long() -> None:
    sender, wakeup = _gated()
    wakeup()  # awake (not in poll): it may already have chosen a long sleep
    assert sender.wakeups == 1
    sender.while_polling = wakeup
    sender._client.poll(timeout_ms=300_000)  # asleep until a metadata refresh
    sender._client.poll(timeout_ms=None)  # asleep without a deadline
    assert sender.wakeups == 3


def test_a_new_batch_does_not_wake_an_io_thread_that_looks_again_within_a_linger() -> None:
    sender, wakeup = _gated(linger_ms=5)
    sender.while_polling = wakeup
    sender._client.poll(timeout_ms=3)  # due back before the new batch is due
    sender._client.poll(timeout_ms=0)
    assert sender.wakeups == 0
    sender.while_polling = lambda: None
    wakeup()  # back from poll: awake again
    assert sender.wakeups == 1
    assert sender.polls == [3, 0]


class _ProducerTwin:
    """A KafkaProducer as far as ``_DirectAppend`` sees it, built from kafka-python's own
    metadata, accumulator and partitioner; ``send`` only notes what reached it."""

    def __init__(self, partitions: int) -> None:
        self._metadata = ClusterMetadata()
        self._accumulator = RecordAccumulator(linger_ms=5)
        self._transaction_manager = None
        self._closed = False
        self._sender = SimpleNamespace(wakeup=self._woken)
        self.config = {"max_request_size": 1048576, "partitioner": DefaultPartitioner()}
        self.sent: list[tuple[str, bytes | None]] = []
        self.wakeups = 0
        self.known_partitions("notices", partitions)

    def known_partitions(self, topic: str, count: int) -> None:
        # What a metadata update does: a new partition map for the topic.
        self._metadata._partitions = self._metadata._partitions | {
            topic: {partition: SimpleNamespace(leader_id=0) for partition in range(count)}
        }

    def send(self, topic: str, *, key: bytes | None, value: bytes, headers: object) -> None:
        self.sent.append((topic, key))

    def _woken(self) -> None:
        self.wakeups += 1

    def partition_by_send(self, key: bytes) -> TopicPartition:
        """The partition KafkaProducer.send gives a record with this key."""
        partition = DefaultPartitioner().partition("notices", key, key, b"v", b"v", self._metadata)
        return TopicPartition("notices", partition)

    def queued(self) -> dict[TopicPartition, int]:
        return {
            tp: sum(batch.record_count for batch in batches)
            for tp, batches in self._accumulator._batches.items()
            if batches
        }


def test_direct_append_puts_each_record_where_send_would() -> None:
    producer = _ProducerTwin(partitions=7)
    direct = _DirectAppend(producer)
    expected: Counter[TopicPartition] = Counter()
    for i in range(300):
        key = f"{600000 + i}:2211250AB{i:05d}".encode()
        expected[producer.partition_by_send(key)] += 1
        direct.send("notices", key, b"v", [("event_id", b"e")])
    assert producer.queued() == expected
    assert len(expected) == 7  # the keys spread over every partition
    assert producer.sent == []


def test_direct_append_follows_a_metadata_update() -> None:
    producer = _ProducerTwin(partitions=1)
    direct = _DirectAppend(producer)
    direct.send("notices", b"601234:A", b"v", [])
    producer.known_partitions("notices", 12)  # the topic grew
    key = next(
        key
        for key in (f"601234:{i}".encode() for i in range(100))
        if producer.partition_by_send(key).partition != 0
    )
    direct.send("notices", key, b"v", [])
    assert producer.partition_by_send(key) in producer.queued()


def test_direct_append_leaves_what_it_does_not_handle_to_send() -> None:
    producer = _ProducerTwin(partitions=3)
    direct = _DirectAppend(producer)
    direct.send("notices", None, b"v", [])  # no key: the partitioner picks at random
    direct.send("unknown", b"k", b"v", [])  # no metadata yet: send waits for it
    direct.send("notices", b"k", b"x" * 2_000_000, [])  # send refuses it as too large
    producer._closed = True
    direct.send("notices", b"k", b"v", [])  # send raises IllegalStateError
    assert producer.sent == [
        ("notices", None),
        ("unknown", b"k"),
        ("notices", b"k"),
        ("notices", b"k"),
    ]
    assert producer.queued() == {}


def test_direct_append_wakes_the_io_thread_for_a_new_batch_only() -> None:
    producer = _ProducerTwin(partitions=1)
    direct = _DirectAppend(producer)
    for i in range(5):
        direct.send("notices", f"k{i}".encode(), b"v", [])
    assert producer.wakeups == 1
    assert producer.queued() == {TopicPartition("notices", 0): 5}


@settings(max_examples=2000)
@given(st.binary(max_size=80))
def test_murmur2_is_kafkas(data: bytes) -> None:
    assert murmur2(data) == kafka_murmur2(data)
