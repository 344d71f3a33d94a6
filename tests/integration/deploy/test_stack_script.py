"""`make up` twice is safe, `make down` leaves nothing of ours running, and `stack.sh up`
prints nothing on stdout but the exports (`make run` evals it), even on the first run.

Runs deploy/local/stack.sh against stack directories of its own, on free ports, beside any
stack the rest of the suite uses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.e2e.postgres_instance import server_binaries
from tests.integration.stack import EXPORT_LINE, STACK_SCRIPT, LocalStack


def our_processes(stack_dir: Path) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    return [
        line for line in ps.stdout.splitlines() if str(stack_dir) in line and "ps -eo" not in line
    ]


def test_up_twice_is_safe_and_down_stops_everything() -> None:
    stack = LocalStack(Path(tempfile.mkdtemp(prefix="orderflow-stack-test-")))
    stack_dir = stack.stack_dir
    try:
        first = stack.run("up")
        assert first.returncode == 0, first.stderr
        pids = {name: (stack_dir / f"{name}.pid").read_text() for name in ("kafka", "registry")}

        second = stack.run("up")
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stderr
        assert second.stdout == first.stdout  # the same exports
        assert {n: (stack_dir / f"{n}.pid").read_text() for n in pids} == pids

        url = f"http://127.0.0.1:{stack.registry_port}/apis/ccompat/v7/subjects"
        assert httpx.get(url, timeout=5).status_code == 200
        assert stack.run("env").stdout == first.stdout
    finally:
        down = stack.down()
    assert down.returncode == 0, down.stderr
    assert our_processes(stack_dir) == []
    assert stack.run("status").stdout.count("stopped") >= 2
    shutil.rmtree(stack_dir, ignore_errors=True)


def test_first_run_fetches_on_stderr_and_prints_only_exports(tmp_path: Path) -> None:
    """A fresh clone: no target/ yet, so `up` fetches through Maven (offline from ~/.m2)
    before it starts anything, and `eval "$(stack.sh up)"` must still see only exports.

    Without PostgreSQL it also shows the registry's fallback: in memory, with a warning.
    """
    clone = tmp_path / "local"
    clone.mkdir()
    for name in ("stack.sh", "pom.xml"):
        shutil.copy2(STACK_SCRIPT.parent / name, clone / name)
    stack = LocalStack(
        Path(tempfile.mkdtemp(prefix="orderflow-first-run-")),
        script=clone / "stack.sh",
        extra_env={"STACK_POSTGRES": "0"},
    )
    try:
        up = stack.run("up")
        assert up.returncode == 0, up.stderr
        assert "fetching Kafka and Apicurio Registry" in up.stderr  # the fetch really ran
        assert (clone / "target" / "kafka-libs" / ".complete").exists()
        lines = up.stdout.splitlines()
        assert lines, up.stderr
        assert [line for line in lines if not EXPORT_LINE.match(line)] == [], up.stdout
        assert "ORDERFLOW_DATABASE_URL" not in up.stdout
        assert "registry keeps schemas in memory" in up.stderr
    finally:
        down = stack.down()
        shutil.rmtree(stack.stack_dir, ignore_errors=True)
    assert down.returncode == 0, down.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another account")
def test_a_checkout_the_postgres_account_cannot_reach_still_gets_its_database() -> None:
    """As root, under a directory closed to other users (what `mktemp -d` makes, where a new
    user may clone), PostgreSQL's files go where its account can reach them."""
    if server_binaries() is None:
        pytest.skip("no PostgreSQL server binaries")
    closed = Path(tempfile.mkdtemp(prefix="orderflow-closed-"))  # mode 0700, owned by root
    stack = LocalStack(closed / "checkout" / ".stack")
    stack.stack_dir.mkdir(parents=True)
    home = None
    try:
        up = stack.run("up")
        assert up.returncode == 0, up.stderr
        assert "ORDERFLOW_DATABASE_URL" in up.stdout
        home = Path((stack.stack_dir / "pg-home").read_text().strip())
        assert not home.is_relative_to(closed)
        assert (home / "pg" / "PG_VERSION").exists()
        assert stack.run("status").stdout.count("postgres: running") == 1
        down = stack.down()
        assert down.returncode == 0, down.stderr
        assert stack.run("status").stdout.count("postgres: stopped") == 1
    finally:
        stack.down()
        shutil.rmtree(closed, ignore_errors=True)
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)
