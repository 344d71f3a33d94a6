"""When scenarios strike: evenly within the traffic window, never on its edges."""

from __future__ import annotations

import pytest

from chaos.schedule import kill_plan, spread


def test_spread_puts_each_moment_in_the_middle_of_its_share() -> None:
    assert spread(3, 0, 90) == [15.0, 45.0, 75.0]
    assert spread(0, 0, 90) == []


def test_every_process_is_killed_once_per_round() -> None:
    plan = kill_plan(["webhook", "poller", "enricher"], 2, 60.0)
    assert [name for _, name in plan] == ["webhook", "poller", "enricher"] * 2
    moments = [at for at, _ in plan]
    assert moments == sorted(moments) and moments[0] > 0 and moments[-1] < 60


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot spread"):
        spread(2, 10, 5)
