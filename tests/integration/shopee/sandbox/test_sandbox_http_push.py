"""Signed push delivery, Shopee's retry schedule, the lost-push APIs and push faults."""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pytest

from shopee.sandbox import FaultConfig, ManualClock, SandboxServer
from shopee.signing import verify_push
from tests.integration.shopee.sandbox.support import (
    PARTNER_KEY,
    MakeSandbox,
    PushReceiver,
    ShopeeCaller,
    wait_until,
)

LOST = "/api/v2/push/get_lost_push_message"
CONFIRM = "/api/v2/push/confirm_consumed_lost_push_message"


def one_order(sandbox: SandboxServer) -> str:
    shop_id = sandbox.state.add_shop(727720655)
    item_id = sandbox.state.add_item(shop_id)
    return sandbox.state.create_order(shop_id, [(item_id, 0, 1)])


def test_pushes_are_signed_over_the_callback_url_and_raw_body(
    make_sandbox: MakeSandbox, receiver: PushReceiver
) -> None:
    sandbox = make_sandbox(callback_url=receiver.url, push_key="live-push-partner-key")
    order_sn = one_order(sandbox)
    wait_until(lambda: len(receiver.received) == 1)
    push = receiver.received[0]
    assert verify_push("live-push-partner-key", receiver.url, push.body, push.authorization)
    assert not verify_push(PARTNER_KEY, receiver.url, push.body, push.authorization)
    assert not verify_push(
        "live-push-partner-key", receiver.url + "/", push.body, push.authorization
    )

    payload = json.loads(push.body)
    assert set(payload) == {"msg_id", "data", "shop_id", "code", "timestamp"}
    assert payload["code"] == 3 and payload["shop_id"] == 727720655
    assert len(payload["msg_id"]) == 32 and int(payload["msg_id"], 16) >= 0
    data = payload["data"]
    assert data["items"] == [] and data["ordersn"] == order_sn
    assert data["status"] == "READY_TO_SHIP" and data["completed_scenario"] in ("", None)
    assert data["update_time"] == sandbox.state.order(order_sn).update_time
    wait_until(lambda: sandbox.pushes.summary()["delivered"] == 1)


def test_arranging_shipment_pushes_the_status_and_the_tracking_number(
    make_sandbox: MakeSandbox, receiver: PushReceiver
) -> None:
    sandbox = make_sandbox(callback_url=receiver.url)
    order_sn = one_order(sandbox)
    order = sandbox.state.ship(order_sn)
    wait_until(lambda: len(receiver.received) == 3)
    payloads = [json.loads(body) for body in receiver.bodies()]
    assert sorted(p["code"] for p in payloads) == [3, 3, 4]
    (tracking,) = [p["data"] for p in payloads if p["code"] == 4]
    assert tracking["ordersn"] == order_sn
    assert isinstance(tracking["forder_id"], str) and len(tracking["forder_id"]) == 19
    assert tracking["package_number"] == order.package.package_number
    assert tracking["tracking_no"] == order.package.tracking_number != ""


@pytest.mark.parametrize("mode", ["fail", "body"])
def test_failed_pushes_are_retried_on_the_scaled_schedule_then_lost(
    make_sandbox: MakeSandbox,
    make_caller: Callable[[SandboxServer], ShopeeCaller],
    receiver: PushReceiver,
    mode: str,
) -> None:
    receiver.mode = mode  # "body": a 2xx with a body is a failure too
    clock = ManualClock(1_700_000_000)
    sandbox = make_sandbox(clock, callback_url=receiver.url, time_factor=0.5)
    order_sn = one_order(sandbox)

    def attempts_made(count: int) -> Callable[[], bool]:
        return lambda: len(sandbox.pushes.attempts()) == count

    for expected_attempts, then_advance in ((1, 150), (2, 900), (3, 5400), (4, None)):
        wait_until(attempts_made(expected_attempts))
        if then_advance is not None:
            assert sandbox.pushes.lost() == []
            clock.advance(then_advance - 1)
            next_due = sandbox.pushes.next_due()
            assert next_due is not None and next_due > clock.now()  # not a second early
            clock.advance(1)
    wait_until(lambda: len(sandbox.pushes.lost()) == 1)
    attempts = sandbox.pushes.attempts()
    gaps = [later.at - earlier.at for earlier, later in pairwise(attempts)]
    assert gaps == [150, 900, 5400]
    assert len(receiver.received) == 4 and len(set(receiver.bodies())) == 1

    caller = make_caller(sandbox)
    lost = caller.public("GET", LOST).json()
    assert (lost["error"], lost["message"]) == ("-", "-")  # the official samples' placeholders
    (entry,) = lost["response"]["push_message_list"]
    assert entry["shop_id"] == 727720655 and entry["code"] == 3
    assert entry["timestamp"] == int(attempts[-1].at)
    assert isinstance(entry["data"], str)
    assert json.loads(entry["data"])["data"]["ordersn"] == order_sn
    assert lost["response"]["has_next_page"] is False

    confirm = caller.public(
        "POST", CONFIRM, body={"last_message_id": lost["response"]["last_message_id"]}
    ).json()
    assert confirm["error"] in ("", "-")
    assert caller.public("GET", LOST).json()["response"]["push_message_list"] == []


def test_a_slow_callback_times_out(make_sandbox: MakeSandbox, receiver: PushReceiver) -> None:
    receiver.mode, receiver.delay = "slow", 0.5
    sandbox = make_sandbox(callback_url=receiver.url, push_timeout_seconds=0.2)
    one_order(sandbox)
    wait_until(lambda: len(sandbox.pushes.attempts()) == 1)
    (attempt,) = sandbox.pushes.attempts()
    assert not attempt.result.ok


def test_without_a_callback_every_push_is_lost_and_pages_by_100(
    make_sandbox: MakeSandbox, make_caller: Callable[[SandboxServer], ShopeeCaller]
) -> None:
    sandbox = make_sandbox(lost_push_data_as_string=False, push_api_placeholders=False)
    state = sandbox.state
    shop_id = state.add_shop()
    item_id = state.add_item(shop_id, models=[(0, "X", 1000)])
    order_sns = [state.create_order(shop_id, [(item_id, 0, 1)]) for _ in range(150)]
    caller = make_caller(sandbox)

    first = caller.public("GET", LOST).json()
    assert (first["error"], first["message"]) == ("", "")
    page: dict[str, Any] = first["response"]
    assert len(page["push_message_list"]) == 100 and page["has_next_page"] is True
    assert isinstance(page["push_message_list"][0]["data"], dict)
    # Without confirmation the same earliest page comes back.
    assert caller.public("GET", LOST).json()["response"] == page

    caller.public("POST", CONFIRM, body={"last_message_id": page["last_message_id"]})
    second = caller.public("GET", LOST).json()["response"]
    assert len(second["push_message_list"]) == 50 and second["has_next_page"] is False
    seen = [
        entry["data"]["data"]["ordersn"]
        for entry in page["push_message_list"] + second["push_message_list"]
    ]
    assert seen == order_sns


def test_lost_pushes_are_kept_for_three_days(
    make_sandbox: MakeSandbox, make_caller: Callable[[SandboxServer], ShopeeCaller]
) -> None:
    clock = ManualClock(1_700_000_000)
    sandbox = make_sandbox(clock)
    one_order(sandbox)
    caller = make_caller(sandbox)
    clock.advance(3 * 86400)
    assert len(caller.public("GET", LOST).json()["response"]["push_message_list"]) == 1
    clock.advance(1)
    assert caller.public("GET", LOST).json()["response"]["push_message_list"] == []


@pytest.mark.parametrize(("to_lost_store", "lost"), [(True, 1), (False, 0)])
def test_dropped_pushes_are_never_delivered(
    make_sandbox: MakeSandbox, receiver: PushReceiver, to_lost_store: bool, lost: int
) -> None:
    faults = FaultConfig(push_drop_rate=1.0, dropped_push_to_lost_store=to_lost_store)
    sandbox = make_sandbox(callback_url=receiver.url, faults=faults)
    one_order(sandbox)
    summary = sandbox.pushes.summary()
    assert summary["pending"] == 0 and summary["lost"] == lost
    assert summary["dropped"] == 1 - lost
    assert receiver.received == []


def test_duplicated_pushes_arrive_twice_with_the_same_msg_id(
    make_sandbox: MakeSandbox, receiver: PushReceiver
) -> None:
    sandbox = make_sandbox(callback_url=receiver.url, faults=FaultConfig(push_duplicate_rate=1.0))
    one_order(sandbox)
    wait_until(lambda: len(receiver.received) == 2)
    first, second = receiver.bodies()
    assert first == second
    wait_until(lambda: sandbox.pushes.summary()["delivered"] == 2)


def test_reordering_delays_pushes_within_the_configured_bound(
    make_sandbox: MakeSandbox, receiver: PushReceiver
) -> None:
    clock = ManualClock(1_700_000_000)
    faults = FaultConfig(push_reorder_max_delay_seconds=60)
    sandbox = make_sandbox(clock, callback_url=receiver.url, faults=faults)
    shop_id = sandbox.state.add_shop()
    item_id = sandbox.state.add_item(shop_id)
    for _ in range(20):
        sandbox.state.create_order(shop_id, [(item_id, 0, 1)])
    dues = sorted(d.due - 1_700_000_000 for d in sandbox.pushes.deliveries())
    assert all(0 <= due <= 60 for due in dues) and dues[-1] - dues[0] > 10
    clock.advance(60)
    wait_until(lambda: len(receiver.received) == 20)
    received = [json.loads(body)["msg_id"] for body in receiver.bodies()]
    emitted = [message.msg_id for message in sandbox.pushes.messages()]
    assert sorted(received) == sorted(emitted) and received != emitted


def test_verification_push_and_push_config(
    sandbox: SandboxServer, caller: ShopeeCaller, receiver: PushReceiver
) -> None:
    answer = caller.public(
        "POST",
        "/api/v2/push/set_app_push_config",
        body={"callback_url": receiver.url, "push_config_on_list": [1, 2]},
    ).json()
    assert answer["error"] == ""
    verification = json.loads(receiver.received[0].body)
    assert verification == {
        "code": 0,
        "data": {
            "verify_info": "This is a Verification message.Please respond in the certain format."
        },
    }
    first = receiver.received[0]
    assert verify_push(PARTNER_KEY, receiver.url, first.body, first.authorization)

    config = caller.public("GET", "/api/v2/push/get_app_push_config").json()["response"]
    assert config["callback_url"] == receiver.url
    assert config["live_push_status"] == "Normal"
    assert config["push_config_on_list"] == [1, 2, 3, 4]

    sandbox.state.authorize(sandbox.state.add_shop(600000))
    wait_until(lambda: len(receiver.received) == 2)
    authorised = json.loads(receiver.received[1].body)
    assert authorised["code"] == 1 and "shop_id" not in authorised
    assert authorised["data"]["shop_id"] == 600000

    receiver.mode = "fail"
    refused = caller.public(
        "POST", "/api/v2/push/set_app_push_config", body={"callback_url": receiver.url + "/x"}
    ).json()
    assert refused["error"] != ""
    assert sandbox.state.callback_url == receiver.url


def test_a_slow_callback_does_not_hold_back_other_pushes(
    make_sandbox: MakeSandbox, receiver: PushReceiver
) -> None:
    receiver.mode, receiver.delay = "slow", 0.5
    sandbox = make_sandbox(callback_url=receiver.url, push_timeout_seconds=2)
    shop_id = sandbox.state.add_shop()
    item_id = sandbox.state.add_item(shop_id)
    for _ in range(5):
        sandbox.state.create_order(shop_id, [(item_id, 0, 1)])
    # One by one, the fifth would arrive after four half-second answers.
    wait_until(lambda: len(receiver.received) == 5, timeout=0.4)
    wait_until(lambda: sandbox.pushes.summary()["delivered"] == 5)
