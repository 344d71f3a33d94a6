"""The pass criteria of every chaos scenario, as pure functions over what a run left behind.

A run is read back into an :class:`Observation` of plain values (``chaos.world`` does the
reading); :func:`judge` turns it into a :class:`Verdict` with one number or flag per
criterion:

* no acknowledged push lost: every push the webhook answered 2xx has its notice (by
  ``msg_id``) on the notices topic, and its change reached the ERP (the ERP holds the order
  at that ``update_time`` or a later one);
* the ERP equals Shopee's truth (status, ``update_time`` and lines of every order);
* at most one ``cancel_order`` per order reached Shopee's handler (a request refused
  unprocessed, by an injected fault or the rate limit, may be sent again: Shopee did nothing);
* every model's ``on_hand`` and ``reserved`` equal what its ledger adds up to;
* nothing undelivered: every consumer group at the end of its topic, no open outbox call,
  no parked record, no push pending or unconfirmed in the lost store, no dead letter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

OrderKey = tuple[int, str]
Model = tuple[int, int]
Line = tuple[int, int, int]  # item_id, model_id, quantity


@dataclass(frozen=True)
class OrderState:
    """What must match between Shopee and the ERP: lines sorted."""

    status: str
    update_time: int
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class AckedPush:
    """A push the webhook answered 2xx. ``update_time`` is None for tracking-number pushes."""

    msg_id: str
    shop_id: int
    order_sn: str
    update_time: int | None


@dataclass(frozen=True)
class CancelCall:
    """One cancel_order request as the sandbox saw it."""

    order_sn: str
    handled: bool  # reached the handler: Shopee acted on it (applied or refused it)
    applied: bool  # the order was cancelled by it


@dataclass(frozen=True)
class Observation:
    """Everything the criteria need, read once the run has converged (or given up)."""

    truth: Mapping[OrderKey, OrderState]
    erp: Mapping[OrderKey, OrderState]
    stock: Mapping[Model, tuple[int, int]]  # on_hand, reserved
    ledger: Mapping[Model, tuple[int, int]]  # the same, as the ledger adds up
    cancel_calls: tuple[CancelCall, ...]
    acked_pushes: tuple[AckedPush, ...]
    notice_msg_ids: frozenset[str]
    # Per group (consumer, or "enricher"), records past its committed offsets.
    unread: Mapping[str, int]
    open_outbox_calls: int
    parked: Mapping[str, int]
    pending_pushes: int
    unconfirmed_lost_pushes: int
    dead_letters: Mapping[str, int]


@dataclass(frozen=True)
class Verdict:
    acked_pushes_lost: int
    max_cancels_per_order: int
    stock_equals_ledger: bool
    erp_equals_truth: bool
    undelivered: int
    # A few examples of each failure, for the report.
    examples: dict[str, list[str]] = field(default_factory=dict)
    undelivered_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return (
            self.acked_pushes_lost == 0
            and self.max_cancels_per_order <= 1
            and self.stock_equals_ledger
            and self.erp_equals_truth
            and self.undelivered == 0
        )


def lost_acked_pushes(
    acked: Iterable[AckedPush], notice_msg_ids: frozenset[str], erp: Mapping[OrderKey, OrderState]
) -> list[str]:
    """The acknowledged pushes (one line each) with no notice, or whose change the ERP
    does not hold. A push delivered twice is judged once."""
    lost: dict[str, str] = {}
    for push in acked:
        if push.msg_id in lost:
            continue
        stored = erp.get((push.shop_id, push.order_sn))
        if push.msg_id not in notice_msg_ids:
            lost[push.msg_id] = f"{push.order_sn} push {push.msg_id}: no notice"
        elif stored is None:
            lost[push.msg_id] = f"{push.order_sn} push {push.msg_id}: order not in the ERP"
        elif push.update_time is not None and stored.update_time < push.update_time:
            lost[push.msg_id] = (
                f"{push.order_sn} push {push.msg_id}: ERP at update_time {stored.update_time}, "
                f"the push at {push.update_time}"
            )
    return list(lost.values())


def erp_differences(
    truth: Mapping[OrderKey, OrderState], erp: Mapping[OrderKey, OrderState]
) -> list[str]:
    """One line per order whose ERP state is not Shopee's (missing either side included)."""
    return [
        f"{key[1]}: ERP {erp.get(key)}, Shopee {truth.get(key)}"
        for key in sorted(set(truth) | set(erp))
        if erp.get(key) != truth.get(key)
    ]


def cancels_per_order(calls: Iterable[CancelCall]) -> Counter[str]:
    """Per order, the cancel_order requests Shopee acted on."""
    return Counter(call.order_sn for call in calls if call.handled)


def stock_differences(
    stock: Mapping[Model, tuple[int, int]], ledger: Mapping[Model, tuple[int, int]]
) -> list[str]:
    """Models whose ``(on_hand, reserved)`` differ from the ledger's totals; a model the
    ledger knows and the stock table does not is a difference too."""
    return [
        f"{model}: stock {stock.get(model)}, ledger {ledger.get(model, (0, 0))}"
        for model in sorted(set(stock) | set(ledger))
        if stock.get(model) != ledger.get(model, (0, 0))
    ]


def undelivered(observation: Observation) -> dict[str, int]:
    """What is still in flight or stuck, by kind (only kinds with something in them)."""
    o = observation
    kinds = {f"unread {group}": n for group, n in o.unread.items()}
    kinds |= {f"parked {name}": n for name, n in o.parked.items()}
    kinds |= {f"dead letters {name}": n for name, n in o.dead_letters.items()}
    kinds["open outbox calls"] = o.open_outbox_calls
    kinds["pending pushes"] = o.pending_pushes
    kinds["unconfirmed lost pushes"] = o.unconfirmed_lost_pushes
    return {kind: n for kind, n in kinds.items() if n}


def judge(observation: Observation, examples: int = 5) -> Verdict:
    o = observation
    lost = lost_acked_pushes(o.acked_pushes, o.notice_msg_ids, o.erp)
    wrong = erp_differences(o.truth, o.erp)
    per_order = cancels_per_order(o.cancel_calls)
    repeated = [f"{sn}: {n} cancel_order calls" for sn, n in per_order.items() if n > 1]
    stock_wrong = stock_differences(o.stock, o.ledger)
    stuck = undelivered(o)
    return Verdict(
        acked_pushes_lost=len(lost),
        max_cancels_per_order=max(per_order.values(), default=0),
        stock_equals_ledger=not stock_wrong,
        erp_equals_truth=not wrong,
        undelivered=sum(stuck.values()),
        examples={
            name: found[:examples]
            for name, found in (
                ("acked_pushes_lost", lost),
                ("erp_differences", wrong),
                ("repeated_cancels", repeated),
                ("stock_differences", stock_wrong),
            )
            if found
        },
        undelivered_by_kind=stuck,
    )
