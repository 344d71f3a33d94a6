"""Reading a whole topic with a plain consumer (no group, nothing committed)."""

from __future__ import annotations

from orderflow.kafka import ConsumedRecord, read_since
from orderflow.settings import Settings


def read_topic(settings: Settings, topic: str, timeout: float = 30.0) -> list[ConsumedRecord]:
    """Every committed record on ``topic`` right now, partition by partition in offset order."""
    return read_since(settings, topic, 0, timeout)
