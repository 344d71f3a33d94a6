"""Shopee's rules as pure functions over plain values: lifecycle transitions, what a seller may
cancel, get_order_list's window and paging. No locks, no clocks, no I/O: callers pass ``now``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shopee.sandbox.errors import InvalidTransition, ShopeeApiError, param_error
from shopee.sandbox.model import (
    CANCELLED,
    COMPLETED,
    IN_CANCEL,
    PROCESSED,
    READY_TO_SHIP,
    RETRY_SHIP,
    SHIPPED,
    TO_CONFIRM_RECEIVE,
    TO_RETURN,
    UNPAID,
    Order,
)

# Which status may follow which. Assembled from the status definitions and the sandbox guide
# (reference §6); the official flow is only published as an image.
TRANSITIONS: dict[str, frozenset[str]] = {
    UNPAID: frozenset({READY_TO_SHIP, CANCELLED}),
    READY_TO_SHIP: frozenset({PROCESSED, IN_CANCEL, CANCELLED}),
    PROCESSED: frozenset({SHIPPED, RETRY_SHIP, IN_CANCEL, CANCELLED}),
    RETRY_SHIP: frozenset({PROCESSED, IN_CANCEL, CANCELLED}),
    SHIPPED: frozenset({TO_CONFIRM_RECEIVE, CANCELLED}),
    TO_CONFIRM_RECEIVE: frozenset({COMPLETED, TO_RETURN}),
    TO_RETURN: frozenset({COMPLETED, CANCELLED}),
    # A rejected cancellation request returns to the status it interrupted.
    IN_CANCEL: frozenset({CANCELLED, READY_TO_SHIP, PROCESSED, RETRY_SHIP}),
    COMPLETED: frozenset(),
    CANCELLED: frozenset(),
}


def check_transition(current: str, target: str) -> None:
    """Raise :class:`InvalidTransition` unless an order in ``current`` may move to ``target``."""
    if target not in TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(f"an order in {current} cannot become {target}")


def logistics_status_for(status: str, *, has_tracking: bool, paid: bool) -> str:
    """The package's LogisticsStatus that goes with an order status (reference §6)."""
    if status == UNPAID:
        return "LOGISTICS_NOT_START"
    if status == READY_TO_SHIP:
        return "LOGISTICS_READY"
    if status == PROCESSED:
        return "LOGISTICS_REQUEST_CREATED"
    if status == RETRY_SHIP:
        return "LOGISTICS_PICKUP_RETRY"
    if status == SHIPPED:
        return "LOGISTICS_PICKUP_DONE"
    if status in (TO_CONFIRM_RECEIVE, COMPLETED, TO_RETURN):
        return "LOGISTICS_DELIVERY_DONE"
    if status == CANCELLED:
        if has_tracking:
            return "LOGISTICS_REQUEST_CANCELED"
        # "LOGISTICS_INVALID: order cancelled when order at LOGISTICS_READY".
        return "LOGISTICS_INVALID" if paid else "LOGISTICS_NOT_START"
    raise ValueError(f"no logistics status for order status {status}")


# cancel_order's reasons and the human wording get_order_detail's cancel_reason shows for them.
SELLER_CANCEL_REASONS: dict[str, str] = {
    "OUT_OF_STOCK": "Out of Stock",
    "CUSTOMER_REQUEST": "Buyer Request to Cancel",
    "UNDELIVERABLE_AREA": "Undeliverable Area",
    "COD_NOT_SUPPORTED": "COD Unsupported",
}


def cannot_cancel() -> ShopeeApiError:
    return ShopeeApiError("order.error_limit", "Can not cancel this order.")


def validate_seller_cancel(
    order: Order,
    cancel_reason: str,
    item_list: Sequence[tuple[int, int]] | None,
    *,
    seller_cancel_unpaid: bool,
    undeliverable_area_regions: Iterable[str],
) -> None:
    """Raise the error cancel_order answers with, or return if the seller may cancel.

    A seller may cancel before a tracking number exists: READY_TO_SHIP, and UNPAID only when
    ``seller_cancel_unpaid``. Everything later, already cancelled, or waiting for the seller's
    answer to a buyer request (IN_CANCEL) is ``order.error_limit``. OUT_OF_STOCK must name,
    in ``item_list``, (item_id, model_id) pairs that are lines of the order.
    """
    if cancel_reason not in SELLER_CANCEL_REASONS:
        raise param_error(f"cancel_reason should be one of {', '.join(SELLER_CANCEL_REASONS)}.")
    if cancel_reason == "UNDELIVERABLE_AREA" and order.region not in set(
        undeliverable_area_regions
    ):
        raise param_error("cancel_reason UNDELIVERABLE_AREA is only available for TW and MY.")
    if cancel_reason == "OUT_OF_STOCK":
        if not item_list:
            raise param_error("item_list is required when cancel_reason is OUT_OF_STOCK.")
        lines = {(line.item_id, line.model_id) for line in order.lines}
        for item_id, model_id in item_list:
            if (item_id, model_id) not in lines:
                raise param_error(f"item_id {item_id} model_id {model_id} is not in this order.")
    cancellable = {READY_TO_SHIP} | ({UNPAID} if seller_cancel_unpaid else set())
    if order.status not in cancellable or order.has_tracking_number:
        raise cannot_cancel()


def buyer_cancel_goes_straight_through(order: Order, now: float, free_window: int) -> bool:
    """Whether a buyer's cancellation needs no seller approval.

    An unpaid order, or a paid one within ``free_window`` seconds of payment that has no
    tracking number yet, is cancelled at once; otherwise the request becomes IN_CANCEL.
    """
    if order.status == UNPAID:
        return True
    if order.status != READY_TO_SHIP or order.pay_time is None:
        return False
    return now - order.pay_time < free_window


# ---------------------------------------------------------------------------------------------
# get_order_list

TIME_RANGE_FIELDS = frozenset({"create_time", "update_time"})
# The single-status filter cannot express RETRY_SHIP, TO_CONFIRM_RECEIVE or TO_RETURN.
LIST_STATUS_FILTERS = frozenset(
    {UNPAID, READY_TO_SHIP, PROCESSED, SHIPPED, COMPLETED, IN_CANCEL, CANCELLED, "INVOICE_PENDING"}
)


def invalid_list_time() -> ShopeeApiError:
    return ShopeeApiError(
        "order.order_list_invalid_time",
        "Start time must be earlier than end time and diff in 15days.",
    )


def validate_list_window(
    time_from: int, time_to: int, *, max_span: int, accept_exact_max_span: bool
) -> None:
    """Raise ``order.order_list_invalid_time`` unless ``time_from < time_to`` and the span is
    within ``max_span`` seconds (exactly ``max_span`` only when ``accept_exact_max_span``)."""
    span = time_to - time_from
    if span <= 0 or span > max_span or (span == max_span and not accept_exact_max_span):
        raise invalid_list_time()


def validate_page_size(page_size: int) -> None:
    if not 1 <= page_size <= 100:
        raise param_error("page_size should be between 1 and 100.")


@dataclass(frozen=True)
class ListEntry:
    """One order as get_order_list sorts it: newest ``time`` first, then order_sn descending."""

    time: int
    order_sn: str
    status: str

    @property
    def key(self) -> tuple[int, str]:
        return (self.time, self.order_sn)


def sort_for_list(entries: Iterable[ListEntry]) -> list[ListEntry]:
    return sorted(entries, key=lambda entry: entry.key, reverse=True)


def _is_empty_cursor(cursor: str) -> bool:
    # The official curl sample sends cursor="" literally, i.e. two quote characters.
    return cursor in ("", '""')


def encode_keyset_cursor(entry: ListEntry) -> str:
    raw = json.dumps([entry.time, entry.order_sn], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_keyset_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        time_value, order_sn = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise param_error("cursor is invalid.") from exc
    if not isinstance(time_value, int) or not isinstance(order_sn, str):
        raise param_error("cursor is invalid.")
    return (time_value, order_sn)


def page_orders(
    entries: Sequence[ListEntry], cursor: str, page_size: int, style: str
) -> tuple[list[ListEntry], str]:
    """One page of ``entries`` (already sorted by :func:`sort_for_list`) after ``cursor``.

    Returns the page and the next cursor, ``""`` when nothing follows. With ``"keyset"`` the
    cursor names the last entry returned, so every entry of an unchanging list is returned
    exactly once; with ``"offset"`` it is a position in the list as it is at each call.
    """
    if style == "offset":
        if _is_empty_cursor(cursor):
            start = 0
        else:
            if not cursor.isdigit():
                raise param_error("cursor is invalid.")
            start = int(cursor)
        page = list(entries[start : start + page_size])
        more = start + page_size < len(entries)
        return page, (str(start + page_size) if more else "")
    if _is_empty_cursor(cursor):
        remaining = list(entries)
    else:
        after = _decode_keyset_cursor(cursor)
        remaining = [entry for entry in entries if entry.key < after]
    page = remaining[:page_size]
    more = len(remaining) > page_size
    return page, (encode_keyset_cursor(page[-1]) if more else "")


def split_csv(raw: str) -> list[str]:
    """Comma-joined query values, blanks dropped."""
    return [part.strip() for part in raw.split(",") if part.strip()]
