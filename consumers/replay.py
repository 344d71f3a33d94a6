"""``orderflow replay --dlq TOPIC [--to TOPIC]``: dead letters back into the stream after a fix.

Each record still in the dead-letter topic (up to its end when the command starts) is
written again, key and value byte for byte, to the topic it came from (its
``dlq.original.topic`` header) or to ``--to``. The ``dlq.*`` headers are dropped, the others
(``event_id``, ``source``) kept. Progress is the offsets of the consumer group
``orderflow-replay.<dlq topic>``, committed only after the re-published records are
acknowledged: a second run, or a run after a crash, does not re-publish what is done (a crash
between the two may repeat a batch; consumers are idempotent).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import click

from consumers import deadletter
from orderflow.kafka import ConsumedRecord, Consumer, Headers, Producer, next_offsets, wait_all

log = logging.getLogger(__name__)


def replay_target(record: ConsumedRecord, to: str | None) -> str:
    """Where a dead letter goes back to (pure); ``ValueError`` when it does not say."""
    if to:
        return to
    original = record.header(deadletter.TOPIC)
    if not original:
        raise ValueError(
            f"record {record.topic}/{record.partition}@{record.offset} has no "
            f"{deadletter.TOPIC} header; name the topic with --to"
        )
    return original


def replay_headers(record: ConsumedRecord) -> Headers:
    """The record's headers without the dead-letter ones (pure)."""
    return [
        (name, value)
        for name, value in record.headers.items()
        if not name.startswith(deadletter.PREFIX)
    ]


@dataclass(frozen=True)
class ReplayResult:
    replayed: int
    by_topic: dict[str, int]


def replay(
    consumer: Consumer,
    producer: Producer,
    *,
    to: str | None,
    until: dict[tuple[str, int], int],
    dry_run: bool = False,
    idle_timeout: float = 10.0,
) -> ReplayResult:
    """Re-publish every record before the ``until`` offsets (per partition) and commit."""
    by_topic: dict[str, int] = {}
    replayed = 0
    last_progress = time.monotonic()
    while any(consumer.position(topic, p) < end for (topic, p), end in until.items()):
        records = [r for r in consumer.poll(1.0) if r.offset < until.get((r.topic, r.partition), 0)]
        if not records:
            if time.monotonic() - last_progress > idle_timeout:
                raise click.ClickException("the dead-letter topic stopped answering; run again")
            continue
        last_progress = time.monotonic()
        try:
            targets = [replay_target(record, to) for record in records]
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        if not dry_run:
            futures = [
                producer.submit(
                    target,
                    key=record.key,
                    value=record.value or b"",
                    headers=replay_headers(record),
                )
                for record, target in zip(records, targets, strict=True)
            ]
            wait_all(futures, time.monotonic() + 60.0, what="re-published dead letters")
            consumer.commit(next_offsets(records))
        for target in targets:
            by_topic[target] = by_topic.get(target, 0) + 1
        replayed += len(records)
    return ReplayResult(replayed, by_topic)


@click.command("replay")
@click.option("--dlq", "dlq_topic", required=True, help="The dead-letter topic to replay.")
@click.option("--to", "to_topic", default=None, help="Write here instead of the original topic.")
@click.option("--dry-run", is_flag=True, help="Count what would be replayed, write nothing.")
def replay_command(dlq_topic: str, to_topic: str | None, dry_run: bool) -> None:
    """Re-publish the dead letters of DLQ to the topics they came from (or --to), once."""
    from orderflow.logs import configure_logging
    from orderflow.metrics import Metrics
    from orderflow.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    metrics = Metrics()
    producer = Producer(settings, metrics)
    consumer = Consumer(
        settings,
        group_id=f"orderflow-replay.{dlq_topic}",
        topics=[dlq_topic],
        max_poll_records=500,
        auto_offset_reset="earliest",
        assign=True,
    )
    try:
        until = consumer.end_offsets_of(dlq_topic)
        result = replay(consumer, producer, to=to_topic, until=until, dry_run=dry_run)
    finally:
        consumer.close()
        producer.close()
    verb = "would replay" if dry_run else "replayed"
    where = ", ".join(f"{n} to {t}" for t, n in sorted(result.by_topic.items())) or "nothing"
    click.echo(f"{dlq_topic}: {verb} {result.replayed} records ({where})")
