"""``make run`` (deploy/local/run.sh) as a newcomer meets it, on a stack of its own.

The first run starts a fresh stack (empty database, new topics, new consumer group), runs the
whole ingest pipeline against the sandbox with lossy pushes for a few rounds and stops it
with SIGTERM; a second run on the same stack meets the tokens, watermarks and committed
offsets the first one left. Each must exit 0, show events emitted, report every process
stopped cleanly and leave no orderflow process behind. Its own stack, on free ports, keeps
the shared one (default ports) and other tests' topics and database out of reach.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.integration.stack import ROOT, LocalStack, free_ports

pytestmark = pytest.mark.timeout(300)

RUN_SCRIPT = ROOT / "deploy" / "local" / "run.sh"


def _orderflow_processes(stack_dir: Path) -> list[int]:
    """Live orderflow processes started for ``stack_dir``: run.sh exports STACK_DIR, so its
    children carry it in their environment; the stack's own JVMs and PostgreSQL do not run
    the orderflow console script."""
    marker = f"STACK_DIR={stack_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if b"bin/orderflow" in cmdline and marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _kill_leftovers(stack_dir: Path) -> None:
    """Only after a failure: the processes this test's run.sh started, by pid."""
    pids = _orderflow_processes(stack_dir)
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while pids and time.monotonic() < deadline:
        time.sleep(0.2)
        pids = [pid for pid in pids if pid in _orderflow_processes(stack_dir)]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def _logs(stack_dir: Path, lines: int = 30) -> str:
    out = []
    for path in sorted((stack_dir / "run").glob("*.log")):
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"--- {path.name}\n" + "\n".join(tail))
    return "\n".join(out)


def _make_run(env: dict[str, str], stack_dir: Path, rounds: int) -> str:
    """run.sh for ``rounds`` rounds; its output, after asserting what a person should see."""
    process = subprocess.Popen(
        [str(RUN_SCRIPT)],
        env=env | {"ROUNDS": str(rounds)},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        # SIGTERM lets run.sh stop its processes and print what it saw.
        process.terminate()
        output, _ = process.communicate(timeout=60)
        raise AssertionError(f"run.sh did not finish:\n{output}\n{_logs(stack_dir)}") from None
    print(output)  # shown by pytest -s, or with the report of a failure
    context = f"\n{output}\n{_logs(stack_dir)}"
    assert process.returncode == 0, context
    emitted = re.search(r"^events emitted: (\d+)", output, re.MULTILINE)
    assert emitted is not None, context
    assert int(emitted.group(1)) > 0, context
    assert re.search(r"^events +\d+ emitted", output, re.MULTILINE), context  # status rounds
    assert "all stopped cleanly" in output, context
    assert _orderflow_processes(stack_dir) == [], context
    return output


def test_make_run_shows_the_pipeline_working_and_stops_it_cleanly() -> None:
    # mkdtemp under /tmp: PostgreSQL runs as its own user and must reach the directory.
    stack = LocalStack(Path(tempfile.mkdtemp(prefix="orderflow-make-run-")))
    sandbox, webhook, poller, enricher = free_ports(4)
    # Nothing from the caller's shell (a stack's ORDERFLOW_* exports, make variables) leaks in.
    knobs = {"RATE", "SHOPS", "FAULTS", "ROUNDS", "INTERVAL", "SEED", "SHOP_ID", "TIME_FACTOR"}
    env = {
        k: v for k, v in stack.env.items() if not k.startswith("ORDERFLOW_") and k not in knobs
    } | {
        "SANDBOX_PORT": str(sandbox),
        "WEBHOOK_PORT": str(webhook),
        "POLLER_METRICS_PORT": str(poller),
        "ENRICHER_METRICS_PORT": str(enricher),
        "RATE": "4",
        "FAULTS": "1",
        "INTERVAL": "2",
        # Rounds of 2 s: the poller's lost-push drain must run within the first few.
        "ORDERFLOW_POLLER_INTERVAL_SECONDS": "2",
    }
    try:
        first = _make_run(env, stack.stack_dir, rounds=3)
        assert "faults: 30% of pushes dropped" in first
        assert re.search(r"^notices +\d+ written: .*lost_push \d+", first, re.MULTILINE), first
        status = stack.run("status").stdout
        assert "kafka: running" in status, "make run must leave the stack up"

        # Again on the same stack: stored tokens, watermarks and the enricher's committed
        # offsets from the first run are met, and the shops are simply authorised again.
        _make_run(env, stack.stack_dir, rounds=2)
    finally:
        _kill_leftovers(stack.stack_dir)
        stack.remove()
