"""The machine block of bench/results.json: parsers over real file formats, and the block."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from benchmarks.machine import (
    _APICURIO_JAR,
    _KAFKA_JAR,
    cpu_model,
    describe,
    git_state,
    memory_bytes,
    os_name,
    version_from_jars,
)

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu vme

processor\t: 1
model name\t: Intel(R) Xeon(R) Processor
"""

ARM_CPUINFO = (
    "processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4\n"
)


def test_the_cpu_model_comes_from_cpuinfo() -> None:
    assert cpu_model(CPUINFO) == "Intel(R) Xeon(R) Processor"
    assert cpu_model(ARM_CPUINFO) == "BCM2835"
    assert cpu_model("") is None


def test_memory_is_meminfos_total_in_bytes() -> None:
    assert memory_bytes("MemTotal:       24731184 kB\nMemFree:  100 kB\n") == 24731184 * 1024
    assert memory_bytes("") is None
    with pytest.raises(ValueError, match="unknown unit"):
        memory_bytes("MemTotal: 3 MB\n")


def test_the_os_is_the_pretty_name_of_os_release() -> None:
    text = 'NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'
    assert os_name(text) == "Debian GNU/Linux 12 (bookworm)"
    assert os_name("ID=alpine\n") is None


def test_versions_come_from_the_broker_and_registry_jar_names() -> None:
    kafka_libs = ["kafka-clients-4.1.1.jar", "kafka_2.13-4.1.1.jar", "scala-library-2.13.16.jar"]
    assert version_from_jars(kafka_libs, _KAFKA_JAR) == "4.1.1"
    assert version_from_jars(["apicurio-registry-app-3.0.9-runner.jar"], _APICURIO_JAR) == "3.0.9"
    assert version_from_jars(["kafka-clients-4.1.1.jar"], _KAFKA_JAR) is None


def test_two_broker_versions_side_by_side_are_refused() -> None:
    with pytest.raises(ValueError, match="several versions"):
        version_from_jars(["kafka_2.13-4.0.0.jar", "kafka_2.13-4.1.1.jar"], _KAFKA_JAR)


def test_the_git_state_is_the_checked_out_commit() -> None:
    commit, dirty = git_state()
    assert commit is not None and re.fullmatch(r"[0-9a-f]{40}", commit)
    assert isinstance(dirty, bool)


def test_the_block_describes_this_machine_and_the_run() -> None:
    machine = describe(
        started=datetime(2026, 12, 1, 16, 19, 15, 500, tzinfo=UTC),
        seconds=512.34,
        benchmarks=["codec", "e2e"],
        failed=["e2e"],
        postgres_url=None,
    )
    assert machine["started_at"] == "2026-12-01T16:19:15Z"
    assert machine["duration_seconds"] == 512.3
    assert (machine["benchmarks"], machine["failed_benchmarks"]) == (["codec", "e2e"], ["e2e"])
    assert machine["postgresql"] is None
    assert isinstance(machine["logical_cores"], int) and machine["logical_cores"] >= 1
    assert re.fullmatch(r"\w+ 3\.\d+\.\d+\S*", str(machine["python"]))
    for key in ("cpu_model", "memory_bytes", "os", "kernel", "kafka", "git_commit", "git_dirty"):
        assert key in machine
