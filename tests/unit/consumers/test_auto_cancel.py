"""Auto-cancel against a real SQLite ERP store, outbox and action record, and a scripted
Shopee: at most one cancel call per order ever, final answers taken as final, unknown
outcomes read back, guardrails (dry run, daily budget, cancellable statuses) and buyer
cancellation requests answered once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from consumers.actions import ActionOutcome
from consumers.auto_cancel import AutoCancel, AutoCancelConfig
from consumers.decisions import BuyerCancellationPolicy
from consumers.erp.outbox import ActionRecord, Outbox, OutboxCall
from consumers.erp.store import ErpStore
from orderflow.failures import Transient, kind_of
from orderflow.metrics import Metrics
from schemas.models import OrderAction, OrderEvent
from shopee import client as api
from shopee.errors import (
    RateLimited,
    ReauthorizationRequired,
    RetryableError,
    ShopAccessLost,
)
from tests.unit.consumers.twins import (
    SHOP,
    T0,
    LineSpec,
    handle_one,
    migrated_engine,
    order_event,
)
from tests.unit.shopee.fake_shopee import Call, Harness, Reply, error, make_harness, ok

DAY = 86400
CANCEL = api.CANCEL_ORDER_PATH
DETAIL = api.ORDER_DETAIL_PATH
BUYER = api.HANDLE_BUYER_CANCELLATION_PATH


def cancelled_ok(call: Call) -> Reply:
    return ok({"update_time": T0 + 100})


def detail_as(status: str) -> Callable[[Call], Reply]:
    """get_order_detail answering that every order asked for is in ``status``."""

    def reply(call: Call) -> Reply:
        sns = call.query["order_sn_list"].split(",")
        return ok(
            {
                "order_list": [
                    {"order_sn": sn, "order_status": status, "create_time": T0, "update_time": T0}
                    for sn in sns
                ]
            }
        )

    return reply


def in_turn(*replies: Callable[[Call], Reply]) -> Callable[[Call], Reply]:
    """One reply per call, in order; the last one answers every later call."""
    left = list(replies)

    def reply(call: Call) -> Reply:
        return (left.pop(0) if len(left) > 1 else left[0])(call)

    return reply


def timed_out(call: Call) -> Reply:
    raise httpx.ReadTimeout("the answer never came")


@dataclass
class Rig:
    handler: AutoCancel
    harness: Harness
    store: ErpStore
    outbox: Outbox
    actions: ActionRecord
    metrics: Metrics
    events: list[OrderEvent] = field(default_factory=list)

    def handle(self, event: OrderEvent) -> str:
        outcome = handle_one(self.handler, event)
        return outcome

    def reply(self, path: str, handler: Callable[[Call], Reply]) -> None:
        self.harness.shopee.handlers[path] = handler

    def calls(self, path: str) -> list[Call]:
        return self.harness.shopee.calls_to(path)

    def shopee_order_calls(self) -> list[Call]:
        return [c for c in self.harness.shopee.calls if c.path.startswith("/api/v2/order/")]

    def cancel(self, order_sn: str) -> OutboxCall | None:
        return self.outbox.get(SHOP, order_sn, "cancel_order")

    def stock(self) -> dict[tuple[int, int], tuple[int, int]]:
        return {(s.item_id, s.model_id): (s.on_hand, s.reserved) for s in self.store.stock()}

    def recorded(self) -> list[tuple[str, str, str]]:
        """Every action recorded: (order_sn, kind, outcome)."""
        return [(a.order_sn, a.kind, a.outcome) for a in self.actions.all()]

    def action(self, order_sn: str, kind: str) -> OrderAction:
        (found,) = [a for a in self.actions.all() if (a.order_sn, a.kind) == (order_sn, kind)]
        return found


MakeRig = Callable[..., Rig]


@pytest.fixture
def make_rig(tmp_path: Path, metrics: Metrics, clean_env: pytest.MonkeyPatch) -> Iterator[MakeRig]:
    """Auto-cancel for shop SHOP (authorised unless told otherwise) with stock on hand:
    10 of (1001, 1), 1 of (1002, 1), none of anything else."""
    harnesses: list[Harness] = []

    def make(config: AutoCancelConfig | None = None, *, authorized: bool = True) -> Rig:
        # No client-side retries: each scripted reply is one answer to one call.
        harness = make_harness(tmp_path, metrics, max_retries=0)
        harnesses.append(harness)
        if authorized:
            harness.client.tokens.authorize("code", SHOP)
        engine = migrated_engine(tmp_path, "erp.db")
        store = ErpStore(engine)
        now = int(harness.clock())
        store.set_stock(1001, 1, 10, now)
        store.set_stock(1002, 1, 1, now)
        outbox, actions = Outbox(engine), ActionRecord(engine)
        handler = AutoCancel(
            store=store,
            outbox=outbox,
            actions=actions,
            client=harness.client,
            metrics=metrics,
            config=config or AutoCancelConfig(),
            clock=harness.clock,
        )
        return Rig(handler, harness, store, outbox, actions, metrics)

    yield make
    for harness in harnesses:
        harness.client.close()


COVERED: tuple[LineSpec, ...] = ((1001, 1, 2),)
# (1002, 1) has 1 on hand, (2002, 7) none; (1001, 1) could be covered.
SHORT: tuple[LineSpec, ...] = ((1001, 1, 2), (1002, 1, 2), (2002, 7, 1))
SHORT_ITEM_LIST = [{"item_id": 1002, "model_id": 1}, {"item_id": 2002, "model_id": 7}]
STOCK_BEFORE = {(1001, 1): (10, 0), (1002, 1): (1, 0)}


def short_order(order_sn: str = "S1", status: str = "READY_TO_SHIP", **kw: object) -> OrderEvent:
    return order_event(order_sn, status, lines=SHORT, **kw)  # type: ignore[arg-type]


# -- covered and short orders -----------------------------------------------------------------


def test_a_covered_order_reserves_and_calls_nobody(make_rig: MakeRig) -> None:
    r = make_rig()
    assert r.handle(order_event("A", lines=COVERED)) == "applied"
    assert r.stock()[(1001, 1)] == (10, 2)
    assert r.shopee_order_calls() == []
    assert r.recorded() == [("A", "stock_reserve", "applied")]
    assert r.handle(order_event("A", lines=COVERED)) == "unchanged"
    assert r.stock()[(1001, 1)] == (10, 2)


def test_a_short_paid_order_is_cancelled_once_naming_exactly_the_short_lines(
    make_rig: MakeRig,
) -> None:
    r = make_rig()
    r.reply(CANCEL, cancelled_ok)
    event = short_order("S1")
    assert r.handle(event) == "applied"
    (call,) = r.calls(CANCEL)
    assert call.method == "POST"
    assert call.body == {
        "order_sn": "S1",
        "cancel_reason": "OUT_OF_STOCK",
        "item_list": SHORT_ITEM_LIST,
    }
    # All or nothing: the line stock could cover took nothing either.
    assert r.stock() == {**STOCK_BEFORE, (2002, 7): (0, 0)}
    cancel = r.cancel("S1")
    assert cancel is not None and (cancel.state, cancel.attempts) == ("succeeded", 1)
    assert r.recorded() == [("S1", "cancel_order", "applied")]
    action = r.action("S1", "cancel_order")
    assert [(line.item_id, line.model_id, line.quantity) for line in action.lines] == [
        (1002, 1, 2),
        (2002, 7, 1),
    ]
    assert action.details["cancel_reason"] == "OUT_OF_STOCK"
    assert action.event_id == event.event_id

    # Redelivered, and later stock coming back, change nothing and call nobody.
    assert r.handle(event) == "unchanged"
    r.store.set_stock(1002, 1, 50, int(r.harness.clock()))
    r.store.set_stock(2002, 7, 50, int(r.harness.clock()))
    assert r.handle(event) == "unchanged"
    assert len(r.calls(CANCEL)) == 1
    assert r.stock()[(1002, 1)] == (50, 0)
    # Shopee's CANCELLED event: nothing was taken, so nothing comes back, and no call.
    r.handle(short_order("S1", "CANCELLED", update_time=T0 + 100))
    assert r.stock() == {(1001, 1): (10, 0), (1002, 1): (50, 0), (2002, 7): (50, 0)}
    assert len(r.calls(CANCEL)) == 1
    assert r.recorded() == [("S1", "cancel_order", "applied")]


@pytest.mark.parametrize(
    "refusal",
    [
        error("order.error_limit", "Can not cancel this order."),
        error("error_param", "Can not cancel this order, tracking number exists"),
        error("order.cancel_order_invalid_status", "order status is invalid"),
    ],
    ids=["error_limit", "message", "invalid status"],
)
def test_a_refusal_to_cancel_is_final(make_rig: MakeRig, refusal: Reply) -> None:
    r = make_rig()
    r.reply(CANCEL, lambda call: refusal)
    event = short_order()
    assert r.handle(event) == "applied"
    cancel = r.cancel("S1")
    assert cancel is not None and cancel.state == "failed"
    assert r.recorded() == [("S1", "cancel_order", "rejected")]
    assert r.action("S1", "cancel_order").error
    r.reply(CANCEL, cancelled_ok)
    assert r.handle(event) == "unchanged"
    assert len(r.calls(CANCEL)) == 1
    assert r.recorded() == [("S1", "cancel_order", "rejected")]


UNKNOWN_OUTCOMES = [
    ("bad gateway", lambda call: (502, b"<html>502 Bad Gateway</html>")),
    ("timeout", timed_out),
    (
        "success without response",
        lambda call: (200, {"error": "", "message": "", "request_id": "r"}),
    ),
]


@pytest.mark.parametrize(
    "answer", [a for _, a in UNKNOWN_OUTCOMES], ids=[n for n, _ in UNKNOWN_OUTCOMES]
)
@pytest.mark.parametrize(
    ("read_back", "state", "outcome"),
    [("CANCELLED", "succeeded", "applied"), ("READY_TO_SHIP", "failed", "failed")],
    ids=["it was cancelled", "it was not"],
)
def test_an_unknown_outcome_is_read_back_never_sent_again(
    make_rig: MakeRig,
    answer: Callable[[Call], Reply],
    read_back: str,
    state: str,
    outcome: ActionOutcome,
) -> None:
    r = make_rig()
    r.reply(CANCEL, answer)
    r.reply(DETAIL, detail_as(read_back))
    event = short_order()
    assert r.handle(event) == "applied"
    assert len(r.calls(CANCEL)) == 1
    (detail,) = r.calls(DETAIL)
    assert detail.query["order_sn_list"] == "S1"
    cancel = r.cancel("S1")
    assert cancel is not None and cancel.state == state
    assert r.recorded() == [("S1", "cancel_order", outcome)]
    assert r.action("S1", "cancel_order").details["read_back_status"] == read_back
    r.reply(CANCEL, cancelled_ok)
    assert r.handle(event) == "unchanged"
    assert len(r.calls(CANCEL)) == 1
    assert len(r.calls(DETAIL)) == 1


def test_a_read_back_that_fails_is_tried_again_not_the_cancel(make_rig: MakeRig) -> None:
    r = make_rig()
    r.reply(CANCEL, timed_out)
    r.reply(DETAIL, in_turn(lambda call: (503, b"busy"), detail_as("CANCELLED")))
    event = short_order()
    with pytest.raises(RetryableError) as raised:
        r.handle(event)
    assert kind_of(raised.value) == "transient"
    cancel = r.cancel("S1")
    assert cancel is not None and cancel.state == "unknown"
    assert r.recorded() == []
    assert r.handle(event) == "applied"
    cancel = r.cancel("S1")
    assert cancel is not None and cancel.state == "succeeded"
    assert (len(r.calls(CANCEL)), len(r.calls(DETAIL))) == (1, 2)
    assert r.recorded() == [("S1", "cancel_order", "applied")]


def test_a_call_marked_sent_by_another_process_is_left_to_it_then_read_back(
    make_rig: MakeRig,
) -> None:
    r = make_rig()
    r.reply(CANCEL, cancelled_ok)
    r.reply(DETAIL, detail_as("CANCELLED"))
    # Another replica claimed and sent the cancel, and has not heard back (or died).
    now = int(r.harness.clock())
    payload = '{"cancel_reason": "OUT_OF_STOCK", "item_list": [{"item_id": 1002, "model_id": 1}]}'
    assert r.outbox.claim(SHOP, "S1", "cancel_order", payload, now)
    assert r.outbox.move(SHOP, "S1", "cancel_order", "sent", now)
    with pytest.raises(Transient) as raised:
        r.handle(short_order())
    assert kind_of(raised.value) == "transient"
    assert r.shopee_order_calls() == []
    r.harness.clock.advance(30)
    assert r.handle(short_order()) == "applied"
    assert r.calls(CANCEL) == []
    assert len(r.calls(DETAIL)) == 1
    cancel = r.cancel("S1")
    assert cancel is not None and cancel.state == "succeeded"


def test_a_rate_limited_cancel_is_retried_on_the_next_delivery(make_rig: MakeRig) -> None:
    r = make_rig()
    r.reply(
        CANCEL, in_turn(lambda call: error("error_rate_limit", "too many requests"), cancelled_ok)
    )
    event = short_order()
    with pytest.raises(RateLimited) as raised:
        r.handle(event)
    assert kind_of(raised.value) == "transient"
    cancel = r.cancel("S1")
    assert cancel is not None and cancel.state == "pending"
    assert r.recorded() == []
    assert r.handle(event) == "applied"
    cancel = r.cancel("S1")
    assert cancel is not None and (cancel.state, cancel.attempts) == ("succeeded", 2)
    assert len(r.calls(CANCEL)) == 2
    assert r.recorded() == [("S1", "cancel_order", "applied")]


@pytest.mark.parametrize(
    ("authorized", "refusal"),
    [(True, ShopAccessLost), (False, ReauthorizationRequired)],
    ids=["access lost", "never authorised"],
)
def test_a_shop_that_cannot_be_served_is_blocked_and_its_cancel_kept(
    make_rig: MakeRig, authorized: bool, refusal: type[Exception]
) -> None:
    r = make_rig(authorized=authorized)
    r.reply(CANCEL, lambda call: error("shop_access_expired", "the shop's access expired"))
    event = short_order()
    with pytest.raises(refusal) as raised:
        r.handle(event)
    assert kind_of(raised.value) == "blocked"
    assert len(r.calls(CANCEL)) == (1 if authorized else 0)
    cancel = r.cancel("S1")
    assert cancel is not None and cancel.state == "pending"
    assert r.recorded() == []
    # The seller authorises (again); the parked record is delivered again.
    r.harness.client.tokens.authorize("code-2", SHOP)
    r.reply(CANCEL, cancelled_ok)
    assert r.handle(event) == "applied"
    cancel = r.cancel("S1")
    assert cancel is not None and cancel.state == "succeeded"
    assert r.recorded() == [("S1", "cancel_order", "applied")]


# -- guardrails -------------------------------------------------------------------------------


def test_dry_run_records_the_decision_and_calls_nobody(make_rig: MakeRig) -> None:
    r = make_rig(AutoCancelConfig(dry_run=True))
    event = short_order()
    assert r.handle(event) == "applied"
    assert r.shopee_order_calls() == []
    assert r.cancel("S1") is None
    assert r.recorded() == [("S1", "cancel_order", "dry_run")]
    assert r.handle(event) == "unchanged"
    assert r.recorded() == [("S1", "cancel_order", "dry_run")]


def test_the_daily_budget_caps_cancels_per_shop(make_rig: MakeRig, metrics: Metrics) -> None:
    r = make_rig(AutoCancelConfig(daily_budget=1))
    r.reply(CANCEL, cancelled_ok)
    first, second = short_order("S1"), short_order("S2")
    r.handle(first)
    assert r.handle(second) == "applied"
    assert [c.body["order_sn"] for c in r.calls(CANCEL) if c.body] == ["S1"]
    assert r.cancel("S2") is None
    assert r.recorded() == [("S1", "cancel_order", "applied"), ("S2", "cancel_order", "skipped")]
    skipped = r.action("S2", "cancel_order")
    assert skipped.details["decision"] == "over_budget"
    assert [(line.item_id, line.model_id) for line in skipped.lines] == [(1002, 1), (2002, 7)]
    remaining = metrics.registry.get_sample_value(
        "orderflow_auto_cancel_budget_remaining", {"shop_id": str(SHOP)}
    )
    assert remaining == 0
    assert r.handle(second) == "unchanged"
    assert len(r.calls(CANCEL)) == 1
    # Another shop has its own budget.
    r.harness.client.tokens.authorize("code", 2)
    r.handle(short_order("O1", shop_id=2))
    assert len(r.calls(CANCEL)) == 2
    # A new budget day (00:00 UTC+08:00): the order still short is cancelled.
    r.harness.clock.advance(DAY)
    assert r.handle(second) == "applied"
    assert [c.body["order_sn"] for c in r.calls(CANCEL) if c.body] == ["S1", "O1", "S2"]


def test_the_budget_left_is_shown_afresh_when_a_new_budget_day_begins(
    make_rig: MakeRig, metrics: Metrics
) -> None:
    r = make_rig(AutoCancelConfig(daily_budget=3))
    r.reply(CANCEL, cancelled_ok)
    r.handle(short_order("S1"))

    def remaining() -> float | None:
        return metrics.registry.get_sample_value(
            "orderflow_auto_cancel_budget_remaining", {"shop_id": str(SHOP)}
        )

    assert remaining() == 2
    r.harness.clock.advance(DAY)
    r.handle(order_event("C1", lines=COVERED))  # any record, no decision about this shop
    assert remaining() == 3


def test_an_unpaid_order_is_kept_until_it_is_paid(make_rig: MakeRig) -> None:
    r = make_rig()
    r.reply(CANCEL, cancelled_ok)
    assert r.handle(short_order("S1", "UNPAID")) == "applied"
    assert r.calls(CANCEL) == []
    assert r.recorded() == [("S1", "cancel_order", "skipped")]
    assert r.action("S1", "cancel_order").details["decision"] == "not_cancellable"
    assert r.handle(short_order("S1", "UNPAID")) == "unchanged"
    assert r.handle(short_order("S1", "READY_TO_SHIP", update_time=T0 + 60)) == "applied"
    assert len(r.calls(CANCEL)) == 1
    assert r.recorded() == [
        ("S1", "cancel_order", "skipped"),
        ("S1", "cancel_order", "applied"),
    ]


@pytest.mark.parametrize(
    ("status", "tracking"),
    [("READY_TO_SHIP", "SPX123"), ("SHIPPED", None), ("RETRY_SHIP", None)],
    ids=["tracking number", "shipped", "retry ship"],
)
def test_orders_it_may_not_cancel_are_left_to_a_person(
    make_rig: MakeRig, status: str, tracking: str | None
) -> None:
    r = make_rig()
    r.reply(CANCEL, cancelled_ok)
    r.handle(short_order("S1", status, tracking_number=tracking))
    assert r.calls(CANCEL) == []
    assert r.cancel("S1") is None


# -- buyer cancellation requests --------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "tracking", "operation"),
    [
        (BuyerCancellationPolicy.ACCEPT_UNSHIPPED, None, "ACCEPT"),
        (BuyerCancellationPolicy.ACCEPT_UNSHIPPED, "SPX123", None),
        (BuyerCancellationPolicy.MANUAL, None, None),
        (BuyerCancellationPolicy.REJECT, None, "REJECT"),
        (BuyerCancellationPolicy.ACCEPT, "SPX123", "ACCEPT"),
    ],
    ids=["accept unshipped", "shipped: a person decides", "manual", "reject", "accept"],
)
def test_a_buyer_request_is_answered_once_per_policy(
    make_rig: MakeRig, policy: BuyerCancellationPolicy, tracking: str | None, operation: str | None
) -> None:
    r = make_rig(AutoCancelConfig(buyer_policy=policy))
    r.reply(BUYER, lambda call: ok({"update_time": T0 + 5}))
    request = order_event("B1", "IN_CANCEL", lines=COVERED, tracking_number=tracking)
    r.handle(request)
    r.handle(request)  # redelivered
    calls = r.calls(BUYER)
    if operation is None:
        assert calls == []
        assert [kind for _, kind, _ in r.recorded()] == ["stock_reserve"]
        return
    (call,) = calls
    assert call.body == {"order_sn": "B1", "operation": operation}
    answer = r.action("B1", "buyer_cancellation")
    assert answer.outcome == "applied"
    assert answer.details["operation"] == operation
    # A later request for the same order is a new request, answered once too.
    r.handle(order_event("B1", "IN_CANCEL", update_time=T0 + 600, lines=COVERED))
    r.handle(order_event("B1", "IN_CANCEL", update_time=T0 + 600, lines=COVERED))
    assert len(r.calls(BUYER)) == 2


def test_a_buyer_request_in_dry_run_is_recorded_not_answered(make_rig: MakeRig) -> None:
    r = make_rig(AutoCancelConfig(dry_run=True))
    request = order_event("B1", "IN_CANCEL", lines=COVERED)
    r.handle(request)
    r.handle(request)
    assert r.calls(BUYER) == []
    assert ("B1", "buyer_cancellation", "dry_run") in r.recorded()
    assert r.recorded().count(("B1", "buyer_cancellation", "dry_run")) == 1
