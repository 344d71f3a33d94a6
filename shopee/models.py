"""Typed shapes of Shopee API v2 requests and responses (pushes live in ``shopee.push``).

Parsing is tolerant where Shopee is inconsistent and strict where a wrong value would hurt:

* unknown fields are kept (``extra="allow"``): Shopee adds fields without notice;
* ids are Python ints (Shopee's item, model and order-item ids exceed int32);
* money is ``Decimal`` (Shopee sends JSON numbers; floats would drift);
* ``""``, ``null`` and the ``"-"`` placeholder of some official samples all mean "absent"
  for optional values;
* statuses are plain strings: Shopee adds statuses (``PENDING``, ``INVOICE_PENDING``) and the
  known ones are listed in ``OrderStatus`` for comparison, not for validation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

ABSENT_MARKERS: frozenset[object] = frozenset({"", "-"})
INT64_MAX = 2**63 - 1


def _absent(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in ABSENT_MARKERS)


def _optional(value: object) -> object:
    return None if _absent(value) else value


def _text(value: object) -> object:
    if value is None:
        return ""
    # Shopee types some ids as strings in one place and numbers in another (forder_id).
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    return value


def _optional_text(value: object) -> object:
    return None if _absent(value) else _text(value)


def _money(value: object) -> object:
    if _absent(value):
        return None
    if isinstance(value, float):
        # repr gives the shortest decimal that round-trips, so 0.1 stays 0.1.
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValueError(f"not a decimal amount: {value!r}") from exc
    return value


def _string_list(value: object) -> object:
    if _absent(value):
        return []
    # product_location_id is a list in item_list but a bare string in package_list.
    if isinstance(value, str):
        return [value]
    return value


def empty_if_absent(value: object) -> object:
    """A list field given as null, "" or "-" is an empty list."""
    return [] if _absent(value) else value


ShopeeId = Annotated[int, Field(ge=0, le=INT64_MAX)]
Text = Annotated[str, BeforeValidator(_text)]
OptionalText = Annotated[str | None, BeforeValidator(_optional_text)]
OptionalInt = Annotated[int | None, BeforeValidator(_optional)]
OptionalBool = Annotated[bool | None, BeforeValidator(_optional)]
OptionalFloat = Annotated[float | None, BeforeValidator(_optional)]
Money = Annotated[Decimal | None, BeforeValidator(_money)]
StringList = Annotated[list[str], BeforeValidator(_string_list)]


class ShopeeModel(BaseModel):
    """Base of every Shopee shape: immutable, keeps unknown fields, no pydantic namespaces
    (Shopee's own names start with ``model_``)."""

    model_config = ConfigDict(
        extra="allow", frozen=True, populate_by_name=True, protected_namespaces=()
    )


class OrderStatus(StrEnum):
    """Order statuses Shopee documents; responses may carry others, kept as plain strings."""

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
    INVOICE_PENDING = "INVOICE_PENDING"
    PENDING = "PENDING"


# get_order_list takes one status per request, and only these.
ORDER_LIST_STATUS_FILTERS: tuple[str, ...] = (
    "UNPAID",
    "READY_TO_SHIP",
    "PROCESSED",
    "SHIPPED",
    "COMPLETED",
    "IN_CANCEL",
    "CANCELLED",
    "INVOICE_PENDING",
)


class TimeRangeField(StrEnum):
    CREATE_TIME = "create_time"
    UPDATE_TIME = "update_time"


class CancelReason(StrEnum):
    """Seller cancel reasons accepted by v2.order.cancel_order."""

    OUT_OF_STOCK = "OUT_OF_STOCK"
    CUSTOMER_REQUEST = "CUSTOMER_REQUEST"
    UNDELIVERABLE_AREA = "UNDELIVERABLE_AREA"  # TW and MY only
    COD_NOT_SUPPORTED = "COD_NOT_SUPPORTED"


class BuyerCancellationOperation(StrEnum):
    ACCEPT = "ACCEPT"
    REJECT = "REJECT"


# ---------------------------------------------------------------------------------------------
# Auth


class TokenGrant(ShopeeModel):
    """A token pair from auth/token/get or auth/access_token/get (flat, no ``response``)."""

    access_token: str = Field(min_length=1)
    refresh_token: str = Field(min_length=1)
    expire_in: int = Field(gt=0)
    shop_id: OptionalInt = None
    partner_id: OptionalInt = None
    shop_id_list: Annotated[list[int], BeforeValidator(empty_if_absent)] = []
    merchant_id_list: Annotated[list[int], BeforeValidator(empty_if_absent)] = []


# ---------------------------------------------------------------------------------------------
# Orders


class OrderListEntry(ShopeeModel):
    order_sn: str = Field(min_length=1)
    # Present only when the request asked for response_optional_fields=order_status.
    order_status: OptionalText = None
    booking_sn: OptionalText = None


class OrderListPage(ShopeeModel):
    """One page of get_order_list. ``more`` and ``order_list`` are required: a page that lacks
    them is not an empty page, and reading it as one would skip orders. ``order_list: null``
    is accepted as empty (how Go services write an empty list)."""

    more: bool
    next_cursor: Text = ""
    order_list: Annotated[list[OrderListEntry], BeforeValidator(empty_if_absent)]


class OrderItem(ShopeeModel):
    item_id: ShopeeId
    item_name: Text = ""
    item_sku: Text = ""
    model_id: ShopeeId = 0  # 0 for an item without variants
    model_name: Text = ""
    model_sku: Text = ""
    model_quantity_purchased: int = Field(default=0, ge=0)
    model_original_price: Money = None
    # 0 for bundle-deal items by Shopee's own rule; it is not the price paid.
    model_discounted_price: Money = None
    order_item_id: OptionalInt = None
    promotion_group_id: OptionalInt = None
    promotion_type: OptionalText = None
    promotion_id: OptionalInt = None
    add_on_deal: OptionalBool = None
    add_on_deal_id: OptionalInt = None
    main_item: OptionalBool = None
    wholesale: OptionalBool = None
    weight: OptionalFloat = None
    product_location_id: StringList = []


class PackageItem(ShopeeModel):
    item_id: ShopeeId
    model_id: ShopeeId = 0
    model_quantity: int = Field(default=0, ge=0)
    order_item_id: OptionalInt = None
    promotion_group_id: OptionalInt = None
    product_location_id: StringList = []


class Package(ShopeeModel):
    package_number: Text = ""
    logistics_status: OptionalText = None
    logistics_channel_id: OptionalInt = None
    shipping_carrier: OptionalText = None
    group_shipment_id: OptionalInt = None
    parcel_chargeable_weight_gram: OptionalInt = None
    item_list: Annotated[list[PackageItem], BeforeValidator(empty_if_absent)] = []


class RecipientAddress(ShopeeModel):
    name: Text = ""
    phone: Text = ""
    town: Text = ""
    district: Text = ""
    city: Text = ""
    state: Text = ""
    region: Text = ""
    zipcode: Text = ""
    full_address: Text = ""


class OrderDetail(ShopeeModel):
    """One order from get_order_detail; fields beyond the defaults need ``DETAIL_FIELDS``."""

    order_sn: str = Field(min_length=1)
    order_status: str = Field(min_length=1)
    region: Text = ""
    currency: Text = ""
    cod: OptionalBool = None
    create_time: int
    update_time: int
    days_to_ship: OptionalInt = None
    ship_by_date: OptionalInt = None
    booking_sn: OptionalText = None
    message_to_seller: Text = ""
    # Null until the buyer pays; for COD orders it can come after pickup.
    pay_time: OptionalInt = None
    total_amount: Money = None
    estimated_shipping_fee: Money = None
    actual_shipping_fee: Money = None
    actual_shipping_fee_confirmed: OptionalBool = None
    reverse_shipping_fee: Money = None
    shipping_carrier: OptionalText = None
    checkout_shipping_carrier: OptionalText = None
    payment_method: OptionalText = None
    cancel_by: OptionalText = None
    # Free text (Shopee's vocabulary changes and mixes labels with codes).
    cancel_reason: OptionalText = None
    buyer_cancel_reason: OptionalText = None
    buyer_user_id: OptionalInt = None
    buyer_username: OptionalText = None
    note: Text = ""
    note_update_time: OptionalInt = None
    fulfillment_flag: OptionalText = None
    pickup_done_time: OptionalInt = None
    split_up: OptionalBool = None
    recipient_address: RecipientAddress | None = None
    item_list: Annotated[list[OrderItem], BeforeValidator(empty_if_absent)] = []
    package_list: Annotated[list[Package], BeforeValidator(empty_if_absent)] = []
    pending_terms: Annotated[list[str], BeforeValidator(empty_if_absent)] = []
    can_full_cancel_order: OptionalBool = None
    can_partial_cancel_order: OptionalBool = None


class OrderDetailList(ShopeeModel):
    """The ``response`` of get_order_detail; ``order_list`` is required (``null``: empty)."""

    order_list: Annotated[list[OrderDetail], BeforeValidator(empty_if_absent)]


@dataclass(frozen=True)
class OrderDetails:
    """What ``ShopeeClient.get_order_detail`` found for the orders it was asked about.

    ``found`` holds the snapshots of requested orders Shopee returned, in the order asked.
    ``missing`` maps every other requested ``order_sn`` to a human-readable reason (Shopee's
    error message or warning). Every requested order is in exactly one of the two.
    """

    found: list[OrderDetail]
    missing: dict[str, str]


class UpdateTimeResult(ShopeeModel):
    """The answer of cancel_order and handle_buyer_cancellation."""

    update_time: OptionalInt = None


class CancelItem(ShopeeModel):
    """A line named in an OUT_OF_STOCK cancellation."""

    item_id: ShopeeId
    model_id: ShopeeId = 0


# ---------------------------------------------------------------------------------------------
# Products and stock


class SellerStock(ShopeeModel):
    location_id: OptionalText = None
    stock: int = Field(ge=0)
    if_saleable: OptionalBool = None


class ShopeeStock(ShopeeModel):
    location_id: OptionalText = None
    stock: int = 0


class StockSummary(ShopeeModel):
    total_reserved_stock: OptionalInt = None
    total_available_stock: OptionalInt = None


class StockInfo(ShopeeModel):
    summary_info: StockSummary | None = None
    seller_stock: Annotated[list[SellerStock], BeforeValidator(empty_if_absent)] = []
    shopee_stock: Annotated[list[ShopeeStock], BeforeValidator(empty_if_absent)] = []


class ProductModel(ShopeeModel):
    """One variant of an item (Shopee calls it a model)."""

    model_id: ShopeeId
    model_sku: Text = ""
    model_status: OptionalText = None
    stock_info_v2: StockInfo | None = None


class ModelList(ShopeeModel):
    tier_variation: Annotated[list[dict[str, Any]], BeforeValidator(empty_if_absent)] = []
    model: Annotated[list[ProductModel], BeforeValidator(empty_if_absent)] = []


class ModelStock(ShopeeModel):
    """The absolute seller stock to set for one model of an item (model_id 0: no variants)."""

    model_id: ShopeeId = 0
    seller_stock: list[SellerStock] = Field(min_length=1)


class StockUpdateSuccess(ShopeeModel):
    model_id: ShopeeId = 0
    location_id: OptionalText = None
    stock: OptionalInt = None


class StockUpdateFailure(ShopeeModel):
    model_id: ShopeeId = 0
    failed_reason: OptionalText = None


class StockUpdateResult(ShopeeModel):
    success_list: Annotated[list[StockUpdateSuccess], BeforeValidator(empty_if_absent)] = []
    failure_list: Annotated[list[StockUpdateFailure], BeforeValidator(empty_if_absent)] = []


# ---------------------------------------------------------------------------------------------
# Push configuration and lost pushes


class LostPushMessage(ShopeeModel):
    """A push Shopee failed to deliver. ``data`` is documented as a JSON string and sampled
    as an object; both arrive here as a dict."""

    shop_id: OptionalInt = None  # absent for partner-level pushes (codes 1, 2, 12)
    code: int
    timestamp: OptionalInt = None
    data: dict[str, Any] = {}

    @field_validator("data", mode="before")
    @classmethod
    def _data_may_be_a_json_string(cls, value: object) -> object:
        if _absent(value):
            return {}
        if isinstance(value, str | bytes):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"data is a string but not JSON: {exc.msg}") from exc
        return value

    def push_body(self) -> dict[str, Any]:
        """The message as a push body (``{"code", "shop_id", "timestamp", "data", ...}``).

        Shopee's sample stores the whole push body under ``data``; a bare push ``data`` is
        wrapped in this entry's own code, shop and timestamp.
        """
        if "code" in self.data and isinstance(self.data.get("data"), dict):
            return dict(self.data)
        body: dict[str, Any] = {"code": self.code, "data": dict(self.data)}
        if self.shop_id is not None:
            body["shop_id"] = self.shop_id
        if self.timestamp is not None:
            body["timestamp"] = self.timestamp
        return body


class LostPushPage(ShopeeModel):
    push_message_list: Annotated[list[LostPushMessage], BeforeValidator(empty_if_absent)] = []
    has_next_page: bool = False
    last_message_id: OptionalInt = None


class AppPushConfig(ShopeeModel):
    callback_url: OptionalText = None
    # "Normal", "Warning" or "Suspended" (case varies between doc and sample).
    live_push_status: OptionalText = None
    suspended_time: OptionalInt = None
    blocked_shop_id: Annotated[list[int], BeforeValidator(empty_if_absent)] = []
    push_config_on_list: Annotated[list[int], BeforeValidator(empty_if_absent)] = []
    push_config_off_list: Annotated[list[int], BeforeValidator(empty_if_absent)] = []
