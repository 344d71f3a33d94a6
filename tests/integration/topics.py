"""Reading a whole topic with a plain consumer (no group, nothing committed), and removing
the topics a test run made."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from orderflow.kafka import Admin, ConsumedRecord, KafkaUnavailable, read_since
from orderflow.settings import Settings

log = logging.getLogger(__name__)


def read_topic(settings: Settings, topic: str, timeout: float = 30.0) -> list[ConsumedRecord]:
    """Every committed record on ``topic`` right now, partition by partition in offset order."""
    return read_since(settings, topic, 0, timeout)


def delete_topics_with_prefixes(settings: Settings, prefixes: Iterable[str]) -> list[str]:
    """Delete every topic whose name starts with one of ``prefixes`` (a run's own topics and
    their dead-letter and parking topics); returns the names deleted.

    A reused stack keeps every partition ever created, and each costs the broker heap: the
    local broker ran out of its 512 MB at ~15,600 partitions left by test and benchmark runs.
    Failing to delete is logged, not raised: it must not fail the run that made them.
    """
    wanted = tuple(prefixes)
    if not wanted:
        return []
    try:
        admin = Admin(settings)
    except KafkaUnavailable as exc:
        log.warning("could not delete this run's topics: %s", exc)
        return []
    try:
        names = sorted(name for name in admin.list_topics() if name.startswith(wanted))
        if names:
            admin.delete_topics(names)
        return names
    except KafkaUnavailable as exc:
        log.warning("could not delete this run's topics (%s): %s", ", ".join(wanted), exc)
        return []
    finally:
        admin.close()
