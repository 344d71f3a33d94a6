"""The stock ledger's state machine, as pure functions over plain values.

Each model on an order (an order *line* here: the quantity per ``(item_id, model_id)``) moves
through ``none → reserved → deducted | released`` or is recorded ``closed`` when the order is
first seen already cancelled or already shipped. ``deducted``, ``released`` and ``closed`` are
final, so a stale or replayed snapshot arriving later changes nothing, and an older open
snapshot arriving after a cancelled one can never reserve.

Which phase each Shopee status is in:

* **open** (not yet shipped, takes stock): ``UNPAID``, ``INVOICE_PENDING``, ``READY_TO_SHIP``,
  ``PROCESSED``, ``RETRY_SHIP``, ``IN_CANCEL``. ``UNPAID`` reserves too: Shopee itself holds
  marketplace stock for an unpaid order, and an order that is never paid becomes
  ``CANCELLED`` and gives its reservation back. Whether an uncovered order is cancelled is
  auto-cancel's decision, not the ledger's.
* **shipped** (goods left): ``SHIPPED``, ``TO_CONFIRM_RECEIVE``, ``COMPLETED``, ``TO_RETURN``.
  A reserved line is deducted (on hand and reserved both drop).
* **cancelled**: ``CANCELLED``. A reserved line is released; a deducted one (cancelled after
  shipping: lost, returned) restocks nothing.
* anything else (a status Shopee adds later) changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum


class LineState(StrEnum):
    NONE = "none"
    RESERVED = "reserved"
    DEDUCTED = "deducted"
    RELEASED = "released"
    CLOSED = "closed"


FINAL_STATES = frozenset({LineState.DEDUCTED, LineState.RELEASED, LineState.CLOSED})


class Phase(Enum):
    OPEN = "open"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


OPEN_STATUSES = frozenset(
    {"UNPAID", "INVOICE_PENDING", "READY_TO_SHIP", "PROCESSED", "RETRY_SHIP", "IN_CANCEL"}
)
SHIPPED_STATUSES = frozenset({"SHIPPED", "TO_CONFIRM_RECEIVE", "COMPLETED", "TO_RETURN"})
CANCELLED_STATUSES = frozenset({"CANCELLED"})


def phase_of(status: str) -> Phase:
    if status in OPEN_STATUSES:
        return Phase.OPEN
    if status in SHIPPED_STATUSES:
        return Phase.SHIPPED
    if status in CANCELLED_STATUSES:
        return Phase.CANCELLED
    return Phase.UNKNOWN


_NEXT: dict[tuple[LineState, Phase], LineState] = {
    (LineState.NONE, Phase.OPEN): LineState.RESERVED,
    (LineState.NONE, Phase.SHIPPED): LineState.CLOSED,
    (LineState.NONE, Phase.CANCELLED): LineState.CLOSED,
    (LineState.RESERVED, Phase.SHIPPED): LineState.DEDUCTED,
    (LineState.RESERVED, Phase.CANCELLED): LineState.RELEASED,
}


def next_state(current: LineState, phase: Phase) -> LineState:
    """The state a line in ``current`` moves to when its order is seen in ``phase`` (the same
    state when nothing applies)."""
    return _NEXT.get((current, phase), current)


def step_of(state: LineState) -> int:
    """Which transition of a line leads to ``state``: 1 leaves ``none``, 2 leaves
    ``reserved``. The ledger's unique key includes it, so each happens at most once."""
    return 2 if state in (LineState.DEDUCTED, LineState.RELEASED) else 1


@dataclass(frozen=True)
class Holding:
    """What the ledger says about one line of an order: its state and, once reserved, the
    quantity this system took (given back or deducted exactly, whatever later snapshots say)."""

    state: LineState
    quantity: int


NOTHING_HELD = Holding(LineState.NONE, 0)


@dataclass(frozen=True)
class Transition:
    """One line moving from ``before`` to ``after``, and what that does to its model's stock."""

    item_id: int
    model_id: int
    before: LineState
    after: LineState
    quantity: int
    on_hand_delta: int
    reserved_delta: int

    @property
    def step(self) -> int:
        return step_of(self.after)


@dataclass(frozen=True)
class StockMove:
    item_id: int
    model_id: int
    on_hand_delta: int
    reserved_delta: int


@dataclass(frozen=True)
class Shortage:
    """A line that available stock cannot cover."""

    item_id: int
    model_id: int
    requested: int
    available: int


def _deltas(after: LineState, quantity: int) -> tuple[int, int]:
    if after is LineState.RESERVED:
        return 0, quantity
    if after is LineState.DEDUCTED:
        return -quantity, -quantity
    if after is LineState.RELEASED:
        return 0, -quantity
    return 0, 0


def plan_transitions(
    status: str,
    quantities: Mapping[tuple[int, int], int],
    held: Mapping[tuple[int, int], Holding],
) -> list[Transition]:
    """The transitions an order in ``status`` with these line ``quantities`` causes, given what
    the ledger already ``held`` for its lines; sorted by ``(item_id, model_id)``.

    Lines the ledger holds but the snapshot no longer lists still follow the order's status,
    with the quantity the ledger holds. A line with quantity 0 never reserves."""
    phase = phase_of(status)
    transitions = []
    for key in sorted(set(quantities) | set(held)):
        holding = held.get(key, NOTHING_HELD)
        after = next_state(holding.state, phase)
        if after is holding.state:
            continue
        quantity = holding.quantity if holding.state is LineState.RESERVED else quantities[key]
        if after is LineState.RESERVED and quantity <= 0:
            continue
        on_hand_delta, reserved_delta = _deltas(after, quantity)
        transitions.append(
            Transition(
                key[0], key[1], holding.state, after, quantity, on_hand_delta, reserved_delta
            )
        )
    return transitions


def stock_moves(transitions: Iterable[Transition]) -> list[StockMove]:
    """The net stock change per model, models without a change left out."""
    totals: dict[tuple[int, int], tuple[int, int]] = {}
    for t in transitions:
        on_hand, reserved = totals.get((t.item_id, t.model_id), (0, 0))
        totals[(t.item_id, t.model_id)] = (on_hand + t.on_hand_delta, reserved + t.reserved_delta)
    return [
        StockMove(item, model, on_hand, reserved)
        for (item, model), (on_hand, reserved) in sorted(totals.items())
        if on_hand or reserved
    ]


def shortages(
    transitions: Iterable[Transition], available: Mapping[tuple[int, int], int]
) -> list[Shortage]:
    """The reservations among ``transitions`` that ``available`` stock cannot cover (a model
    without stock has none available)."""
    short = []
    for t in transitions:
        if t.after is not LineState.RESERVED:
            continue
        have = available.get((t.item_id, t.model_id), 0)
        if t.quantity > have:
            short.append(Shortage(t.item_id, t.model_id, t.quantity, have))
    return short
