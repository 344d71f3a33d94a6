"""Concurrent refreshers (threads, and separate processes) never burn the refresh token.

The sandbox invalidates a refresh token once used, as Shopee does, so a second refresh with
the same token would fail with "Invalid refresh_token." and show up in its call log.
"""

from __future__ import annotations

import multiprocessing
import threading

from shopee.client import ShopeeClient
from shopee.errors import ShopeeError
from shopee.sandbox import FaultConfig, SandboxServer
from tests.integration.shopee.conftest import PARTNER_ID, PARTNER_KEY, ClientFactory
from tests.integration.shopee.refresh_race import replica


def _refresh_calls(sandbox: SandboxServer) -> list[str]:
    return [c.error for c in sandbox.state.call_log.snapshot("auth.access_token.get")]


def _expired_shop_with_an_order(sandbox: SandboxServer, shop: int, item: int) -> str:
    order_sn = sandbox.state.create_order(shop, lines=[(item, 0, 1)])
    sandbox.state.expire_access_tokens(shop)
    # A slow Shopee keeps the first refresher busy while the others arrive.
    sandbox.state.set_faults(FaultConfig(latency_ms=150))
    return order_sn


def test_two_replicas_with_threads_refresh_once(
    sandbox: SandboxServer, make_client: ClientFactory, database_url: str, shop: int, item: int
) -> None:
    first = make_client(database_url)
    first.tokens.authorize(sandbox.state.authorize(shop), shop)
    replicas = [first, make_client(database_url)]
    order_sn = _expired_shop_with_an_order(sandbox, shop, item)
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def worker(client: ShopeeClient) -> None:
        start.wait()
        try:
            (detail,) = client.get_order_detail(shop, [order_sn]).found
            outcomes.append("ok" if detail.order_sn == order_sn else "wrong order")
        except ShopeeError as exc:
            outcomes.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(replicas[n % 2],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes == ["ok"] * 8
    assert _refresh_calls(sandbox) == [""]  # one refresh, and it succeeded
    # The stored refresh token is the live one: refreshing again works.
    sandbox.state.set_faults(FaultConfig())
    sandbox.state.expire_access_tokens(shop)
    first.get_order_detail(shop, [order_sn])
    assert _refresh_calls(sandbox) == ["", ""]


def test_two_processes_refresh_once(
    sandbox: SandboxServer, make_client: ClientFactory, database_url: str, shop: int, item: int
) -> None:
    make_client(database_url).tokens.authorize(sandbox.state.authorize(shop), shop)
    order_sn = _expired_shop_with_an_order(sandbox, shop, item)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results = context.Queue()
    processes = [
        context.Process(
            target=replica,
            args=(
                sandbox.base_url,
                database_url,
                PARTNER_ID,
                PARTNER_KEY,
                shop,
                order_sn,
                start,
                results,
            ),
        )
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    outcomes = sorted(results.get(timeout=60) for _ in processes)
    for process in processes:
        process.join(30)
    assert outcomes == ["ok", "ok"]
    assert _refresh_calls(sandbox) == [""]
