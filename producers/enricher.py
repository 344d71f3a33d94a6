"""``orderflow enricher``: notices in, full order snapshots out.

The loop, once per batch:

1. gather notices (up to ``max_batch``, or whatever arrived within ``linger`` seconds), so
   that one get_order_detail call carries 50 orders whenever the traffic allows;
2. per shop, fetch the details of the distinct orders in calls of up to 50; an order Shopee
   does not return is asked for alone a few more times, then its notices are dead-lettered
   with the reason (the other 49 carry on);
3. emit an ``OrderEvent`` for every order whose snapshot is newer than the newest one
   already emitted for it (state in the database): never an older ``update_time``, and the
   same ``update_time`` again only with another status (Shopee's timestamps have one-second
   resolution, so two changes in one second share one; see ``should_emit``);
4. commit the events (and any dead letters) together with the notices' offsets in one
   Kafka transaction, then remember the snapshots in the database.

Exactly once: a crash before the commit aborts the transaction (read_committed subscribers
never see its events) and the notices are read again; a crash after it leaves the database
behind the topic, so on every partition assignment the enricher first re-reads the orders
topic's tail into the database (``recover``), from a little before the newest remembered
snapshot or a few minutes back, whichever is earlier: enough when a dead replica's
partitions move within minutes, as the group's session timeout makes them. With
``ORDERFLOW_ENRICHER_TRANSACTIONS=false`` it is at-least-once instead: events are
acknowledged, snapshots remembered, then offsets committed, and a crash in between can
repeat a snapshot (with the same ``event_id``).

Failures follow the four kinds: undecodable notices and orders Shopee does not return are
dead-lettered; a blocked shop's notices are parked in the database and re-published once a
probe says the shop is served again; anything transient aborts, rewinds the batch and
retries it after a backoff; anything else crashes.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import click
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from consumers.deadletter import DeadLetters
from orderflow.failures import kind_of
from orderflow.kafka import (
    ConsumedRecord,
    Consumer,
    Placed,
    Producer,
    iter_since,
    next_offsets,
    rewind,
    wait_all,
)
from orderflow.metrics import Metrics
from orderflow.process import Heartbeat, StopFlag
from orderflow.settings import Settings
from orderflow.topics import dlq_topic
from producers.notices import notice_headers
from producers.state import EmittedSnapshots, ParkedNotices, Snapshot
from schemas.codec import AvroCodec, RecordDecodeError
from schemas.models import (
    AMOUNT_SCALE,
    OrderEvent,
    OrderLine,
    OrderNotice,
    Package,
    PackageLine,
    Source,
    make_event_id,
    order_key,
)
from schemas.registry import SchemaRegistry
from shopee.client import ShopeeClient
from shopee.errors import FinalError, MalformedResponse
from shopee.models import OrderDetail

log = logging.getLogger(__name__)

Scan = Callable[[str, int], Iterable[list[ConsumedRecord]]]
"""``scan(topic, since_ms)``: the committed records of a topic written since then, in
batches."""

CONSUMER_NAME = "enricher"
_QUANTUM = Decimal(1).scaleb(-AMOUNT_SCALE)
# Which notice "revealed" a change when none carries the snapshot's own update_time.
_SOURCE_PRIORITY: dict[str, int] = {"push": 0, "lost_push": 1, "poll": 2, "backfill": 3}


def _utc(epoch_seconds: int | None) -> datetime | None:
    return None if epoch_seconds is None else datetime.fromtimestamp(epoch_seconds, UTC)


def _amount(value: Decimal | None) -> Decimal | None:
    """Shopee sends at most two decimals; anything finer is rounded to the schema's four."""
    if value is None:
        return None
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -AMOUNT_SCALE:
        return value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
    return value


def event_from_detail(
    shop_id: int,
    detail: OrderDetail,
    *,
    previous_status: str | None,
    source: Source,
    emitted_at: datetime,
) -> OrderEvent:
    """The full snapshot event for one order detail (pure)."""
    update_time = _utc(detail.update_time)
    assert update_time is not None
    return OrderEvent(
        event_id=make_event_id(
            marketplace="shopee",
            shop_id=shop_id,
            order_sn=detail.order_sn,
            status=detail.order_status,
            update_time=update_time,
            source=source,
        ),
        shop_id=shop_id,
        order_sn=detail.order_sn,
        region=detail.region,
        currency=detail.currency,
        status=detail.order_status,
        previous_status=previous_status,
        completed_scenario=getattr(detail, "completed_scenario", None) or None,
        create_time=_utc(detail.create_time),
        update_time=update_time,
        pay_time=_utc(detail.pay_time),
        ship_by_date=_utc(detail.ship_by_date),
        days_to_ship=detail.days_to_ship,
        cod=bool(detail.cod),
        total_amount=_amount(detail.total_amount),
        estimated_shipping_fee=_amount(detail.estimated_shipping_fee),
        actual_shipping_fee=_amount(detail.actual_shipping_fee),
        payment_method=detail.payment_method,
        shipping_carrier=detail.shipping_carrier,
        buyer_user_id=detail.buyer_user_id,
        cancel_by=detail.cancel_by,
        cancel_reason=detail.cancel_reason,
        buyer_cancel_reason=detail.buyer_cancel_reason,
        items=tuple(
            OrderLine(
                item_id=item.item_id,
                model_id=item.model_id,
                order_item_id=item.order_item_id,
                promotion_group_id=item.promotion_group_id,
                item_name=item.item_name,
                model_name=item.model_name,
                item_sku=item.item_sku or None,
                model_sku=item.model_sku or None,
                quantity=item.model_quantity_purchased,
                original_price=_amount(item.model_original_price),
                discounted_price=_amount(item.model_discounted_price),
            )
            for item in detail.item_list
        ),
        packages=tuple(
            Package(
                package_number=package.package_number,
                logistics_status=package.logistics_status,
                shipping_carrier=package.shipping_carrier,
                tracking_number=getattr(package, "tracking_number", None) or None,
                items=tuple(
                    PackageLine(
                        item_id=line.item_id, model_id=line.model_id, quantity=line.model_quantity
                    )
                    for line in package.item_list
                ),
            )
            for package in detail.package_list
        ),
        source=source,
        emitted_at=emitted_at,
    )


def revealing_source(notices: Sequence[OrderNotice], update_time: int) -> Source:
    """The source of the notice that revealed a snapshot with ``update_time``: one that
    reported exactly that time, else the most direct source among them (pure)."""
    exact = [
        n
        for n in notices
        if n.update_time is not None and int(n.update_time.timestamp()) == update_time
    ]
    candidates = exact or list(notices)
    return min(candidates, key=lambda n: _SOURCE_PRIORITY.get(n.source, 9)).source


def should_emit(detail: OrderDetail, emitted: Snapshot | None) -> bool:
    """Emit a snapshot only if it is newer than the newest one already emitted (pure).

    Shopee's ``update_time`` has one-second resolution, so two changes in the same second
    share it: a snapshot with the same ``update_time`` but another status is the later of
    the two and is emitted (its event id differs by status). Same time and status is a
    duplicate and is not.
    """
    if emitted is None or detail.update_time > emitted.update_time:
        return True
    return detail.update_time == emitted.update_time and detail.order_status != emitted.status


@dataclass(frozen=True)
class _Notice:
    record: ConsumedRecord
    notice: OrderNotice


@dataclass
class EnricherConfig:
    max_batch: int = 500
    linger: float = 0.25
    missing_retries: int = 3
    missing_retry_delay: float = 0.5
    blocked_retry: float = 300.0
    poll_timeout: float = 1.0
    # Recovery re-reads the orders topic from this long before the newest remembered
    # snapshot (clock skew between replicas, a batch in flight) and at least this far back
    # from now (a crashed replica's last batch, before its partitions moved here).
    recovery_margin: float = 60.0
    recovery_lookback: float = 120.0


@dataclass
class Enricher:
    consumer: Consumer
    client: ShopeeClient
    notice_codec: AvroCodec[OrderNotice]
    event_codec: AvroCodec[OrderEvent]
    producer: Producer
    dead_letters: DeadLetters
    snapshots: EmittedSnapshots
    parked: ParkedNotices
    metrics: Metrics
    config: EnricherConfig = field(default_factory=EnricherConfig)
    # Set when ``producer`` is transactional; then recovery needs ``scan``.
    transactional: bool = False
    scan: Scan | None = None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], object] = time.sleep
    _buffer: list[ConsumedRecord] = field(default_factory=list)
    _recover_needed: bool = True
    _blocked_until: dict[int, tuple[float, str]] = field(default_factory=dict)
    _failures: int = 0
    _parked_checked: bool = False
    _tally: Counter[tuple[str, tuple[str, ...]]] = field(default_factory=Counter)

    # -- the loop -----------------------------------------------------------------------------

    def run(self, stop: StopFlag, heartbeat: Heartbeat | None = None) -> None:
        """Batches until ``stop`` is set; the batch in hand is finished and committed."""
        while not stop.is_set():
            self.run_once(stop)
            if heartbeat is not None:
                heartbeat.beat()

    def run_once(self, stop: StopFlag | None = None) -> int:
        """Gather and process one batch; returns how many notices it finished.

        Only transient failures are retried here (the batch is rewound, nothing committed);
        poison and blocked shops are handled per record and per shop further down, so one
        that reaches this level is a bug and crashes the process.
        """
        records: list[ConsumedRecord] = []
        try:
            records = self._gather()
            self._unpark_due()
            if not records:
                return 0
            self.process(records)
        except Exception as exc:
            kind = kind_of(exc)
            if kind != "transient":
                raise
            self._failures += 1
            self.metrics.consumer_retries.labels(CONSUMER_NAME).inc()
            delay = min(30.0, 0.5 * 2 ** min(self._failures, 6))
            log.warning(
                "batch of %d notices failed (%s: %s); retrying in %.1fs without committing",
                len(records),
                kind,
                exc,
                delay,
            )
            rewind(self.consumer, records)
            if stop is not None:
                stop.wait(delay)
            else:
                self.sleep(delay)
            return 0
        self._failures = 0
        return len(records)

    def on_assigned(self, partitions: list[tuple[str, int]]) -> None:
        """Rebalance: a replica that died after a commit may have left the database behind
        the topic for these partitions; recover before processing them."""
        if partitions:
            self._recover_needed = True

    def on_revoked(self, partitions: list[tuple[str, int]]) -> None:
        """Rebalance: drop gathered records of partitions this member no longer owns (their
        new owner reads them again from the committed offset)."""
        gone = set(partitions)
        self._buffer = [r for r in self._buffer if (r.topic, r.partition) not in gone]

    def _gather(self) -> list[ConsumedRecord]:
        deadline: float | None = None
        while len(self._buffer) < self.config.max_batch:
            if deadline is None:
                timeout = self.config.poll_timeout
            else:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
            records = self.consumer.poll(
                timeout, max_records=self.config.max_batch - len(self._buffer)
            )
            if not records:
                if self._buffer:
                    break
                return []
            self._buffer.extend(records)
            if deadline is None:
                deadline = time.monotonic() + self.config.linger
        batch, self._buffer = self._buffer, []
        return batch

    # -- one batch ----------------------------------------------------------------------------

    def process(self, records: Sequence[ConsumedRecord]) -> None:
        """Turn one batch of notice records into events, dead letters and parked notices,
        and commit their offsets. Raises on transient trouble (nothing committed)."""
        if self._recover_needed and self.transactional:
            self.recover()
        self._recover_needed = False
        offsets = self._next_offsets(records)
        self._tally.clear()
        if self.transactional:
            self.producer.begin_transaction()
        try:
            pending, snapshots = self._enrich(records)
            wait_all(pending, time.monotonic() + 30.0, what="events and dead letters")
            if self.transactional:
                self.producer.commit_transaction(offsets, self.consumer)
        except BaseException:
            if self.transactional:
                self.producer.abort_transaction()
            raise
        self._remember(snapshots)
        if not self.transactional:
            self.consumer.commit(offsets)
        # Counted once the batch is committed: an aborted, retried batch counts once.
        for (name, labels), n in self._tally.items():
            getattr(self.metrics, name).labels(*labels).inc(n)

    def _enrich(
        self, records: Sequence[ConsumedRecord]
    ) -> tuple[list[Future[Placed]], dict[int, dict[str, Snapshot]]]:
        pending: list[Future[Placed]] = []
        by_shop: dict[int, list[_Notice]] = defaultdict(list)
        for record in records:
            try:
                notice = self.notice_codec.decode(record.value or b"")
            except RecordDecodeError as exc:
                log.error(
                    "dead-lettering an undecodable notice at %s/%d@%d: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    exc,
                )
                pending.append(self.dead_letters.submit(record, str(exc)))
                self._count("notices_consumed", "unknown", "dead_letter")
                continue
            by_shop[notice.shop_id].append(_Notice(record, notice))
        snapshots: dict[int, dict[str, Snapshot]] = {}
        for shop_id, notices in by_shop.items():
            emitted = self._enrich_shop(shop_id, notices, pending)
            if emitted:
                snapshots[shop_id] = emitted
        return pending, snapshots

    def _count(self, metric: str, *labels: str) -> None:
        self._tally[(metric, labels)] += 1

    def _remember(self, snapshots: dict[int, dict[str, Snapshot]]) -> None:
        """Store what was emitted. In transactional mode the events are already committed,
        so this must not give up: a database outage is waited out here (and a crash is
        repaired by ``recover``)."""
        attempt = 0
        while True:
            try:
                now = int(self.clock())
                for shop_id, emitted in snapshots.items():
                    self.snapshots.record(shop_id, emitted, now)
                return
            except Exception as exc:
                if not self.transactional or kind_of(exc) != "transient":
                    raise
                attempt += 1
                delay = min(30.0, 0.5 * 2 ** min(attempt, 6))
                log.warning(
                    "could not remember emitted snapshots (%s); retrying in %.1fs", exc, delay
                )
                self.sleep(delay)

    def recover(self) -> int:
        """Bring the remembered snapshots up to what the orders topic holds: re-read the
        topic's recent tail (committed records only) and keep each order's newest snapshot.
        Returns how many records were read."""
        assert self.scan is not None, "recovery needs a scan of the orders topic"
        last = self.snapshots.last_emitted_at()
        now = self.clock()
        if last is None:
            since_ms = 0  # nothing remembered: the whole topic is the memory
        else:
            start = min(float(last), now - self.config.recovery_lookback)
            since_ms = int((start - self.config.recovery_margin) * 1000)
        latest: dict[int, dict[str, Snapshot]] = defaultdict(dict)
        read = 0
        for batch in self.scan(self.event_codec.topic, max(0, since_ms)):
            for record in batch:  # per key, offset order is emission order
                read += 1
                try:
                    event = self.event_codec.decode(record.value or b"")
                except RecordDecodeError as exc:
                    log.error("recovery skipped an undecodable order event: %s", exc)
                    continue
                latest[event.shop_id][event.order_sn] = Snapshot(
                    int(event.update_time.timestamp()), event.status
                )
        emitted_at = int(now)
        for shop_id, snapshots in latest.items():
            self.snapshots.record(shop_id, snapshots, emitted_at)
        log.info("recovered emitted snapshots from %d order events", read)
        return read

    def _next_offsets(self, records: Sequence[ConsumedRecord]) -> dict[tuple[str, int], int]:
        """What to commit for ``records``, for the partitions this member still owns."""
        owned = self.consumer.assignment()
        return {tp: offset for tp, offset in next_offsets(records).items() if tp in owned}

    def _enrich_shop(
        self, shop_id: int, notices: list[_Notice], pending: list[Future[Placed]]
    ) -> dict[str, Snapshot]:
        blocked = self._blocked_until.get(shop_id)
        if blocked is not None:  # an expired block was probed by _unpark_due already
            self._park(shop_id, notices, blocked[1])
            return {}
        by_order: dict[str, list[_Notice]] = defaultdict(list)
        for item in notices:
            by_order[item.notice.order_sn].append(item)
        self.metrics.detail_batch_size.observe(len(by_order))
        try:
            details, missing = self._fetch(shop_id, list(by_order))
        except Exception as exc:
            if kind_of(exc) != "blocked":
                raise
            reason = type(exc).__name__
            self._block(shop_id, reason)
            log.error("shop %d is blocked (%s): parking its notices: %s", shop_id, reason, exc)
            self._park(shop_id, notices, reason)
            return {}

        for order_sn, reason in missing.items():
            log.error(
                "order %s of shop %d: no detail after retries, dead-lettering its notices: %s",
                order_sn,
                shop_id,
                reason,
            )
            for item in by_order[order_sn]:
                pending.append(
                    self.dead_letters.submit(
                        item.record,
                        f"get_order_detail did not return order {order_sn}: {reason}",
                        attempts=1 + self.config.missing_retries,
                    )
                )
                self._count("notices_consumed", item.notice.source, "dead_letter")

        known = self.snapshots.latest(shop_id, [d.order_sn for d in details])
        emitted_at = datetime.fromtimestamp(self.clock(), UTC)
        emitted: dict[str, Snapshot] = {}
        for detail in details:
            order_notices = by_order.get(detail.order_sn)
            if not order_notices:
                continue  # Shopee returned an order nobody asked for
            previous = known.get(detail.order_sn)
            if not should_emit(detail, previous):
                for item in order_notices:
                    self._count("notices_consumed", item.notice.source, "unchanged")
                continue
            source = revealing_source([item.notice for item in order_notices], detail.update_time)
            try:
                event = event_from_detail(
                    shop_id,
                    detail,
                    previous_status=None if previous is None else previous.status,
                    source=source,
                    emitted_at=emitted_at,
                )
            except ValidationError as exc:
                # This order's detail cannot be an OrderEvent (a value outside the schema):
                # poison for its notices only.
                reason = f"order {detail.order_sn} does not fit the OrderEvent schema: {exc}"
                log.error("shop %d: %s", shop_id, reason)
                for item in order_notices:
                    pending.append(self.dead_letters.submit(item.record, reason[:2000]))
                    self._count("notices_consumed", item.notice.source, "dead_letter")
                continue
            pending.append(
                self.producer.submit(
                    self.event_codec.topic,
                    key=order_key(shop_id, detail.order_sn),
                    value=self.event_codec.encode(event),
                    headers=[
                        ("event_id", event.event_id.encode()),
                        ("source", source.encode()),
                    ],
                )
            )
            emitted[detail.order_sn] = Snapshot(detail.update_time, detail.order_status)
            self._count("events_emitted", source)
            if source != "push":
                self._count("changes_seen_first_by_poll", source)
            for item in order_notices:
                self._count("notices_consumed", item.notice.source, "emitted")
        return emitted

    def _fetch(
        self, shop_id: int, order_sns: list[str]
    ) -> tuple[list[OrderDetail], dict[str, str]]:
        """Details of ``order_sns``; orders still missing after asking alone, with why.

        A batch answer that is final (a parameter Shopee refuses) or malformed may be about
        one order in it: then each order is asked for alone. If some come back, the ones
        that fail are that order's problem and end up in ``missing``; if none comes back,
        the problem is not any one order's (Shopee is garbling answers, the app's key is
        wrong) and the batch's error propagates: transient -> retried, final -> crash.
        Blocked shops propagate at once.
        """
        final: set[str] = set()
        try:
            result = self.client.get_order_detail(shop_id, order_sns)
            details, missing = list(result.found), dict(result.missing)
        except (FinalError, MalformedResponse) as exc:
            if kind_of(exc) == "blocked" or len(order_sns) == 1:
                raise
            log.warning(
                "shop %d: a detail call for %d orders failed (%s); asking one by one",
                shop_id,
                len(order_sns),
                exc,
            )
            details, missing = [], {sn: str(exc) for sn in order_sns}
            self._ask_alone(shop_id, details, missing, final)
            if not details:
                raise
        for attempt in range(self.config.missing_retries):
            if all(order_sn in final for order_sn in missing):
                break
            self.sleep(self.config.missing_retry_delay * (attempt + 1))
            self._ask_alone(shop_id, details, missing, final)
        return details, missing

    def _ask_alone(
        self,
        shop_id: int,
        details: list[OrderDetail],
        missing: dict[str, str],
        final: set[str],
    ) -> None:
        """One get_order_detail call per missing order not already answered for good;
        found ones move to ``details``, final answers are added to ``final``."""
        for order_sn in [sn for sn in missing if sn not in final]:
            try:
                retry = self.client.get_order_detail(shop_id, [order_sn])
            except (FinalError, MalformedResponse) as exc:
                if kind_of(exc) == "blocked":
                    raise
                missing[order_sn] = str(exc)
                if isinstance(exc, FinalError):
                    final.add(order_sn)  # a final answer does not change by asking again
                continue
            if retry.found:
                details.extend(retry.found)
                del missing[order_sn]
            else:
                missing[order_sn] = retry.missing.get(order_sn, missing[order_sn])

    # -- blocked shops ------------------------------------------------------------------------

    def _park(self, shop_id: int, notices: Iterable[_Notice], reason: str) -> None:
        items = list(notices)
        self.parked.park(
            shop_id,
            reason,
            [(item.record.key, item.record.value or b"") for item in items],
            int(self.clock()),
        )
        for item in items:
            self._count("notices_consumed", item.notice.source, "parked")

    def _block(self, shop_id: int, reason: str) -> None:
        self._blocked_until[shop_id] = (self.clock() + self.config.blocked_retry, reason)
        self.metrics.shop_blocked.labels(CONSUMER_NAME, str(shop_id), reason).set(1)

    def _unpark_due(self) -> None:
        """For each blocked shop whose retry time has come, ask Shopee about one of its
        parked orders: still blocked -> wait another round; served -> re-publish the
        parked notices (they are processed like new ones) and clear the alert."""
        now = self.clock()
        if not self._parked_checked:
            # Notices parked before a restart: try their shops again now.
            for shop_id in self.parked.counts():
                self._blocked_until.setdefault(shop_id, (now, "parked"))
            self._parked_checked = True
        for shop_id, (until, reason) in list(self._blocked_until.items()):
            if now < until:
                continue
            if self._still_blocked(shop_id):
                self._block(shop_id, reason)
                continue
            del self._blocked_until[shop_id]
            self.metrics.shop_blocked.labels(CONSUMER_NAME, str(shop_id), reason).set(0)
            log.info("shop %d can be served again (was %s)", shop_id, reason)
            self.republish_parked(shop_id)

    def _still_blocked(self, shop_id: int) -> bool:
        rows = self.parked.take(shop_id, limit=1)
        if not rows:
            return False
        try:
            order_sn = self.notice_codec.decode(rows[0].value).order_sn
            self.client.get_order_detail(shop_id, [order_sn])
        except RecordDecodeError:
            return False  # the notice is poison; processing it dead-letters it
        except FinalError as exc:
            return kind_of(exc) == "blocked"
        return False

    def republish_parked(self, shop_id: int) -> int:
        moved = 0
        while True:
            rows = self.parked.take(shop_id)
            if not rows:
                return moved
            if self.transactional:
                self.producer.begin_transaction()
            try:
                futures = [
                    self.producer.submit(
                        self.notice_codec.topic,
                        key=row.key,
                        value=row.value,
                        headers=self._headers_of(row.value),
                    )
                    for row in rows
                ]
                wait_all(futures, time.monotonic() + 30.0, what="re-published parked notices")
                if self.transactional:
                    self.producer.commit_transaction({}, self.consumer)
            except BaseException:
                if self.transactional:
                    self.producer.abort_transaction()
                raise
            self.parked.delete([row.id for row in rows])
            moved += len(rows)
            log.info("shop %d: re-published %d parked notices", shop_id, len(rows))

    def _headers_of(self, value: bytes) -> list[tuple[str, bytes]]:
        """A parked notice's ``event_id`` and ``source`` headers, rebuilt from its value."""
        try:
            return notice_headers(self.notice_codec.decode(value))
        except RecordDecodeError:
            return []


def build_enricher(
    settings: Settings,
    *,
    consumer: Consumer,
    client: ShopeeClient,
    producer: Producer,
    registry: SchemaRegistry,
    engine: Engine,
    metrics: Metrics,
    transactional: bool,
) -> Enricher:
    """The enricher as ``orderflow enricher`` runs it. ``transactional`` must say whether
    ``producer`` was made with a transactional id (see ``enricher_producer_options``)."""
    return Enricher(
        consumer=consumer,
        client=client,
        notice_codec=AvroCodec(OrderNotice, settings.topic_notices, registry),
        event_codec=AvroCodec(OrderEvent, settings.topic_orders, registry),
        producer=producer,
        dead_letters=DeadLetters(
            producer,
            metrics,
            topic=dlq_topic(settings.topic_notices, CONSUMER_NAME),
            consumer=CONSUMER_NAME,
        ),
        snapshots=EmittedSnapshots(engine),
        parked=ParkedNotices(engine),
        metrics=metrics,
        config=EnricherConfig(
            max_batch=settings.enricher_max_batch,
            linger=settings.enricher_linger_seconds,
            missing_retries=settings.enricher_missing_retries,
            blocked_retry=settings.poller_blocked_retry_seconds,
        ),
        transactional=transactional,
        scan=lambda topic, since_ms: iter_since(settings, topic, since_ms),
    )


def enricher_producer_options(settings: Settings) -> dict[str, Any]:
    """Producer options for the enricher: a transactional id unless transactions are off."""
    if not settings.enricher_transactions:
        return {}
    return {
        "transactional_id": settings.enricher_transactional_id
        or f"orderflow-enricher-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    }


@click.command("enricher")
def enricher_command() -> None:
    """Turn notices into full OrderEvent snapshots (get_order_detail, 50 orders a call)."""
    from orderflow.settings import load_settings
    from producers.wiring import Ingest

    settings = load_settings()
    ingest = Ingest.open(
        "enricher", settings=settings, producer_options=enricher_producer_options(settings)
    )
    consumer: Consumer | None = None
    try:
        # Register the schema now: a registry outage shows at start.
        _ = AvroCodec(OrderEvent, settings.topic_orders, ingest.registry).schema_id
        heartbeat = Heartbeat(max_stall_seconds=300.0)
        enricher: Enricher | None = None

        def revoked(partitions: list[tuple[str, int]]) -> None:
            if enricher is not None:
                enricher.on_revoked(partitions)

        def assigned(partitions: list[tuple[str, int]]) -> None:
            if enricher is not None:
                enricher.on_assigned(partitions)

        consumer = Consumer(
            settings,
            group_id=settings.enricher_group_id,
            topics=[settings.topic_notices],
            max_poll_records=settings.enricher_max_batch,
            on_revoked=revoked,
            on_assigned=assigned,
        )
        ingest.serve_health(ready=ingest.producer.reachable, alive=heartbeat.alive)
        enricher = build_enricher(
            settings,
            consumer=consumer,
            client=ingest.shopee(),
            producer=ingest.producer,
            registry=ingest.registry,
            engine=ingest.engine,
            metrics=ingest.metrics,
            transactional=settings.enricher_transactions,
        )
        enricher.run(ingest.stop, heartbeat)
    finally:
        if consumer is not None:
            consumer.close()
        ingest.close()
