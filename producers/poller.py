"""``orderflow poller``: every order change reaches Kafka even if every push were lost.

Each round, for every authorised shop whose lease it can take, the poller lists the next
``update_time`` window (``producers.reconcile``), writes one notice per order and advances the
shop's watermark only after Kafka acknowledged all of them. Then it drains Shopee's lost-push
store, confirming a page only after its notices are acknowledged, and now and then reads the
app's push subscription status.

A blocked shop (authorisation gone, quota spent) is skipped and shown in
``orderflow_shop_blocked``; a transient failure leaves the watermark where it was and the
shop is tried again shortly. The round repeats at once while any shop is catching up and
every ``ORDERFLOW_POLLER_INTERVAL_SECONDS`` once all are current.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import click

from orderflow.failures import kind_of
from orderflow.metrics import Metrics
from orderflow.process import Heartbeat, StopFlag
from orderflow.settings import Settings
from producers.notices import NoticeWriter, notice_from_list_entry, notice_from_push
from producers.reconcile import list_window, next_window
from producers.state import Leases, ShopAuthorizations, Watermarks
from producers.webhook import authorization_changes, record_authorizations
from shopee.client import ShopeeClient
from shopee.errors import MalformedPush, MalformedResponse
from shopee.push import OrderStatusPush, TrackingNumberPush, parse_push_object

log = logging.getLogger(__name__)

LOST_PUSH_LEASE = "poll:lost_push"
PUSH_STATUSES = ("Normal", "Warning", "Suspended")


def shop_lease(shop_id: int) -> str:
    return f"poll:shop:{shop_id}"


@dataclass(frozen=True)
class PollerConfig:
    initial_lookback: int = 3 * 86400
    overlap: int = 300
    window: int = 14 * 86400
    settle: int = 5
    interval: float = 60.0
    lease_seconds: float = 120.0
    push_config_interval: float = 300.0
    blocked_retry: float = 300.0


@dataclass
class _ShopState:
    retry_at: float = 0.0
    failures: int = 0
    blocked_reason: str | None = None


@dataclass
class Poller:
    client: ShopeeClient
    notices: NoticeWriter
    watermarks: Watermarks
    leases: Leases
    authorizations: ShopAuthorizations
    metrics: Metrics
    config: PollerConfig = PollerConfig()
    clock: Callable[[], float] = time.time
    holder: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    )
    heartbeat: Heartbeat | None = None
    _shops: dict[int, _ShopState] = field(default_factory=dict)
    _push_config_due: float = 0.0

    def run(self, stop: StopFlag, heartbeat: Heartbeat | None = None) -> None:
        """Rounds until ``stop`` is set; a round in progress finishes its current window."""
        failures = 0
        while not stop.is_set():
            try:
                pause = self.run_once(stop)
                failures = 0
            except Exception as exc:
                # The database or Kafka away for the whole round: nothing moved, try again.
                if kind_of(exc) != "transient":
                    raise
                failures += 1
                pause = min(60.0, 2.0 ** min(failures, 6))
                log.warning("round failed (%s); next round in %.0fs", exc, pause)
            if heartbeat is not None:
                heartbeat.beat()
            stop.wait(pause)

    def run_once(self, stop: StopFlag | None = None) -> float:
        """One round over every shop, the lost-push drain and (when due) the push config;
        returns how long to pause before the next round."""
        catching_up = False
        for shop_id in self._eligible_shops():
            if stop is not None and stop.is_set():
                return 0.0
            catching_up |= self._poll_shop(shop_id) is False
            if self.heartbeat is not None:
                self.heartbeat.beat()  # a round over many shops is progress, not a hang
        self._guard("lost pushes", self.drain_lost_pushes)
        due = self.clock() >= self._push_config_due
        if due and self._guard("push config", self.check_push_config):
            self._push_config_due = self.clock() + self.config.push_config_interval
        return 0.0 if catching_up else self.config.interval

    def _renew(self, lease: str) -> bool:
        """Take or extend ``lease`` for this replica; False if another replica holds it."""
        now = self.clock()
        return self.leases.try_take(lease, self.holder, now, now + self.config.lease_seconds)

    def _guard(self, what: str, step: Callable[[], object]) -> bool:
        try:
            step()
        except Exception as exc:
            kind = kind_of(exc)
            if kind is None:
                raise
            level = logging.WARNING if kind == "transient" else logging.ERROR
            log.log(level, "%s: %s failure, trying again next round: %s", what, kind, exc)
            return False
        return True

    # -- shops --------------------------------------------------------------------------------

    def _eligible_shops(self) -> list[int]:
        """Shops with a stored token that Shopee has not deauthorised since."""
        tokens = self.client.tokens.store.load_all()
        authorizations = self.authorizations.all()
        now = self.clock()
        shops = []
        for token in tokens:
            auth = authorizations.get(token.shop_id)
            if (
                auth is not None
                and auth.state == "deauthorized"
                and auth.changed_at >= token.authorized_at
            ):
                self._block(token.shop_id, "deauthorized", now)
                continue
            state = self._shops.setdefault(token.shop_id, _ShopState())
            if state.blocked_reason == "deauthorized":
                self._unblock(token.shop_id)
            if now >= state.retry_at:
                shops.append(token.shop_id)
        return shops

    def _block(self, shop_id: int, reason: str, now: float) -> None:
        state = self._shops.setdefault(shop_id, _ShopState())
        if state.blocked_reason != reason:
            if state.blocked_reason is not None:
                self._set_blocked_gauge(shop_id, state.blocked_reason, 0)
            log.error(
                "shop %d is blocked (%s): skipping it, the other shops carry on", shop_id, reason
            )
        state.blocked_reason = reason
        state.retry_at = now + self.config.blocked_retry
        self._set_blocked_gauge(shop_id, reason, 1)

    def _unblock(self, shop_id: int) -> None:
        state = self._shops.setdefault(shop_id, _ShopState())
        if state.blocked_reason is not None:
            log.info("shop %d is no longer blocked (%s)", shop_id, state.blocked_reason)
            self._set_blocked_gauge(shop_id, state.blocked_reason, 0)
        state.blocked_reason = None
        state.failures = 0

    def _set_blocked_gauge(self, shop_id: int, reason: str, value: int) -> None:
        self.metrics.shop_blocked.labels("poller", str(shop_id), reason).set(value)

    def _poll_shop(self, shop_id: int) -> bool | None:
        """Reconcile one window of ``shop_id``. True: the shop is current; False: catching
        up; None: the window failed or the shop is held by another replica."""
        lease = shop_lease(shop_id)
        if not self._renew(lease):
            return None
        try:
            current = self.reconcile_window(shop_id)
        except Exception as exc:
            kind = kind_of(exc)
            if kind is None:
                raise
            self._on_failure(shop_id, kind, exc)
            return None
        finally:
            self.leases.release(lease, self.holder)
        self._unblock(shop_id)
        return current

    def _on_failure(self, shop_id: int, kind: str, exc: Exception) -> None:
        now = self.clock()
        if kind == "transient":
            state = self._shops.setdefault(shop_id, _ShopState())
            state.failures += 1
            state.retry_at = now + min(60.0, 2.0 ** min(state.failures, 6))
            self.metrics.poll_windows.labels(str(shop_id), "transient").inc()
            log.warning("shop %d: transient failure, watermark kept, retrying: %s", shop_id, exc)
            return
        self.metrics.poll_windows.labels(str(shop_id), "blocked").inc()
        reason = type(exc).__name__ if kind == "blocked" else f"final:{type(exc).__name__}"
        log.error("shop %d: %s", shop_id, exc)
        self._block(shop_id, reason, now)

    def reconcile_window(self, shop_id: int) -> bool:
        """List the shop's next window, write its notices and, once Kafka acknowledged all of
        them, advance the watermark. Returns whether the shop is now current."""
        now = int(self.clock())
        watermark = self.watermarks.get(shop_id)
        if watermark is None:
            watermark = now - self.config.initial_lookback
            log.info("shop %d: first reconciliation, from %d", shop_id, watermark)
        window, current = next_window(
            watermark,
            now,
            overlap=self.config.overlap,
            max_span=self.config.window,
            settle=self.config.settle,
        )
        if window is None:
            return True
        listing = list_window(self.client, shop_id, window)
        if not self._renew(shop_lease(shop_id)):
            # Listing outlived the lease and another replica has the shop now: its window
            # covers this one, and nothing was written or moved here.
            log.warning(
                "shop %d: lease lost while listing; leaving the window to its holder", shop_id
            )
            return False
        found_at = self.clock()
        notices = [
            notice_from_list_entry(shop_id, entry, source="poll", found_at=found_at)
            for entry in listing.entries
        ]
        self.notices.write(notices)
        self.watermarks.advance(shop_id, window.end, int(self.clock()))
        self.metrics.poll_windows.labels(str(shop_id), "ok").inc()
        self.metrics.reconciled_until.labels(str(shop_id)).set(window.end)
        log.debug(
            "shop %d: window %d..%d, %d orders", shop_id, window.start, window.end, len(notices)
        )
        return current

    # -- partner level ------------------------------------------------------------------------

    def drain_lost_pushes(self) -> int:
        """Move every lost push into Kafka, page by page; returns how many entries were
        drained. A page is confirmed only after its notices are acknowledged."""
        if not self._renew(LOST_PUSH_LEASE):
            return 0
        drained = 0
        try:
            while True:
                page = self.client.get_lost_push_message()
                if not page.push_message_list:
                    if page.has_next_page:
                        raise MalformedResponse(
                            "get_lost_push_message: has_next_page with no messages",
                            api="push.get_lost_push_message",
                        )
                    return drained
                if page.last_message_id is None:
                    raise MalformedResponse(
                        "get_lost_push_message: messages without last_message_id",
                        api="push.get_lost_push_message",
                    )
                notices = []
                changes = []
                for message in page.push_message_list:
                    code = str(message.code)
                    try:
                        push = parse_push_object(message.push_body())
                    except MalformedPush as exc:
                        # The order is still reconciled by get_order_list; keep the evidence.
                        log.error(
                            "lost push code %s is malformed, skipped: %s (%r)",
                            code,
                            exc,
                            message.data,
                        )
                        self.metrics.lost_pushes.labels(code, "malformed").inc()
                        continue
                    if isinstance(push, OrderStatusPush | TrackingNumberPush):
                        notices.append(
                            notice_from_push(push, source="lost_push", received_at=self.clock())
                        )
                        self.metrics.lost_pushes.labels(code, "notice").inc()
                    else:
                        found = authorization_changes(push, self.clock())
                        changes.extend(found)
                        self.metrics.lost_pushes.labels(
                            code, "partner_event" if found else "ignored"
                        ).inc()
                self.notices.write(notices)
                record_authorizations(self.authorizations, self.metrics, changes)
                self.client.confirm_consumed_lost_push_message(page.last_message_id)
                drained += len(page.push_message_list)
                if not page.has_next_page:
                    return drained
                if not self._renew(LOST_PUSH_LEASE):
                    return drained  # another replica took over (our lease had run out)
        finally:
            self.leases.release(LOST_PUSH_LEASE, self.holder)

    def check_push_config(self) -> str:
        """Read the app's live push status into ``orderflow_shopee_push_subscription_status``."""
        reported = (self.client.get_app_push_config().live_push_status or "").capitalize()
        # Shopee's text is free-form: anything undocumented is "Other" (a bounded label).
        status = reported if reported in PUSH_STATUSES else "Other"
        for known in (*PUSH_STATUSES, "Other"):
            self.metrics.push_subscription_status.labels(known).set(1 if known == status else 0)
        if status != "Normal":
            log.error(
                "Shopee reports the app's push subscription as %r: pushes are failing or "
                "switched off; polling carries the load until it is Normal again",
                reported,
            )
        return status


def config_from_settings(settings: Settings) -> PollerConfig:
    return PollerConfig(
        initial_lookback=settings.poller_initial_lookback_seconds,
        overlap=settings.poller_overlap_seconds,
        window=settings.shopee_order_list_window_seconds,
        settle=settings.poller_settle_seconds,
        interval=settings.poller_interval_seconds,
        lease_seconds=settings.poller_lease_seconds,
        push_config_interval=settings.poller_push_config_interval_seconds,
        blocked_retry=settings.poller_blocked_retry_seconds,
    )


@click.command("poller")
def poller_command() -> None:
    """Reconcile every authorised shop's orders by update_time and drain lost pushes.

    Safe to run as several replicas: a database lease keeps two from polling one shop.
    """
    from producers.wiring import Ingest

    ingest = Ingest.open("poller")
    try:
        config = config_from_settings(ingest.settings)
        heartbeat = Heartbeat(max_stall_seconds=max(300.0, 3 * config.interval))
        ingest.serve_health(ready=ingest.producer.reachable, alive=heartbeat.alive)
        poller = Poller(
            client=ingest.shopee(),
            notices=ingest.notice_writer(),
            watermarks=Watermarks(ingest.engine),
            leases=Leases(ingest.engine),
            authorizations=ShopAuthorizations(ingest.engine),
            metrics=ingest.metrics,
            config=config,
            heartbeat=heartbeat,
        )
        poller.run(ingest.stop, heartbeat)
    finally:
        ingest.close()
