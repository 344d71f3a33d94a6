"""Splitting a time range into get_order_list windows.

Shopee refuses ``time_to - time_from`` over 15 days ("order.order_list_invalid_time") and does
not say whether exactly 15 days passes, so the default stays a day under it.
"""

from __future__ import annotations

DAY_SECONDS = 86400
SHOPEE_MAX_WINDOW_SECONDS = 15 * DAY_SECONDS
DEFAULT_WINDOW_SECONDS = 14 * DAY_SECONDS


def split_windows(time_from: int, time_to: int, max_span: int) -> list[tuple[int, int]]:
    """Consecutive ``(start, end)`` windows covering ``[time_from, time_to]``, each with
    ``end - start <= max_span``.

    Neighbours share their boundary second: Shopee does not document whether either end is
    inclusive, so the boundary is asked about twice and callers drop the duplicates.
    Shopee wants ``time_from < time_to``, so an empty or reversed range is a ``ValueError``.
    """
    if max_span <= 0:
        raise ValueError("max_span must be positive")
    if time_to <= time_from:
        raise ValueError(f"time_to ({time_to}) must be after time_from ({time_from})")
    windows = []
    start = time_from
    while True:
        end = min(start + max_span, time_to)
        windows.append((start, end))
        if end >= time_to:
            return windows
        start = end
