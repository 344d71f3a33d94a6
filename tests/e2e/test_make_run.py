"""``make run`` (deploy/local/run.sh) as a newcomer meets it, on a stack of its own.

The first run starts a fresh stack (empty database, new topics, new consumer groups), runs the
whole pipeline against the sandbox with lossy pushes for a few rounds — ingest, and the three
consumers over an ERP stock that is short for half the models — and stops it with SIGTERM.
A second run on the same stack meets what the first one left: committed offsets, and the
first run's events on the shared orders topic, which must not reach its own fresh ERP. Each
must exit 0, show events emitted, ERP orders, reservations and auto-cancels, report every
process stopped cleanly and leave no orderflow process behind. Its own stack, on free ports,
keeps the shared one (default ports) and other tests' topics and database out of reach.
"""

from __future__ import annotations

import json
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
PROCESSES = ("webhook", "poller", "enricher", "erp-sync", "stock-restore", "auto-cancel")
# run.sh's port settings: the shared stack's `make run` keeps the defaults.
PORTS = (
    "SANDBOX_PORT",
    "WEBHOOK_PORT",
    "POLLER_METRICS_PORT",
    "ENRICHER_METRICS_PORT",
    "ERP_SYNC_METRICS_PORT",
    "STOCK_RESTORE_METRICS_PORT",
    "AUTO_CANCEL_METRICS_PORT",
)


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


def _count(pattern: str, output: str) -> int:
    """The number the summary line matching ``pattern`` (one group) shows."""
    found = re.search(pattern, output, re.MULTILINE)
    assert found is not None, f"no line matches {pattern!r}"
    return int(found.group(1))


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
    assert _count(r"^events emitted: (\d+)", output) > 0, context
    assert re.search(r"^events +\d+ emitted", output, re.MULTILINE), context  # status rounds
    # The consumers ran on this run's events: the ERP has its orders, stock was reserved for
    # the orders it covers, and orders of the short models were cancelled on the sandbox.
    assert _count(r"^ERP: (\d+) orders? synced", output) > 0, context
    assert _count(r"^stock: (\d+) reservations?", output) > 0, context
    assert _count(r"^auto-cancels: (\d+) orders? cancelled", output) > 0, context
    assert re.search(r"^cancels +\d+ orders? cancelled", output, re.MULTILINE), context
    stopped = re.search(r"^processes: (.*)$", output, re.MULTILINE)
    assert stopped is not None, context
    for name in PROCESSES:
        assert f"{name} exit 0" in stopped.group(1), context
    assert "all stopped cleanly" in output, context
    assert _orderflow_processes(stack_dir) == [], context
    return output


def _erp_orders(output: str, env: dict[str, str]) -> set[tuple[int, str]]:
    """The (shop, order) pairs in the ERP of the run that printed ``output``, read with
    ``orderflow erp show --json`` from the database it announced."""
    database = re.search(r"^the run's database, created empty: (\S+)$", output, re.MULTILINE)
    assert database is not None, output
    shown = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "orderflow"), "erp", "show", "--json"],
        env=env | {"ORDERFLOW_DATABASE_URL": database.group(1)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {(order["shop_id"], order["order_sn"]) for order in json.loads(shown.stdout)}


def test_make_run_shows_the_pipeline_working_and_stops_it_cleanly() -> None:
    # mkdtemp under /tmp: PostgreSQL runs as its own user and must reach the directory.
    stack = LocalStack(Path(tempfile.mkdtemp(prefix="orderflow-make-run-")))
    ports = {name: str(port) for name, port in zip(PORTS, free_ports(len(PORTS)), strict=True)}
    # Nothing from the caller's shell (a stack's ORDERFLOW_* exports, make variables) leaks in.
    knobs = {
        "RATE",
        "SHOPS",
        "FAULTS",
        "SHORT",
        "ROUNDS",
        "INTERVAL",
        "SEED",
        "SHOP_ID",
        "TIME_FACTOR",
    }
    env = {
        k: v for k, v in stack.env.items() if not k.startswith("ORDERFLOW_") and k not in knobs
    } | ports
    env |= {
        "RATE": "4",
        "FAULTS": "1",
        "INTERVAL": "2",
        # Half the models short: a few rounds of orders all but surely include some it cannot
        # cover, and some it can.
        "SHORT": "0.5",
        # Rounds of 2 s: the poller's lost-push drain must run within the first few.
        "ORDERFLOW_POLLER_INTERVAL_SECONDS": "2",
    }
    try:
        first = _make_run(env, stack.stack_dir, rounds=3)
        assert "faults: 30% of pushes dropped" in first
        assert re.search(r"^notices +\d+ written: .*lost_push \d+", first, re.MULTILINE), first
        status = stack.run("status").stdout
        assert "kafka: running" in status, "make run must leave the stack up"
        first_orders = _erp_orders(first, env)
        assert first_orders, first

        # Again on the same stack: the enricher's committed offsets and the first run's events
        # on the orders topic are met; the shops are simply authorised again in a fresh
        # database, and the consumers start after the first run's events.
        second = _make_run(env, stack.stack_dir, rounds=3)
        second_orders = _erp_orders(second, env)
        assert second_orders, second
        assert not first_orders & second_orders, second
    finally:
        _kill_leftovers(stack.stack_dir)
        stack.remove()
