"""The consumers' pure decisions, one table per function."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.decisions import (
    BuyerCancellationPolicy,
    Cancel,
    Decision,
    DryRun,
    Keep,
    budget_day_start,
    buyer_cancellation_answer,
    cancel_decision,
    has_tracking_number,
)
from consumers.erp.ledger import Shortage
from schemas.models import Package
from tests.unit.consumers.twins import order_event

ONE_SHORT = (Shortage(1001, 1, requested=2, available=1),)
# Out of order and with a model named twice (two promotion groups of one model).
MESSY_SHORT = (
    Shortage(2002, 7, 1, 0),
    Shortage(1001, 5, 3, 1),
    Shortage(2002, 7, 2, 0),
    Shortage(1001, 2, 1, 0),
)
MESSY_LINES = ((1001, 2), (1001, 5), (2002, 7))


@dataclass(frozen=True)
class CancelRow:
    name: str
    status: str
    short: tuple[Shortage, ...]
    expected: Decision | None
    tracking: bool = False
    dry_run: bool = False
    cancellable: tuple[str, ...] | None = None  # None: the default allow-list
    detail_mentions: str = ""


NOT_CANCELLABLE = Keep("not_cancellable", "")
CANCEL_ROWS = [
    CancelRow("nothing short, nothing to decide", "READY_TO_SHIP", (), None),
    CancelRow("nothing short in dry run either", "READY_TO_SHIP", (), None, dry_run=True),
    CancelRow("nothing short, even with tracking", "SHIPPED", (), None, tracking=True),
    CancelRow("paid, not shipped", "READY_TO_SHIP", ONE_SHORT, Cancel(((1001, 1),))),
    CancelRow("processed, not shipped", "PROCESSED", ONE_SHORT, Cancel(((1001, 1),))),
    CancelRow("unpaid", "UNPAID", ONE_SHORT, NOT_CANCELLABLE, detail_mentions="UNPAID"),
    CancelRow("invoice pending", "INVOICE_PENDING", ONE_SHORT, NOT_CANCELLABLE),
    CancelRow("retry ship", "RETRY_SHIP", ONE_SHORT, NOT_CANCELLABLE, detail_mentions="RETRY"),
    CancelRow("buyer asked to cancel", "IN_CANCEL", ONE_SHORT, NOT_CANCELLABLE),
    CancelRow("shipped", "SHIPPED", ONE_SHORT, NOT_CANCELLABLE),
    CancelRow("completed", "COMPLETED", ONE_SHORT, NOT_CANCELLABLE),
    CancelRow("already cancelled", "CANCELLED", ONE_SHORT, NOT_CANCELLABLE),
    CancelRow("a status Shopee adds later", "NEW_STATUS", ONE_SHORT, NOT_CANCELLABLE),
    CancelRow(
        "tracking number issued",
        "READY_TO_SHIP",
        ONE_SHORT,
        NOT_CANCELLABLE,
        tracking=True,
        detail_mentions="tracking number",
    ),
    CancelRow("tracking number while processed", "PROCESSED", ONE_SHORT, NOT_CANCELLABLE, True),
    CancelRow("lines named once each, sorted", "READY_TO_SHIP", MESSY_SHORT, Cancel(MESSY_LINES)),
    CancelRow("dry run", "READY_TO_SHIP", MESSY_SHORT, DryRun(MESSY_LINES), dry_run=True),
    CancelRow(
        "dry run keeps what it may not cancel", "UNPAID", ONE_SHORT, NOT_CANCELLABLE, False, True
    ),
    CancelRow(
        "dry run keeps what has tracking", "READY_TO_SHIP", ONE_SHORT, NOT_CANCELLABLE, True, True
    ),
    CancelRow(
        "custom list allows retry ship",
        "RETRY_SHIP",
        ONE_SHORT,
        Cancel(((1001, 1),)),
        cancellable=("READY_TO_SHIP", "RETRY_SHIP"),
    ),
    CancelRow(
        "custom list leaves processed out",
        "PROCESSED",
        ONE_SHORT,
        NOT_CANCELLABLE,
        cancellable=("READY_TO_SHIP",),
    ),
    CancelRow(
        "an empty list cancels nothing", "READY_TO_SHIP", ONE_SHORT, NOT_CANCELLABLE, cancellable=()
    ),
    CancelRow(
        "a custom list still never cancels with tracking",
        "RETRY_SHIP",
        ONE_SHORT,
        NOT_CANCELLABLE,
        tracking=True,
        cancellable=("RETRY_SHIP",),
    ),
]


@pytest.mark.parametrize("row", CANCEL_ROWS, ids=[row.name for row in CANCEL_ROWS])
def test_cancel_decision(row: CancelRow) -> None:
    extra = {} if row.cancellable is None else {"cancellable": row.cancellable}
    decision = cancel_decision(
        status=row.status,
        tracking_number=row.tracking,
        short=row.short,
        dry_run=row.dry_run,
        **extra,
    )
    if isinstance(row.expected, Keep):
        assert isinstance(decision, Keep)
        assert decision.reason == row.expected.reason
        assert row.detail_mentions in decision.detail
        assert decision.detail  # the action record says why, always
    else:
        assert decision == row.expected


def test_a_cancel_never_names_a_line_that_was_not_short() -> None:
    decision = cancel_decision(status="READY_TO_SHIP", tracking_number=False, short=MESSY_SHORT)
    assert isinstance(decision, Cancel)
    assert set(decision.lines) == {(s.item_id, s.model_id) for s in MESSY_SHORT}


# -- buyer cancellation requests --------------------------------------------------------------

P = BuyerCancellationPolicy
# Every answer to a request (IN_CANCEL): policy x tracking number.
ANSWERS = [
    (P.ACCEPT_UNSHIPPED, False, "ACCEPT"),
    (P.ACCEPT_UNSHIPPED, True, None),  # goods may be on their way: a person decides
    (P.ACCEPT, False, "ACCEPT"),
    (P.ACCEPT, True, "ACCEPT"),
    (P.REJECT, False, "REJECT"),
    (P.REJECT, True, "REJECT"),
    (P.MANUAL, False, None),
    (P.MANUAL, True, None),
]


@pytest.mark.parametrize(("policy", "tracking", "expected"), ANSWERS)
def test_a_buyer_request_is_answered_per_policy(
    policy: BuyerCancellationPolicy, tracking: bool, expected: str | None
) -> None:
    assert (
        buyer_cancellation_answer(status="IN_CANCEL", tracking_number=tracking, policy=policy)
        == expected
    )


def test_the_answers_cover_every_policy() -> None:
    assert {(policy, tracking) for policy, tracking, _ in ANSWERS} == {
        (policy, tracking) for policy in BuyerCancellationPolicy for tracking in (False, True)
    }


NOT_A_REQUEST = [
    "UNPAID",
    "READY_TO_SHIP",
    "PROCESSED",
    "RETRY_SHIP",
    "SHIPPED",
    "TO_CONFIRM_RECEIVE",
    "COMPLETED",
    "CANCELLED",
    "in_cancel",  # statuses are compared exactly, as Shopee sends them
]


@pytest.mark.parametrize("status", NOT_A_REQUEST)
@pytest.mark.parametrize("policy", list(BuyerCancellationPolicy))
@pytest.mark.parametrize("tracking", [False, True])
def test_only_a_request_is_answered(
    status: str, policy: BuyerCancellationPolicy, tracking: bool
) -> None:
    assert buyer_cancellation_answer(status=status, tracking_number=tracking, policy=policy) is None


@pytest.mark.parametrize(
    ("setting", "policy"),
    [
        ("accept-unshipped", P.ACCEPT_UNSHIPPED),
        ("accept", P.ACCEPT),
        ("reject", P.REJECT),
        ("manual", P.MANUAL),
    ],
)
def test_policies_are_read_from_their_setting_values(
    setting: str, policy: BuyerCancellationPolicy
) -> None:
    assert BuyerCancellationPolicy(setting) is policy


# -- tracking numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("packages", "expected"),
    [
        ((), False),
        ((Package(package_number="P1"),), False),
        ((Package(package_number="P1", tracking_number=""),), False),
        ((Package(package_number="P1", tracking_number="TN1"),), True),
        ((Package(package_number="P1"), Package(package_number="P2", tracking_number="T")), True),
    ],
    ids=["no package", "no number", "empty number", "a number", "one of two has one"],
)
def test_has_tracking_number(packages: tuple[Package, ...], expected: bool) -> None:
    event = order_event("A").model_copy(update={"packages": packages})
    assert has_tracking_number(event) is expected


# -- the budget day ---------------------------------------------------------------------------

SGT = timezone(timedelta(hours=8))


def _utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("now", "day_start"),
    [
        # 00:00 UTC+08:00 is 16:00 UTC the day before.
        ("2024-05-01T15:59:59", "2024-04-30T16:00:00"),
        ("2024-05-01T15:59:59.999", "2024-04-30T16:00:00"),
        ("2024-05-01T16:00:00", "2024-05-01T16:00:00"),
        ("2024-05-01T16:00:00.001", "2024-05-01T16:00:00"),
        ("2024-05-02T00:00:00", "2024-05-01T16:00:00"),  # UTC midnight is no boundary
        ("2024-05-02T15:59:59", "2024-05-01T16:00:00"),
        ("1970-01-01T00:00:00", "1969-12-31T16:00:00"),
        ("2024-02-29T16:00:00", "2024-02-29T16:00:00"),
    ],
)
def test_budget_day_starts_at_midnight_utc_plus_eight(now: str, day_start: str) -> None:
    assert budget_day_start(_utc(now)) == int(_utc(day_start))


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_budget_day_holds_now_and_starts_at_local_midnight(now: float) -> None:
    start = budget_day_start(now)
    assert start <= now < start + 86400
    local = datetime.fromtimestamp(start, SGT)
    assert (local.hour, local.minute, local.second) == (0, 0, 0)
