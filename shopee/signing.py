"""Shopee's HMAC-SHA256 signatures: API requests (shop and public formulas) and pushes.

API: ``hex(HMAC(partner_key, partner_id + path + timestamp [+ access_token + shop_id]))``,
where ``path`` is the URL path only (no host, no query). The auth endpoints use the public
formula. Push: ``hex(HMAC(push_key, callback_url + "|" + raw_body))`` over the exact bytes
received and the callback URL exactly as registered.
"""

from __future__ import annotations

import hashlib
import hmac

# The token endpoints are signed with the public formula even though they name a shop.
PUBLIC_SIGNED_PATHS = frozenset(
    {
        "/api/v2/auth/token/get",
        "/api/v2/auth/access_token/get",
        "/api/v2/shop/auth_partner",
        "/api/v2/public/get_shopee_ip_ranges",
        "/api/v2/push/get_lost_push_message",
        "/api/v2/push/confirm_consumed_lost_push_message",
        "/api/v2/push/get_app_push_config",
        "/api/v2/push/set_app_push_config",
    }
)


def _hmac_hex(key: str | bytes, message: bytes) -> str:
    key_bytes = key.encode() if isinstance(key, str) else key
    return hmac.new(key_bytes, message, hashlib.sha256).hexdigest()


def public_base_string(partner_id: int, path: str, timestamp: int) -> str:
    return f"{partner_id}{path}{timestamp}"


def shop_base_string(
    partner_id: int, path: str, timestamp: int, access_token: str, shop_id: int
) -> str:
    return f"{partner_id}{path}{timestamp}{access_token}{shop_id}"


def sign_public(partner_key: str | bytes, partner_id: int, path: str, timestamp: int) -> str:
    """Signature for public APIs and the auth endpoints."""
    return _hmac_hex(partner_key, public_base_string(partner_id, path, timestamp).encode())


def sign_shop(
    partner_key: str | bytes,
    partner_id: int,
    path: str,
    timestamp: int,
    access_token: str,
    shop_id: int,
) -> str:
    """Signature for shop-level APIs."""
    base = shop_base_string(partner_id, path, timestamp, access_token, shop_id)
    return _hmac_hex(partner_key, base.encode())


def sign_push(push_key: str | bytes, callback_url: str, raw_body: bytes) -> str:
    """The ``Authorization`` header Shopee sends with a push to ``callback_url``."""
    return _hmac_hex(push_key, callback_url.encode() + b"|" + raw_body)


def verify_push(
    push_key: str | bytes, callback_url: str, raw_body: bytes, authorization: str
) -> bool:
    """True when ``authorization`` is the push signature; compared in constant time."""
    expected = sign_push(push_key, callback_url, raw_body)
    return hmac.compare_digest(expected, authorization.strip().lower())
