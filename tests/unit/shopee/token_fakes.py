"""Test doubles for the token lifecycle: a fake Shopee token endpoint and a fake clock."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path

from orderflow.db import create_engine, migrate
from shopee.errors import ReauthorizationRequired
from shopee.models import TokenGrant
from shopee.tokens import SqlTokenStore


class FakeClock:
    """Unix time that moves only when a test (or an injected sleep) moves it."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class FakeGrantor:
    """Shopee's token endpoints as the reference describes them: every refresh token works
    once; using a spent one fails with "Invalid refresh_token."."""

    def __init__(self, expire_in: int = 14400, delay: float = 0.0) -> None:
        self.expire_in = expire_in
        self.delay = delay
        self.valid_refresh_tokens: set[str] = set()
        self.refresh_calls: list[str] = []
        self.burnt: list[str] = []
        self.before_answer: Callable[[], None] | None = None
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def _grant(self, shop_id: int) -> TokenGrant:
        n = next(self._counter)
        grant = TokenGrant(
            access_token=f"access-{n}",
            refresh_token=f"refresh-{n}",
            expire_in=self.expire_in,
            shop_id=shop_id,
        )
        self.valid_refresh_tokens.add(grant.refresh_token)
        return grant

    def get_access_token(self, code: str, shop_id: int) -> TokenGrant:
        with self._lock:
            return self._grant(shop_id)

    def refresh_access_token(self, refresh_token: str, shop_id: int) -> TokenGrant:
        with self._lock:
            self.refresh_calls.append(refresh_token)
            if refresh_token not in self.valid_refresh_tokens:
                self.burnt.append(refresh_token)
                raise ReauthorizationRequired("Shopee error error_auth: Invalid refresh_token.")
            self.valid_refresh_tokens.discard(refresh_token)
            grant = self._grant(shop_id)
        if self.delay:
            time.sleep(self.delay)  # a slow Shopee widens the race window
        if self.before_answer is not None:
            self.before_answer()
        return grant


def sqlite_store(directory: Path) -> SqlTokenStore:
    engine = create_engine(f"sqlite:///{directory / 'tokens.db'}")
    migrate(engine)
    return SqlTokenStore(engine)
