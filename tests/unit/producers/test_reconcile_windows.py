"""Which update_time window the poller lists next (pure)."""

from __future__ import annotations

import pytest

from producers.reconcile import Window, next_window

DAY = 86400


@pytest.mark.parametrize(
    ("watermark", "now", "expected", "current"),
    [
        # Current: from the watermark minus the overlap up to now minus the settle time.
        (10_000, 10_100, Window(9_700, 10_095), True),
        # Far behind: one window of max_span, and the shop is still catching up.
        (0, 40 * DAY, Window(0, 14 * DAY), False),
        (20 * DAY, 40 * DAY, Window(20 * DAY - 300, 34 * DAY - 300), False),
        # Nothing new since the watermark (within the settle time): nothing to list.
        (10_000, 10_004, None, True),
        (10_000, 10_005, None, True),
    ],
)
def test_next_window(watermark: int, now: int, expected: Window | None, current: bool) -> None:
    window, is_current = next_window(watermark, now, overlap=300, max_span=14 * DAY, settle=5)
    assert window == expected
    assert is_current is current


def test_windows_never_exceed_shopee_limit_and_always_overlap_the_watermark() -> None:
    watermark, now = 0, 100 * DAY
    while True:
        window, current = next_window(watermark, now, overlap=600, max_span=15 * DAY, settle=5)
        if window is None:
            break
        assert window.end - window.start <= 15 * DAY
        assert window.start <= max(0, watermark - 600)
        watermark = window.end
        if current:
            break
    assert watermark == now - 5
