"""Injected API errors, transport errors, rate limiting and latency, over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable

from shopee.sandbox import FaultConfig, ManualClock, SandboxServer
from tests.integration.shopee.sandbox.support import MakeSandbox, ShopeeCaller, ShopSession

DETAIL = "/api/v2/order/get_order_detail"
CANCEL = "/api/v2/order/cancel_order"
CONFIG = "/api/v2/push/get_app_push_config"


def shop_with_order(sandbox: SandboxServer, caller: ShopeeCaller) -> tuple[ShopSession, str]:
    shop_id = sandbox.state.add_shop()
    item_id = sandbox.state.add_item(shop_id)
    return caller.link_shop(shop_id), sandbox.state.create_order(shop_id, [(item_id, 0, 1)])


def test_an_injected_error_hits_only_its_api_and_has_no_side_effect(
    make_sandbox: MakeSandbox, make_caller: Callable[[SandboxServer], ShopeeCaller]
) -> None:
    faults = FaultConfig(
        error_rates={"order.cancel_order": 1.0, "get_order_detail": 1.0},
        error_kinds=("error_server",),
    )
    sandbox = make_sandbox(faults=faults)
    session, order_sn = shop_with_order(sandbox, make_caller(sandbox))

    detail = session.get(DETAIL, order_sn_list=order_sn)
    assert detail.status_code == 500
    assert detail.json()["error"] == "error_server"
    cancel = session.post(CANCEL, {"order_sn": order_sn, "cancel_reason": "CUSTOMER_REQUEST"})
    assert cancel.json()["error"] == "error_server"
    assert sandbox.state.order(order_sn).status == "READY_TO_SHIP"
    assert session.get("/api/v2/order/get_order_list").json()["error"] == "error_param"

    recorded = {call.api: call.fault for call in sandbox.calls}
    assert recorded["order.get_order_detail"] == "error_server"
    assert recorded["order.get_order_list"] is None


def test_transport_errors_have_no_envelope(
    make_sandbox: MakeSandbox, make_caller: Callable[[SandboxServer], ShopeeCaller]
) -> None:
    sandbox = make_sandbox(faults=FaultConfig(error_rates={"*": 1.0}, error_kinds=("http_502",)))
    answer = make_caller(sandbox).public("GET", CONFIG)
    assert answer.status_code == 502
    assert answer.headers["content-type"].startswith("text/html")
    assert sandbox.calls[-1].error == "http_502"


def test_error_injection_is_reproducible_from_the_seed(
    make_sandbox: MakeSandbox, make_caller: Callable[[SandboxServer], ShopeeCaller]
) -> None:
    def run(seed: int) -> list[str]:
        sandbox = make_sandbox(seed=seed, faults=FaultConfig(error_rates={"*": 0.5}))
        caller = make_caller(sandbox)
        outcomes = []
        for _ in range(30):
            answer = caller.public("GET", CONFIG)
            json_body = answer.headers["content-type"].startswith("application/json")
            outcomes.append(answer.json()["error"] if json_body else f"http_{answer.status_code}")
        return outcomes

    first, second, other = run(7), run(7), run(8)
    assert first == second
    assert first != other
    assert 3 < sum(error != "" for error in first) < 27
    assert {"http_500", "http_502", "error_server"} <= set(first) | set(other)


def test_the_rate_limit_counts_requests_per_shop_per_second(
    make_sandbox: MakeSandbox, make_caller: Callable[[SandboxServer], ShopeeCaller]
) -> None:
    clock = ManualClock(1_700_000_000)
    sandbox = make_sandbox(clock, faults=FaultConfig(rate_limit_per_second=3))
    caller = make_caller(sandbox)
    busy, _ = shop_with_order(sandbox, caller)
    quiet, _ = shop_with_order(sandbox, caller)
    errors = [busy.get(DETAIL, order_sn_list="X").json()["error"] for _ in range(4)]
    assert errors[:3] == ["error_not_found"] * 3
    assert errors[3] == "error_rate_limit"
    limited = busy.get(DETAIL, order_sn_list="X").json()
    assert limited["message"] == (
        "Too many requests. You have reached the rate limit. Please try again later."
    )
    assert quiet.get(DETAIL, order_sn_list="X").json()["error"] == "error_not_found"
    clock.advance(1)
    assert busy.get(DETAIL, order_sn_list="X").json()["error"] == "error_not_found"


def test_latency_is_added_to_every_api_answer(
    make_sandbox: MakeSandbox, make_caller: Callable[[SandboxServer], ShopeeCaller]
) -> None:
    sandbox = make_sandbox(faults=FaultConfig(latency_ms=150))
    caller = make_caller(sandbox)
    started = time.monotonic()
    assert caller.public("GET", CONFIG).json()["error"] == ""
    assert time.monotonic() - started >= 0.15


def test_faults_can_be_changed_through_the_control_route(
    sandbox: SandboxServer, caller: ShopeeCaller
) -> None:
    put = caller.http.put(
        "/sandbox/faults", json={"error_rates": {"*": 1.0}, "error_kinds": ["error_system_busy"]}
    )
    assert put.status_code == 200
    busy = caller.public("GET", CONFIG)
    assert (busy.status_code, busy.json()["error"]) == (503, "error_system_busy")

    patch = caller.http.patch("/sandbox/faults", json={"error_rates": {}})
    assert patch.json()["error_kinds"] == ["error_system_busy"]
    assert caller.public("GET", CONFIG).json()["error"] == ""

    invalid = caller.http.put("/sandbox/faults", json={"error_rates": {"*": 2}})
    assert invalid.status_code == 400
