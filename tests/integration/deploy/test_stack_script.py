"""`make up` twice is safe and `make down` leaves nothing of ours running.

Runs deploy/local/stack.sh against a stack directory of its own, on free ports, beside any
stack the rest of the suite uses.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import httpx

from tests.integration.stack import STACK_SCRIPT, free_port


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(STACK_SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def our_processes(stack_dir: Path) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    return [
        line for line in ps.stdout.splitlines() if str(stack_dir) in line and "ps -eo" not in line
    ]


def test_up_twice_is_safe_and_down_stops_everything() -> None:
    stack_dir = Path(tempfile.mkdtemp(prefix="orderflow-stack-test-"))
    registry_port = free_port()
    env = os.environ | {
        "STACK_DIR": str(stack_dir),
        "KAFKA_PORT": str(free_port()),
        "KAFKA_CONTROLLER_PORT": str(free_port()),
        "REGISTRY_PORT": str(registry_port),
        "POSTGRES_PORT": str(free_port()),
    }
    try:
        first = run(env, "up")
        assert first.returncode == 0, first.stderr
        pids = {name: (stack_dir / f"{name}.pid").read_text() for name in ("kafka", "registry")}

        second = run(env, "up")
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stderr
        assert second.stdout == first.stdout  # the same exports
        assert {n: (stack_dir / f"{n}.pid").read_text() for n in pids} == pids

        url = f"http://127.0.0.1:{registry_port}/apis/ccompat/v7/subjects"
        assert httpx.get(url, timeout=5).status_code == 200
        assert run(env, "env").stdout == first.stdout
    finally:
        down = run(env, "down")
    assert down.returncode == 0, down.stderr
    assert our_processes(stack_dir) == []
    assert run(env, "status").stdout.count("stopped") >= 2
