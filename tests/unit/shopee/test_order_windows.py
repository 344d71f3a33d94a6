"""Splitting any time range into get_order_list windows."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopee.windows import DEFAULT_WINDOW_SECONDS, SHOPEE_MAX_WINDOW_SECONDS, split_windows


def test_short_range_is_one_window() -> None:
    assert split_windows(100, 200, 1000) == [(100, 200)]


def test_long_range_splits_at_the_maximum_span() -> None:
    assert split_windows(0, 25, 10) == [(0, 10), (10, 20), (20, 25)]


def test_exact_multiple_has_no_empty_tail() -> None:
    assert split_windows(0, 20, 10) == [(0, 10), (10, 20)]


def test_default_window_is_under_shopee_limit() -> None:
    assert DEFAULT_WINDOW_SECONDS < SHOPEE_MAX_WINDOW_SECONDS


@pytest.mark.parametrize(("start", "end"), [(5, 5), (6, 5)])
def test_empty_or_reversed_ranges_are_refused(start: int, end: int) -> None:
    with pytest.raises(ValueError):
        split_windows(start, end, 10)


@given(
    start=st.integers(0, 2**32),
    length=st.integers(1, 400 * 86400),
    span=st.integers(3600, SHOPEE_MAX_WINDOW_SECONDS),
)
def test_windows_cover_the_range_contiguously(start: int, length: int, span: int) -> None:
    windows = split_windows(start, start + length, span)
    assert windows[0][0] == start
    assert windows[-1][1] == start + length
    for (a_start, a_end), (b_start, _) in itertools.pairwise(windows):
        assert a_end == b_start
        assert a_end - a_start == span  # only the last window may be shorter
    assert all(0 < end - begin <= span for begin, end in windows)
