"""The poller's loop: a round that fails transiently is retried, anything else crashes."""

from __future__ import annotations

from typing import Any, cast

import pytest
import sqlalchemy.exc

from orderflow.metrics import Metrics
from orderflow.process import StopFlag
from producers.poller import Poller


class _Rounds:
    def __init__(self, stop: StopFlag, failures: list[Exception]) -> None:
        self.stop = stop
        self.failures = failures
        self.calls = 0

    def __call__(self, stop: StopFlag | None = None) -> float:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.stop.set()
        return 0.0


def _poller() -> Poller:
    none = cast(Any, None)
    return Poller(none, none, none, none, none, Metrics())


def test_a_database_outage_for_a_round_is_waited_out(monkeypatch: pytest.MonkeyPatch) -> None:
    stop = StopFlag()
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return False

    monkeypatch.setattr(stop, "wait", wait)
    poller = _poller()
    lost = sqlalchemy.exc.OperationalError("SELECT", {}, Exception("connection refused"))
    rounds = _Rounds(stop, [lost, lost])
    monkeypatch.setattr(poller, "run_once", rounds)
    poller.run(stop)
    assert rounds.calls == 3
    assert waits[:2] == [2.0, 4.0]


def test_a_bug_crashes_the_poller(monkeypatch: pytest.MonkeyPatch) -> None:
    stop = StopFlag()
    poller = _poller()
    monkeypatch.setattr(poller, "run_once", _Rounds(stop, [KeyError("shop")]))
    with pytest.raises(KeyError):
        poller.run(stop)
