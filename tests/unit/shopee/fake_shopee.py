"""A scripted Shopee behind httpx.MockTransport: checks every signature, records every call."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from orderflow.db import create_engine, migrate
from orderflow.metrics import Metrics
from orderflow.settings import Settings
from shopee.client import ShopeeClient
from shopee.signing import PUBLIC_SIGNED_PATHS, sign_public, sign_shop
from tests.unit.shopee.token_fakes import FakeClock

PARTNER_ID = 2001887
PARTNER_KEY = "unit-test-partner-key"
BASE_URL = "https://partner.example.test"

Reply = tuple[int, Any]  # (HTTP status, JSON-able body or raw bytes)
Handler = Callable[["Call"], Reply]


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None


def ok(response: object = None, **flat: object) -> Reply:
    return 200, {"error": "", "message": "", "request_id": "req", "response": response, **flat}


def error(name: str, message: str = "", status: int = 200) -> Reply:
    return status, {"error": name, "message": message, "request_id": "req-err"}


@dataclass
class FakeShopee:
    handlers: dict[str, Handler] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    issued: int = 0

    def __post_init__(self) -> None:
        self.handlers.setdefault("/api/v2/auth/token/get", self._grant)
        self.handlers.setdefault("/api/v2/auth/access_token/get", self._grant)

    def _grant(self, call: Call) -> Reply:
        self.issued += 1
        return 200, {
            "error": "",
            "message": "",
            "request_id": "r",
            "access_token": f"access-{self.issued}",
            "refresh_token": f"refresh-{self.issued}",
            "expire_in": 14400,
        }

    def calls_to(self, path: str) -> list[Call]:
        return [call for call in self.calls if call.path == path]

    def handle(self, request: httpx.Request) -> httpx.Response:
        query = dict(request.url.params)
        body = json.loads(request.content) if request.content else None
        call = Call(request.method, request.url.path, query, body)
        self.calls.append(call)
        timestamp = int(query["timestamp"])
        if call.path in PUBLIC_SIGNED_PATHS:
            expected = sign_public(PARTNER_KEY, PARTNER_ID, call.path, timestamp)
            assert "access_token" not in query and "shop_id" not in query
        else:
            expected = sign_shop(
                PARTNER_KEY,
                PARTNER_ID,
                call.path,
                timestamp,
                query["access_token"],
                int(query["shop_id"]),
            )
        if query.get("sign") != expected or query.get("partner_id") != str(PARTNER_ID):
            status, payload = error("error_sign", "Wrong sign.", 403)
        elif call.path not in self.handlers:
            status, payload = error("error_not_found", "no such api", 404)
        else:
            status, payload = self.handlers[call.path](call)
        if isinstance(payload, bytes):
            return httpx.Response(status, content=payload)
        return httpx.Response(status, json=payload)


@dataclass
class Harness:
    client: ShopeeClient
    shopee: FakeShopee
    clock: FakeClock
    slept: list[float]
    metrics: Metrics


def make_harness(tmp_path: Path, metrics: Metrics, *, max_retries: int = 3) -> Harness:
    shopee = FakeShopee()
    clock = FakeClock()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    settings = Settings(
        shopee_partner_id=PARTNER_ID,
        shopee_partner_key=SecretStr(PARTNER_KEY),
        shopee_base_url=BASE_URL,
        shopee_max_retries=max_retries,
        database_url=f"sqlite:///{tmp_path / 'client.db'}",
    )
    engine = create_engine(settings.database_url)
    migrate(engine)
    client = ShopeeClient.from_settings(
        settings,
        engine,
        metrics,
        http=httpx.Client(transport=httpx.MockTransport(shopee.handle)),
        clock=clock,
        monotonic=clock,
        sleep=sleep,
        random=lambda: 0.5,
    )
    return Harness(client, shopee, clock, slept, metrics)
