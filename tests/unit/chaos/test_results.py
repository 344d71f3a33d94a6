"""Scenario results: PASS only with a verdict that passed and no error; the JSON keeps the
contract's keys; a subset run replaces only its own scenarios in results.json."""

from __future__ import annotations

import json
from pathlib import Path

from chaos.checks import Verdict
from chaos.results import ScenarioResult, line, merged, table, write

CONTRACT = {
    "name",
    "orders",
    "pushes",
    "faults",
    "acked_pushes_lost",
    "max_cancels_per_order",
    "stock_equals_ledger",
    "erp_equals_truth",
    "undelivered",
    "passed",
}


def verdict(**changes: object) -> Verdict:
    values: dict[str, object] = {
        "acked_pushes_lost": 0,
        "max_cancels_per_order": 1,
        "stock_equals_ledger": True,
        "erp_equals_truth": True,
        "undelivered": 0,
    }
    values.update(changes)
    return Verdict(**values)  # type: ignore[arg-type]


def result(name: str = "process-kills", **changes: object) -> ScenarioResult:
    values: dict[str, object] = {
        "name": name,
        "orders": 812,
        "pushes": 1903,
        "faults": 30,
        "verdict": verdict(),
        "seconds": 191.2,
    }
    values.update(changes)
    return ScenarioResult(**values)  # type: ignore[arg-type]


def test_passed_needs_a_passing_verdict_and_no_error() -> None:
    assert result().passed
    assert not result(verdict=verdict(max_cancels_per_order=2)).passed
    assert not result(verdict=None, error="ClusterError: node 2 did not start").passed
    assert not result(error="RuntimeError: webhook not ready").passed


def test_the_json_carries_the_contracts_keys() -> None:
    encoded = result(details={"kills": {"webhook": 5}}).as_json()
    assert set(encoded) >= CONTRACT
    assert encoded["passed"] is True and encoded["faults"] == 30
    assert encoded["details"]["kills"] == {"webhook": 5}
    unjudged = result(verdict=None, error="boom").as_json()
    assert unjudged["passed"] is False and unjudged["erp_equals_truth"] is None


def test_a_subset_run_replaces_only_its_scenarios(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    write([result("broker-restarts"), result("process-kills")], path)
    write([result("process-kills", orders=5, verdict=verdict(undelivered=3))], path)
    scenarios = json.loads(path.read_text())["scenarios"]
    assert [s["name"] for s in scenarios] == ["broker-restarts", "process-kills"]
    assert scenarios[1]["orders"] == 5 and scenarios[1]["passed"] is False
    assert scenarios[0]["passed"] is True
    assert merged([], [result("a")])[0]["name"] == "a"


def test_a_broken_results_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text('{"scenarios": [')
    write([result()], path)
    assert [s["name"] for s in json.loads(path.read_text())["scenarios"]] == ["process-kills"]


def test_the_summary_says_pass_or_fail_with_the_figures() -> None:
    assert line(result()).startswith("PASS process-kills (191s): 812 orders, 1903 pushes")
    failed = line(result(verdict=verdict(erp_equals_truth=False)))
    assert failed.startswith("FAIL") and "ERP = Shopee NO" in failed
    rows = table([result(), result("shop-revoked", verdict=None, error="x")]).splitlines()
    assert len(rows) == 4
    assert rows[2].endswith("| PASS |") and rows[3].endswith("| FAIL |")
