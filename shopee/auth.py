"""Shopee's authorisation endpoints: the seller's consent link and the token calls.

All three paths are signed with the public formula even though they name a shop. The token
endpoints answer flat (``access_token`` at top level, no ``response`` object).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from pydantic import SecretStr, ValidationError

from shopee.errors import MalformedResponse
from shopee.models import TokenGrant
from shopee.signing import sign_public
from shopee.transport import ShopeeTransport, api_name

AUTH_PARTNER_PATH = "/api/v2/shop/auth_partner"
TOKEN_GET_PATH = "/api/v2/auth/token/get"  # noqa: S105 - an API path, not a secret
ACCESS_TOKEN_GET_PATH = "/api/v2/auth/access_token/get"  # noqa: S105 - an API path


def authorization_url(
    *,
    base_url: str,
    partner_id: int,
    partner_key: SecretStr,
    redirect_url: str,
    timestamp: int,
) -> str:
    """The link a seller opens to authorise the app; valid for 5 minutes after ``timestamp``.

    Shopee sends the seller back to ``redirect_url?code=...&shop_id=...``; the code is
    single-use and lasts 10 minutes.
    """
    sign = sign_public(partner_key.get_secret_value(), partner_id, AUTH_PARTNER_PATH, timestamp)
    query = urlencode(
        {"partner_id": partner_id, "timestamp": timestamp, "sign": sign, "redirect": redirect_url}
    )
    return f"{base_url.rstrip('/')}{AUTH_PARTNER_PATH}?{query}"


class AuthApi:
    """GetAccessToken and RefreshAccessToken over a transport."""

    def __init__(self, transport: ShopeeTransport) -> None:
        self._transport = transport

    def get_access_token(self, code: str, shop_id: int) -> TokenGrant:
        """Trade the code from the seller's redirect for the shop's first token pair."""
        body = {"code": code, "shop_id": shop_id, "partner_id": self._transport.partner_id}
        return self._transport.call(
            "POST", TOKEN_GET_PATH, body=body, idempotent=False, parse=_grant_parser(TOKEN_GET_PATH)
        )

    def refresh_access_token(self, refresh_token: str, shop_id: int) -> TokenGrant:
        """A new token pair; ``refresh_token`` is spent by this call whatever happens next."""
        body = {
            "refresh_token": refresh_token,
            "shop_id": shop_id,
            "partner_id": self._transport.partner_id,
        }
        # Not idempotent: a refresh token works once, so only provably unsent calls retry.
        return self._transport.call(
            "POST",
            ACCESS_TOKEN_GET_PATH,
            body=body,
            idempotent=False,
            parse=_grant_parser(ACCESS_TOKEN_GET_PATH),
        )


def _grant_parser(path: str) -> Callable[[dict[str, Any]], TokenGrant]:
    """A transport ``parse`` for the flat token answers. An answer without a usable pair is a
    ``MalformedResponse``: the refresh token may be spent all the same."""

    def parse(data: dict[str, Any]) -> TokenGrant:
        try:
            return TokenGrant.model_validate(data)
        except ValidationError as exc:
            raise MalformedResponse(
                f"token answer without a usable token pair: {exc.error_count()} problem(s), "
                f"first at {'.'.join(str(p) for p in exc.errors()[0]['loc'])}",
                api=api_name(path),
            ) from exc

    return parse
