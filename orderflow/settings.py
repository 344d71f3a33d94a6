"""The one settings object each process reads at start-up.

Every value comes from an ``ORDERFLOW_``-prefixed environment variable (or a ``.env`` file).
The object is frozen: code below the entry point receives it, or the parts of it that it needs,
as arguments and never reads the environment itself. Secrets are ``SecretStr`` and never
appear in ``repr``, logs or error messages.
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "ORDERFLOW_"
# The Shopee statuses of an order whose goods have not left: the only ones auto-cancel may be
# allowed to cancel.
_NOT_YET_SHIPPED = frozenset(
    {"UNPAID", "INVOICE_PENDING", "READY_TO_SHIP", "PROCESSED", "RETRY_SHIP"}
)


class ConfigError(Exception):
    """A setting is missing or wrong; the message says which variable and what to do."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        extra="ignore",
        frozen=True,
    )

    # Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_client_id: str = "orderflow"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    schema_registry_url: str = "http://127.0.0.1:8081/apis/ccompat/v7"
    schema_registry_username: str | None = None
    schema_registry_password: SecretStr | None = None

    # Topics (defaults are the contract other teams subscribe to)
    topic_notices: str = "shopee.order-notices"
    topic_orders: str = "shopee.orders"
    topic_actions: str = "shopee.order-actions"
    topic_partitions: int = Field(default=6, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)

    # Storage: one SQLite file for a single replica; PostgreSQL for several.
    database_url: str = "sqlite:///orderflow.db"

    # Shopee
    shopee_partner_id: int | None = Field(default=None, ge=0, le=4294967295)
    shopee_partner_key: SecretStr | None = None
    shopee_push_key: SecretStr | None = None
    shopee_base_url: str = "https://partner.shopeemobile.com"
    shopee_timeout_seconds: float = Field(default=10.0, gt=0)
    shopee_rate_limit_partner_per_second: float = Field(default=50.0, gt=0)
    shopee_rate_limit_shop_per_second: float = Field(default=10.0, gt=0)
    shopee_max_retries: int = Field(default=4, ge=0)
    shopee_token_refresh_margin_seconds: int = Field(default=1800, ge=0)
    # get_order_list windows: Shopee allows 15 days and does not say whether exactly 15 passes.
    shopee_order_list_window_seconds: int = Field(default=14 * 86400, gt=0, le=15 * 86400)

    # Webhook: Shopee gives up on a push after 3 s, so Kafka must acknowledge well before.
    webhook_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    webhook_ack_timeout_seconds: float = Field(default=2.0, gt=0, lt=3.0)

    # Poller: reconciliation by update_time, and the lost-push drain.
    # How far back a shop the poller has never seen is reconciled (backfill goes further).
    poller_initial_lookback_seconds: int = Field(default=3 * 86400, gt=0)
    # Each window starts this far before the watermark: an order written late into Shopee's
    # index with an older update_time is still listed.
    poller_overlap_seconds: int = Field(default=300, ge=0)
    # Pause between rounds once every shop is current; a shop still catching up goes again
    # at once.
    poller_interval_seconds: float = Field(default=60.0, gt=0)
    # The newest few seconds are left for the next round: Shopee's list lags its writes.
    poller_settle_seconds: int = Field(default=5, ge=0)
    poller_lease_seconds: float = Field(default=120.0, gt=0)
    poller_push_config_interval_seconds: float = Field(default=300.0, gt=0)
    # How long a blocked shop (authorisation gone, quota spent) is left alone before retrying.
    poller_blocked_retry_seconds: float = Field(default=300.0, gt=0)

    # Enricher: notices are gathered up to this many, or for this long, so that detail
    # calls carry 50 orders whenever the traffic allows.
    enricher_max_batch: int = Field(default=500, ge=1)
    enricher_linger_seconds: float = Field(default=0.25, ge=0)
    # An order get_order_detail does not return is asked for alone this many more times
    # before its notice is dead-lettered.
    enricher_missing_retries: int = Field(default=3, ge=0)
    enricher_group_id: str = "orderflow-enricher"
    # Events and the notices' offsets commit in one Kafka transaction: exactly one event per
    # change even across crashes. Off: at-least-once (a crash may repeat a snapshot, with
    # the same event_id).
    enricher_transactions: bool = True
    # Unique per live process. Default: host name plus a random suffix; set it to a stable
    # per-replica name (a StatefulSet pod name) so a restart aborts its predecessor's open
    # transaction at once instead of after the 20 s transaction timeout.
    enricher_transactional_id: str | None = None

    # Consumers (erp-sync, stock-restore, auto-cancel): one group each, named prefix + name.
    consumer_group_prefix: str = "orderflow-"
    consumer_max_batch: int = Field(default=500, ge=1)
    # At most one offset commit per this many seconds (0: after every batch). Effects are
    # durable (and idempotent) before offsets are committed: a longer interval means more
    # records read again, to no effect, after a crash. A commit costs erp-sync about as much
    # as a tenth of its batch.
    consumer_commit_interval_seconds: float = Field(default=1.0, ge=0)
    # How long a blocked shop's parked records wait before they are tried again.
    consumer_blocked_retry_seconds: float = Field(default=300.0, gt=0)
    # The breaker stops a consumer when more than THRESHOLD of its last WINDOW records (and
    # at least MIN_DEAD_LETTERS of them) would be dead-lettered: a bad deploy must not drain
    # the topic into the DLQ.
    consumer_breaker_window: int = Field(default=100, ge=1)
    consumer_breaker_threshold: float = Field(default=0.5, gt=0, le=1)
    consumer_breaker_min_dead_letters: int = Field(default=10, ge=1)
    # erp-sync's target: the ERP store (default), or the seller's own ERP over HTTP.
    erp_http_url: str | None = None
    erp_http_token: SecretStr | None = None
    erp_http_timeout_seconds: float = Field(default=10.0, gt=0)
    # Auto-cancel guardrails: decisions are recorded but no call is made in a dry run; at
    # most BUDGET cancels per shop per day (00:00 UTC+08:00, like Shopee's own limits);
    # only these statuses are ever cancelled.
    auto_cancel_dry_run: bool = False
    auto_cancel_daily_budget: int = Field(default=20, ge=0)
    auto_cancel_statuses: str = "READY_TO_SHIP,PROCESSED"
    auto_cancel_buyer_cancellation: Literal["accept-unshipped", "accept", "reject", "manual"] = (
        "accept-unshipped"
    )
    # Push the ERP's availability of the models a cancellation released to Shopee.
    stock_restore_update_shopee: bool = False

    # HTTP servers
    webhook_public_url: str | None = None
    webhook_port: int = Field(default=8080, ge=1, le=65535)
    metrics_port: int = Field(default=9400, ge=0, le=65535)
    http_host: str = "0.0.0.0"  # noqa: S104 - a pod must be reachable on its own address

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("shopee_base_url")
    @classmethod
    def _base_url_is_scheme_and_host(cls, value: str) -> str:
        value = value.rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                "must start with http:// or https://, e.g. https://partner.shopeemobile.com"
            )
        if "/api/" in value:
            raise ValueError(
                "must be the scheme and host only (e.g. https://partner.shopeemobile.com); "
                "orderflow appends the /api/v2/... paths itself"
            )
        return value

    @field_validator("auto_cancel_statuses")
    @classmethod
    def _cancellable_statuses(cls, value: str) -> str:
        statuses = [part.strip().upper() for part in value.split(",") if part.strip()]
        if not statuses:
            raise ValueError("name at least one status, e.g. READY_TO_SHIP,PROCESSED")
        wrong = [status for status in statuses if status not in _NOT_YET_SHIPPED]
        if wrong:
            raise ValueError(
                f"{', '.join(wrong)}: auto-cancel only cancels orders not yet shipped, so "
                f"each status must be one of {', '.join(sorted(_NOT_YET_SHIPPED))}"
            )
        return ",".join(statuses)

    @field_validator("schema_registry_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                "kafka_security_protocol is SASL_*, so ORDERFLOW_KAFKA_SASL_MECHANISM, "
                "ORDERFLOW_KAFKA_SASL_USERNAME and ORDERFLOW_KAFKA_SASL_PASSWORD must all be set"
            )
        return self

    @cached_property
    def push_key(self) -> SecretStr:
        """The key that signs Shopee pushes: the push key if set, else the partner key."""
        key = self.shopee_push_key or self.shopee_partner_key
        if key is None:
            raise ConfigError(
                "No key to verify Shopee pushes: set ORDERFLOW_SHOPEE_PUSH_KEY (the console's "
                "Live Push Partner Key) or ORDERFLOW_SHOPEE_PARTNER_KEY."
            )
        return key

    def require_shopee(self) -> tuple[int, SecretStr]:
        """The partner id and key, or a ConfigError naming the missing variable."""
        if self.shopee_partner_id is None:
            raise ConfigError(
                "ORDERFLOW_SHOPEE_PARTNER_ID is not set; copy the Partner ID from the Shopee "
                "Open Platform console (the test and live apps have different ids)."
            )
        if self.shopee_partner_key is None:
            raise ConfigError(
                "ORDERFLOW_SHOPEE_PARTNER_KEY is not set; copy the Partner Key that belongs "
                "to ORDERFLOW_SHOPEE_PARTNER_ID from the Shopee Open Platform console."
            )
        return self.shopee_partner_id, self.shopee_partner_key

    def require_webhook_public_url(self) -> str:
        if not self.webhook_public_url:
            raise ConfigError(
                "ORDERFLOW_WEBHOOK_PUBLIC_URL is not set; it must be the callback URL exactly "
                "as registered with Shopee (scheme, host, path, trailing slash), because the "
                "push signature covers it."
            )
        return self.webhook_public_url


def load_settings() -> Settings:
    """Read the environment once; a bad value becomes a ConfigError naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = ENV_PREFIX + "_".join(str(part) for part in error["loc"]).upper()
            if not error["loc"]:
                name = "settings"
            lines.append(f"{name}: {error['msg']}")
        raise ConfigError("Invalid configuration:\n  " + "\n  ".join(lines)) from exc
