"""Signing, timestamps, partner checks and the token lifecycle, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shopee.sandbox import ManualClock, SandboxServer
from shopee.signing import sign_shop
from tests.integration.shopee.sandbox.support import MakeSandbox, ShopeeCaller

ORDER_LIST = "/api/v2/order/get_order_list"


def list_params(caller: ShopeeCaller) -> dict[str, Any]:
    now = caller.now()
    return {
        "time_range_field": "update_time",
        "time_from": now - 3600,
        "time_to": now + 60,
        "page_size": 20,
    }


def test_a_shop_call_signed_with_the_right_key_succeeds_and_a_wrong_key_is_wrong_sign(
    sandbox: SandboxServer, caller: ShopeeCaller
) -> None:
    session = caller.link_shop(sandbox.state.add_shop(14701711))
    ok = session.get(ORDER_LIST, **list_params(caller))
    assert ok.json()["error"] == ""

    wrong = caller.shop(
        "GET",
        ORDER_LIST,
        session.shop_id,
        session.access_token,
        params=list_params(caller),
        key="not-the-partner-key",
    )
    assert wrong.status_code == 403
    body = wrong.json()
    assert (body["error"], body["message"]) == ("error_sign", "Wrong sign.")
    assert body["request_id"]
    assert "response" not in body


def test_a_signature_over_another_path_or_shop_is_rejected(
    sandbox: SandboxServer, caller: ShopeeCaller
) -> None:
    session = caller.link_shop(sandbox.state.add_shop())
    other_shop = sandbox.state.add_shop()
    # Signed for one shop, sent for another: the shop id is part of the base string.
    ts = caller.now()
    sign = sign_shop(
        caller.partner_key, caller.partner_id, ORDER_LIST, ts, session.access_token, other_shop
    )
    answer = caller.http.get(
        ORDER_LIST,
        params={
            "partner_id": caller.partner_id,
            "timestamp": ts,
            "access_token": session.access_token,
            "shop_id": session.shop_id,
            "sign": sign,
            **list_params(caller),
        },
    )
    assert answer.json()["error"] == "error_sign"


def test_auth_endpoints_use_the_public_formula(
    sandbox: SandboxServer, caller: ShopeeCaller
) -> None:
    shop_id = sandbox.state.add_shop()
    code = sandbox.state.authorize(shop_id)
    # The shop formula on token/get is a classic mistake: Shopee answers Wrong sign.
    shop_signed = caller.shop(
        "POST",
        "/api/v2/auth/token/get",
        shop_id,
        "any-token",
        body={"code": code, "shop_id": shop_id, "partner_id": caller.partner_id},
    )
    assert shop_signed.json()["error"] == "error_sign"
    answer = caller.exchange_code(code, shop_id).json()
    assert answer["error"] == "" and answer["message"] == ""
    assert answer["expire_in"] == 14400
    assert len(answer["access_token"]) == 32 and len(answer["refresh_token"]) == 32
    assert "response" not in answer  # auth endpoints are flat


# Ten seconds either side of the limit: the request reaches the sandbox's (real) clock a
# moment after the caller stamped it, more than a second later on a loaded machine.
@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-290, True), (-310, False), (290, True), (310, False)],
)
def test_timestamps_are_accepted_within_five_minutes_of_the_sandbox_clock(
    sandbox: SandboxServer, caller: ShopeeCaller, offset: int, accepted: bool
) -> None:
    session = caller.link_shop(sandbox.state.add_shop())
    answer = caller.shop(
        "GET",
        ORDER_LIST,
        session.shop_id,
        session.access_token,
        params=list_params(caller),
        timestamp=caller.now() + offset,
    ).json()
    if accepted:
        assert answer["error"] == ""
    else:
        assert (answer["error"], answer["message"]) == ("error_param", "Timestamp is expired.")


def test_future_timestamp_tolerance_is_configurable(
    make_sandbox: MakeSandbox, make_caller: Callable[[SandboxServer], ShopeeCaller]
) -> None:
    strict = make_sandbox(timestamp_future_tolerance_seconds=0)
    caller = make_caller(strict)
    answer = caller.public(
        "GET", "/api/v2/push/get_app_push_config", timestamp=caller.now() + 5
    ).json()
    assert answer["message"] == "Timestamp is expired."


def test_missing_and_wrong_common_parameters(sandbox: SandboxServer, caller: ShopeeCaller) -> None:
    no_partner = caller.http.get(ORDER_LIST, params={"timestamp": caller.now(), "sign": "x"})
    assert no_partner.json()["message"] == "There is no partner_id in query."

    other_partner = caller.http.get(
        "/api/v2/push/get_app_push_config",
        params={"partner_id": 1, "timestamp": caller.now(), "sign": "x"},
    ).json()
    assert other_partner["error"] == "invalid_partner_id"

    shop_id = sandbox.state.add_shop()
    no_token = caller.http.get(
        ORDER_LIST,
        params={
            "partner_id": caller.partner_id,
            "timestamp": caller.now(),
            "sign": "x",
            "shop_id": shop_id,
        },
    ).json()
    assert no_token["message"] == "There is no access_token in query."


def test_an_authorisation_code_is_single_use(sandbox: SandboxServer, caller: ShopeeCaller) -> None:
    shop_id = sandbox.state.add_shop()
    code = sandbox.state.authorize(shop_id)
    assert caller.exchange_code(code, shop_id).json()["error"] == ""
    again = caller.exchange_code(code, shop_id).json()
    assert (again["error"], again["message"]) == ("error_auth", "Invalid code")


def test_an_authorisation_code_expires_after_ten_minutes(
    make_sandbox: MakeSandbox, make_caller: Callable[[SandboxServer], ShopeeCaller]
) -> None:
    clock = ManualClock(1_700_000_000)
    sandbox = make_sandbox(clock)
    caller = make_caller(sandbox)
    shop_id = sandbox.state.add_shop()
    fresh, stale = sandbox.state.authorize(shop_id), sandbox.state.authorize(shop_id)
    clock.advance(599)
    assert caller.exchange_code(fresh, shop_id).json()["error"] == ""
    clock.advance(1)
    assert caller.exchange_code(stale, shop_id).json()["error"] == "error_auth"


def test_refresh_tokens_are_single_use_and_the_old_access_token_lives_five_more_minutes(
    make_sandbox: MakeSandbox, make_caller: Callable[[SandboxServer], ShopeeCaller]
) -> None:
    clock = ManualClock(1_700_000_000)
    sandbox = make_sandbox(clock, invalid_access_token_error="error_auth")
    caller = make_caller(sandbox)
    session = caller.link_shop(sandbox.state.add_shop())
    old_access = session.access_token

    refreshed = caller.refresh(session.refresh_token, session.shop_id).json()
    assert refreshed["error"] == ""
    assert refreshed["shop_id"] == session.shop_id and refreshed["partner_id"] == 2001887
    assert refreshed["expire_in"] == 14400
    assert refreshed["refresh_token"] != session.refresh_token

    reused = caller.refresh(session.refresh_token, session.shop_id).json()
    assert (reused["error"], reused["message"]) == ("error_auth", "Invalid refresh_token.")

    clock.advance(299)
    assert session.get(ORDER_LIST, **list_params(caller)).json()["error"] == ""
    clock.advance(1)
    expired = session.get(ORDER_LIST, **list_params(caller)).json()
    assert (expired["error"], expired["message"]) == ("error_auth", "Invalid access_token.")

    session.access_token = refreshed["access_token"]
    assert session.access_token != old_access
    assert session.get(ORDER_LIST, **list_params(caller)).json()["error"] == ""


def test_access_tokens_expire_after_their_ttl_and_on_request(
    make_sandbox: MakeSandbox, make_caller: Callable[[SandboxServer], ShopeeCaller]
) -> None:
    clock = ManualClock(1_700_000_000)
    sandbox = make_sandbox(clock, invalid_access_token_error="invalid_acceess_token")
    caller = make_caller(sandbox)
    session = caller.link_shop(sandbox.state.add_shop())
    clock.advance(14399)
    assert session.get(ORDER_LIST, **list_params(caller)).json()["error"] == ""
    clock.advance(1)
    answer = session.get(ORDER_LIST, **list_params(caller)).json()
    assert answer["error"] == "invalid_acceess_token"  # sic: Shopee's spelling

    fresh = caller.link_shop(session.shop_id)
    sandbox.state.expire_access_tokens(fresh.shop_id)
    assert fresh.get(ORDER_LIST, **list_params(caller)).json()["error"] == "invalid_acceess_token"
    renewed = caller.refresh(fresh.refresh_token, fresh.shop_id).json()
    assert renewed["error"] == ""


def test_random_invalid_token_errors_use_both_documented_names(
    sandbox: SandboxServer, caller: ShopeeCaller
) -> None:
    session = caller.link_shop(sandbox.state.add_shop())
    sandbox.state.expire_access_tokens(session.shop_id)
    errors = {session.get(ORDER_LIST, **list_params(caller)).json()["error"] for _ in range(30)}
    assert errors == {"invalid_acceess_token", "error_auth"}


def test_an_expired_refresh_token_is_refresh_token_expired(
    sandbox: SandboxServer, caller: ShopeeCaller
) -> None:
    session = caller.link_shop(sandbox.state.add_shop())
    sandbox.state.expire_refresh_tokens(session.shop_id)
    answer = caller.refresh(session.refresh_token, session.shop_id).json()
    assert answer["error"] == "refresh_token_expired"


def test_a_deauthorised_shop_is_no_longer_linked(
    sandbox: SandboxServer, caller: ShopeeCaller
) -> None:
    session = caller.link_shop(sandbox.state.add_shop())
    sandbox.state.deauthorize(session.shop_id)
    answer = session.get(ORDER_LIST, **list_params(caller)).json()
    assert answer["error"] == "shop_no_linked"


def test_auth_partner_redirects_with_a_code_for_the_chosen_shop(
    sandbox: SandboxServer, caller: ShopeeCaller
) -> None:
    shop_id = sandbox.state.add_shop()
    answer = caller.public(
        "GET",
        "/api/v2/shop/auth_partner",
        params={"redirect": "https://example.com/callback?state=1", "shop_id": shop_id},
    )
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    query = parse_qs(location.query)
    assert location.netloc == "example.com"
    assert query["state"] == ["1"] and query["shop_id"] == [str(shop_id)]
    assert caller.exchange_code(query["code"][0], shop_id).json()["error"] == ""
