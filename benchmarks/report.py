"""Figures as every benchmark reports them: a value next to a baseline measured in the same run
on the same machine, their ratio, and the target it is held to (if any).

``run()`` of a benchmark returns its ``Figure`` list and prints it with ``print_table``;
`make bench` gathers every list into one table (``print_summary``) and into
``bench/results.json`` (``results_document``). ``python -m benchmarks.report [PATH]`` prints a
results file as the Markdown table of ``docs/performance.md``.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict


class Figure(TypedDict):
    name: str
    unit: str
    value: float
    baseline: float
    ratio: float  # value / baseline
    target: str | None  # e.g. "ratio >= 0.4" or "value <= 100"
    met: bool | None  # None when there is no target


FIELDS = ("name", "unit", "value", "baseline", "ratio", "target", "met")


@dataclass(frozen=True)
class Bound:
    """A bound on a figure's value or on its ratio to the baseline."""

    subject: Literal["value", "ratio"]
    op: Literal[">=", "<="]
    bound: float

    def __str__(self) -> str:
        return f"{self.subject} {self.op} {self.bound:g}"

    def met(self, value: float, ratio: float) -> bool:
        """Whether the bound holds; a figure that could not be measured (NaN) never meets it."""
        measured = value if self.subject == "value" else ratio
        return measured >= self.bound if self.op == ">=" else measured <= self.bound


def figure(
    name: str, unit: str, value: float, baseline: float, target: Bound | None = None
) -> Figure:
    ratio = value / baseline if baseline and math.isfinite(baseline) else math.nan
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
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"


def table_lines(figures: Sequence[Figure]) -> list[str]:
    """The rows of a plain-text table: name, unit, value, baseline, ratio, target, met."""
    rows = [("figure", "unit", "value", "baseline", "ratio", "target", "met")]
    for f in figures:
        met = "" if f["met"] is None else ("yes" if f["met"] else "NO")
        rows.append(
            (
                f["name"],
                f["unit"],
                _number(f["value"]),
                _number(f["baseline"]),
                "n/a" if not math.isfinite(f["ratio"]) else f"{f['ratio']:.3g}",
                f["target"] or "",
                met,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {2, 3, 4}
    return [
        "  "
        + "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]


def print_table(title: str, figures: list[Figure], notes: Sequence[str] = ()) -> None:
    """One plain-text table: name, unit, value, baseline, ratio, target, met; then notes."""
    print(title)
    for line in table_lines(figures):
        print(line)
    for note in notes:
        print(f"  {note}")


def unmet(figures: Sequence[Figure]) -> list[Figure]:
    """The figures whose target was not met (figures without a target are never listed)."""
    return [f for f in figures if f["met"] is False]


def summary_lines(figures: Sequence[Figure], failed: Sequence[str] = ()) -> list[str]:
    """Every figure in one table, then which targets were not met and which benchmarks did
    not finish (their figures are missing from the table)."""
    lines = ["all figures (ratio = value / baseline, both measured in this run)"]
    lines += table_lines(figures)
    with_target = [f for f in figures if f["met"] is not None]
    missed = unmet(figures)
    if missed:
        lines.append(f"{len(missed)} of {len(with_target)} targets not met:")
        lines += [
            f"  {f['name']}: {f['target']} (value {_number(f['value'])}, ratio "
            f"{_number(f['ratio'])})"
            for f in missed
        ]
    else:
        lines.append(f"all {len(with_target)} targets met")
    if failed:
        lines.append(f"benchmarks that failed, without figures: {', '.join(failed)}")
    return lines


def print_summary(figures: Sequence[Figure], failed: Sequence[str] = ()) -> None:
    for line in summary_lines(figures, failed):
        print(line)


def _json_number(x: float) -> float | None:
    # JSON has no NaN or infinity: a figure that could not be measured is null.
    return x if math.isfinite(x) else None


def results_document(machine: Mapping[str, object], figures: Sequence[Figure]) -> dict[str, object]:
    """``{"machine": {...}, "figures": [{name, unit, value, baseline, ratio, target, met}]}``
    with every non-finite number as null; ValueError when two figures share a name (a
    reader could not tell them apart)."""
    names = [f["name"] for f in figures]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"figure names must be unique; repeated: {', '.join(repeated)}")
    return {
        "machine": dict(machine),
        "figures": [
            {
                "name": f["name"],
                "unit": f["unit"],
                "value": _json_number(f["value"]),
                "baseline": _json_number(f["baseline"]),
                "ratio": _json_number(f["ratio"]),
                "target": f["target"],
                "met": f["met"],
            }
            for f in figures
        ],
    }


def write_results(path: Path, machine: Mapping[str, object], figures: Sequence[Figure]) -> None:
    """Write ``results_document`` as JSON, replacing ``path`` in one step so a reader never
    sees half a file."""
    text = json.dumps(results_document(machine, figures), indent=2, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text)
    partial.replace(path)


def markdown_lines(document: Mapping[str, object]) -> list[str]:
    """The figures of a results document as a Markdown table (missed targets in bold)."""
    figures = document["figures"]
    if not isinstance(figures, list):
        raise ValueError("a results document has a list of figures")

    def number(x: float | None) -> str:
        return "n/a" if x is None else _number(x)

    lines = [
        "| figure | unit | value | baseline | ratio | target | met |",
        "|---|---|--:|--:|--:|---|---|",
    ]
    for f in figures:
        met = "" if f["met"] is None else ("yes" if f["met"] else "**no**")
        lines.append(
            f"| `{f['name']}` | {f['unit']} | {number(f['value'])} | {number(f['baseline'])} "
            f"| {number(f['ratio'])} | {f['target'] or ''} | {met} |"
        )
    return lines


if __name__ == "__main__":
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results.json")
    for line in markdown_lines(json.loads(source.read_text())):
        print(line)
