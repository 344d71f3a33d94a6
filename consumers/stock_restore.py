"""``orderflow consume stock-restore``: the ledger's releases and deductions.

Each order event moves its lines through the stock ledger (``consumers.erp.ledger``): a
cancelled order that this system reserved stock for gives exactly that stock back, once; a
shipped one deducts it from on hand; an order that never took stock restores nothing, and
goods that already left are never restocked.

The consumers progress independently, so stock-restore applies the whole state machine, as
auto-cancel does: an order it sees first while open reserves (all lines or none), so the
numbers come out the same whichever consumer sees an order first. Deciding to cancel an
order it could not cover stays auto-cancel's job.

A batch of events moves the ledger in one transaction (``ErpStore.apply_ledgers``): the same
moves as one transaction per event, in order, or none of them; a batch that fails for one
poison event is handled again event by event, so that event alone is dead-lettered.

Optionally (``ORDERFLOW_STOCK_RESTORE_UPDATE_SHOPEE``) the ERP's absolute availability of the
models a cancellation released is pushed to Shopee with ``update_stock``. Absolute values
make repeating it harmless, so it is pushed again whenever the cancelled order is seen.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from consumers.actions import ledger_actions
from consumers.erp.ledger import LineState, Phase, phase_of
from consumers.erp.snapshot import OrderSnapshot
from consumers.erp.store import ErpStore
from consumers.runtime import Delivery, handle_batched, handle_each
from schemas.models import OrderEvent
from shopee.client import ShopeeClient
from shopee.models import ModelStock, SellerStock

CONSUMER_NAME = "stock-restore"
_MAX_MODELS_PER_CALL = 50


@dataclass
class StockRestore:
    store: ErpStore
    shopee: ShopeeClient | None = None  # set: push released availability to Shopee
    clock: Callable[[], float] = time.time
    name: str = CONSUMER_NAME

    def handle(self, deliveries: Sequence[Delivery]) -> list[str]:
        if self.shopee is not None:
            # Each cancellation's availability is pushed right after its own transaction.
            return handle_each(deliveries, lambda delivery: self._one(delivery.event))
        return handle_batched(deliveries, self._all, lambda delivery: self._one(delivery.event))

    def _all(self, deliveries: Sequence[Delivery]) -> list[str]:
        """The whole batch's ledger moves in one transaction (as ``_one`` for each, in
        order): a transaction per event was most of stock-restore's time."""
        now = self.clock()
        events = [delivery.event for delivery in deliveries]
        results = self.store.apply_ledgers(
            [OrderSnapshot.from_event(event) for event in events],
            int(now),
            actions=lambda i, r: ledger_actions(events[i], r, consumer=self.name, now=now),
        )
        return ["applied" if result.transitions else "unchanged" for result in results]

    def _one(self, event: OrderEvent) -> str:
        now = self.clock()
        result = self.store.apply_ledger(
            OrderSnapshot.from_event(event),
            int(now),
            actions=lambda r: ledger_actions(event, r, consumer=self.name, now=now),
        )
        if self.shopee is not None and phase_of(event.status) is Phase.CANCELLED:
            self._push_availability(event)
        return "applied" if result.transitions else "unchanged"

    def _push_availability(self, event: OrderEvent) -> None:
        released = [
            key
            for key, holding in self.store.line_states(event.shop_id, event.order_sn).items()
            if holding.state is LineState.RELEASED
        ]
        if not released or self.shopee is None:
            return
        levels = {(s.item_id, s.model_id): s.available for s in self.store.stock()}
        by_item: dict[int, list[ModelStock]] = defaultdict(list)
        for item_id, model_id in sorted(released):
            available = max(0, levels.get((item_id, model_id), 0))
            by_item[item_id].append(
                ModelStock(model_id=model_id, seller_stock=[SellerStock(stock=available)])
            )
        for item_id, models in by_item.items():
            for start in range(0, len(models), _MAX_MODELS_PER_CALL):
                self.shopee.update_stock(
                    event.shop_id, item_id, models[start : start + _MAX_MODELS_PER_CALL]
                )
