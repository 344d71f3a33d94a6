"""Reconciliation by ``update_time``: which window to list next, and listing one window.

Shared by the poller (a moving watermark per shop) and ``orderflow backfill`` (a fixed
historic range in chunks). Both list without a status filter: the filter cannot express
RETRY_SHIP, TO_CONFIRM_RECEIVE or TO_RETURN, and one unfiltered pass is fewer calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from shopee.client import ORDER_LIST_PATH, ShopeeClient
from shopee.errors import MalformedResponse
from shopee.models import OrderListEntry, TimeRangeField
from shopee.transport import api_name


@dataclass(frozen=True)
class Window:
    start: int
    end: int


def next_window(
    watermark: int, now: int, *, overlap: int, max_span: int, settle: int
) -> tuple[Window | None, bool]:
    """The next window to reconcile for a shop whose watermark is ``watermark``, and whether
    the shop is current once that window is done (False: it is catching up).

    A window starts ``overlap`` seconds before the watermark, so an order Shopee indexed late
    under an older ``update_time`` is still listed, and ends at most ``max_span`` later and
    never within ``settle`` seconds of ``now``. None when there is nothing to list yet.
    """
    start = max(0, watermark - overlap)
    limit = now - settle
    end = min(limit, start + max_span)
    if end <= start or end <= watermark:
        return None, True
    return Window(start, end), end >= limit


@dataclass(frozen=True)
class Listing:
    entries: list[OrderListEntry]
    calls: int


def list_window(client: ShopeeClient, shop_id: int, window: Window) -> Listing:
    """Every order whose ``update_time`` lies in ``window``, each once (the last status seen
    wins), paging with the cursor until ``more`` is false."""
    by_sn: dict[str, OrderListEntry] = {}
    cursor = ""
    calls = 0
    while True:
        page = client.get_order_list(
            shop_id,
            time_from=window.start,
            time_to=window.end,
            time_range_field=TimeRangeField.UPDATE_TIME,
            cursor=cursor,
        )
        calls += 1
        for entry in page.order_list:
            by_sn[entry.order_sn] = entry
        if not page.more:
            return Listing(list(by_sn.values()), calls)
        if not page.next_cursor or page.next_cursor == cursor:
            # Following the same cursor again would loop for ever; stopping would miss orders.
            raise MalformedResponse(
                f"more=true but next_cursor is {page.next_cursor!r}", api=api_name(ORDER_LIST_PATH)
            )
        cursor = page.next_cursor
