"""The circuit breaker that stops a consumer when most recent records are poison.

A bad deploy (a decoder bug, a schema it cannot read, a misconfigured ERP endpoint that
refuses everything) would otherwise drain the whole topic into the dead-letter topic. The
breaker looks at the outcomes of the last ``window`` records; before another record is
dead-lettered it asks ``allows_dead_letter``, and once that says no it stays open: the
consumer stops without dead-lettering or committing that record, and a person looks.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class CircuitBreaker:
    window: int = 100
    # Open when more than this share of the window would be dead letters...
    threshold: float = 0.5
    # ...and at least this many of them (a few poison records in a quiet hour are normal).
    min_dead_letters: int = 10
    _outcomes: deque[bool] = field(default_factory=deque)
    open: bool = False

    def record(self, dead_letter: bool) -> None:
        """Remember one finished record's outcome."""
        self._outcomes.append(dead_letter)
        while len(self._outcomes) > self.window:
            self._outcomes.popleft()

    def allows_dead_letter(self) -> bool:
        """Whether one more dead letter keeps the breaker closed; opens it (for good) if not."""
        if self.open:
            return False
        recent = list(self._outcomes)[-(self.window - 1) :] if self.window > 1 else []
        dead = sum(recent) + 1
        if dead >= self.min_dead_letters and dead / (len(recent) + 1) > self.threshold:
            self.open = True
        return not self.open
