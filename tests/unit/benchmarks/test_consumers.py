"""How a consumer run is paired with the bare loop around it, and which run a figure reports."""

from __future__ import annotations

import pytest

from benchmarks.consumers import Run, median_pair, pairs
from benchmarks.cpu import Cpu

IDLE = Cpu(process=None, own=0.0, machine=None, cores=2)


def run(per_second: float, events: int = 10_000) -> Run:
    return Run(seconds=events / per_second, events=events, cpu=IDLE)


def test_a_run_is_compared_with_the_bare_runs_just_before_and_after_it() -> None:
    bare = [run(10_000), run(6_000), run(8_000)]
    (first, second) = pairs([(0, run(4_000)), (1, run(4_000))], bare)
    # Over both bare runs' records and seconds (1.0 s and 1.67 s for 10,000 records each).
    assert first.baseline == pytest.approx(20_000 / (1.0 + 10_000 / 6_000))
    assert second.baseline == pytest.approx(20_000 / (10_000 / 6_000 + 1.25))
    assert first.ratio == pytest.approx(4_000 / first.baseline)


def test_a_figure_reports_the_run_with_the_median_ratio_not_the_median_speed() -> None:
    bare = [run(12_000), run(12_000), run(8_000), run(8_000)]
    # Ratios 0.5, 0.521 (over 9,600/s) and 0.475: by speed the middle run is round 1.
    runs = [(0, run(6_000)), (1, run(5_000)), (2, run(3_800))]
    chosen = median_pair(pairs(runs, bare))
    assert chosen.run.per_second == pytest.approx(6_000)
    assert chosen.ratio == pytest.approx(0.5)


def test_of_an_even_number_of_runs_the_lower_middle_counts() -> None:
    bare = [run(8_000)] * 5
    runs = [(i, run(per_second)) for i, per_second in enumerate((4_000, 3_000, 5_000, 6_000))]
    assert median_pair(pairs(runs, bare)).run.per_second == pytest.approx(4_000)
