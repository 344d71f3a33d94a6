"""Every Prometheus metric orderflow exposes, declared in one place on an explicit registry.

A process builds one ``Metrics`` and hands it to the parts that record. Labels are bounded:
topic, consumer, API name, outcome and shop id are; order ids never are.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from orderflow import __version__

_ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
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
        self.producer_renewals = Counter(
            "orderflow_kafka_producer_renewals_total",
            "Kafka producers replaced by a new one after kafka-python left them unable to write.",
            registry=r,
        )
        self.records_consumed = Counter(
            "orderflow_records_consumed_total",
            "Records a consumer finished with, by outcome (applied, unchanged, dead_letter, "
            "parked).",
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

        # Webhook
        self.pushes = Counter(
            "orderflow_webhook_pushes_total",
            "Pushes received, by push code and outcome (accepted, verification, "
            "partner_event, ignored, bad_signature, malformed, too_large, unavailable, "
            "disconnected).",
            ["code", "outcome"],
            registry=r,
        )
        self.push_verification_failures = Counter(
            "orderflow_webhook_verification_failures_total",
            "Pushes refused because the Authorization signature was missing or wrong.",
            registry=r,
        )
        self.push_ack_seconds = Histogram(
            "orderflow_webhook_ack_seconds",
            "From request received to the answer, for pushes written to Kafka.",
            buckets=_ACK_BUCKETS,
            registry=r,
        )

        # Poller, lost pushes, backfill
        self.notices_produced = Counter(
            "orderflow_notices_produced_total",
            "OrderNotices acknowledged by Kafka, by source (push, poll, lost_push, backfill).",
            ["source"],
            registry=r,
        )
        self.poll_windows = Counter(
            "orderflow_poller_windows_total",
            "get_order_list windows reconciled, by shop and outcome (ok, transient, blocked).",
            ["shop_id", "outcome"],
            registry=r,
        )
        self.reconciled_until = Gauge(
            "orderflow_poller_reconciled_until_timestamp_seconds",
            "Per shop: every order change before this time (minus the overlap) is on Kafka.",
            ["shop_id"],
            registry=r,
        )
        self.shop_blocked = Gauge(
            "orderflow_shop_blocked",
            "1 while a shop is parked (authorisation gone, quota spent), by reason.",
            ["process", "shop_id", "reason"],
            registry=r,
        )
        self.lost_pushes = Counter(
            "orderflow_lost_pushes_total",
            "Entries drained from get_lost_push_message, by push code and outcome.",
            ["code", "outcome"],
            registry=r,
        )
        self.push_subscription_status = Gauge(
            "orderflow_shopee_push_subscription_status",
            "1 for the app's current live push status (Normal, Warning, Suspended).",
            ["status"],
            registry=r,
        )
        self.shop_authorization = Gauge(
            "orderflow_shop_authorization_state",
            "1 for each shop's authorisation state as last pushed by Shopee.",
            ["shop_id", "state"],
            registry=r,
        )
        self.backfill_windows = Counter(
            "orderflow_backfill_windows_total",
            "Backfill windows finished, by shop.",
            ["shop_id"],
            registry=r,
        )

        # Enricher
        self.notices_consumed = Counter(
            "orderflow_enricher_notices_total",
            "Notices the enricher finished with (counted once their batch committed), by "
            "source and outcome (emitted, unchanged, dead_letter, parked).",
            ["source", "outcome"],
            registry=r,
        )
        self.events_emitted = Counter(
            "orderflow_enricher_events_total",
            "OrderEvents committed to the orders topic, by the source that revealed the change.",
            ["source"],
            registry=r,
        )
        self.changes_seen_first_by_poll = Counter(
            "orderflow_enricher_changes_first_seen_by_poll_total",
            "Order changes revealed by a poll, lost-push drain or backfill rather than a "
            "push: pushes that never arrived (or arrived late).",
            ["source"],
            registry=r,
        )
        self.detail_batch_size = Histogram(
            "orderflow_enricher_detail_batch_orders",
            "Distinct orders per enricher batch, per shop, before splitting into calls of 50.",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.dead_letters = Counter(
            "orderflow_dead_letters_total",
            "Records sent to a dead-letter topic, by consumer.",
            ["consumer"],
            registry=r,
        )
        self.consumer_retries = Counter(
            "orderflow_consumer_transient_retries_total",
            "Batches retried after a transient failure, by consumer.",
            ["consumer"],
            registry=r,
        )

        # Consumers (erp-sync, stock-restore, auto-cancel)
        self.consumer_processing_seconds = Histogram(
            "orderflow_consumer_processing_seconds",
            "Wall time of one consumer batch, from decoding to the committed offsets.",
            ["consumer"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.consumer_breaker_open = Gauge(
            "orderflow_consumer_breaker_open",
            "1 while a consumer is stopped because most of its recent records were poison.",
            ["consumer"],
            registry=r,
        )
        self.consumer_lag_records = Gauge(
            "orderflow_consumer_lag_records",
            "Records not yet processed, per consumer and partition.",
            ["consumer", "partition"],
            registry=r,
        )
        self.consumer_lag_seconds = Gauge(
            "orderflow_consumer_lag_seconds",
            "How old the oldest unprocessed change is (0 when caught up), per consumer.",
            ["consumer"],
            registry=r,
        )
        self.consumer_parked_records = Gauge(
            "orderflow_consumer_parked_records",
            "Records of blocked shops waiting in the database, per consumer.",
            ["consumer"],
            registry=r,
        )
        self.order_actions = Counter(
            "orderflow_order_actions_total",
            "OrderActions published, by consumer, kind and outcome.",
            ["consumer", "kind", "outcome"],
            registry=r,
        )
        self.auto_cancel_decisions = Counter(
            "orderflow_auto_cancel_decisions_total",
            "Auto-cancel decisions for orders stock could not cover, by shop and decision "
            "(cancel, dry_run, over_budget, not_cancellable).",
            ["shop_id", "decision"],
            registry=r,
        )
        self.auto_cancel_budget_remaining = Gauge(
            "orderflow_auto_cancel_budget_remaining",
            "Cancels a shop may still make today (UTC+08:00 day) under the daily budget.",
            ["shop_id"],
            registry=r,
        )
