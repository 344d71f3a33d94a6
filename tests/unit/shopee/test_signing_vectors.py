"""Signature vectors from the reference (§1.1 API, §3.1 push), computed with a made-up key."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from orderflow.settings import Settings
from shopee.push import PushVerifier
from shopee.signing import PUBLIC_SIGNED_PATHS, sign_public, sign_shop
from tests.unit.shopee.reference_samples import PUSH_ORDER_STATUS_OFFICIAL

KEY = "test_partner_key_0123456789abcdef"
PARTNER_ID = 2001887
TIMESTAMP = 1655714431
ACCESS_TOKEN = "59777174636562737266615546704c6d"
SHOP_ID = 14701711
CALLBACK_URL = "https://example.com/shopee/push"
PUSH_SIGNATURE = "9e950c28516bef59ec354f2a49dec9cd6f59782f016e6e9904a2f4b0d20c091e"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "/api/v2/shop/get_shop_info",
            "fae2453506d0e74461bff5acf9985e736a81491c37c1c77537598bc991c034fc",
        ),
        (
            "/api/v2/order/get_order_list",
            "a1deedcba768aef353a7a75283e6b133b445a8d8555a93787e92e4101642ba14",
        ),
    ],
)
def test_shop_signature_vectors(path: str, expected: str) -> None:
    assert sign_shop(KEY, PARTNER_ID, path, TIMESTAMP, ACCESS_TOKEN, SHOP_ID) == expected


def test_public_signature_vector() -> None:
    assert (
        sign_public(KEY, PARTNER_ID, "/api/v2/public/get_shops_by_partner", TIMESTAMP)
        == "8d0b8105220f3a6129ce1147cf82f1a00c6fe57966b2f04e7426734fb219e01a"
    )


def test_auth_and_lost_push_endpoints_use_the_public_formula() -> None:
    for path in (
        "/api/v2/auth/token/get",
        "/api/v2/auth/access_token/get",
        "/api/v2/shop/auth_partner",
        "/api/v2/push/get_lost_push_message",
        "/api/v2/push/confirm_consumed_lost_push_message",
        "/api/v2/push/get_app_push_config",
    ):
        assert path in PUBLIC_SIGNED_PATHS


def _verifier(url: str = CALLBACK_URL) -> PushVerifier:
    return PushVerifier(SecretStr(KEY), url)


def test_push_signature_vector_verifies() -> None:
    assert _verifier().verify(PUSH_ORDER_STATUS_OFFICIAL.encode(), PUSH_SIGNATURE)


def test_push_signature_is_case_insensitive_hex() -> None:
    assert _verifier().verify(PUSH_ORDER_STATUS_OFFICIAL.encode(), PUSH_SIGNATURE.upper())


def test_reserialised_body_does_not_verify() -> None:
    reserialised = json.dumps(json.loads(PUSH_ORDER_STATUS_OFFICIAL))  # ", " and ": "
    other = "460fbbf366e8d2b545cae7422f20db44add4e7c3327d268b1b8e0b8dd0646868"
    verifier = _verifier()
    assert not verifier.verify(reserialised.encode(), PUSH_SIGNATURE)
    # The reference's vector for the re-serialised body confirms what we hashed differs.
    assert verifier.verify(reserialised.encode(), other)


def test_trailing_slash_url_does_not_verify() -> None:
    slash_signature = "8ffc53edd9d0c2a2a3704182d874220d003c71b91ac15b3104c6de8485abd7e9"
    assert not _verifier().verify(PUSH_ORDER_STATUS_OFFICIAL.encode(), slash_signature)
    assert _verifier(CALLBACK_URL + "/").verify(
        PUSH_ORDER_STATUS_OFFICIAL.encode(), slash_signature
    )
    assert not _verifier(CALLBACK_URL + "/").verify(
        PUSH_ORDER_STATUS_OFFICIAL.encode(), PUSH_SIGNATURE
    )


@pytest.mark.parametrize(
    "header",
    [None, "", "sha256=" + PUSH_SIGNATURE, PUSH_SIGNATURE[:-1], "é" * 64, "0" * 64],
)
def test_bad_authorization_headers_are_refused(header: str | None) -> None:
    assert not _verifier().verify(PUSH_ORDER_STATUS_OFFICIAL.encode(), header)


def test_verifier_from_settings_uses_push_key_and_registered_url(
    clean_env: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        shopee_partner_id=PARTNER_ID,
        shopee_partner_key=SecretStr("the-api-key"),
        shopee_push_key=SecretStr(KEY),
        webhook_public_url=CALLBACK_URL,
    )
    verifier = PushVerifier.from_settings(settings)
    assert verifier.callback_url == CALLBACK_URL
    assert verifier.verify(PUSH_ORDER_STATUS_OFFICIAL.encode(), PUSH_SIGNATURE)


def test_verifier_falls_back_to_the_partner_key(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings(
        shopee_partner_id=PARTNER_ID,
        shopee_partner_key=SecretStr(KEY),
        webhook_public_url=CALLBACK_URL,
    )
    assert PushVerifier.from_settings(settings).verify(
        PUSH_ORDER_STATUS_OFFICIAL.encode(), PUSH_SIGNATURE
    )
