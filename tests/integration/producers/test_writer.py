"""The webhook's Kafka writer process against the real broker: every record's outcome comes
back, counted; a dead writer fails what it held and refuses more; closing flushes."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from orderflow.kafka import Admin, KafkaUnavailable, Outcome, TopicSpec
from orderflow.metrics import Metrics
from orderflow.settings import Settings
from producers.writer import WriterProcess


class Outcomes:
    """Collects ``on_done`` calls: which record, what outcome, on which thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.got: dict[int, Outcome] = {}
        self.threads: set[str] = set()

    def on_done(self, n: int) -> object:
        def done(outcome: Outcome) -> None:
            with self.lock:
                assert n not in self.got, f"record {n} settled twice"
                self.got[n] = outcome
                self.threads.add(threading.current_thread().name)

        return done

    def wait_for(self, count: int, timeout: float = 30.0) -> dict[int, Outcome]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.got) >= count:
                    return dict(self.got)
            assert time.monotonic() < deadline, f"{len(self.got)} of {count} outcomes arrived"
            time.sleep(0.02)


@pytest.fixture
def topic(settings: Settings) -> Iterator[str]:
    admin = Admin(settings)
    try:
        admin.create_topics([TopicSpec(settings.topic_notices, 3, 1)])
        yield settings.topic_notices
        admin.delete_topics([settings.topic_notices])
    finally:
        admin.close()


def _writer(settings: Settings, topic: str, **kwargs: object) -> tuple[WriterProcess, Metrics]:
    metrics = Metrics(CollectorRegistry())
    return WriterProcess(settings, metrics, warm_up=topic, **kwargs), metrics  # type: ignore[arg-type]


def _enqueue(writer: WriterProcess, topic: str, outcomes: Outcomes, numbers: range) -> None:
    for n in numbers:
        writer.enqueue(
            topic,
            key=f"601234:ORDER{n % 7}".encode(),
            value=f"value {n}".encode(),
            headers=[("event_id", str(n).encode())],
            on_done=outcomes.on_done(n),  # type: ignore[arg-type]
        )


def test_every_record_comes_back_with_where_it_landed_and_is_counted(
    settings: Settings, topic: str
) -> None:
    writer, metrics = _writer(settings, topic)
    try:
        outcomes = Outcomes()
        _enqueue(writer, topic, outcomes, range(200))
        got = outcomes.wait_for(200)
        assert all(isinstance(outcome, tuple) for outcome in got.values()), got
        assert len(set(got.values())) == 200  # each its own (partition, offset)
        # The child's producer counted them; the parent's /metrics shows it.
        produced = metrics.registry.get_sample_value(
            "orderflow_records_produced_total", {"topic": topic}
        )
        assert produced == 200
        assert outcomes.threads == {"writer-acks"}  # no event loop here: a reader thread
    finally:
        writer.close()


def test_on_an_event_loop_the_loop_itself_reads_the_outcomes(
    settings: Settings, topic: str
) -> None:
    writer, _ = _writer(settings, topic)
    outcomes = Outcomes()

    async def main() -> None:
        _enqueue(writer, topic, outcomes, range(50))
        deadline = time.monotonic() + 30
        while len(outcomes.got) < 50:
            assert time.monotonic() < deadline, f"{len(outcomes.got)} of 50 outcomes arrived"
            await asyncio.sleep(0.02)

    try:
        asyncio.run(main())
        assert outcomes.threads == {threading.current_thread().name}
        assert all(isinstance(outcome, tuple) for outcome in outcomes.got.values())
    finally:
        writer.close()


def test_a_writer_that_dies_fails_what_it_held_and_refuses_new_records(
    settings: Settings, topic: str
) -> None:
    lost = threading.Event()
    writer, _ = _writer(settings, topic, on_lost=lost.set)
    try:
        outcomes = Outcomes()
        assert writer.pid is not None
        os.kill(writer.pid, signal.SIGSTOP)  # frozen: nothing it gets is acknowledged
        _enqueue(writer, topic, outcomes, range(20))
        time.sleep(0.5)
        assert outcomes.got == {}
        os.kill(writer.pid, signal.SIGKILL)
        got = outcomes.wait_for(20)
        assert all(isinstance(outcome, KafkaUnavailable) for outcome in got.values()), got
        assert lost.wait(5)
        with pytest.raises(KafkaUnavailable, match="writer process stopped"):
            _enqueue(writer, topic, outcomes, range(20, 21))
    finally:
        writer.close()


def test_closing_flushes_every_record_queued(settings: Settings, topic: str) -> None:
    lost = threading.Event()
    writer, _ = _writer(settings, topic, on_lost=lost.set)
    outcomes = Outcomes()
    _enqueue(writer, topic, outcomes, range(500))
    writer.close()
    got = outcomes.wait_for(500, timeout=5)
    assert all(isinstance(outcome, tuple) for outcome in got.values()), got
    assert not lost.is_set()  # a writer stopped by its owner is not "lost"
