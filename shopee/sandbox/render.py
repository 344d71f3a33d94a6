"""Orders and items as Shopee's JSON shows them (pure functions of a snapshot).

Field shapes follow the reference §5, §8 and the official get_order_detail sample (§10.2):
int64 ids, money as JSON numbers, ``product_location_id`` an array in ``item_list`` but a
string in ``package_list``, ``null`` for absent optional objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shopee.sandbox.model import (
    CANCELLED,
    COMPLETED,
    SHIPPED,
    TO_CONFIRM_RECEIVE,
    TO_RETURN,
    UNPAID,
    Item,
    ItemModel,
    Order,
)

# get_order_detail's fields that are returned without asking.
DEFAULT_DETAIL_FIELDS = (
    "order_sn",
    "region",
    "currency",
    "cod",
    "order_status",
    "message_to_seller",
    "create_time",
    "update_time",
    "days_to_ship",
    "ship_by_date",
)

# Optional fields the sandbox can produce; other documented ones (edt, payment_info,
# international_label, ...) are accepted in the request and not returned.
OPTIONAL_DETAIL_FIELDS = frozenset(
    {
        "buyer_user_id",
        "buyer_username",
        "estimated_shipping_fee",
        "recipient_address",
        "actual_shipping_fee",
        "goods_to_declare",
        "note",
        "note_update_time",
        "item_list",
        "pay_time",
        "dropshipper",
        "dropshipper_phone",
        "split_up",
        "buyer_cancel_reason",
        "cancel_by",
        "cancel_reason",
        "actual_shipping_fee_confirmed",
        "buyer_cpf_id",
        "fulfillment_flag",
        "pickup_done_time",
        "package_list",
        "shipping_carrier",
        "payment_method",
        "total_amount",
        "invoice_data",
        "order_chargeable_weight_gram",
        "return_request_due_date",
        "reverse_shipping_fee",
    }
)

_SHIPPING_FEE_CONFIRMED = frozenset({SHIPPED, TO_CONFIRM_RECEIVE, COMPLETED, TO_RETURN})


def _weight_grams(order: Order) -> int:
    return max(1, round(sum(line.weight_kg * line.quantity for line in order.lines) * 1000))


def _item_list(order: Order) -> list[dict[str, Any]]:
    return [
        {
            "item_id": line.item_id,
            "item_name": line.item_name,
            "item_sku": line.item_sku,
            "model_id": line.model_id,
            "model_name": line.model_name,
            "model_sku": line.model_sku,
            "model_quantity_purchased": line.quantity,
            "model_original_price": line.original_price,
            "model_discounted_price": line.discounted_price,
            "wholesale": False,
            "weight": line.weight_kg,
            "add_on_deal": False,
            "main_item": False,
            "add_on_deal_id": 0,
            "promotion_type": "",
            "promotion_id": 0,
            "order_item_id": line.item_id,
            "promotion_group_id": 0,
            "image_info": {"image_url": f"https://cf.shopee.sg/file/sandbox-{line.item_id}_tn"},
            "product_location_id": [line.location_id],
            "is_prescription_item": False,
            "is_b2c_owned_item": False,
        }
        for line in order.lines
    ]


def _package_list(order: Order) -> list[dict[str, Any]]:
    # A package exists once the order was confirmed (paid, or COD); never for unpaid orders.
    if all(status in (UNPAID, CANCELLED) for _, status in order.history):
        return []
    package = order.package
    return [
        {
            "package_number": package.package_number,
            "logistics_status": package.logistics_status,
            "logistics_channel_id": package.logistics_channel_id,
            "shipping_carrier": package.shipping_carrier,
            "allow_self_design_awb": False,
            "item_list": [
                {
                    "item_id": line.item_id,
                    "model_id": line.model_id,
                    "model_quantity": line.quantity,
                    "order_item_id": line.item_id,
                    "promotion_group_id": 0,
                    "product_location_id": line.location_id,
                }
                for line in order.lines
            ],
            "parcel_chargeable_weight_gram": _weight_grams(order),
            "group_shipment_id": None,
            "virtual_contact_number": "",
            "package_query_number": "",
            "sorting_group": "",
        }
    ]


def order_detail(order: Order, optional_fields: Iterable[str]) -> dict[str, Any]:
    """One entry of get_order_detail's ``order_list``: the default fields plus every
    requested optional field the sandbox models."""
    wanted = set(optional_fields)
    detail: dict[str, Any] = {
        "order_sn": order.order_sn,
        "region": order.region,
        "currency": order.currency,
        "cod": order.cod,
        "order_status": order.status,
        "message_to_seller": order.message_to_seller,
        "create_time": order.create_time,
        "update_time": order.update_time,
        "days_to_ship": order.days_to_ship,
        "ship_by_date": order.ship_by_date,
    }
    confirmed = order.status in _SHIPPING_FEE_CONFIRMED
    # COD orders get their pay_time only on delivery, yet their amount is known from the start.
    unpaid = order.pay_time is None and not order.cod
    optional: dict[str, Any] = {
        "buyer_user_id": order.buyer_user_id,
        "buyer_username": order.buyer_username,
        "estimated_shipping_fee": order.estimated_shipping_fee,
        "recipient_address": dict(order.recipient_address),
        "actual_shipping_fee": order.estimated_shipping_fee if confirmed else 0.0,
        "actual_shipping_fee_confirmed": confirmed,
        "goods_to_declare": False,
        "note": "",
        "note_update_time": 0,
        "item_list": _item_list(order),
        # "This value is NULL when order is not paid yet."
        "pay_time": order.pay_time,
        "dropshipper": None,
        "dropshipper_phone": None,
        "split_up": False,
        "buyer_cancel_reason": order.buyer_cancel_reason,
        "cancel_by": order.cancel_by,
        "cancel_reason": order.cancel_reason,
        "buyer_cpf_id": None,
        "fulfillment_flag": "fulfilled_by_local_seller",
        "pickup_done_time": order.pickup_done_time,
        "package_list": _package_list(order),
        "shipping_carrier": order.package.shipping_carrier,
        "payment_method": order.payment_method,
        "invoice_data": None,
        "order_chargeable_weight_gram": _weight_grams(order),
        "return_request_due_date": 0,
        "reverse_shipping_fee": 0.0,
    }
    # "This value will only return after the buyer has completed payment".
    if not unpaid:
        optional["total_amount"] = order.total_amount
    for name in sorted(wanted & OPTIONAL_DETAIL_FIELDS):
        if name in optional:
            detail[name] = optional[name]
    return detail


def full_order(order: Order) -> dict[str, Any]:
    """Every field the sandbox models (for the /sandbox control routes)."""
    detail = order_detail(order, OPTIONAL_DETAIL_FIELDS)
    detail["shop_id"] = order.shop_id
    detail["tracking_number"] = order.package.tracking_number
    detail["completed_scenario"] = order.completed_scenario
    detail["history"] = [[when, status] for when, status in order.history]
    return detail


def _stock_info(model: ItemModel, location_id: str) -> dict[str, Any]:
    return {
        "summary_info": {"total_reserved_stock": 0, "total_available_stock": model.stock},
        "seller_stock": [{"location_id": location_id, "stock": model.stock, "if_saleable": True}],
        "shopee_stock": [],
    }


def _price_info(model: ItemModel, currency: str) -> list[dict[str, Any]]:
    return [{"currency": currency, "current_price": model.price, "original_price": model.price}]


def model_list(item: Item, currency: str) -> dict[str, Any]:
    """get_model_list's ``response``; a no-variant item has no models (its stock is in
    get_item_base_info)."""
    variants = [model for model_id, model in sorted(item.models.items()) if model_id != 0]
    return {
        "tier_variation": (
            [{"name": "Variation", "option_list": [{"option": m.model_name} for m in variants]}]
            if variants
            else []
        ),
        "model": [
            {
                "model_id": model.model_id,
                "model_sku": model.model_sku,
                "model_status": "MODEL_NORMAL",
                "tier_index": [index],
                "price_info": _price_info(model, currency),
                "stock_info_v2": _stock_info(model, item.location_id),
            }
            for index, model in enumerate(variants)
        ],
    }


def item_base_info(item: Item, currency: str) -> dict[str, Any]:
    """One entry of get_item_base_info's ``item_list``."""
    info: dict[str, Any] = {
        "item_id": item.item_id,
        "item_status": "NORMAL",
        "item_name": item.item_name,
        "item_sku": item.item_sku,
        "weight": str(item.weight_kg),
        "has_model": item.has_model,
    }
    if not item.has_model and 0 in item.models:
        only = item.models[0]
        info["price_info"] = _price_info(only, currency)
        info["stock_info_v2"] = _stock_info(only, item.location_id)
    return info
