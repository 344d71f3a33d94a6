"""Find or start the real stack (Kafka, Apicurio Registry, PostgreSQL) for integration tests.

A stack already named by ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS / ORDERFLOW_SCHEMA_REGISTRY_URL
(for example `eval "$(make -s env)"` after `make up`) is reused when it answers. Otherwise the
tests start their own with deploy/local/stack.sh on free ports in a temporary directory, and
stop it when the session ends.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
STACK_SCRIPT = ROOT / "deploy" / "local" / "stack.sh"


@dataclass(frozen=True)
class Stack:
    bootstrap_servers: str
    registry_url: str
    postgres_url: str | None
    stack_dir: Path | None  # set when this test session started the stack itself


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(bootstrap: str, registry_url: str) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            pass
        return httpx.get(f"{registry_url}/subjects", timeout=5).status_code == 200
    except (OSError, httpx.HTTPError, ValueError):
        return False


def _parse_env(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            values[name] = value
    return values


def find_or_start() -> Stack:
    bootstrap = os.environ.get("ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS")
    registry = os.environ.get("ORDERFLOW_SCHEMA_REGISTRY_URL")
    if bootstrap and registry and _answers(bootstrap, registry):
        database = os.environ.get("ORDERFLOW_DATABASE_URL", "")
        return Stack(
            bootstrap, registry, database if database.startswith("postgres") else None, None
        )
    stack_dir = Path(tempfile.mkdtemp(prefix="orderflow-stack-"))
    env = os.environ | {
        "STACK_DIR": str(stack_dir),
        "KAFKA_PORT": str(free_port()),
        "KAFKA_CONTROLLER_PORT": str(free_port()),
        "REGISTRY_PORT": str(free_port()),
        "POSTGRES_PORT": str(free_port()),
    }
    result = subprocess.run(
        [str(STACK_SCRIPT), "up"], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        stop(stack_dir)
        raise RuntimeError(f"could not start the test stack:\n{result.stderr}")
    values = _parse_env(result.stdout)
    return Stack(
        values["ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS"],
        values["ORDERFLOW_SCHEMA_REGISTRY_URL"],
        values.get("ORDERFLOW_DATABASE_URL"),
        stack_dir,
    )


def stop(stack_dir: Path) -> None:
    env = os.environ | {"STACK_DIR": str(stack_dir)}
    subprocess.run([str(STACK_SCRIPT), "down"], env=env, capture_output=True, check=False)
    shutil.rmtree(stack_dir, ignore_errors=True)
