"""The ledger's state machine: every (line state, order status) pair, and whole orders."""

from __future__ import annotations

import pytest

from consumers.erp.ledger import (
    Holding,
    LineState,
    Phase,
    Shortage,
    StockMove,
    Transition,
    phase_of,
    plan_transitions,
    shortages,
    stock_moves,
)

N, R, D, X, C = (
    LineState.NONE,
    LineState.RESERVED,
    LineState.DEDUCTED,
    LineState.RELEASED,
    LineState.CLOSED,
)

OPEN = ["UNPAID", "INVOICE_PENDING", "READY_TO_SHIP", "PROCESSED", "RETRY_SHIP", "IN_CANCEL"]
SHIPPED = ["SHIPPED", "TO_CONFIRM_RECEIVE", "COMPLETED", "TO_RETURN"]
CANCELLED = ["CANCELLED"]
UNKNOWN = ["SOMETHING_NEW", ""]

# (state before, statuses) -> (state after, on_hand delta, reserved delta) for a line of 3
# (a reserved line holds 3 too).
TABLE: list[tuple[LineState, list[str], LineState, int, int]] = [
    (N, OPEN, R, 0, 3),
    (N, SHIPPED, C, 0, 0),  # first seen shipped: we never took stock, so nothing to deduct
    (N, CANCELLED, C, 0, 0),  # first seen cancelled: nothing to give back
    (N, UNKNOWN, N, 0, 0),
    (R, OPEN, R, 0, 0),  # redelivered or older open snapshot
    (R, SHIPPED, D, -3, -3),
    (R, CANCELLED, X, 0, -3),
    (R, UNKNOWN, R, 0, 0),
    *[
        (final, statuses, final, 0, 0)
        for final in (D, X, C)
        for statuses in (OPEN, SHIPPED, CANCELLED, UNKNOWN)
    ],
]

CASES = [
    pytest.param(before, status, after, on_hand, reserved, id=f"{before}-{status or 'empty'}")
    for before, statuses, after, on_hand, reserved in TABLE
    for status in statuses
]


def test_the_table_covers_every_state_and_status() -> None:
    pairs = {(before, status) for before, status, *_ in (c.values for c in CASES)}
    assert pairs == {
        (s, status) for s in LineState for status in OPEN + SHIPPED + CANCELLED + UNKNOWN
    }


@pytest.mark.parametrize(("before", "status", "after", "on_hand", "reserved"), CASES)
def test_one_line(
    before: LineState, status: str, after: LineState, on_hand: int, reserved: int
) -> None:
    held = {} if before is N else {(1, 2): Holding(before, 3)}
    transitions = plan_transitions(status, {(1, 2): 3}, held)
    if after is before:
        assert transitions == []
    else:
        assert transitions == [Transition(1, 2, before, after, 3, on_hand, reserved)]
        assert transitions[0].step == (1 if before is N else 2)


def test_phases() -> None:
    assert {phase_of(s) for s in OPEN} == {Phase.OPEN}
    assert {phase_of(s) for s in SHIPPED} == {Phase.SHIPPED}
    assert phase_of("CANCELLED") is Phase.CANCELLED
    assert phase_of("PENDING_INVOICE") is Phase.UNKNOWN


def test_release_and_deduct_use_the_reserved_quantity_not_the_snapshots() -> None:
    held = {(1, 1): Holding(R, 2)}
    assert plan_transitions("CANCELLED", {(1, 1): 5}, held) == [Transition(1, 1, R, X, 2, 0, -2)]
    # A reserved line missing from a later snapshot still ships.
    assert plan_transitions("SHIPPED", {}, held) == [Transition(1, 1, R, D, 2, -2, -2)]


def test_cancelled_first_then_an_older_open_snapshot_reserves_nothing() -> None:
    lines = {(1, 1): 1, (1, 2): 2}
    closing = plan_transitions("CANCELLED", lines, {})
    assert [t.after for t in closing] == [C, C]
    held = {(t.item_id, t.model_id): Holding(t.after, 0) for t in closing}
    assert plan_transitions("READY_TO_SHIP", lines, held) == []


def test_a_whole_order_moves_line_by_line() -> None:
    lines = {(2, 1): 1, (1, 1): 2}
    reserve = plan_transitions("READY_TO_SHIP", lines, {})
    assert [(t.item_id, t.model_id, t.after) for t in reserve] == [(1, 1, R), (2, 1, R)]
    assert stock_moves(reserve) == [StockMove(1, 1, 0, 2), StockMove(2, 1, 0, 1)]
    held = {(t.item_id, t.model_id): Holding(t.after, t.quantity) for t in reserve}
    ship = plan_transitions("COMPLETED", lines, held)
    assert stock_moves(ship) == [StockMove(1, 1, -2, -2), StockMove(2, 1, -1, -1)]


def test_zero_quantity_lines_do_not_reserve_and_zero_moves_are_dropped() -> None:
    assert plan_transitions("READY_TO_SHIP", {(1, 1): 0}, {}) == []
    closing = plan_transitions("CANCELLED", {(1, 1): 1}, {})
    assert stock_moves(closing) == []


def test_shortages_name_exactly_the_lines_not_covered() -> None:
    reserve = plan_transitions("READY_TO_SHIP", {(1, 1): 2, (1, 2): 3, (1, 3): 1}, {})
    available = {(1, 1): 2, (1, 2): 1}
    assert shortages(reserve, available) == [Shortage(1, 2, 3, 1), Shortage(1, 3, 1, 0)]
    assert shortages(plan_transitions("CANCELLED", {(1, 1): 9}, {}), {}) == []
