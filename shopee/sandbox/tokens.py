"""Authorisation codes, access tokens and refresh tokens, with Shopee's lifetimes.

* A code is single-use and expires after ``auth_code_ttl_seconds`` (10 minutes).
* An access token lives ``access_token_ttl_seconds`` (4 hours); when a new pair is issued for
  the shop, older access tokens keep working for ``old_access_token_grace_seconds`` (5 minutes).
* A refresh token lives ``refresh_token_ttl_seconds`` (30 days) and is single-use: using it, or
  issuing any newer pair for the shop, burns it ("Invalid refresh_token.").

Not thread-safe by itself; :class:`~shopee.sandbox.state.SandboxState` guards it with its lock.
Every method takes ``now`` so the rules are testable without a clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from shopee.sandbox.config import SandboxConfig
from shopee.sandbox.errors import ShopeeApiError


@dataclass(frozen=True)
class TokenGrant:
    """What token/get and access_token/get hand out."""

    shop_id: int
    access_token: str
    refresh_token: str
    expire_in: int


@dataclass
class _Code:
    shop_id: int
    expires_at: float
    used: bool = False


@dataclass
class _AccessToken:
    shop_id: int
    expires_at: float


@dataclass
class _RefreshToken:
    shop_id: int
    expires_at: float
    used: bool = False


def _token_text(rng: random.Random) -> str:
    # Shopee's tokens are 32 hex digits that decode to ASCII letters; look the same.
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "".join(rng.choice(letters) for _ in range(16)).encode().hex()


class TokenStore:
    def __init__(self, config: SandboxConfig, rng: random.Random) -> None:
        self._config = config
        self._rng = rng
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _AccessToken] = {}
        self._refresh: dict[str, _RefreshToken] = {}

    def issue_code(self, shop_id: int, now: float) -> str:
        code = _token_text(self._rng)
        self._codes[code] = _Code(shop_id, now + self._config.auth_code_ttl_seconds)
        return code

    def exchange_code(self, code: str, shop_id: int, now: float) -> TokenGrant:
        """token/get: trade a code for the shop's first token pair (or a fresh one)."""
        record = self._codes.get(code)
        if record is None or record.used or record.shop_id != shop_id or now >= record.expires_at:
            raise ShopeeApiError("error_auth", "Invalid code")
        record.used = True
        return self._issue(shop_id, now)

    def refresh(self, refresh_token: str, shop_id: int, now: float) -> TokenGrant:
        """access_token/get: trade a refresh token for a new pair; the old one is burnt."""
        record = self._refresh.get(refresh_token)
        if record is None or record.used:
            raise ShopeeApiError("error_auth", "Invalid refresh_token.")
        if record.shop_id != shop_id:
            raise ShopeeApiError(
                "error_shop_refresh_token",
                "Your refresh token is error ,please check refresh token or shopid.",
            )
        if now >= record.expires_at:
            raise ShopeeApiError("refresh_token_expired", "Your refresh_token expired.")
        return self._issue(shop_id, now)

    def _issue(self, shop_id: int, now: float) -> TokenGrant:
        grace_end = now + self._config.old_access_token_grace_seconds
        for access in self._access.values():
            if access.shop_id == shop_id:
                access.expires_at = min(access.expires_at, grace_end)
        for refresh in self._refresh.values():
            if refresh.shop_id == shop_id:
                refresh.used = True
        access_token = _token_text(self._rng)
        refresh_token = _token_text(self._rng)
        ttl = self._config.access_token_ttl_seconds
        self._access[access_token] = _AccessToken(shop_id, now + ttl)
        self._refresh[refresh_token] = _RefreshToken(
            shop_id, now + self._config.refresh_token_ttl_seconds
        )
        return TokenGrant(shop_id, access_token, refresh_token, ttl)

    def access_token_valid(self, access_token: str, shop_id: int, now: float) -> bool:
        record = self._access.get(access_token)
        return record is not None and record.shop_id == shop_id and now < record.expires_at

    def expire_access_tokens(self, shop_id: int, now: float) -> None:
        for access in self._access.values():
            if access.shop_id == shop_id:
                access.expires_at = min(access.expires_at, now)

    def expire_refresh_tokens(self, shop_id: int, now: float) -> None:
        for refresh in self._refresh.values():
            if refresh.shop_id == shop_id:
                refresh.expires_at = min(refresh.expires_at, now)

    def revoke(self, shop_id: int, now: float) -> None:
        """Deauthorisation: every token and pending code of the shop stops working."""
        self.expire_access_tokens(shop_id, now)
        for refresh in self._refresh.values():
            if refresh.shop_id == shop_id:
                refresh.used = True
        for code in self._codes.values():
            if code.shop_id == shop_id:
                code.used = True
