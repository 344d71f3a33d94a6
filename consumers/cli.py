"""``orderflow consume erp-sync|stock-restore|auto-cancel [--from earliest|latest]``.

Each consumer is its own process and consumer group (``orderflow-<name>``) on the orders
topic. ``--from`` says where a *new* group starts; a group that has committed offsets always
resumes from them. The defaults: erp-sync and stock-restore read the whole topic (the ERP
and the stock must reflect every order), auto-cancel starts at the end (a new auto-cancel
group must not act on a week of history).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import click
import httpx

from consumers import collector
from consumers.auto_cancel import AutoCancel, AutoCancelConfig
from consumers.breaker import CircuitBreaker
from consumers.deadletter import DeadLetters
from consumers.decisions import BuyerCancellationPolicy
from consumers.erp.http_target import HttpErpTarget
from consumers.erp.outbox import ActionRecord, Outbox
from consumers.erp.store import ErpStore
from consumers.erp_sync import ErpSync, ErpTarget, StoreTarget
from consumers.parking import ParkedRecords
from consumers.publishing import RelayProcess
from consumers.runtime import ConsumerRuntime, Handler, RuntimeConfig
from consumers.stock_restore import StockRestore
from orderflow.kafka import Consumer
from orderflow.process import Heartbeat
from orderflow.settings import Settings, load_settings
from orderflow.topics import dlq_topic
from orderflow.wiring import ProcessParts
from schemas.codec import AvroCodec
from schemas.models import OrderAction, OrderEvent

Start = Literal["earliest", "latest"]
HandlerFactory = Callable[[ProcessParts], Handler]


def erp_sync_handler(parts: ProcessParts) -> Handler:
    settings = parts.settings
    target: ErpTarget
    if settings.erp_http_url:
        http = httpx.Client(timeout=settings.erp_http_timeout_seconds)
        parts.on_close(http.close)
        target = HttpErpTarget(
            settings.erp_http_url,
            http=http,
            actions=ActionRecord(parts.engine),
            token=settings.erp_http_token,
        )
    else:
        target = StoreTarget(ErpStore(parts.engine))
    return ErpSync(target)


def stock_restore_handler(parts: ProcessParts) -> Handler:
    shopee = parts.shopee() if parts.settings.stock_restore_update_shopee else None
    return StockRestore(ErpStore(parts.engine), shopee)


def auto_cancel_handler(parts: ProcessParts) -> Handler:
    settings = parts.settings
    return AutoCancel(
        store=ErpStore(parts.engine),
        outbox=Outbox(parts.engine),
        actions=ActionRecord(parts.engine),
        client=parts.shopee(),
        metrics=parts.metrics,
        config=auto_cancel_config(settings),
    )


def auto_cancel_config(settings: Settings) -> AutoCancelConfig:
    return AutoCancelConfig(
        dry_run=settings.auto_cancel_dry_run,
        daily_budget=settings.auto_cancel_daily_budget,
        cancellable=tuple(settings.auto_cancel_statuses.split(",")),  # normalised by Settings
        buyer_policy=BuyerCancellationPolicy(settings.auto_cancel_buyer_cancellation),
    )


def build_runtime(parts: ProcessParts, handler: Handler, consumer: Consumer) -> ConsumerRuntime:
    """The runtime as ``orderflow consume`` runs it (tests and benchmarks build it so too).
    Its actions are published by a relay process, stopped when ``parts`` close."""
    settings, name = parts.settings, handler.name
    relay = RelayProcess(settings, parts.metrics, consumer=name)
    parts.on_close(relay.close)
    return ConsumerRuntime(
        handler=handler,
        consumer=consumer,
        codec=AvroCodec(OrderEvent, settings.topic_orders, parts.registry),
        dead_letters=DeadLetters(
            parts.producer,
            parts.metrics,
            topic=dlq_topic(settings.topic_orders, name),
            consumer=name,
        ),
        parked=ParkedRecords(parts.engine, name),
        actions=relay,
        metrics=parts.metrics,
        breaker=CircuitBreaker(
            window=settings.consumer_breaker_window,
            threshold=settings.consumer_breaker_threshold,
            min_dead_letters=settings.consumer_breaker_min_dead_letters,
        ),
        config=RuntimeConfig(
            max_batch=settings.consumer_max_batch,
            blocked_retry=settings.consumer_blocked_retry_seconds,
            commit_interval=settings.consumer_commit_interval_seconds,
        ),
    )


def run_consumer(name: str, factory: HandlerFactory, start: Start) -> None:
    settings = load_settings()
    parts = ProcessParts.open(name, settings=settings)
    consumer: Consumer | None = None
    try:
        # Register the actions schema now: a registry outage shows at start.
        _ = AvroCodec(OrderAction, settings.topic_actions, parts.registry).schema_id
        handler = factory(parts)
        runtime: ConsumerRuntime | None = None

        def revoked(partitions: list[tuple[str, int]]) -> None:
            if runtime is not None:
                runtime.on_revoked(partitions)

        consumer = Consumer(
            settings,
            group_id=f"{settings.consumer_group_prefix}{name}",
            topics=[settings.topic_orders],
            max_poll_records=settings.consumer_max_batch,
            auto_offset_reset=start,
            on_revoked=revoked,
        )
        runtime = build_runtime(parts, handler, consumer)
        heartbeat = Heartbeat(max_stall_seconds=300.0)
        parts.serve_health(
            ready=lambda: runtime.ready() and parts.producer.reachable(), alive=heartbeat.alive
        )
        with collector.tuned():
            runtime.run(parts.stop, heartbeat)
    finally:
        if consumer is not None:
            consumer.close()
        parts.close()


_FROM = click.option(
    "--from",
    "start",
    type=click.Choice(["earliest", "latest"]),
    default=None,
    help="Where a new consumer group starts (an existing group resumes where it stopped).",
)


@click.group(name="consume")
def consume() -> None:
    """Run one of the consumers of the orders topic."""


@consume.command(name="erp-sync")
@_FROM
def erp_sync_command(start: Start | None) -> None:
    """Upsert every order and its lines into the ERP (new group: from the earliest)."""
    run_consumer("erp-sync", erp_sync_handler, start or "earliest")


@consume.command(name="stock-restore")
@_FROM
def stock_restore_command(start: Start | None) -> None:
    """Give back reserved stock of cancelled orders, deduct shipped ones (new group: from
    the earliest)."""
    run_consumer("stock-restore", stock_restore_handler, start or "earliest")


@consume.command(name="auto-cancel")
@_FROM
def auto_cancel_command(start: Start | None) -> None:
    """Reserve stock for new orders, cancel those it cannot cover (OUT_OF_STOCK), answer
    buyer cancellation requests (new group: from the latest)."""
    run_consumer("auto-cancel", auto_cancel_handler, start or "latest")
