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
