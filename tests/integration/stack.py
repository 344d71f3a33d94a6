"""Find or start the real stack (Kafka, Apicurio Registry, PostgreSQL) for integration tests.

A stack already named by ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS / ORDERFLOW_SCHEMA_REGISTRY_URL
(for example `eval "$(make -s env)"` after `make up`) is reused when it answers. Otherwise the
tests start their own with deploy/local/stack.sh on free ports in a temporary directory, and
stop it when the session ends. Tests of the stack itself drive a `LocalStack` of their own.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
STACK_SCRIPT = ROOT / "deploy" / "local" / "stack.sh"
# Every line `stack.sh up` prints on stdout: `make run` evals it.
EXPORT_LINE = re.compile(r"^export ORDERFLOW_[A-Z_]+=\S+$")


@dataclass(frozen=True)
class Stack:
    bootstrap_servers: str
    registry_url: str
    postgres_url: str | None
    stack_dir: Path | None  # set when this test session started the stack itself


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports nobody listens on (all held open while choosing)."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def _answers(bootstrap: str, registry_url: str) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            pass
        return httpx.get(f"{registry_url}/subjects", timeout=5).status_code == 200
    except (OSError, httpx.HTTPError, ValueError):
        return False


def parse_env(text: str) -> dict[str, str]:
    """The ``export NAME=value`` lines of `stack.sh up` / `stack.sh env` as a dict."""
    values = {}
    for line in text.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            values[name] = value
    return values


class LocalStack:
    """One stack.sh stack in a directory of its own, on free ports chosen once: it can be
    started, stopped and started again on the same state and the same ports."""

    def __init__(
        self,
        stack_dir: Path,
        *,
        script: Path = STACK_SCRIPT,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.stack_dir = stack_dir
        self.script = script
        kafka, controller, registry, postgres = free_ports(4)
        self.registry_port = registry
        self.env = (
            os.environ
            | {
                "STACK_DIR": str(stack_dir),
                "KAFKA_PORT": str(kafka),
                "KAFKA_CONTROLLER_PORT": str(controller),
                "REGISTRY_PORT": str(registry),
                "POSTGRES_PORT": str(postgres),
            }
            | (extra_env or {})
        )

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.script), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def up(self) -> Stack:
        """Start (or find running) and return where it answers; RuntimeError with the
        script's stderr when it does not come up."""
        result = self.run("up")
        if result.returncode != 0:
            raise RuntimeError(f"could not start the test stack:\n{result.stderr}")
        values = parse_env(result.stdout)
        return Stack(
            values["ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS"],
            values["ORDERFLOW_SCHEMA_REGISTRY_URL"],
            values.get("ORDERFLOW_DATABASE_URL"),
            self.stack_dir,
        )

    def down(self) -> subprocess.CompletedProcess[str]:
        """Stop every process; the state in the stack directory stays for the next `up`."""
        return self.run("down")

    def remove(self) -> None:
        """Stop everything and delete the stack directory."""
        self.down()
        shutil.rmtree(self.stack_dir, ignore_errors=True)


def find_or_start() -> Stack:
    bootstrap = os.environ.get("ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS")
    registry = os.environ.get("ORDERFLOW_SCHEMA_REGISTRY_URL")
    if bootstrap and registry and _answers(bootstrap, registry):
        database = os.environ.get("ORDERFLOW_DATABASE_URL", "")
        return Stack(
            bootstrap, registry, database if database.startswith("postgres") else None, None
        )
    local = LocalStack(Path(tempfile.mkdtemp(prefix="orderflow-stack-")))
    try:
        return local.up()
    except RuntimeError:
        local.remove()
        raise


def stop(stack_dir: Path) -> None:
    env = os.environ | {"STACK_DIR": str(stack_dir)}
    subprocess.run([str(STACK_SCRIPT), "down"], env=env, capture_output=True, check=False)
    shutil.rmtree(stack_dir, ignore_errors=True)
