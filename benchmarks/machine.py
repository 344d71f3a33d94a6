"""What a run of `make bench` ran on: the ``machine`` block of ``bench/results.json``.

Figures from different machines, commits or broker versions are not comparable; this block
says which of those a file's figures belong to. The parsers are pure (they take the text of
``/proc/cpuinfo``, ``/proc/meminfo``, ``/etc/os-release``, a directory listing); ``describe``
reads the real ones, and anything it cannot read is null rather than a guess.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
KAFKA_LIBS = ROOT / "deploy" / "local" / "target" / "kafka-libs"
APICURIO = ROOT / "deploy" / "local" / "target" / "apicurio"

_KAFKA_JAR = re.compile(r"^kafka_\d+\.\d+-(?P<version>\d+\.\d+\.\d+)\.jar$")
_APICURIO_JAR = re.compile(r"^apicurio-registry-app-(?P<version>\d+\.\d+\.\d+)(-runner)?\.jar$")


def cpu_model(cpuinfo: str) -> str | None:
    """The first ``model name`` of /proc/cpuinfo (x86), else its ``Hardware``/``Model``."""
    for key in ("model name", "Hardware", "Model"):
        for line in cpuinfo.splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key and value.strip():
                return value.strip()
    return None


def memory_bytes(meminfo: str) -> int | None:
    """``MemTotal`` of /proc/meminfo in bytes."""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            amount, _, unit = line.removeprefix("MemTotal:").strip().partition(" ")
            if unit.strip() != "kB":
                raise ValueError(f"MemTotal in an unknown unit: {line!r}")
            return int(amount) * 1024
    return None


def os_name(os_release: str) -> str | None:
    """``PRETTY_NAME`` of /etc/os-release, unquoted."""
    for line in os_release.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.removeprefix("PRETTY_NAME=").strip().strip('"')
    return None


def version_from_jars(names: Iterable[str], pattern: re.Pattern[str]) -> str | None:
    """The version in the one jar name ``pattern`` matches; ValueError when several
    versions are present (the directory would not say which one the broker runs)."""
    versions = {m["version"] for m in map(pattern.match, names) if m is not None}
    if len(versions) > 1:
        raise ValueError(f"several versions side by side: {sorted(versions)}")
    return next(iter(versions), None)


def kafka_version(libs: Path = KAFKA_LIBS) -> str | None:
    """The broker version `make up` runs, from ``kafka_<scala>-<version>.jar``."""
    return version_from_jars(_listing(libs), _KAFKA_JAR) if libs.is_dir() else None


def registry_version(directory: Path = APICURIO) -> str | None:
    return version_from_jars(_listing(directory), _APICURIO_JAR) if directory.is_dir() else None


def _listing(directory: Path) -> list[str]:
    return [path.name for path in directory.iterdir()]


def postgres_version(url: str | None) -> str | None:
    """``server_version`` of the PostgreSQL at ``url`` (None without one)."""
    if url is None:
        return None
    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    if row is None:
        raise RuntimeError(f"PostgreSQL at {url} answered SHOW server_version with no row")
    return str(row[0])


def git_state(root: Path = ROOT) -> tuple[str | None, bool | None]:
    """The commit checked out and whether tracked files differ from it (untracked files,
    such as another run's results, do not count)."""
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False
    )
    if head.returncode != 0:
        return None, None
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return head.stdout.strip(), bool(status.stdout.strip())


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def describe(
    *,
    started: datetime,
    seconds: float,
    benchmarks: list[str],
    failed: list[str],
    postgres_url: str | None,
) -> dict[str, object]:
    """The ``machine`` block: hardware, software versions, the code, and the run itself."""
    commit, dirty = git_state()
    return {
        "cpu_model": cpu_model(_read("/proc/cpuinfo")),
        "logical_cores": os.cpu_count(),
        "memory_bytes": memory_bytes(_read("/proc/meminfo")),
        "os": os_name(_read("/etc/os-release")),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "kafka": kafka_version(),
        "schema_registry": registry_version(),
        "postgresql": postgres_version(postgres_url),
        "git_commit": commit,
        "git_dirty": dirty,
        "started_at": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "duration_seconds": round(seconds, 1),
        "benchmarks": benchmarks,
        "failed_benchmarks": failed,
    }
