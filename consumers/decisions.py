"""The consumers' business decisions, as pure functions over plain values.

* ``cancel_decision``: an order stock could not cover -> cancel it as OUT_OF_STOCK (naming
  exactly the short lines), record a dry run, or keep it for a person and say why;
* ``buyer_cancellation_answer``: a buyer's cancellation request (``IN_CANCEL``) -> ACCEPT,
  REJECT or leave it for a person, per the configured policy;
* ``budget_day_start``: where the auto-cancel budget's day begins.

Nothing here reads the clock, the database or Shopee; the consumers pass in what they know.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from consumers.erp.ledger import Shortage
from schemas.models import OrderEvent

IN_CANCEL = "IN_CANCEL"
# Paid and not yet handed to the carrier: what cancel_order accepts for OUT_OF_STOCK.
DEFAULT_CANCELLABLE = ("READY_TO_SHIP", "PROCESSED")
# Shopee's daily limits reset at 00:00 UTC+08:00 (reference §12); the budget follows them.
_BUDGET_DAY_OFFSET = 8 * 3600
_DAY = 86400


@dataclass(frozen=True)
class Cancel:
    """Cancel as OUT_OF_STOCK, naming these ``(item_id, model_id)`` lines."""

    lines: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class DryRun:
    """Would cancel these lines; dry-run mode records the decision and makes no call."""

    lines: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Keep:
    """Do not cancel; ``reason`` says why (for the action record and the metrics label)."""

    reason: str
    detail: str


Decision = Cancel | DryRun | Keep


def has_tracking_number(event: OrderEvent) -> bool:
    """Whether a package of the order has a tracking number: then goods are on their way
    (or about to be) and Shopee refuses a seller cancellation."""
    return any(package.tracking_number for package in event.packages)


def cancel_decision(
    *,
    status: str,
    tracking_number: bool,
    short: Sequence[Shortage],
    cancellable: Collection[str] = DEFAULT_CANCELLABLE,
    dry_run: bool = False,
) -> Decision | None:
    """What to do about an order whose lines stock could not cover; None when none was short.

    Only statuses in ``cancellable`` (default: paid and not yet shipped) are cancelled, and
    never once a tracking number exists. The short lines are named once each, sorted.
    """
    if not short:
        return None
    if status not in cancellable:
        return Keep("not_cancellable", f"status {status} is not one auto-cancel may cancel")
    if tracking_number:
        return Keep("not_cancellable", "a tracking number exists: the parcel may be on its way")
    lines = tuple(sorted({(s.item_id, s.model_id) for s in short}))
    return DryRun(lines) if dry_run else Cancel(lines)


class BuyerCancellationPolicy(StrEnum):
    # Accept while nothing has shipped (no tracking number); else leave it to a person.
    ACCEPT_UNSHIPPED = "accept-unshipped"
    ACCEPT = "accept"
    REJECT = "reject"
    # Never answer: a person handles every request in Seller Centre.
    MANUAL = "manual"


def buyer_cancellation_answer(
    *, status: str, tracking_number: bool, policy: BuyerCancellationPolicy
) -> str | None:
    """``ACCEPT`` or ``REJECT`` for an order in ``IN_CANCEL``; None: not a request, or one
    the policy leaves for a person."""
    if status != IN_CANCEL or policy is BuyerCancellationPolicy.MANUAL:
        return None
    if policy is BuyerCancellationPolicy.ACCEPT:
        return "ACCEPT"
    if policy is BuyerCancellationPolicy.REJECT:
        return "REJECT"
    return None if tracking_number else "ACCEPT"


def budget_day_start(now: float) -> int:
    """The start (epoch seconds) of the budget day that ``now`` falls in: days run from
    00:00 to 00:00 UTC+08:00, as Shopee's own daily limits do."""
    return int((now + _BUDGET_DAY_OFFSET) // _DAY * _DAY - _BUDGET_DAY_OFFSET)
