"""CPU used over a window, read from /proc: of one process (all its threads) and of the whole
machine, so a figure can be read next to what else was running. None where /proc is missing."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_seconds(pid: int | None) -> float | None:
    """CPU seconds (user + system, every thread) of ``pid`` and the processes it started
    (the webhook's Kafka writer, say) so far."""
    if pid is None:
        return None
    own = _stat(pid)
    if own is None:
        return None
    total = 0.0
    for stat in [own, *_descendants(pid)]:
        total += (int(stat[11]) + int(stat[12])) / _TICK
    return total


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3 on)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()
    except OSError:
        return None


def _descendants(pid: int) -> list[list[str]]:
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            stats[int(entry)] = stat
    found: list[list[str]] = []
    parents = {pid}
    while parents:
        children = {child for child, stat in stats.items() if int(stat[1]) in parents}
        found += [stats[child] for child in children]
        parents = children
    return found


def machine_seconds() -> float | None:
    """Busy CPU seconds of every core so far (all but idle and iowait)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except OSError:
        return None
    return (sum(fields) - fields[3] - fields[4]) / _TICK


@dataclass(frozen=True)
class Cpu:
    """CPU used during a window, in cores (1.0 = one core busy all the time)."""

    process: float | None  # the process watched (a server), if any
    own: float  # the process that measured
    machine: float | None  # everything on the machine, out of ``cores``
    cores: int

    def describe(self, own: str, process: str | None = None) -> str:
        def cores(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.2f}"

        watched = "" if process is None else f"{process} {cores(self.process)}, "
        return (
            f"CPU in cores: {watched}{own} {cores(self.own)}, "
            f"whole machine {cores(self.machine)} of {self.cores}"
        )


@dataclass(frozen=True)
class CpuSample:
    at: float
    process: float | None
    own: float
    machine: float | None

    @classmethod
    def take(cls, pid: int | None = None) -> CpuSample:
        return cls(time.monotonic(), process_seconds(pid), time.process_time(), machine_seconds())

    def until(self, later: CpuSample) -> Cpu:
        seconds = later.at - self.at

        def share(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else (b - a) / seconds

        return Cpu(
            share(self.process, later.process),
            (later.own - self.own) / seconds,
            share(self.machine, later.machine),
            os.cpu_count() or 1,
        )


def mean(cpus: list[tuple[Cpu, float]]) -> Cpu | None:
    """The average of several windows' CPU, weighted by their lengths."""
    if not cpus:
        return None
    total = sum(weight for _, weight in cpus)

    def average(values: list[float | None]) -> float | None:
        if any(v is None for v in values):
            return None
        return sum((v or 0.0) * w for v, (_, w) in zip(values, cpus, strict=True)) / total

    own = average([c.own for c, _ in cpus])
    assert own is not None
    return Cpu(
        average([c.process for c, _ in cpus]),
        own,
        average([c.machine for c, _ in cpus]),
        cpus[0][0].cores,
    )


class AssignmentClock:
    """Times a consumer from when its group assigned the partitions (joining is not
    measured) to ``stop``; pass ``assigned`` as the consumer's on-assigned callback. Set
    ``watch`` to a process id before the assignment to count that process's CPU too (a
    consumer's helper process)."""

    def __init__(self, watch: int | None = None) -> None:
        self.started: CpuSample | None = None
        self.watch = watch

    def assigned(self, partitions: list[tuple[str, int]]) -> None:
        if self.started is None:
            self.started = CpuSample.take(self.watch)

    def stop(self) -> tuple[float, Cpu]:
        """Seconds since the assignment, and the CPU used meanwhile."""
        assert self.started is not None
        now = CpuSample.take(self.watch)
        return now.at - self.started.at, self.started.until(now)
