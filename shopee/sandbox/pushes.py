"""Pushes: their bodies, Shopee's delivery and retry schedule, and the lost-push store.

Shopee POSTs the raw JSON body to the callback URL with ``Authorization: hex(HMAC-SHA256(
push_key, callback_url + "|" + body))``. A delivery succeeds on a 2xx with an **empty** body
within the timeout (3 s); otherwise it is retried 300 s, 1800 s and 10800 s after each failed
attempt (scaled by ``time_factor``), and then the message is "lost": kept for
get_lost_push_message for 3 days until confirmed.

:class:`PushOutbox` is the bookkeeping (pure, time passed in, thread-safe); a
:class:`PushWorker` thread drives it with an :class:`HttpPushSender`. Unit tests drive the
outbox directly with a fake sender and a chosen ``now``.
"""

from __future__ import annotations

import heapq
import json
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from shopee.sandbox.clock import Clock
from shopee.sandbox.config import FaultConfig, SandboxConfig, seeded_random
from shopee.signing import sign_push

VERIFY_INFO = "This is a Verification message.Please respond in the certain format."


def encode_push(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (compact separators, as in Shopee's samples)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def order_status_push(
    *,
    shop_id: int,
    order_sn: str,
    status: str,
    update_time: int,
    completed_scenario: str | None,
    timestamp: int,
    msg_id: str | None,
) -> dict[str, Any]:
    """order_status_push (code 3): note ``ordersn``/``status``, not the API's names."""
    payload: dict[str, Any] = {} if msg_id is None else {"msg_id": msg_id}
    payload["data"] = {
        "items": [],
        "ordersn": order_sn,
        "status": status,
        "completed_scenario": completed_scenario,
        "update_time": update_time,
    }
    payload.update({"shop_id": shop_id, "code": 3, "timestamp": timestamp})
    return payload


def tracking_number_push(
    *,
    shop_id: int,
    order_sn: str,
    forder_id: str,
    package_number: str,
    tracking_no: str,
    timestamp: int,
    msg_id: str | None,
) -> dict[str, Any]:
    """order_trackingno_push (code 4); ``forder_id`` is a 19-digit string."""
    payload: dict[str, Any] = {} if msg_id is None else {"msg_id": msg_id}
    payload["data"] = {
        "ordersn": order_sn,
        "forder_id": forder_id,
        "package_number": package_number,
        "tracking_no": tracking_no,
    }
    payload.update({"shop_id": shop_id, "code": 4, "timestamp": timestamp})
    return payload


def authorization_push(
    *, partner_id: int, shop_id: int, region: str, authorized: bool, timestamp: int
) -> dict[str, Any]:
    """Partner-level code 1 (authorised) or 2 (deauthorised): no top-level ``shop_id``."""
    if authorized:
        data: dict[str, Any] = {
            "authorize_type": "shop authorization by user",
            "extra": f"shop id {shop_id} ({region}) has been authorized successfully",
            "shop_id": shop_id,
            "success": 1,
        }
    else:
        data = {
            "authorize_type": "user cancel shop authorization",
            "success": 1,
            "extra": f"shop id {shop_id} ({region}) has been cancelled its authorization",
        }
    return {
        "data": data,
        "partner_id": partner_id,
        "code": 1 if authorized else 2,
        "timestamp": timestamp,
    }


def verification_push() -> dict[str, Any]:
    """The code-0 message the console sends to check a callback URL."""
    return {"code": 0, "data": {"verify_info": VERIFY_INFO}}


def retry_delay(failed_attempts: int, delays: tuple[float, ...]) -> float | None:
    """Seconds until the next attempt after ``failed_attempts`` failures, None = give up."""
    if 1 <= failed_attempts <= len(delays):
        return delays[failed_attempts - 1]
    return None


@dataclass(frozen=True)
class PushMessage:
    """One push as emitted; ``body`` is what every delivery of it sends, byte for byte."""

    msg_id: str
    code: int
    shop_id: int | None
    timestamp: int
    body: bytes

    def payload(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.body)
        return decoded


@dataclass(frozen=True)
class AttemptResult:
    """The outcome of POSTing one push once."""

    ok: bool
    url: str | None
    http_status: int | None
    detail: str
    authorization: str = ""


@dataclass(frozen=True)
class DeliveryAttempt:
    delivery_id: int
    msg_id: str
    code: int
    attempt: int
    at: float
    result: AttemptResult


@dataclass(frozen=True)
class LostPush:
    """An entry of get_lost_push_message; ``message_id`` grows with every lost push."""

    message_id: int
    message: PushMessage
    lost_at: float


DeliveryState = Literal["pending", "in_flight", "delivered", "lost"]


@dataclass
class Delivery:
    """One scheduled delivery of a message (a duplicated push has two)."""

    delivery_id: int
    message: PushMessage
    due: float
    failed_attempts: int = 0
    state: DeliveryState = "pending"


@dataclass(frozen=True)
class LostPage:
    entries: list[LostPush]
    has_next_page: bool
    last_message_id: int


Sender = Callable[[PushMessage, "str | None"], AttemptResult]


class PushOutbox:
    """Every push the sandbox emitted, its deliveries and attempts, and the lost store."""

    def __init__(self, config: SandboxConfig) -> None:
        self._config = config
        self._rng = seeded_random(config.seed, "push")
        self._cond = threading.Condition()
        self._callback_url = config.callback_url
        self._subscribed = frozenset(config.push_codes)
        self._messages: list[PushMessage] = []
        self._deliveries: dict[int, Delivery] = {}
        self._pending: list[tuple[float, int]] = []
        self._attempts: list[DeliveryAttempt] = []
        self._lost: list[LostPush] = []
        self._dropped: list[PushMessage] = []
        self._confirmed_upto = 0
        self._next_delivery_id = 1
        self._next_lost_id = 1

    # -- settings -------------------------------------------------------------------------

    @property
    def callback_url(self) -> str | None:
        with self._cond:
            return self._callback_url

    def set_callback_url(self, url: str | None) -> None:
        with self._cond:
            self._callback_url = url
            self._cond.notify_all()

    @property
    def subscribed_codes(self) -> frozenset[int]:
        with self._cond:
            return self._subscribed

    def set_subscribed_codes(self, codes: frozenset[int]) -> None:
        with self._cond:
            self._subscribed = codes

    # -- emission ---------------------------------------------------------------------------

    def emit(self, message: PushMessage, now: float, faults: FaultConfig) -> None:
        """Accept a freshly emitted push: schedule its delivery, applying the push faults.

        Unsubscribed codes are ignored. Without a callback URL the push is lost at once.
        """
        with self._cond:
            if message.code not in self._subscribed:
                return
            self._messages.append(message)
            # Draw every random number up front so the sequence does not depend on the branch.
            drop = self._rng.random() < faults.push_drop_rate
            duplicate = self._rng.random() < faults.push_duplicate_rate
            max_delay = faults.push_reorder_max_delay_seconds
            delays = (self._rng.uniform(0, max_delay), self._rng.uniform(0, max_delay))
            if self._callback_url is None:
                self._add_lost(message, now)
                return
            if drop:
                if faults.dropped_push_to_lost_store:
                    self._add_lost(message, now)
                else:
                    self._dropped.append(message)
                return
            self._schedule(message, now + delays[0])
            if duplicate:
                self._schedule(message, now + delays[1])
            self._cond.notify_all()

    def _schedule(self, message: PushMessage, due: float) -> None:
        delivery = Delivery(self._next_delivery_id, message, due)
        self._next_delivery_id += 1
        self._deliveries[delivery.delivery_id] = delivery
        heapq.heappush(self._pending, (due, delivery.delivery_id))

    def _add_lost(self, message: PushMessage, now: float) -> None:
        self._lost.append(LostPush(self._next_lost_id, message, now))
        self._next_lost_id += 1

    # -- delivery ---------------------------------------------------------------------------

    def take_due(self, now: float) -> list[Delivery]:
        """Deliveries whose time has come, earliest first; they are marked in flight."""
        due: list[Delivery] = []
        with self._cond:
            while self._pending and self._pending[0][0] <= now:
                _, delivery_id = heapq.heappop(self._pending)
                delivery = self._deliveries[delivery_id]
                delivery.state = "in_flight"
                due.append(delivery)
        return due

    def finish(self, delivery_id: int, result: AttemptResult, now: float) -> None:
        """Record an attempt; on failure schedule the next retry or move the push to lost."""
        with self._cond:
            delivery = self._deliveries[delivery_id]
            attempt = delivery.failed_attempts + 1
            message = delivery.message
            self._attempts.append(
                DeliveryAttempt(delivery_id, message.msg_id, message.code, attempt, now, result)
            )
            if result.ok:
                delivery.state = "delivered"
                return
            delivery.failed_attempts += 1
            delay = retry_delay(delivery.failed_attempts, self._config.shopee_retry_delays)
            if delay is None:
                delivery.state = "lost"
                self._add_lost(message, now)
                return
            delivery.state = "pending"
            delivery.due = now + delay
            heapq.heappush(self._pending, (delivery.due, delivery_id))
            self._cond.notify_all()

    def run_due(self, now: Callable[[], float], send: Sender) -> int:
        """Attempt every due delivery with ``send`` (outside the lock); returns how many."""
        deliveries = self.take_due(now())
        for delivery in deliveries:
            result = send(delivery.message, self.callback_url)
            self.finish(delivery.delivery_id, result, now())
        return len(deliveries)

    def next_due(self) -> float | None:
        with self._cond:
            return self._pending[0][0] if self._pending else None

    def wait_for_work(self, timeout: float) -> None:
        """Block up to ``timeout`` real seconds or until something is scheduled."""
        with self._cond:
            self._cond.wait(timeout)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # -- lost store ---------------------------------------------------------------------------

    def lost_page(self, now: float) -> LostPage:
        """The earliest unconfirmed lost pushes of the retention window (100 by default)."""
        limit = self._config.lost_push_page_size
        horizon = now - self._config.lost_push_retention_seconds
        with self._cond:
            open_entries = [
                entry
                for entry in self._lost
                if entry.message_id > self._confirmed_upto and entry.lost_at >= horizon
            ]
        page = open_entries[:limit]
        return LostPage(
            entries=page,
            has_next_page=len(open_entries) > limit,
            last_message_id=page[-1].message_id if page else 0,
        )

    def confirm_lost(self, last_message_id: int) -> None:
        """confirm_consumed_lost_push_message: everything up to the id is consumed."""
        with self._cond:
            self._confirmed_upto = max(self._confirmed_upto, last_message_id)

    # -- inspection (tests, control routes) ---------------------------------------------------

    def messages(self) -> list[PushMessage]:
        """Every subscribed push emitted, in emission order."""
        with self._cond:
            return list(self._messages)

    def attempts(self) -> list[DeliveryAttempt]:
        with self._cond:
            return list(self._attempts)

    def lost(self) -> list[LostPush]:
        """Every push that ended up lost, confirmed or not."""
        with self._cond:
            return list(self._lost)

    def dropped(self) -> list[PushMessage]:
        """Pushes the drop fault discarded without a trace in the lost store."""
        with self._cond:
            return list(self._dropped)

    def deliveries(self) -> list[Delivery]:
        with self._cond:
            return [
                Delivery(d.delivery_id, d.message, d.due, d.failed_attempts, d.state)
                for d in self._deliveries.values()
            ]

    def unfinished_count(self) -> int:
        """Deliveries still pending or in flight."""
        with self._cond:
            return sum(1 for d in self._deliveries.values() if d.state in ("pending", "in_flight"))

    def summary(self) -> dict[str, int]:
        with self._cond:
            states = [d.state for d in self._deliveries.values()]
            return {
                "emitted": len(self._messages),
                "pending": states.count("pending") + states.count("in_flight"),
                "delivered": states.count("delivered"),
                "lost": len(self._lost),
                "lost_unconfirmed": sum(
                    1 for e in self._lost if e.message_id > self._confirmed_upto
                ),
                "dropped": len(self._dropped),
                "attempts": len(self._attempts),
            }


class HttpPushSender:
    """POSTs pushes the way Shopee does: raw body, ``Authorization`` header, strict success."""

    def __init__(self, push_key: str, timeout_seconds: float) -> None:
        self._push_key = push_key
        self._timeout = timeout_seconds
        # Opened on first use, so a sandbox that never runs holds no connection pool.
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self._timeout, follow_redirects=False)
            return self._client

    def __call__(self, message: PushMessage, url: str | None) -> AttemptResult:
        return self.post(message.body, url)

    def post(self, body: bytes, url: str | None) -> AttemptResult:
        if url is None:
            return AttemptResult(False, None, None, "no callback URL configured")
        authorization = sign_push(self._push_key, url, body)
        headers = {"Authorization": authorization, "Content-Type": "application/json"}
        started = time.monotonic()
        try:
            response = self._http().post(url, content=body, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            # Whatever the URL or the network does, it is a failed attempt, never a dead worker.
            return AttemptResult(False, url, None, f"{type(exc).__name__}: {exc}", authorization)
        elapsed = time.monotonic() - started
        status = response.status_code
        if elapsed > self._timeout:
            return AttemptResult(
                False, url, status, f"answered after {elapsed:.2f}s", authorization
            )
        if not 200 <= status < 300:
            return AttemptResult(False, url, status, f"HTTP {status}", authorization)
        if response.content:
            # "A failed Push is ... not receiving ... a status code of 2xx and an empty body".
            return AttemptResult(False, url, status, "2xx with a non-empty body", authorization)
        return AttemptResult(True, url, status, "delivered", authorization)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class PushWorker:
    """A background thread that hands due deliveries to a pool of senders.

    Emission never waits for delivery. Up to ``concurrency`` POSTs run at once, like Shopee's
    parallel senders, so one slow callback does not hold back every other push; with 1 the
    deliveries happen one by one in due order.
    """

    def __init__(
        self,
        outbox: PushOutbox,
        sender: Sender,
        clock: Clock,
        *,
        concurrency: int = 8,
        poll_interval: float = 0.05,
    ) -> None:
        self._outbox = outbox
        self._sender = sender
        self._clock = clock
        # Re-read the clock at least this often, so a ManualClock moved by a test is noticed.
        self._poll_interval = poll_interval
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sandbox-push")
        self._thread = threading.Thread(target=self._run, name="sandbox-push-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop scheduling; deliveries already being POSTed finish (each within its timeout)."""
        self._stopping.set()
        self._outbox.wake()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _deliver(self, delivery: Delivery) -> None:
        result = self._sender(delivery.message, self._outbox.callback_url)
        self._outbox.finish(delivery.delivery_id, result, self._clock.now())

    def _run(self) -> None:
        while not self._stopping.is_set():
            for delivery in self._outbox.take_due(self._clock.now()):
                self._pool.submit(self._deliver, delivery)
            next_due = self._outbox.next_due()
            wait = self._poll_interval
            if next_due is not None:
                wait = min(wait, max(0.0, next_due - self._clock.now()))
            if wait > 0:
                self._outbox.wait_for_work(wait)
