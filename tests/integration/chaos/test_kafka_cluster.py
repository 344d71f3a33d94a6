"""KafkaCluster on real JVMs: nodes die by SIGKILL mid-write and come back, and orderflow's
own producer loses no acknowledged record and writes none twice.

Needs only the jars of `deploy/local/stack.sh fetch`, not the shared stack. Timings are printed
(`pytest -s`) for the chaos suite's planning, never asserted: the machine is shared.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.kafka_cluster import KafkaCluster
from orderflow.kafka import (
    Admin,
    Consumer,
    KafkaUnavailable,
    Producer,
    TopicSpec,
    next_offsets,
    read_since,
)
from orderflow.metrics import Metrics
from orderflow.settings import Settings

TOPIC = "chaos-probe"
BATCH = 10

# kafka-python 3.0.12 leaves the socket of a refused connect open (kafka/net/inet.py:
# sock_connect raises without closing it) until the garbage collector finalizes it, and a
# killed node refuses many connects. The warning is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")


@pytest.fixture(autouse=True)
def refused_sockets(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Finalize those sockets while the warning is ignored. kafka-python logs each refused
    connect with its exception, whose traceback holds the socket, and pytest keeps captured
    records until the session ends (when the warning is an error again): so none are kept."""
    caplog.set_level(logging.CRITICAL, logger="kafka")
    yield
    gc.collect()


def create_topic(settings: Settings, spec: TopicSpec) -> None:
    admin = Admin(settings)
    try:
        assert admin.create_topics([spec]) == {spec.name: "created"}
    finally:
        admin.close()


class Writer:
    """Writes numbered records in batches of ``BATCH`` from a thread, each batch waiting for
    acks=all; keeps which numbers were acknowledged and which batches failed."""

    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self.acked: list[int] = []
        self.failures: list[str] = []
        self.slowest = 0.0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        number = 0
        while not self._stopping.is_set():
            batch = [(f"k{n}".encode(), str(n).encode(), []) for n in range(number, number + BATCH)]
            started = time.monotonic()
            try:
                self._producer.send_many(TOPIC, batch, timeout=30)
                self.acked.extend(range(number, number + BATCH))
            except KafkaUnavailable as exc:
                self.failures.append(str(exc))
            self.slowest = max(self.slowest, time.monotonic() - started)
            number += BATCH

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count:
            assert not self.failures, self.failures
            assert time.monotonic() < deadline, f"only {len(self.acked)} of {count} acked"
            time.sleep(0.05)


class Reader:
    """A group member on ``TOPIC`` that commits what it read after every poll, from a
    thread: what orderflow's consumers do, through the same adapter."""

    def __init__(self, settings: Settings) -> None:
        self._consumer = Consumer(settings, group_id="chaos-probe", topics=[TOPIC])
        self.seen: set[int] = set()
        self.errors: list[str] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reader", daemon=True)

    def __enter__(self) -> Reader:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=60)
        self._consumer.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                records = self._consumer.poll(0.5)
                self.seen.update(int(r.value or b"-1") for r in records)
                self._consumer.commit(next_offsets(records))
            except KafkaUnavailable as exc:
                # Transient by contract; the runtime backs off the same way.
                self.errors.append(str(exc))

    def wait_for(self, numbers: list[int], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.seen.issuperset(numbers):
            missing = len(set(numbers) - self.seen)
            assert time.monotonic() < deadline, f"the reader never saw {missing} records"
            time.sleep(0.1)


def written(settings: Settings) -> Counter[int]:
    """How often each number is in the topic's log."""
    return Counter(int(record.value or b"-1") for record in read_since(settings, TOPIC))


def test_a_killed_leader_loses_no_acknowledged_record(tmp_path: Path, metrics: Metrics) -> None:
    started = time.monotonic()
    with KafkaCluster.start(3, tmp_path / "cluster") as cluster:
        print(f"3 nodes serve after {time.monotonic() - started:.1f}s")
        assert cluster.node_ids == [1, 2, 3]
        assert len(cluster.bootstrap_servers.split(",")) == 3
        settings = Settings(kafka_bootstrap_servers=cluster.bootstrap_servers)
        create_topic(settings, TopicSpec(TOPIC, 3, 3, {"min.insync.replicas": "2"}))
        producer = Producer(settings, metrics)
        try:
            with Reader(settings) as reader:
                with Writer(producer) as writer:
                    writer.wait_for(200)
                    victim = cluster.leader(TOPIC, 0)
                    cluster.kill(victim)
                    killed = time.monotonic()
                    assert victim not in cluster.alive()

                    # The controller moves the partition once the dead node's lease runs out.
                    while (leader := cluster.leader(TOPIC, 0)) == victim:
                        assert time.monotonic() - killed < 60, "the leader never moved"
                        time.sleep(0.2)
                    moved = time.monotonic() - killed
                    print(f"partition 0 moved from node {victim} to {leader} in {moved:.1f}s")
                    writer.wait_for(len(writer.acked) + 200)

                    restarting = time.monotonic()
                    cluster.restart(victim)
                    print(f"node {victim} serves again in {time.monotonic() - restarting:.1f}s")
                    assert sorted(cluster.alive()) == [1, 2, 3]
                    writer.wait_for(len(writer.acked) + 100)
                print(f"{len(writer.acked)} records acked; slowest batch {writer.slowest:.1f}s")
                assert writer.failures == []
                # A group member with commits rides through the kill too (its coordinator
                # may have been on the killed node): at least once, nothing skipped.
                reader.wait_for(writer.acked)
                print(f"reader: {len(reader.errors)} transient errors {reader.errors[:2]}")
        finally:
            producer.close()

        # Every acknowledged record exactly once: nothing lost with the dead leader, and the
        # idempotent producer's retries to the new leader wrote nothing twice.
        assert written(settings) == Counter(writer.acked)
        # The restarted node does not take its partition back (no automatic rebalance).
        assert cluster.leader(TOPIC, 0) != victim


def test_a_killed_single_node_keeps_acknowledged_records(tmp_path: Path, metrics: Metrics) -> None:
    with KafkaCluster.start(1, tmp_path / "cluster") as cluster:
        assert cluster.node_ids == [1]
        settings = Settings(kafka_bootstrap_servers=cluster.bootstrap_servers)
        create_topic(settings, TopicSpec(TOPIC, 3, 1))
        producer = Producer(settings, metrics)
        try:
            acked = list(range(300))
            producer.send_many(TOPIC, [(f"k{n}".encode(), str(n).encode(), []) for n in acked])

            # Kafka acknowledges once a record is in the page cache, without fsync. SIGKILL
            # ends the process, not the machine, so the page cache and the acknowledged
            # records in it survive; a power cut could lose them (one node has no replica).
            cluster.kill(1)
            assert cluster.alive() == []
            with pytest.raises(KafkaUnavailable):
                producer.send(TOPIC, key=b"down", value=b"300", timeout=3)

            restarting = time.monotonic()
            cluster.restart(1)
            print(f"the node serves again after {time.monotonic() - restarting:.1f}s")
            # The same producer carries on once the node is back.
            sending = time.monotonic()
            producer.send(TOPIC, key=b"back", value=b"301", timeout=60)
            print(
                f"the producer's first ack after the restart took {time.monotonic() - sending:.1f}s"
            )
        finally:
            producer.close()

        log = written(settings)
        assert {n: log[n] for n in acked} == dict.fromkeys(acked, 1)
        assert log[301] == 1
        # A send that gave up is not a record that was dropped: the producer kept it queued
        # (delivery timeout) and may have written it once the node came back, but only once.
        print(f"the record whose send timed out while the node was down: {log[300]} copies")
        assert log[300] <= 1
        assert set(log) <= {*acked, 300, 301}


def test_a_producer_whose_sent_batch_expired_writes_again(tmp_path: Path, metrics: Metrics) -> None:
    """kafka-python drops the producer id when a batch it had sent expires and then never
    asks for a new one: without orderflow's renewal, no record is ever sent again."""
    with KafkaCluster.start(1, tmp_path / "cluster") as cluster:
        settings = Settings(kafka_bootstrap_servers=cluster.bootstrap_servers)
        create_topic(settings, TopicSpec(TOPIC, 1, 1))
        # Short timeouts make a few seconds of a hung broker outlast the delivery timeout.
        producer = Producer(settings, metrics, request_timeout_ms=1500, delivery_timeout_ms=3000)
        try:
            producer.send(TOPIC, key=b"before", value=b"1")
            # A hung broker (not a dead one) keeps the batch in flight until the request
            # times out, so it is retried, and then expires: the path that loses the id.
            cluster.pause(1)
            unanswered = producer.submit(TOPIC, key=b"hung", value=b"2")
            with pytest.raises(KafkaUnavailable):
                unanswered.result(timeout=30)
            cluster.resume(1)

            # Callers retry an unacknowledged write (the webhook's sender through Shopee's
            # retries, the poller on its next pass); while the producer is being replaced
            # they are refused at once.
            sending = time.monotonic()
            refused = 0
            while True:
                try:
                    producer.send(TOPIC, key=b"after", value=b"3", timeout=10)
                    break
                except KafkaUnavailable:
                    refused += 1
                    assert time.monotonic() - sending < 60, "never acknowledged after the hang"
                    time.sleep(0.2)
            print(f"first ack after the hang: {time.monotonic() - sending:.1f}s, {refused} refused")
            renewals = metrics.registry.get_sample_value("orderflow_kafka_producer_renewals_total")
            assert renewals == 1
        finally:
            producer.close()

        log = written(settings)
        assert log[1] == 1
        assert log[3] == 1
        assert log[2] <= 1  # failed to its caller; written at most once if the broker had it


def test_an_unanswered_transaction_step_replaces_the_producer(
    tmp_path: Path, metrics: Metrics
) -> None:
    """kafka-python either waits for a commit's answer without a timeout or gives up on the
    producer for good when the coordinator timed out; orderflow bounds the wait and carries on
    with a producer of the same transactional id."""
    with KafkaCluster.start(1, tmp_path / "cluster") as cluster:
        settings = Settings(kafka_bootstrap_servers=cluster.bootstrap_servers)
        create_topic(settings, TopicSpec(TOPIC, 1, 1))
        consumer = Consumer(settings, group_id="chaos-probe", topics=[TOPIC])
        producer = Producer(
            settings,
            metrics,
            transactional_id="chaos-probe",
            transaction_timeout_ms=3000,
            request_timeout_ms=1500,
        )
        try:
            producer.begin_transaction()
            producer.send(TOPIC, key=b"k", value=b"1")
            producer.commit_transaction({}, consumer)

            producer.begin_transaction()
            producer.send(TOPIC, key=b"k", value=b"2")
            cluster.pause(1)
            hung = time.monotonic()
            with pytest.raises(KafkaUnavailable, match="same transactional id"):
                producer.commit_transaction({}, consumer)
            print(f"the commit gave up after {time.monotonic() - hung:.1f}s")
            producer.abort_transaction()
            cluster.resume(1)

            # What the enricher does after a transient failure: the batch again, in a new
            # transaction, until the broker takes it.
            deadline = time.monotonic() + 60
            while True:
                try:
                    producer.begin_transaction()
                    producer.send(TOPIC, key=b"k", value=b"3")
                    producer.commit_transaction({}, consumer)
                    break
                except KafkaUnavailable:
                    assert time.monotonic() < deadline, "no transaction after the hang"
                    producer.abort_transaction()
                    time.sleep(0.5)
            renewals = metrics.registry.get_sample_value("orderflow_kafka_producer_renewals_total")
            assert renewals == 1
        finally:
            producer.close()
            consumer.close()

        # The hung commit's outcome was unknown to the producer: the broker commits it if it
        # had the request before the new producer took over, and aborts it otherwise.
        # Either way nothing is half-visible and the retried batch is there once.
        committed = [record.value for record in read_since(settings, TOPIC)]
        print(f"committed: {committed}")
        assert committed in ([b"1", b"3"], [b"1", b"2", b"3"])
