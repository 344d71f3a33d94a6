"""A scenario's outcome: its figures, PASS/FAIL, and ``chaos/results.json``.

The JSON is ``{"scenarios": [{"name", "orders", "pushes", "faults", "acked_pushes_lost",
"max_cancels_per_order", "stock_equals_ledger", "erp_equals_truth", "undelivered", "passed",
"seconds", "error", "details"}]}``; the first ten keys are the contract, the rest explain.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.checks import Verdict

RESULTS = Path(__file__).resolve().parent / "results.json"


@dataclass(frozen=True)
class ScenarioResult:
    """``error`` is set when the scenario could not run to its end (then it fails)."""

    name: str
    orders: int
    pushes: int
    faults: int
    verdict: Verdict | None
    seconds: float
    error: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.error is None and self.verdict is not None and self.verdict.passed

    def as_json(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "name": self.name,
            "orders": self.orders,
            "pushes": self.pushes,
            "faults": self.faults,
            "acked_pushes_lost": None if v is None else v.acked_pushes_lost,
            "max_cancels_per_order": None if v is None else v.max_cancels_per_order,
            "stock_equals_ledger": None if v is None else v.stock_equals_ledger,
            "erp_equals_truth": None if v is None else v.erp_equals_truth,
            "undelivered": None if v is None else v.undelivered,
            "passed": self.passed,
            "seconds": round(self.seconds, 1),
            "error": self.error,
            "details": {
                **self.details,
                **(
                    {}
                    if v is None
                    else {"examples": v.examples, "undelivered_by_kind": v.undelivered_by_kind}
                ),
            },
        }


def merged(previous: Sequence[Mapping[str, Any]], fresh: Iterable[ScenarioResult]) -> list[Any]:
    """``previous`` entries with those of the scenarios just run replaced (a subset run keeps
    the other scenarios' last results), in the order the names first appear."""
    by_name: dict[str, Any] = {str(entry["name"]): dict(entry) for entry in previous}
    for result in fresh:
        by_name[result.name] = result.as_json()
    return list(by_name.values())


def write(results: Iterable[ScenarioResult], path: Path = RESULTS) -> None:
    previous: list[Mapping[str, Any]] = []
    if path.exists():
        try:
            loaded = json.loads(path.read_text())
            previous = list(loaded.get("scenarios", []))
        except (ValueError, AttributeError):
            previous = []  # a broken file from an interrupted write is replaced, not kept
    path.write_text(json.dumps({"scenarios": merged(previous, results)}, indent=2) + "\n")


def _flag(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "NO")


def line(result: ScenarioResult) -> str:
    """One summary line: the figures and PASS/FAIL."""
    v = result.verdict
    figures = f"{result.orders} orders, {result.pushes} pushes, {result.faults} faults; " + (
        "not judged"
        if v is None
        else f"acked pushes lost {v.acked_pushes_lost}, max cancels per order "
        f"{v.max_cancels_per_order}, stock = ledger {_flag(v.stock_equals_ledger)}, "
        f"ERP = Shopee {_flag(v.erp_equals_truth)}, undelivered {v.undelivered}"
    )
    verdict = "PASS" if result.passed else "FAIL"
    return f"{verdict} {result.name} ({result.seconds:.0f}s): {figures}"


def table(results: Sequence[ScenarioResult]) -> str:
    """The summary table (Markdown, so docs/reliability.md can take it as it is)."""
    head = (
        "| scenario | orders | pushes | faults | acked pushes lost | max cancels/order "
        "| stock = ledger | ERP = Shopee | undelivered | seconds | result |"
    )
    rows = [head, "|" + "---|" * 11]
    for r in results:
        v = r.verdict
        cells = [
            r.name,
            str(r.orders),
            str(r.pushes),
            str(r.faults),
            "-" if v is None else str(v.acked_pushes_lost),
            "-" if v is None else str(v.max_cancels_per_order),
            _flag(None if v is None else v.stock_equals_ledger),
            _flag(None if v is None else v.erp_equals_truth),
            "-" if v is None else str(v.undelivered),
            f"{r.seconds:.0f}",
            "PASS" if r.passed else "FAIL",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
