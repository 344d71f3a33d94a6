"""``orderflow consume auto-cancel``: take stock for new orders, cancel the ones it cannot
cover, and answer buyers' cancellation requests.

Per order event, in this order:

1. a cancellation already decided for the order (outbox) is finished first: sent if it was
   never sent, read back if its outcome is unknown — never sent twice. Such an order takes
   no stock unless Shopee refused the cancel (then it ships like any other);
2. a buyer's request (``IN_CANCEL``) is answered with ``handle_buyer_cancellation`` per the
   policy, once per request (the outbox kind carries the request's ``update_time``);
3. the ledger: a not yet shipped order reserves all its lines or none (atomically, so
   orders on other partitions or replicas never oversell a model); a shipped or cancelled
   one deducts, releases or closes, exactly as stock-restore would;
4. when lines were short: ``cancel_decision`` -> cancel as OUT_OF_STOCK naming exactly the
   short lines (within the shop's daily budget), record a dry run, or keep the order for a
   person. Every decision and call is an ``OrderAction``.

Events that need only step 3 (no cancellation decided for the order, no buyer's request) are
the usual ones: consecutive runs of them move the ledger in one transaction
(``ErpStore.apply_ledgers``), exactly as one transaction per event would, in order. A run ends
after an order stock could not cover, so its decision (step 4) is taken before any later
event; a run that fails for one poison event is handled again event by event.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from consumers.actions import ActionOutcome, ledger_actions, make_action
from consumers.decisions import (
    DEFAULT_CANCELLABLE,
    BuyerCancellationPolicy,
    Cancel,
    DryRun,
    Keep,
    budget_day_start,
    buyer_cancellation_answer,
    cancel_decision,
    has_tracking_number,
)
from consumers.erp.ledger import Shortage
from consumers.erp.outbox import ActionRecord, Outbox
from consumers.erp.snapshot import OrderSnapshot
from consumers.erp.store import CANCEL_ORDER_KIND, ErpStore
from consumers.runtime import Delivery, PartialFailure, handle_each
from consumers.shopee_calls import CallSpec, OnceCaller
from orderflow.failures import kind_of
from orderflow.metrics import Metrics
from schemas.models import OrderEvent
from shopee.client import ShopeeClient
from shopee.models import BuyerCancellationOperation, CancelItem, CancelReason

log = logging.getLogger(__name__)

CONSUMER_NAME = "auto-cancel"
CANCEL_KIND = CANCEL_ORDER_KIND
BUYER_KIND = "buyer_cancellation"


@dataclass(frozen=True)
class AutoCancelConfig:
    dry_run: bool = False
    daily_budget: int = 20
    cancellable: Collection[str] = DEFAULT_CANCELLABLE
    buyer_policy: BuyerCancellationPolicy = BuyerCancellationPolicy.ACCEPT_UNSHIPPED


@dataclass
class AutoCancel:
    store: ErpStore
    outbox: Outbox
    actions: ActionRecord
    client: ShopeeClient
    metrics: Metrics
    config: AutoCancelConfig = field(default_factory=AutoCancelConfig)
    clock: Callable[[], float] = time.time
    name: str = CONSUMER_NAME
    _budget_day: int | None = None
    _budget_shops: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._caller = OnceCaller(
            self.outbox, self.actions, self.client, consumer=self.name, clock=self.clock
        )

    def handle(self, deliveries: Sequence[Delivery]) -> list[str]:
        day = budget_day_start(self.clock())
        if day != self._budget_day:
            # A new budget day: yesterday's "remaining" must not keep an alert up.
            for shop_id in self._budget_shops:
                self._show_budget(shop_id, day)
            self._budget_day = day
        outcomes: list[str] = []
        rest = list(deliveries)
        try:
            # Orders with a cancellation decided go event by event. An order handled event
            # by event, or short at the end of a run, may have one now: it joins them (going
            # event by event when it need not is only slower).
            deciding = self.outbox.orders_with(
                CANCEL_KIND, {(d.event.shop_id, d.event.order_sn) for d in rest}
            )
            while rest:
                run = 0
                while run < len(rest) and _ledger_only(rest[run].event, deciding):
                    run += 1
                if run:
                    done, decided = self._ledger_run(rest[:run])
                else:
                    done, decided = [self._one(rest[0].event)], [rest[0].event]
                deciding.update((event.shop_id, event.order_sn) for event in decided)
                outcomes.extend(done)
                rest = rest[len(done) :]
        except PartialFailure as failure:
            raise PartialFailure(outcomes + failure.outcomes, failure.cause) from failure.cause
        except Exception as exc:
            raise PartialFailure(outcomes, exc) from exc
        return outcomes

    def _ledger_run(self, deliveries: Sequence[Delivery]) -> tuple[list[str], Sequence[OrderEvent]]:
        """Step 3 for consecutive events, in one transaction, up to and including the first
        that stock could not cover (then step 4 for that one); their outcomes, and the
        events whose orders may have had a cancellation decided."""
        now = self.clock()
        events = [delivery.event for delivery in deliveries]
        try:
            results = self.store.apply_ledgers(
                [OrderSnapshot.from_event(event) for event in events],
                int(now),
                actions=lambda i, r: ledger_actions(events[i], r, consumer=self.name, now=now),
                stop_when_short=True,
            )
        except Exception as exc:
            if kind_of(exc) == "transient":
                raise
            log.info("ledger run of %d failed (%s); one event at a time", len(events), exc)
            return handle_each(deliveries, lambda delivery: self._one(delivery.event)), events
        outcomes = ["applied" if result.transitions else "unchanged" for result in results]
        last = results[-1]
        if last.short:
            try:
                if self._decide(events[len(results) - 1], last.short):
                    outcomes[-1] = "applied"
            except Exception as exc:
                raise PartialFailure(outcomes[:-1], exc) from exc
        return outcomes, events[len(results) - 1 :] if last.short else ()

    def _show_budget(self, shop_id: int, since: int) -> None:
        spent = self.outbox.spent(shop_id, CANCEL_KIND, since)
        self.metrics.auto_cancel_budget_remaining.labels(str(shop_id)).set(
            max(0, self.config.daily_budget - spent)
        )
        self._budget_shops.add(shop_id)

    def _one(self, event: OrderEvent) -> str:
        changed = False
        cancel = self.outbox.get(event.shop_id, event.order_sn, CANCEL_KIND)
        if cancel is not None:
            changed |= (
                self._caller.finish(event, self._cancel_spec(event, cancel.payload)) is not None
            )
        if event.status == "IN_CANCEL":
            changed |= self._answer_buyer(event)
        now = self.clock()
        # An order being cancelled for want of stock takes none meanwhile (the store knows).
        result = self.store.apply_ledger(
            OrderSnapshot.from_event(event),
            int(now),
            actions=lambda r: ledger_actions(event, r, consumer=self.name, now=now),
        )
        changed |= bool(result.transitions)
        if result.short and cancel is None:
            changed |= self._decide(event, result.short)
        return "applied" if changed else "unchanged"

    # -- out of stock -------------------------------------------------------------------------

    def _decide(self, event: OrderEvent, short: Sequence[Shortage]) -> bool:
        decision = cancel_decision(
            status=event.status,
            tracking_number=has_tracking_number(event),
            short=short,
            cancellable=self.config.cancellable,
            dry_run=self.config.dry_run,
        )
        if decision is None:
            return False
        shop = str(event.shop_id)
        lines = _short_lines(short)
        if isinstance(decision, Keep):
            self.metrics.auto_cancel_decisions.labels(shop, decision.reason).inc()
            return self._record(
                event, "skipped", lines, decision.detail, {"decision": decision.reason}
            )
        if isinstance(decision, DryRun):
            self.metrics.auto_cancel_decisions.labels(shop, "dry_run").inc()
            log.info("dry run: would cancel %s (short %s)", event.order_sn, decision.lines)
            return self._record(event, "dry_run", lines, None, {"decision": "cancel"})
        assert isinstance(decision, Cancel)
        now = self.clock()
        payload = json.dumps(
            {
                "cancel_reason": CancelReason.OUT_OF_STOCK.value,
                "item_list": [{"item_id": i, "model_id": m} for i, m in decision.lines],
            }
        )
        since = budget_day_start(now)
        claim = self.store.claim_cancel(
            OrderSnapshot.from_event(event),
            payload,
            int(now),
            budget=self.config.daily_budget,
            since=since,
        )
        if claim == "covered":
            return False  # stock came back and the order took it meanwhile
        self._show_budget(event.shop_id, since)
        if claim == "over_budget":
            self.metrics.auto_cancel_decisions.labels(shop, "over_budget").inc()
            log.warning(
                "shop %d: %s is short but today's budget of %d cancels is spent; a person "
                "must decide",
                event.shop_id,
                event.order_sn,
                self.config.daily_budget,
            )
            return self._record(
                event,
                "skipped",
                lines,
                f"the daily auto-cancel budget of {self.config.daily_budget} is spent",
                {"decision": "over_budget"},
            )
        if claim == "exists":
            # Another replica decided first: finish its call, with the lines it chose.
            call = self.outbox.get(event.shop_id, event.order_sn, CANCEL_KIND)
            assert call is not None
            payload = call.payload
        else:
            self.metrics.auto_cancel_decisions.labels(shop, "cancel").inc()
        self._caller.finish(event, self._cancel_spec(event, payload))
        return True

    def _cancel_spec(self, event: OrderEvent, payload: str) -> CallSpec:
        body = json.loads(payload)
        items = [
            CancelItem(item_id=i["item_id"], model_id=i["model_id"]) for i in body["item_list"]
        ]
        quantities = {(i.item_id, i.model_id): i.quantity for i in event.items}
        return CallSpec(
            kind=CANCEL_KIND,
            action_kind="cancel_order",
            send=lambda: self.client.cancel_order(
                event.shop_id, event.order_sn, CancelReason(body["cancel_reason"]), items
            ),
            settled=lambda detail: detail.order_status == "CANCELLED",
            lines=tuple(
                (i.item_id, i.model_id, quantities.get((i.item_id, i.model_id), 0)) for i in items
            ),
            details=(("cancel_reason", body["cancel_reason"]),),
        )

    # -- buyer cancellation requests ----------------------------------------------------------

    def _answer_buyer(self, event: OrderEvent) -> bool:
        answer = buyer_cancellation_answer(
            status=event.status,
            tracking_number=has_tracking_number(event),
            policy=self.config.buyer_policy,
        )
        if answer is None:
            return False
        request = int(event.update_time.timestamp())
        kind = f"{BUYER_KIND}:{request}"
        if self.config.dry_run:
            return self._record(
                event, "dry_run", (), None, {"operation": answer}, kind="buyer_cancellation"
            )
        payload = json.dumps({"operation": answer})
        self.outbox.claim(event.shop_id, event.order_sn, kind, payload, int(self.clock()))
        spec = CallSpec(
            kind=kind,
            action_kind="buyer_cancellation",
            send=lambda: self.client.handle_buyer_cancellation(
                event.shop_id, event.order_sn, BuyerCancellationOperation(answer)
            ),
            # Answered (by us or by a person) once the request is gone.
            settled=lambda detail: detail.order_status != "IN_CANCEL",
            details=(("operation", answer), ("request_update_time", str(request))),
        )
        return self._caller.finish(event, spec) is not None

    # -- records ------------------------------------------------------------------------------

    def _record(
        self,
        event: OrderEvent,
        outcome: ActionOutcome,
        lines: Sequence[tuple[int, int, int]],
        error: str | None,
        details: dict[str, str],
        *,
        kind: str = "cancel_order",
    ) -> bool:
        return self.actions.record(
            make_action(
                event,
                consumer=self.name,
                kind=kind,
                outcome=outcome,
                now=self.clock(),
                lines=lines,
                error=error,
                details=details,
                # A decision is taken once per order and status (a short unpaid order is
                # decided again once paid).
                facts=("decision", event.status, int(event.update_time.timestamp())),
            )
        )


def _ledger_only(event: OrderEvent, deciding: Collection[tuple[int, str]]) -> bool:
    """Whether the event needs nothing but the ledger (and a decision if it is short)."""
    return event.status != "IN_CANCEL" and (event.shop_id, event.order_sn) not in deciding


def _short_lines(short: Sequence[Shortage]) -> list[tuple[int, int, int]]:
    return [(s.item_id, s.model_id, s.requested) for s in short]
