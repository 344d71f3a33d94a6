"""Figures as every benchmark reports them: a value next to a baseline measured in the same run
on the same machine, their ratio, and the target it is held to (if any).

``run()`` of a benchmark returns its ``Figure`` list (the shape of ``bench/results.json``) and
prints it with ``print_table``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict


class Figure(TypedDict):
    name: str
    unit: str
    value: float
    baseline: float
    ratio: float  # value / baseline
    target: str | None  # e.g. "ratio >= 0.4" or "value <= 100"
    met: bool | None  # None when there is no target


@dataclass(frozen=True)
class Bound:
    """A bound on a figure's value or on its ratio to the baseline."""

    subject: Literal["value", "ratio"]
    op: Literal[">=", "<="]
    bound: float

    def __str__(self) -> str:
        return f"{self.subject} {self.op} {self.bound:g}"

    def met(self, value: float, ratio: float) -> bool:
        measured = value if self.subject == "value" else ratio
        return measured >= self.bound if self.op == ">=" else measured <= self.bound


def figure(
    name: str, unit: str, value: float, baseline: float, target: Bound | None = None
) -> Figure:
    ratio = value / baseline if baseline else math.nan
    return Figure(
        name=name,
        unit=unit,
        value=value,
        baseline=baseline,
        ratio=ratio,
        target=None if target is None else str(target),
        met=None if target is None else target.met(value, ratio),
    )


def _number(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"


def print_table(title: str, figures: list[Figure], notes: Sequence[str] = ()) -> None:
    """One plain-text table: name, unit, value, baseline, ratio, target, met; then notes."""
    rows = [("figure", "unit", "value", "baseline", "ratio", "target", "met")]
    for f in figures:
        met = "" if f["met"] is None else ("yes" if f["met"] else "NO")
        rows.append(
            (
                f["name"],
                f["unit"],
                _number(f["value"]),
                _number(f["baseline"]),
                "n/a" if math.isnan(f["ratio"]) else f"{f['ratio']:.3g}",
                f["target"] or "",
                met,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {2, 3, 4}
    print(title)
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        print("  " + "  ".join(cells).rstrip())
    for note in notes:
        print(f"  {note}")
