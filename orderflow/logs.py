"""Logging set-up: plain lines for people, JSON lines for log pipelines (``LOG_FORMAT=json``)."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else was passed with `extra=` and is kept.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, any extras, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RepeatLimiter(logging.Filter):
    """At most one record per logger, level and message template every ``interval`` seconds
    from the loggers under ``prefixes``; the next one let through says how many were held back.

    kafka-python repeats itself when a broker is gone: a consumer whose group coordinator died
    logs "Marking the coordinator dead" hundreds of times a second, and every refused
    connection is an ERROR. The first line says what happened; thousands more drown the lines
    of our own that say what we did about it.
    """

    def __init__(
        self,
        prefixes: tuple[str, ...] = ("kafka",),
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._prefixes = prefixes
        self._interval = interval
        self._clock = clock
        # Records come from kafka-python's own threads too.
        self._lock = threading.Lock()
        # (logger, level, template) -> [when one was last let through, held back since]
        self._seen: dict[tuple[str, int, str], list[float]] = {}

    def _limited(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in self._prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._limited(record.name):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen[0] < self._interval:
                seen[1] += 1
                return False
            held_back = int(seen[1]) if seen is not None else 0
            self._seen[key] = [now, 0]
        if held_back:
            # Formatted now, so the note cannot clash with %-placeholders in the template.
            record.msg = f"{record.getMessage()} ({held_back} more like this held back)"
            record.args = None
        return True


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RepeatLimiter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # kafka-python is chatty at INFO (every connection and rebalance step).
    logging.getLogger("kafka").setLevel(max(logging.WARNING, root.level))
    # Alembic announces every migration step at INFO, on every start of every process.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    # httpx logs each request URL at INFO, and Shopee URLs carry access_token and sign.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
