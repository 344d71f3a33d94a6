"""A throw-away PostgreSQL server of a test's own, which the test may stop and start again.

The shared stack's PostgreSQL also holds the schema registry's schemas, so a test that takes
its database away (an outage mid-run) needs a server nobody else uses. This one is a fresh
cluster (``initdb``) in a temporary directory on a free port, run the way
``deploy/local/stack.sh`` runs the stack's: as the ``postgres`` OS user when the tests run as
root (PostgreSQL refuses root), on 127.0.0.1 and a socket in its own directory, fsync off.

    instance = PostgresInstance.create()     # PostgresUnavailable: no server binaries here
    instance.start()
    instance.url                             # postgresql://orderflow@127.0.0.1:PORT/orderflow
    instance.stop()                          # pg_ctl -m fast (or "immediate": a crash)
    instance.start()                         # same data, same port
    instance.remove()                        # stop and delete everything
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

import psycopg

from tests.integration.stack import free_port

ShutdownMode = Literal["smart", "fast", "immediate"]
_DATABASE = "orderflow"
_USER = "orderflow"
_OS_USER = "postgres"


class PostgresUnavailable(Exception):
    """This machine cannot run a PostgreSQL server of the test's own (the message says why)."""


def server_binaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` holding the server, or None."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    found = [
        path
        for path in Path("/usr/lib/postgresql").glob("*/bin")
        if (path / "postgres").is_file() and (path / "initdb").is_file()
    ]
    return max(found, key=version) if found else None


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; as stack.sh does, run its tools as 'postgres' then.
    if os.geteuid() == 0:
        return ["runuser", "-u", _OS_USER, "--", *command]
    return command


class PostgresInstance:
    """One cluster in ``directory`` (owned by the server's OS user), served on ``port``."""

    def __init__(self, directory: Path, binaries: Path, port: int) -> None:
        self.directory = directory
        self.binaries = binaries
        self.port = port
        self.data = directory / "pg"
        self.log = directory / "postgres.log"
        self.running = False

    @classmethod
    def create(cls) -> PostgresInstance:
        """``initdb`` a new cluster (not started) in a new temporary directory."""
        binaries = server_binaries()
        if binaries is None:
            raise PostgresUnavailable("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            raise PostgresUnavailable("running as root, and there is no runuser to drop to it")
        # mkdtemp under /tmp, not pytest's tmp_path: the server's OS user must reach it.
        directory = Path(tempfile.mkdtemp(prefix="orderflow-pg-"))
        if os.geteuid() == 0:
            try:
                shutil.chown(directory, user=_OS_USER)
            except LookupError as exc:
                shutil.rmtree(directory)
                raise PostgresUnavailable(f"running as root, and {exc}") from exc
        instance = cls(directory, binaries, free_port())
        init = instance._run(
            "initdb", "-D", str(instance.data), "-U", _USER, "--auth=trust", "-E", "UTF8"
        )
        if init.returncode != 0:
            instance.remove()
            raise PostgresUnavailable(f"initdb failed:\n{init.stdout}{init.stderr}")
        return instance

    @property
    def url(self) -> str:
        """The ``orderflow`` database, as ``ORDERFLOW_DATABASE_URL`` takes it."""
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/{_DATABASE}"

    def start(self, timeout: int = 60) -> None:
        """Start the server (on the same port as before) and wait until it accepts
        connections; the ``orderflow`` database is created on the first start."""
        options = (
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        started = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(timeout),
            "-o", options, "start",
        )  # fmt: skip
        if started.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start:\n{started.stderr}\n{self.log_tail()}")
        self.running = True
        admin = f"postgresql://{_USER}@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (_DATABASE,)
            ).fetchone()
            if found is None:
                conn.execute(f"CREATE DATABASE {_DATABASE}")  # a constant, not input

    def stop(self, mode: ShutdownMode = "fast", timeout: int = 60) -> None:
        """Stop the server: ``fast`` ends every session and shuts down cleanly,
        ``immediate`` is a crash (recovery runs at the next start)."""
        stopped = self._run(
            "pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", str(timeout), "stop"
        )
        if stopped.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not stop:\n{stopped.stderr}\n{self.log_tail()}")
        self.running = False

    def remove(self) -> None:
        """Stop the server if it runs (a crash is fine: nothing is kept) and delete it all."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.running = False
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            _as_server_user([str(self.binaries / tool), *args]),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            # The server's user may not be allowed into the caller's working directory.
            cwd=self.directory,
        )
