"""An order as the ERP store and the ledger see it: who, which status, when, and what."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NamedTuple

from schemas.models import OrderEvent


class Line(NamedTuple):
    """One line of an order: a quantity of one model of one item. A named tuple: erp-sync
    makes one per line of every event, and a tuple is made in half a frozen dataclass's time."""

    item_id: int
    model_id: int
    quantity: int


@dataclass(frozen=True)
class OrderSnapshot:
    """An order at one moment (``update_time``, epoch seconds), as Shopee reported it."""

    shop_id: int
    order_sn: str
    status: str
    update_time: int
    lines: tuple[Line, ...]

    @classmethod
    def from_event(cls, event: OrderEvent) -> OrderSnapshot:
        return cls(
            shop_id=event.shop_id,
            order_sn=event.order_sn,
            status=event.status,
            update_time=int(event.update_time.timestamp()),
            lines=tuple([Line(i.item_id, i.model_id, i.quantity) for i in event.items]),
        )

    def lines_digest(self) -> str:
        """A digest of the lines, in order: equal for equal lines. The store keeps it with
        the order to tell a snapshot that changes the lines from one that does not."""
        text = ";".join(f"{line.item_id}:{line.model_id}:{line.quantity}" for line in self.lines)
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    def quantities(self) -> dict[tuple[int, int], int]:
        """Quantity per ``(item_id, model_id)``: one model may appear on several lines (e.g.
        in different promotion groups); the ledger tracks it once per order."""
        totals: dict[tuple[int, int], int] = {}
        for line in self.lines:
            key = (line.item_id, line.model_id)
            totals[key] = totals.get(key, 0) + line.quantity
        return totals
