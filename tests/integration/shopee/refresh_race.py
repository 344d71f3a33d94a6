"""One "replica" for the cross-process refresh test: its own process, engine and client.

It lives outside the test module so ``multiprocessing``'s spawn start method can import it.
"""

from __future__ import annotations

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from orderflow.db import create_engine
from orderflow.metrics import Metrics
from orderflow.settings import Settings
from shopee.client import ShopeeClient
from shopee.errors import ShopeeError


def replica(
    base_url: str,
    database_url: str,
    partner_id: int,
    partner_key: str,
    shop_id: int,
    order_sn: str,
    start: Barrier,
    results: Queue[str],
) -> None:
    """Wait for the other replicas, then fetch ``order_sn`` once; report "ok" or the error."""
    settings = Settings(
        shopee_partner_id=partner_id,
        shopee_partner_key=SecretStr(partner_key),
        shopee_base_url=base_url,
        database_url=database_url,
    )
    engine = create_engine(settings.database_url)
    with ShopeeClient.from_settings(settings, engine, Metrics(CollectorRegistry())) as client:
        start.wait(30)
        try:
            (detail,) = client.get_order_detail(shop_id, [order_sn]).found
            results.put("ok" if detail.order_sn == order_sn else "wrong order")
        except ShopeeError as exc:
            results.put(f"{type(exc).__name__}: {exc}")
    engine.dispose()
