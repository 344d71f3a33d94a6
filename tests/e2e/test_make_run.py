"""``make run`` (deploy/local/run.sh) as a newcomer meets it, on a stack of its own.

The first run starts a fresh stack (empty database, new topics, new consumer groups), runs the
whole pipeline against the sandbox with lossy pushes for DURATION seconds — ingest, and the
three consumers over an ERP stock that is short for half the models, with buyers asking to
cancel — with its output to a pipe: plain status blocks every INTERVAL. A second run on the
same stack runs in a terminal (a pseudo-terminal of this test), shows the live view and is
stopped with Ctrl-C; it meets what the first one left: committed offsets, and the first run's
events on the shared orders topic, which must not reach its own fresh ERP. Each must exit 0,
show events emitted, ERP orders, reservations, auto-cancels and buyer-cancel answers, report
every process stopped cleanly and leave no orderflow process behind. Its own stack, on free
ports, keeps the shared one (default ports) and other tests' topics and database out of reach.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import tempfile
import termios
import time
from pathlib import Path

import pytest

from tests.integration.stack import ROOT, LocalStack, free_ports

pytestmark = pytest.mark.timeout(300)

RUN_SCRIPT = ROOT / "deploy" / "local" / "run.sh"
PROCESSES = ("webhook", "poller", "enricher", "erp-sync", "stock-restore", "auto-cancel")
# A terminal control sequence (CSI): colours, cursor moves, line erasures.
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
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


def _check_run(output: str, returncode: int | None, stack_dir: Path) -> str:
    """Assert what every run must show once it stopped; the context for further asserts."""
    context = f"\n{output}\n{_logs(stack_dir)}"
    assert returncode == 0, context
    assert "Traceback" not in output, context
    assert _count(r"^events emitted: (\d+)", output) > 0, context
    # The consumers ran on this run's events: the ERP has its orders, stock was reserved for
    # the orders it covers, orders of the short models were cancelled on the sandbox, and
    # buyers' cancellation requests were answered.
    assert _count(r"^ERP: (\d+) orders? synced", output) > 0, context
    assert _count(r"^stock: (\d+) reservations?", output) > 0, context
    assert _count(r"^auto-cancels: (\d+) orders? cancelled", output) > 0, context
    assert _count(r"^buyers: (\d+) cancellation requests? answered", output) > 0, context
    assert re.search(r"^shopee API: \d+ calls, not ok: ", output, re.MULTILINE), context
    stopped = re.search(r"^processes: (.*)$", output, re.MULTILINE)
    assert stopped is not None, context
    for name in PROCESSES:
        assert f"{name} exit 0" in stopped.group(1), context
    assert "all stopped cleanly" in output, context
    assert _orderflow_processes(stack_dir) == [], context
    return context


def _make_run_to_a_pipe(env: dict[str, str], stack_dir: Path, duration: int) -> str:
    """run.sh for ``duration`` seconds of traffic with its output to a pipe; its output,
    after asserting what a person should see."""
    process = subprocess.Popen(
        [str(RUN_SCRIPT)],
        env=env | {"DURATION": str(duration)},
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
    context = _check_run(output, process.returncode, stack_dir)
    # Plain status blocks every INTERVAL (2 s), DURATION seconds of traffic, then the summary.
    rounds = re.findall(r"^== round (\d+), (\d+) s$", output, re.MULTILINE)
    assert [n for n, _ in rounds] == [str(n) for n in range(1, len(rounds) + 1)], context
    assert len(rounds) >= duration // 2 - 1, context
    assert re.search(r"^events +\d+ emitted", output, re.MULTILINE), context
    assert re.search(r"^cancels +\d+ orders? cancelled", output, re.MULTILINE), context
    assert _count(r"^== summary after (\d+) s of traffic", output) >= duration, context
    assert "\x1b[" not in output, "no escape codes without a terminal" + context
    return output


def _make_run_in_a_terminal(env: dict[str, str], stack_dir: Path, traffic_seconds: int) -> str:
    """run.sh in a pseudo-terminal of 160 x 50, stopped with Ctrl-C (the terminal's SIGINT to
    its foreground process group) ``traffic_seconds`` after the traffic started; everything
    it wrote, escape codes and all, after asserting what a person should see."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))

    def controlling_terminal() -> None:  # in the child, a session leader (start_new_session)
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        # As from an interactive shell: a pytest started in the background (`cmd &` without
        # job control) ignores SIGINT, run.sh would inherit that, and bash cannot trap a
        # signal ignored at its start: the Ctrl-C below would do nothing.
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    process = subprocess.Popen(
        [str(RUN_SCRIPT)],
        env=env | {"TERM": "xterm-256color", "DURATION": "0", "ROUNDS": "0"},
        cwd=ROOT,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    written = bytearray()
    started_at: float | None = None
    interrupted = False
    deadline = time.monotonic() + 200
    try:
        while time.monotonic() < deadline:
            if started_at is None and b"starting traffic" in written:
                started_at = time.monotonic()
            if (
                not interrupted
                and started_at is not None
                and time.monotonic() - started_at >= traffic_seconds
            ):
                os.write(master, b"\x03")  # Ctrl-C, through the terminal's line discipline
                interrupted = True
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            written += chunk
        else:
            os.killpg(process.pid, signal.SIGTERM)
        returncode = process.wait(timeout=60)
    finally:
        os.close(master)
    output = written.decode(errors="replace").replace("\r\n", "\n")
    print(output)
    assert interrupted, f"the traffic never started:\n{output}\n{_logs(stack_dir)}"
    context = _check_run(output, returncode, stack_dir)
    # The live view, not plain blocks: rich's frames, every panel, the cursor hidden while
    # it draws and shown again once it ends.
    assert not re.search(r"^== round \d+", output, re.MULTILINE), context
    drawn = output[output.index("starting traffic") : output.index("== stopping")]
    assert "\x1b[?25l" in drawn and "\x1b[?25h" in drawn, context
    assert drawn.rindex("\x1b[?25h") > drawn.rindex("\x1b[?25l"), context
    view = ESCAPE.sub("", drawn)
    for title in (
        "Shopee sandbox",
        "Shopee API calls",
        "Orders ingested, by source",
        "Consumers and the ERP",
        "Processes",
    ):
        assert title in view, context
    assert re.search(r"ERP rows +\d+", view), context
    assert re.search(r"erp-sync +● ready +\d+ records +\d+\.\d s", view), context
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
        "BUYER_REQUESTS",
        "DURATION",
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
        # Half the buyers ask to cancel: a few seconds of traffic all but surely have some.
        "BUYER_REQUESTS": "0.5",
        # Polls every 2 s: the poller's lost-push drain must run within the first few seconds.
        "ORDERFLOW_POLLER_INTERVAL_SECONDS": "2",
    }
    try:
        first = _make_run_to_a_pipe(env, stack.stack_dir, duration=7)
        assert "faults: 30% of pushes dropped" in first
        assert re.search(r"^notices +\d+ written: .*lost_push \d+", first, re.MULTILINE), first
        status = stack.run("status").stdout
        assert "kafka: running" in status, "make run must leave the stack up"
        first_orders = _erp_orders(first, env)
        assert first_orders, first

        # Again on the same stack: the enricher's committed offsets and the first run's events
        # on the orders topic are met; the shops are simply authorised again in a fresh
        # database, and the consumers start after the first run's events.
        second = _make_run_in_a_terminal(env, stack.stack_dir, traffic_seconds=8)
        second_orders = _erp_orders(second, env)
        assert second_orders, second
        assert not first_orders & second_orders, second
    finally:
        _kill_leftovers(stack.stack_dir)
        stack.remove()
