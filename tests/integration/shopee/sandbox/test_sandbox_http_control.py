"""The unsigned /sandbox control routes, and generated traffic over a running server."""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import pairwise

from shopee.sandbox import SandboxServer
from shopee.sandbox.rules import TRANSITIONS
from tests.integration.shopee.sandbox.support import MakeSandbox, ShopeeCaller, wait_until


def test_a_world_built_through_control_routes_is_served_by_the_shopee_routes(
    sandbox: SandboxServer, caller: ShopeeCaller
) -> None:
    http = caller.http
    shop = http.post("/sandbox/shops", json={"region": "TH", "authorize": True}).json()
    token = caller.exchange_code(shop["code"], shop["shop_id"]).json()
    assert token["error"] == ""

    item = http.post(
        "/sandbox/items",
        json={
            "shop_id": shop["shop_id"],
            "models": [{"model_id": 11, "model_sku": "S", "stock": 5, "price": 99.0}],
        },
    ).json()
    order = http.post(
        "/sandbox/orders",
        json={"shop_id": shop["shop_id"], "lines": [{"item_id": item["item_id"], "model_id": 11}]},
    ).json()
    assert order["order_status"] == "READY_TO_SHIP" and order["currency"] == "THB"

    shipped = http.post(
        f"/sandbox/orders/{order['order_sn']}/advance", json={"status": "PROCESSED"}
    )
    assert shipped.json()["tracking_number"]
    invalid = http.post(f"/sandbox/orders/{order['order_sn']}/advance", json={"status": "UNPAID"})
    assert invalid.status_code == 409
    unknown = http.get("/sandbox/orders/NOPE")
    assert unknown.status_code == 404

    detail = caller.shop(
        "GET",
        "/api/v2/order/get_order_detail",
        shop["shop_id"],
        token["access_token"],
        params={"order_sn_list": order["order_sn"], "response_optional_fields": "total_amount"},
    ).json()
    assert detail["response"]["order_list"][0]["total_amount"] == order["total_amount"]

    counts = http.get("/sandbox/calls/counts").json()
    assert counts == {"auth.token.get": 1, "order.get_order_detail": 1}
    calls = http.get("/sandbox/calls", params={"api": "order.get_order_detail"}).json()
    assert calls[0]["query"]["order_sn_list"] == order["order_sn"]
    fresh = http.post(f"/sandbox/shops/{shop['shop_id']}/authorize").json()
    assert caller.exchange_code(fresh["code"], shop["shop_id"]).json()["error"] == ""


def test_traffic_started_over_http_moves_orders_through_valid_transitions(
    make_sandbox: MakeSandbox, make_caller: Callable[[SandboxServer], ShopeeCaller]
) -> None:
    # A simulated week passes in about 12 s of sandbox clock at this factor.
    sandbox = make_sandbox(time_factor=0.00002, seed=3)
    for _ in range(2):
        shop_id = sandbox.state.add_shop()
        sandbox.state.add_item(shop_id, models=[(0, "X", 100_000)])
    http = make_caller(sandbox).http

    started = http.post("/sandbox/traffic/start", json={"rate": 200}).json()
    assert started["running"] is True
    wait_until(lambda: len(sandbox.state.orders()) >= 60, timeout=10)
    wait_until(
        lambda: sum(o.status in ("COMPLETED", "CANCELLED") for o in sandbox.state.orders()) >= 20,
        timeout=15,
    )
    stopped = http.post("/sandbox/traffic/stop").json()
    assert stopped["running"] is False
    assert stopped["stats"]["created"] == len(sandbox.state.orders())

    for order in sandbox.state.orders():
        statuses = [status for _, status in order.history]
        for before, after in pairwise(statuses):
            assert after in TRANSITIONS[before], (order.order_sn, statuses)
    count = len(sandbox.state.orders())
    time.sleep(0.1)  # nothing may happen after stop; a short real wait shows it
    assert len(sandbox.state.orders()) == count
