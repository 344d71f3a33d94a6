from __future__ import annotations

import json
import logging

from orderflow.logs import JsonFormatter


def test_json_lines_carry_extras_and_tracebacks() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("t").makeRecord(
            "t",
            logging.ERROR,
            __file__,
            1,
            "failed %s",
            ("x",),
            exc_info=True,
            extra={"shop_id": 7},
        )
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed x" and line["level"] == "ERROR"
    assert line["shop_id"] == 7
    assert "ValueError: boom" in line["exception"]


def test_request_urls_with_tokens_are_not_logged_at_info() -> None:
    from orderflow.logs import configure_logging

    configure_logging("DEBUG")
    try:
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
        assert not logging.getLogger("kafka").isEnabledFor(logging.INFO)
    finally:
        configure_logging("WARNING")


def _record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.getLogger(name).makeRecord(name, level, __file__, 1, msg, args, None)


def test_repeated_kafka_lines_are_held_back_and_counted() -> None:
    from orderflow.logs import RepeatLimiter

    now = [0.0]
    limiter = RepeatLimiter(interval=10.0, clock=lambda: now[0])
    template = "Marking the coordinator dead (node %s) for group %s"
    passed = [limiter.filter(_record("kafka.coordinator", template, 2, "g")) for _ in range(500)]
    assert passed.count(True) == 1 and passed[0]
    # Another template, level or logger is another line.
    assert limiter.filter(_record("kafka.conn", template, 2, "g"))
    assert limiter.filter(_record("kafka.coordinator", template, 2, "g", level=logging.WARNING))
    # Our own loggers are never held back.
    assert all(limiter.filter(_record("orderflow.x", template, 2, "g")) for _ in range(3))

    now[0] = 10.0
    again = _record("kafka.coordinator", template, 3, "g")
    assert limiter.filter(again)
    assert again.getMessage() == (
        "Marking the coordinator dead (node 3) for group g (499 more like this held back)"
    )
    assert not limiter.filter(_record("kafka.coordinator", template, 3, "g"))


def test_the_limiter_sits_on_the_handler_so_child_loggers_are_covered() -> None:
    from orderflow.logs import RepeatLimiter, configure_logging

    configure_logging("WARNING")
    handlers = logging.getLogger().handlers
    assert any(isinstance(f, RepeatLimiter) for h in handlers for f in h.filters)
