"""Every Prometheus metric orderflow exposes, declared in one place on an explicit registry.

A process builds one ``Metrics`` and hands it to the parts that record. Labels are bounded:
topic, consumer, API name, outcome and shop id are; order ids never are.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from orderflow import __version__

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The metric objects of one process, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry

        self.build_info = Info("orderflow_build", "Version of the running orderflow.", registry=r)
        self.build_info.info({"version": __version__})

        # Kafka and the event contract
        self.records_produced = Counter(
            "orderflow_records_produced_total",
            "Records acknowledged by the Kafka broker.",
            ["topic"],
            registry=r,
        )
        self.produce_errors = Counter(
            "orderflow_produce_errors_total",
            "Records the broker did not acknowledge.",
            ["topic"],
            registry=r,
        )
        self.records_consumed = Counter(
            "orderflow_records_consumed_total",
            "Records a consumer finished with, by outcome (ok, skipped, dead_letter).",
            ["topic", "consumer", "outcome"],
            registry=r,
        )
        self.decode_errors = Counter(
            "orderflow_decode_errors_total",
            "Records whose bytes were not a valid Confluent-framed Avro record.",
            ["topic"],
            registry=r,
        )
        self.schema_registry_requests = Counter(
            "orderflow_schema_registry_requests_total",
            "Calls to the schema registry, by operation and outcome.",
            ["operation", "outcome"],
            registry=r,
        )

        # Shopee API
        self.shopee_requests = Counter(
            "orderflow_shopee_requests_total",
            "Shopee API calls, by API path and outcome (ok, retryable, auth, final).",
            ["api", "outcome"],
            registry=r,
        )
        self.shopee_request_seconds = Histogram(
            "orderflow_shopee_request_seconds",
            "Wall time of one Shopee API HTTP exchange.",
            ["api"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.shopee_token_refreshes = Counter(
            "orderflow_shopee_token_refreshes_total",
            "Access-token refreshes, by shop and outcome.",
            ["shop_id", "outcome"],
            registry=r,
        )
        self.shopee_refresh_token_age = Gauge(
            "orderflow_shopee_refresh_token_age_seconds",
            "Age of each shop's refresh token; Shopee expires it after 30 days.",
            ["shop_id"],
            registry=r,
        )
        self.shopee_access_token_expires_in = Gauge(
            "orderflow_shopee_access_token_expires_in_seconds",
            "Seconds until each shop's current access token expires.",
            ["shop_id"],
            registry=r,
        )
