"""When a scenario strikes: evenly spread moments within the traffic window."""

from __future__ import annotations

from collections.abc import Sequence


def spread(count: int, start: float, end: float) -> list[float]:
    """``count`` moments in ``(start, end)``, each in the middle of an equal share, so none
    falls on the edges (before the pipeline is busy, or after the traffic stopped)."""
    if count < 0 or end < start:
        raise ValueError(f"cannot spread {count} moments over [{start}, {end}]")
    step = (end - start) / count if count else 0.0
    return [start + (i + 0.5) * step for i in range(count)]


def kill_plan(names: Sequence[str], per_name: int, window: float) -> list[tuple[float, str]]:
    """Kill every one of ``names`` ``per_name`` times within ``window`` seconds: one kill
    every ``window / (len(names) * per_name)`` seconds, the names taken in turn, so the kills
    of one process are a whole round apart and every process is killed in every round."""
    moments = spread(len(names) * per_name, 0.0, window)
    return [(at, names[i % len(names)]) for i, at in enumerate(moments)]
