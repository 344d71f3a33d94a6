"""get_model_list, get_item_base_info and update_stock over HTTP, and Shopee-side stock moving
with orders."""

from __future__ import annotations

from typing import Any

from shopee.sandbox import SandboxServer
from tests.integration.shopee.sandbox.support import ShopeeCaller

MODELS = "/api/v2/product/get_model_list"
BASE_INFO = "/api/v2/product/get_item_base_info"
UPDATE = "/api/v2/product/update_stock"
ITEM, PLAIN_ITEM = 1680783, 1680784
MODEL_A, MODEL_B = 327890123, 327890124


def seller_stock(model: dict[str, Any]) -> int:
    stock: int = model["stock_info_v2"]["seller_stock"][0]["stock"]
    return stock


def test_model_list_shows_seller_stock_that_orders_take_and_cancellations_restore(
    sandbox: SandboxServer, caller: ShopeeCaller
) -> None:
    state = sandbox.state
    shop_id = state.add_shop(region="MY")
    state.add_item(shop_id, item_id=ITEM, models=[(MODEL_A, "RED", 10), (MODEL_B, "BLUE", 4)])
    session = caller.link_shop(shop_id)

    answer = session.get(MODELS, item_id=ITEM).json()
    assert answer["error"] == ""
    models = {m["model_id"]: m for m in answer["response"]["model"]}
    assert {k: seller_stock(m) for k, m in models.items()} == {MODEL_A: 10, MODEL_B: 4}
    assert models[MODEL_A]["model_sku"] == "RED"
    assert models[MODEL_A]["price_info"][0]["currency"] == "MYR"
    assert len(answer["response"]["tier_variation"][0]["option_list"]) == 2

    order_sn = state.create_order(shop_id, [(ITEM, MODEL_A, 3)])
    after_order = session.get(MODELS, item_id=ITEM).json()["response"]["model"]
    assert {m["model_id"]: seller_stock(m) for m in after_order}[MODEL_A] == 7

    state.buyer_cancel(order_sn, request=False)
    after_cancel = session.get(MODELS, item_id=ITEM).json()["response"]["model"]
    assert {m["model_id"]: seller_stock(m) for m in after_cancel}[MODEL_A] == 10


def test_a_no_variant_item_has_its_stock_in_item_base_info(
    sandbox: SandboxServer, caller: ShopeeCaller
) -> None:
    shop_id = sandbox.state.add_shop()
    sandbox.state.add_item(shop_id, item_id=PLAIN_ITEM, models=[(0, "PLAIN", 6)])
    session = caller.link_shop(shop_id)
    models = session.get(MODELS, item_id=PLAIN_ITEM).json()["response"]
    assert models == {"tier_variation": [], "model": []}
    info = session.get(BASE_INFO, item_id_list=str(PLAIN_ITEM)).json()["response"]["item_list"]
    assert info[0]["has_model"] is False
    assert seller_stock(info[0]) == 6


def test_update_stock_sets_absolute_values_and_reports_failures_per_model(
    sandbox: SandboxServer, caller: ShopeeCaller
) -> None:
    state = sandbox.state
    shop_id = state.add_shop()
    state.add_item(shop_id, item_id=ITEM, models=[(MODEL_A, "RED", 10), (MODEL_B, "BLUE", 4)])
    session = caller.link_shop(shop_id)

    answer = session.post(
        UPDATE,
        {
            "item_id": ITEM,
            "stock_list": [
                {"model_id": MODEL_A, "seller_stock": [{"stock": 100}]},
                {"model_id": 999, "seller_stock": [{"stock": 5}]},
            ],
        },
    ).json()
    assert answer["error"] == ""
    assert answer["response"]["success_list"] == [
        {"model_id": MODEL_A, "location_id": "SGZ", "stock": 100}
    ]
    assert [f["model_id"] for f in answer["response"]["failure_list"]] == [999]
    assert state.stock(ITEM, MODEL_A) == 100 and state.stock(ITEM, MODEL_B) == 4

    all_failed = session.post(
        UPDATE, {"item_id": ITEM, "stock_list": [{"model_id": 999, "seller_stock": [{"stock": 1}]}]}
    ).json()
    assert all_failed["error"] == "error_busi_update_stock_failed"

    empty = session.post(UPDATE, {"item_id": ITEM, "stock_list": []}).json()
    assert empty["error"] == "error_param"
    too_many = session.post(
        UPDATE,
        {
            "item_id": ITEM,
            "stock_list": [{"model_id": MODEL_A, "seller_stock": [{"stock": 1}]}] * 51,
        },
    ).json()
    assert too_many["error"] == "error_param"
    unknown_item = session.post(
        UPDATE, {"item_id": 42, "stock_list": [{"model_id": 0, "seller_stock": [{"stock": 1}]}]}
    ).json()
    assert unknown_item["error"] == "error_not_found"
