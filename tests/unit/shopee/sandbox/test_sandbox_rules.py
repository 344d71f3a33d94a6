"""The sandbox's pure rules: transitions, cancel rules, list windows and paging, faults."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopee.sandbox.config import FaultKind
from shopee.sandbox.errors import InvalidTransition, ShopeeApiError, http_status_for
from shopee.sandbox.faults import api_name, error_rate_for, pick_fault, window_allows
from shopee.sandbox.pushes import retry_delay
from shopee.sandbox.rules import (
    TRANSITIONS,
    ListEntry,
    check_transition,
    page_orders,
    sort_for_list,
    validate_list_window,
    validate_page_size,
)

DAY = 86400


def test_terminal_statuses_lead_nowhere_and_every_target_is_a_status() -> None:
    assert TRANSITIONS["COMPLETED"] == TRANSITIONS["CANCELLED"] == frozenset()
    for targets in TRANSITIONS.values():
        assert targets <= set(TRANSITIONS)


@pytest.mark.parametrize(
    ("current", "target"),
    [("UNPAID", "PROCESSED"), ("SHIPPED", "IN_CANCEL"), ("COMPLETED", "TO_RETURN")],
)
def test_impossible_transitions_are_refused(current: str, target: str) -> None:
    with pytest.raises(InvalidTransition):
        check_transition(current, target)


@pytest.mark.parametrize(
    ("span", "accept_exact", "valid"),
    [
        (1, True, True),
        (15 * DAY - 1, False, True),
        (15 * DAY, True, True),
        (15 * DAY, False, False),
        (15 * DAY + 1, True, False),
        (0, True, False),
        (-1, True, False),
    ],
)
def test_list_window(span: int, accept_exact: bool, valid: bool) -> None:
    def check() -> None:
        validate_list_window(
            1_700_000_000,
            1_700_000_000 + span,
            max_span=15 * DAY,
            accept_exact_max_span=accept_exact,
        )

    if valid:
        check()
    else:
        with pytest.raises(ShopeeApiError) as raised:
            check()
        assert raised.value.error == "order.order_list_invalid_time"


@pytest.mark.parametrize(("size", "valid"), [(0, False), (1, True), (100, True), (101, False)])
def test_page_size_bounds(size: int, valid: bool) -> None:
    if valid:
        validate_page_size(size)
    else:
        with pytest.raises(ShopeeApiError, match="page_size"):
            validate_page_size(size)


entries_strategy = st.lists(
    st.tuples(st.integers(0, 20), st.text("ABCDEFGH", min_size=14, max_size=14)),
    unique_by=lambda pair: pair[1],
    max_size=120,
)


@given(
    raw=entries_strategy, page_size=st.integers(1, 100), style=st.sampled_from(["keyset", "offset"])
)
def test_paging_returns_every_entry_once_in_list_order(
    raw: list[tuple[int, str]], page_size: int, style: str
) -> None:
    entries = sort_for_list(ListEntry(time, order_sn, "READY_TO_SHIP") for time, order_sn in raw)
    seen: list[ListEntry] = []
    cursor = ""
    for _ in range(len(entries) + 2):
        page, cursor = page_orders(entries, cursor, page_size, style)
        assert len(page) <= page_size
        seen += page
        if not cursor:
            break
    assert seen == entries


def test_keyset_paging_survives_an_order_that_changes_between_pages() -> None:
    entries = sort_for_list(ListEntry(t, f"SN{t:02d}", "READY_TO_SHIP") for t in range(10))
    first, cursor = page_orders(entries, "", 4, "keyset")
    # The newest order of page one moves out of the window; no later order is skipped.
    changed = [e for e in entries if e != first[0]]
    rest, _ = page_orders(changed, cursor, 100, "keyset")
    assert first + rest == entries


@pytest.mark.parametrize(
    ("cursor", "style"), [("%%%", "keyset"), ("abc", "offset"), ("WzFd", "keyset")]
)
def test_garbage_cursors_are_error_param(cursor: str, style: str) -> None:
    with pytest.raises(ShopeeApiError) as raised:
        page_orders([ListEntry(1, "A", "UNPAID")], cursor, 10, style)
    assert raised.value.error == "error_param"


def test_retry_schedule() -> None:
    delays = (300.0, 1800.0, 10800.0)
    assert [retry_delay(n, delays) for n in range(1, 5)] == [300.0, 1800.0, 10800.0, None]


def test_error_rates_match_the_most_specific_key() -> None:
    rates = {"*": 0.1, "get_order_detail": 0.2, "order.cancel_order": 0.3}
    path = "/api/v2/order/get_order_detail"
    assert api_name(path) == "order.get_order_detail"
    assert error_rate_for(rates, path) == 0.2
    assert error_rate_for(rates, "/api/v2/order/cancel_order") == 0.3
    assert error_rate_for(rates, "/api/v2/product/update_stock") == 0.1
    assert error_rate_for({}, path) == 0.0


def test_pick_fault() -> None:
    kinds: tuple[FaultKind, ...] = ("error_server", "http_502")
    assert pick_fault(0.5, kinds, roll=0.5, choice=0.0) is None
    assert pick_fault(0.5, kinds, roll=0.49, choice=0.0) == "error_server"
    assert pick_fault(0.5, kinds, roll=0.49, choice=0.99) == "http_502"


def test_sliding_window_rate_limit() -> None:
    window: deque[float] = deque()
    assert [window_allows(window, 100.0 + i * 0.1, 3) for i in range(5)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert window_allows(window, 101.0, 3)  # the first request left the window


def test_http_statuses_follow_the_error_family() -> None:
    assert http_status_for("") == 200
    assert http_status_for("error_sign") == 403
    assert http_status_for("product.error_param") == 400
    assert http_status_for("error_rate_limit") == 429
    assert http_status_for("order.error_limit") == 400
