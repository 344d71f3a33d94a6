"""The sandbox's world as plain data: shops, items with models and stock, orders and packages.

These are mutable records owned by :class:`~shopee.sandbox.state.SandboxState`; anything handed
out of the state is a deep copy, so callers may read it without holding the state's lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

UNPAID = "UNPAID"
READY_TO_SHIP = "READY_TO_SHIP"
PROCESSED = "PROCESSED"
RETRY_SHIP = "RETRY_SHIP"
SHIPPED = "SHIPPED"
TO_CONFIRM_RECEIVE = "TO_CONFIRM_RECEIVE"
IN_CANCEL = "IN_CANCEL"
CANCELLED = "CANCELLED"
TO_RETURN = "TO_RETURN"
COMPLETED = "COMPLETED"

ORDER_STATUSES = frozenset(
    {
        UNPAID,
        READY_TO_SHIP,
        PROCESSED,
        RETRY_SHIP,
        SHIPPED,
        TO_CONFIRM_RECEIVE,
        IN_CANCEL,
        CANCELLED,
        TO_RETURN,
        COMPLETED,
    }
)
TERMINAL_STATUSES = frozenset({CANCELLED, COMPLETED})

CURRENCY_BY_REGION: dict[str, str] = {
    "SG": "SGD",
    "MY": "MYR",
    "TH": "THB",
    "VN": "VND",
    "PH": "PHP",
    "ID": "IDR",
    "TW": "TWD",
    "BR": "BRL",
    "MX": "MXN",
    "CO": "COP",
    "CL": "CLP",
}


@dataclass
class Shop:
    shop_id: int
    region: str
    name: str
    # Linked = the seller authorised the partner and the authorisation was not revoked.
    linked: bool = False


@dataclass
class ItemModel:
    """One sellable variant; ``model_id`` 0 is the only model of a no-variant item."""

    model_id: int
    model_sku: str
    model_name: str
    stock: int
    price: float


@dataclass
class Item:
    item_id: int
    shop_id: int
    item_name: str
    item_sku: str
    weight_kg: float
    location_id: str
    models: dict[int, ItemModel] = field(default_factory=dict)

    @property
    def has_model(self) -> bool:
        return any(model_id != 0 for model_id in self.models)


@dataclass
class OrderLine:
    item_id: int
    model_id: int
    item_name: str
    item_sku: str
    model_name: str
    model_sku: str
    quantity: int
    original_price: float
    discounted_price: float
    weight_kg: float
    location_id: str
    # Shopee-side stock this line actually took at order creation; a cancellation gives
    # back exactly this (it is less than ``quantity`` only for an oversold order).
    taken_stock: int


@dataclass
class Package:
    package_number: str
    logistics_status: str
    shipping_carrier: str
    logistics_channel_id: int
    # Set when the shipment is arranged (PROCESSED); a re-arrangement after RETRY_SHIP gets
    # a new one.
    tracking_number: str = ""
    forder_id: str = ""


@dataclass
class Order:
    order_sn: str
    shop_id: int
    region: str
    currency: str
    cod: bool
    status: str
    create_time: int
    update_time: int
    pay_time: int | None
    days_to_ship: int
    ship_by_date: int
    lines: list[OrderLine]
    package: Package
    buyer_user_id: int
    buyer_username: str
    recipient_address: dict[str, str]
    message_to_seller: str
    estimated_shipping_fee: float
    payment_method: str
    cancel_by: str = ""
    cancel_reason: str = ""
    buyer_cancel_reason: str = ""
    # The status an IN_CANCEL order returns to when the seller rejects the request.
    status_before_cancel_request: str | None = None
    pickup_done_time: int = 0
    completed_scenario: str = ""
    # (update_time, status) for every status the order has had, oldest first.
    history: list[tuple[int, str]] = field(default_factory=list)

    @property
    def items_total(self) -> float:
        return sum(line.discounted_price * line.quantity for line in self.lines)

    @property
    def total_amount(self) -> float:
        return round(self.items_total + self.estimated_shipping_fee, 2)

    @property
    def has_tracking_number(self) -> bool:
        return bool(self.package.tracking_number)
