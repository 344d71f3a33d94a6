"""Test-side helpers for talking to a running sandbox: a minimal signed caller (independent of
the project's Shopee client, so the sandbox is tested against the documented formulas), and a
push receiver that records what Shopee would deliver."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from shopee.sandbox import SandboxServer
from shopee.signing import sign_public, sign_shop

MakeSandbox = Callable[..., SandboxServer]
"""``make_sandbox(clock=None, **config)`` (a conftest fixture)."""

PARTNER_ID = 2001887
PARTNER_KEY = "test_partner_key_0123456789abcdef"


class ShopeeCaller:
    """Signs requests like a Shopee client; ``timestamp`` defaults to the sandbox clock."""

    def __init__(self, sandbox: SandboxServer, *, partner_key: str = PARTNER_KEY) -> None:
        self.sandbox = sandbox
        self.partner_id = sandbox.state.config.partner_id
        self.partner_key = partner_key
        self.http = httpx.Client(base_url=sandbox.base_url, timeout=10)

    def close(self) -> None:
        self.http.close()

    def now(self) -> int:
        return int(self.sandbox.state.clock.now())

    def public(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        timestamp: int | None = None,
        key: str | None = None,
    ) -> httpx.Response:
        ts = self.now() if timestamp is None else timestamp
        sign = sign_public(key or self.partner_key, self.partner_id, path, ts)
        query = {"partner_id": self.partner_id, "timestamp": ts, "sign": sign, **(params or {})}
        return self.http.request(method, path, params=query, json=body)

    def shop(
        self,
        method: str,
        path: str,
        shop_id: int,
        access_token: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        timestamp: int | None = None,
        key: str | None = None,
    ) -> httpx.Response:
        ts = self.now() if timestamp is None else timestamp
        sign = sign_shop(key or self.partner_key, self.partner_id, path, ts, access_token, shop_id)
        query = {
            "partner_id": self.partner_id,
            "timestamp": ts,
            "access_token": access_token,
            "shop_id": shop_id,
            "sign": sign,
            **(params or {}),
        }
        return self.http.request(method, path, params=query, json=body)

    def exchange_code(self, code: str, shop_id: int) -> httpx.Response:
        return self.public(
            "POST",
            "/api/v2/auth/token/get",
            body={"code": code, "shop_id": shop_id, "partner_id": self.partner_id},
        )

    def refresh(self, refresh_token: str, shop_id: int) -> httpx.Response:
        return self.public(
            "POST",
            "/api/v2/auth/access_token/get",
            body={
                "refresh_token": refresh_token,
                "shop_id": shop_id,
                "partner_id": self.partner_id,
            },
        )

    def link_shop(self, shop_id: int) -> ShopSession:
        """Authorise the shop and exchange the code; the shop must exist."""
        answer = self.exchange_code(self.sandbox.state.authorize(shop_id), shop_id).json()
        assert answer["error"] == "", answer
        return ShopSession(self, shop_id, answer["access_token"], answer["refresh_token"])


@dataclass
class ShopSession:
    caller: ShopeeCaller
    shop_id: int
    access_token: str
    refresh_token: str

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.caller.shop("GET", path, self.shop_id, self.access_token, params=params)

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.caller.shop("POST", path, self.shop_id, self.access_token, body=body)


@dataclass(frozen=True)
class ReceivedPush:
    path: str
    authorization: str
    body: bytes
    at: float


@dataclass
class PushReceiver:
    """A callback endpoint. ``mode`` decides the answer: "ok" (204, empty body), "fail" (500),
    "body" (200 with a body, which Shopee counts as a failure), "slow" (sleeps ``delay``)."""

    mode: str = "ok"
    delay: float = 0.0
    received: list[ReceivedPush] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/shopee/push"

    def bodies(self) -> list[bytes]:
        with self.lock:
            return [push.body for push in self.received]

    def start(self) -> PushReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.received.append(
                        ReceivedPush(
                            self.path, self.headers.get("Authorization", ""), body, time.time()
                        )
                    )
                if receiver.mode == "slow":
                    time.sleep(receiver.delay)
                if receiver.mode == "fail":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif receiver.mode == "body":
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                else:
                    self.send_response(204)
                    self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test output is about assertions, not access logs."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join(5)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> None:
    """Poll ``condition`` until true; fail the test after ``timeout`` real seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
