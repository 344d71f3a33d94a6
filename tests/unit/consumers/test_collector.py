"""The collector settings of the consumer and relay loops hold for the block only."""

from __future__ import annotations

import gc

from consumers import collector


def test_the_loop_runs_with_the_objects_alive_at_its_start_frozen_and_larger_steps() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with collector.tuned():
        assert gc.get_threshold() == collector.THRESHOLDS
        assert gc.get_freeze_count() > 0
        # Cycles made inside the loop are still collected.
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
