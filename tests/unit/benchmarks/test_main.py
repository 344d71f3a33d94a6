"""`python -m benchmarks`: choosing benchmarks, carrying on past a failed one, the results
file and the exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import benchmarks.__main__ as bench
from benchmarks.report import Bound, Figure, figure
from tests.integration.stack import Stack


def test_names_choose_benchmarks_in_the_fixed_order() -> None:
    assert [b.name for b in bench.selected([])] == list(bench.NAMES)
    assert [b.name for b in bench.selected(["e2e", "codec"])] == ["codec", "e2e"]


def test_an_unknown_name_is_refused_with_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench.parse(["codex"])
    assert "unknown benchmark codex; choose from codec, webhook" in capsys.readouterr().err


def test_the_exit_status_fails_on_a_failed_benchmark_and_on_a_missed_target_only_when_strict() -> (
    None
):
    missed = [figure("p99", "ms", 3000.0, 100.0, Bound("value", "<=", 2000))]
    assert bench.exit_status([], missed, strict=False) == 0
    assert bench.exit_status([], missed, strict=True) == 1
    assert bench.exit_status(["e2e"], [], strict=False) == 1


def test_a_run_reports_every_figure_survives_a_failure_and_writes_the_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fine(stack: Stack | None) -> list[Figure]:
        assert stack is None  # no benchmark that needs a stack was chosen
        return [figure("fine_per_s", "1/s", 10.0, 20.0, Bound("ratio", ">=", 0.4))]

    def broken(stack: Stack | None) -> list[Figure]:
        raise RuntimeError("the broker went away")

    monkeypatch.setattr(
        bench,
        "BENCHMARKS",
        (
            bench.Benchmark("first", broken, needs_stack=False),
            bench.Benchmark("second", fine, needs_stack=False),
        ),
    )
    output = tmp_path / "results.json"
    assert bench.main(["--output", str(output)]) == 1
    printed = capsys.readouterr().out
    assert "first: FAILED" in printed
    assert "all 1 targets met" in printed
    assert "benchmarks that failed, without figures: first" in printed
    written = json.loads(output.read_text())
    assert [f["name"] for f in written["figures"]] == ["fine_per_s"]
    assert written["machine"]["benchmarks"] == ["first", "second"]
    assert written["machine"]["failed_benchmarks"] == ["first"]
