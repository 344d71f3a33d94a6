"""Figures, the combined table, target evaluation and the results document."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks.report import (
    FIELDS,
    Bound,
    Figure,
    figure,
    markdown_lines,
    results_document,
    summary_lines,
    table_lines,
    unmet,
    write_results,
)


def test_a_figure_carries_its_ratio_and_whether_its_target_is_met() -> None:
    fast = figure("pushes", "pushes/s", 450.0, 1000.0, Bound("ratio", ">=", 0.4))
    assert fast["ratio"] == pytest.approx(0.45)
    assert (fast["target"], fast["met"]) == ("ratio >= 0.4", True)
    slow = figure("p99", "ms", 120.0, 20.0, Bound("value", "<=", 100))
    assert (slow["target"], slow["met"]) == ("value <= 100", False)
    plain = figure("bytes", "bytes", 452, 2285)
    assert (plain["target"], plain["met"]) == (None, None)


def test_bounds_hold_at_their_limit_and_never_for_what_could_not_be_measured() -> None:
    assert Bound("value", "<=", 2000).met(2000.0, 1.0)
    assert Bound("ratio", ">=", 0.5).met(1.0, 0.5)
    assert not Bound("value", "<=", 2000).met(math.inf, math.inf)
    assert not Bound("ratio", ">=", 0.5).met(1.0, math.nan)
    assert not Bound("value", ">=", 190).met(math.nan, math.nan)


def test_without_a_usable_baseline_the_ratio_is_not_a_number() -> None:
    assert math.isnan(figure("x", "ms", 5.0, 0.0)["ratio"])
    assert math.isnan(figure("x", "ms", 5.0, math.inf)["ratio"])
    assert math.isinf(figure("x", "ms", math.inf, 5.0)["ratio"])


def _figures() -> list[Figure]:
    return [
        figure("codec_order_event_bytes", "bytes", 452, 2285),
        figure("e2e_latency_p99_ms", "ms", 2500.0, 300.0, Bound("value", "<=", 2000)),
        figure(
            "erp_sync_sqlite_events_per_s", "events/s", 900.0, 1000.0, Bound("ratio", ">=", 0.5)
        ),
    ]


def test_the_table_has_a_header_and_one_aligned_row_per_figure() -> None:
    lines = table_lines(_figures())
    assert lines[0].split() == ["figure", "unit", "value", "baseline", "ratio", "target", "met"]
    assert len(lines) == 4
    assert lines[2].split() == [
        "e2e_latency_p99_ms",
        "ms",
        "2,500",
        "300",
        "8.33",
        "value",
        "<=",
        "2000",
        "NO",
    ]
    assert lines[3].rstrip().endswith("yes")
    # Numbers are right-aligned: every row's value column ends at the same place.
    ends = {
        line.index(value) + len(value)
        for line, value in zip(lines[1:], ("452", "2,500", "900"), strict=True)
    }
    assert len(ends) == 1


def test_the_table_prints_what_could_not_be_measured_as_such() -> None:
    (row,) = table_lines([figure("p99", "ms", math.inf, math.nan)])[1:]
    assert row.split() == ["p99", "ms", "inf", "n/a", "n/a"]


def test_the_summary_names_every_missed_target_and_every_failed_benchmark() -> None:
    lines = summary_lines(_figures(), failed=["webhook"])
    assert "1 of 2 targets not met:" in lines
    assert any(line.strip().startswith("e2e_latency_p99_ms: value <= 2000") for line in lines)
    assert lines[-1] == "benchmarks that failed, without figures: webhook"
    assert [f["name"] for f in unmet(_figures())] == ["e2e_latency_p99_ms"]


def test_the_summary_says_so_when_every_target_is_met() -> None:
    figures = [figure("x", "ms", 1.0, 2.0, Bound("value", "<=", 5))]
    assert summary_lines(figures)[-1] == "all 1 targets met"


def test_the_results_document_has_exactly_the_agreed_shape() -> None:
    document = results_document({"logical_cores": 2}, _figures())
    assert set(document) == {"machine", "figures"}
    assert document["machine"] == {"logical_cores": 2}
    figures = document["figures"]
    assert isinstance(figures, list)
    assert all(list(f) == list(FIELDS) for f in figures)
    assert figures[1] == {
        "name": "e2e_latency_p99_ms",
        "unit": "ms",
        "value": 2500.0,
        "baseline": 300.0,
        "ratio": pytest.approx(2500 / 300),
        "target": "value <= 2000",
        "met": False,
    }


def test_numbers_json_cannot_hold_become_null() -> None:
    document = results_document({}, [figure("p99", "ms", math.inf, 0.0, Bound("value", "<=", 1))])
    figures = document["figures"]
    assert isinstance(figures, list)
    (only,) = figures
    assert (only["value"], only["baseline"], only["ratio"], only["met"]) == (None, 0.0, None, False)


def test_two_figures_of_one_name_are_refused() -> None:
    twice = [figure("p99", "ms", 1.0, 1.0), figure("p99", "ms", 2.0, 1.0)]
    with pytest.raises(ValueError, match="repeated: p99"):
        results_document({}, twice)


def _strict_json(text: str) -> object:
    def refuse(constant: str) -> object:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_results_are_written_as_strict_json_replacing_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bench" / "results.json"
    write_results(path, {"git_commit": "abc"}, [figure("p99", "ms", math.nan, 1.0)])
    write_results(path, {"git_commit": "def"}, _figures())
    written = _strict_json(path.read_text())
    assert isinstance(written, dict)
    assert written["machine"] == {"git_commit": "def"}
    assert [f["name"] for f in written["figures"]] == [f["name"] for f in _figures()]
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]


def test_a_results_document_reads_as_a_markdown_table() -> None:
    document = results_document({}, [*_figures(), figure("p99", "ms", math.inf, 0.0)])
    lines = markdown_lines(json.loads(json.dumps(document)))
    assert lines[0] == "| figure | unit | value | baseline | ratio | target | met |"
    assert lines[3] == "| `e2e_latency_p99_ms` | ms | 2,500 | 300 | 8.33 | value <= 2000 | **no** |"
    assert lines[4].endswith("| 0.9 | ratio >= 0.5 | yes |")
    assert lines[5] == "| `p99` | ms | n/a | 0 | n/a |  |  |"
