from __future__ import annotations

import httpx

from orderflow.health import HealthServer
from orderflow.metrics import Metrics


def test_probes_follow_their_checks_and_metrics_are_served(metrics: Metrics) -> None:
    ready = {"value": False}
    metrics.records_produced.labels("shopee.orders").inc(3)

    def broken() -> bool:
        raise RuntimeError("probe exploded")

    with HealthServer(
        metrics, ready=lambda: ready["value"], alive=broken, host="127.0.0.1", port=0
    ) as server:
        base = f"http://127.0.0.1:{server.port}"
        assert httpx.get(f"{base}/readyz").status_code == 503
        ready["value"] = True
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert httpx.get(f"{base}/healthz").status_code == 503  # a raising check is "not ok"
        body = httpx.get(f"{base}/metrics").text
        assert 'orderflow_records_produced_total{topic="shopee.orders"} 3.0' in body
        assert "orderflow_build_info" in body
        assert httpx.get(f"{base}/nope").status_code == 404


def test_each_process_has_its_own_registry() -> None:
    one, two = Metrics(), Metrics()
    one.records_produced.labels("t").inc()
    assert two.records_produced.labels("t")._value.get() == 0
