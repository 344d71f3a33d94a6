"""``orderflow sandbox``: its help, and a real foreground run stopped with SIGTERM."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
from click.testing import CliRunner

from shopee.sandbox.cli import sandbox
from shopee.signing import sign_public

KEY = "cli-test-key"


def test_help_documents_traffic_and_fault_options() -> None:
    result = CliRunner().invoke(sandbox, ["--help"])
    assert result.exit_code == 0
    for option in (
        "--traffic-rate",
        "--time-factor",
        "--error-rate",
        "--error-kinds",
        "--latency-ms",
        "--rate-limit",
        "--push-drop-rate",
        "--push-duplicate-rate",
        "--push-reorder",
        "--callback-url",
        "--shop-id",
    ):
        assert option in result.output
    assert "TO_CONFIRM_RECEIVE" in result.output  # the lifecycle the traffic follows


def test_bad_fault_options_are_refused() -> None:
    result = CliRunner().invoke(sandbox, ["--error-rate", "get_order_detail"])
    assert result.exit_code == 2
    assert "API=RATE" in result.output


def test_the_sandbox_runs_in_the_foreground_prints_codes_and_stops_on_sigterm() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from shopee.sandbox.cli import sandbox; sandbox()",
            "--port",
            "0",
            "--shop-id",
            "14701711",
            "--shop-id",
            "14701712",
            "--partner-key",
            KEY,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    output: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while not any("Press Ctrl-C" in line for line in output):
            output.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
        text = "".join(output)
        base = re.search(r"listening on (http://\S+)", text)
        codes = dict(re.findall(r"shop (\d+) \(SG\): authorization code (\w+)", text))
        assert base is not None and set(codes) == {"14701711", "14701712"}

        with httpx.Client(base_url=base.group(1)) as http:
            ts = int(time.time())
            path = "/api/v2/auth/token/get"
            answer = http.post(
                path,
                params={
                    "partner_id": 2001887,
                    "timestamp": ts,
                    "sign": sign_public(KEY, 2001887, path, ts),
                },
                json={"code": codes["14701711"], "shop_id": 14701711, "partner_id": 2001887},
            ).json()
            assert answer["error"] == "" and answer["access_token"]
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=15)
        process.stdout.close()
    assert exit_code == 0
