"""``orderflow webhook``: Shopee's pushes in, OrderNotices on Kafka out.

``POST /shopee/push`` answers 2xx with an empty body only after the notice is acknowledged
by Kafka (acks=all, idempotent producer), well inside Shopee's 3 s timeout; Shopee retries
anything else. Refusals write nothing:

====================================================  =====
signature missing or wrong (checked over the raw body)  401
body not JSON, or a known code without its fields       400
body over ``ORDERFLOW_WEBHOOK_MAX_BODY_BYTES``          413
Kafka too slow, or the database away (partner codes)   503
====================================================  =====

Code 0 (URL verification) and unknown codes are acknowledged; partner-level codes 1, 2 and
12 record the shop's authorisation state. A duplicate push is acknowledged again: consumers
are idempotent. The same port serves ``/healthz``, ``/readyz`` and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import heapq
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import click
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from orderflow.failures import kind_of
from orderflow.kafka import KafkaUnavailable, Outcome, Placed
from orderflow.metrics import Metrics
from producers.notices import NoticeSink, notice_from_push
from producers.state import AuthState, ShopAuthorization, ShopAuthorizations
from producers.writer import WriterProcess, stop_this_process
from shopee.errors import MalformedPush
from shopee.push import (
    AuthorizationExpiryPush,
    OrderStatusPush,
    Push,
    PushVerifier,
    ShopAuthorizedPush,
    ShopDeauthorizedPush,
    TrackingNumberPush,
    VerificationPush,
)

log = logging.getLogger(__name__)

PUSH_PATH = "/shopee/push"

# What Starlette's Response(status_code=...) sends for an empty body (not for 204 or 304,
# which the push path never answers).
_EMPTY_BODY_HEADERS = ((b"content-length", b"0"),)

_Arrival = tuple[asyncio.Future[Placed], Outcome]


def authorization_changes(push: Push, now: float) -> list[ShopAuthorization]:
    """What a partner-level push says about shops' authorisation (pure)."""
    changed_at = push.timestamp or int(now)
    if isinstance(push, ShopAuthorizedPush | ShopDeauthorizedPush):
        if push.data.shop_id is None:
            return []
        state: AuthState = "authorized" if isinstance(push, ShopAuthorizedPush) else "deauthorized"
        return [
            ShopAuthorization(push.data.shop_id, state, changed_at, None, push.data.extra[:500])
        ]
    if isinstance(push, AuthorizationExpiryPush):
        return [
            ShopAuthorization(
                shop_id,
                "expiring",
                changed_at,
                push.data.expire_before,
                "authorisation expires soon: the seller must authorise the app again",
            )
            for shop_id in push.data.shop_expire_soon
        ]
    return []


def record_authorizations(
    store: ShopAuthorizations, metrics: Metrics, changes: list[ShopAuthorization]
) -> None:
    """Store what partner-level pushes (live or lost) said about shops, and show it."""
    for change in changes:
        store.record(change)
        for state in ("authorized", "deauthorized", "expiring"):
            metrics.shop_authorization.labels(str(change.shop_id), state).set(
                1 if state == change.state else 0
            )
        log.info("shop %d is now %s", change.shop_id, change.state)


class Acknowledgements:
    """Hands Kafka's answers from the producer's I/O thread to the event loop, many at a time.

    ``waiter`` gives an asyncio future and the ``on_done`` that settles it. Answers that
    arrive together (one produce response acknowledges a whole batch) wake the event loop
    once, not once per push as ``asyncio.wrap_future`` would: under load that wake-up (a
    write to the loop's self-pipe and a loop iteration of its own) cost more than the push.
    A waiter already done (timed out, its request gone) is left alone; its record may still
    land, and is still counted by the producer.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrived: dict[asyncio.AbstractEventLoop, list[_Arrival]] = {}

    def waiter(self) -> tuple[asyncio.Future[Placed], Callable[[Outcome], None]]:
        waiter: asyncio.Future[Placed] = asyncio.get_running_loop().create_future()
        return waiter, partial(self._arrive, waiter)

    def _arrive(self, waiter: asyncio.Future[Placed], outcome: Outcome) -> None:
        # Any thread: the producer's I/O thread, or the loop's own for an outcome known at once.
        loop = waiter.get_loop()
        with self._lock:
            pending = self._arrived.setdefault(loop, [])
            pending.append((waiter, outcome))
            first = len(pending) == 1
        if first:
            # Later arrivals join the list until the loop takes it: one wake-up for all.
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(self._deliver, loop)

    def _deliver(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            arrived = self._arrived.pop(loop, [])
        for waiter, outcome in arrived:
            if waiter.done():
                continue
            if isinstance(outcome, KafkaUnavailable):
                waiter.set_exception(outcome)
            else:
                waiter.set_result(outcome)


class Deadlines:
    """Fails each waiter still pending at its deadline, with one timer on ``loop`` for all.

    A timer per push (``call_later``, then ``cancel`` once answered: a handle, two entries in
    the loop's heap) cost more than the rest of the push's waiting. Here a deadline is an
    entry in a heap of this class's own; the single timer fires at most once per
    ``granularity`` and fails everything due by then, so a waiter fails up to
    ``granularity`` late, never early. A waiter already done is left alone.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, granularity: float = 0.02) -> None:
        self._loop = loop
        self._granularity = granularity
        self._due: list[tuple[float, int, asyncio.Future[Placed], float]] = []
        self._order = itertools.count()  # ties never compare futures
        self._timer: asyncio.TimerHandle | None = None

    def fail_after(self, waiter: asyncio.Future[Placed], seconds: float, timeout: float) -> None:
        """Fail ``waiter`` with ``TimeoutError`` ("within ``timeout``") in ``seconds``."""
        at = self._loop.time() + seconds
        heapq.heappush(self._due, (at, next(self._order), waiter, timeout))
        if self._timer is None or at + self._granularity < self._timer.when():
            self._arm(at)

    def _arm(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(at + self._granularity, self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self._loop.time()
        due = self._due
        while due and due[0][0] <= now:
            _, _, waiter, timeout = heapq.heappop(due)
            if not waiter.done():
                waiter.set_exception(TimeoutError(f"no acknowledgement within {timeout}s"))
        if due:
            self._arm(due[0][0])


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lowercase), as Starlette's ``Headers.get``."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _PushRoute:
    """``Webhook.serve_push`` as an ASGI app inside Starlette's router, which would wrap a
    function or method as a request handler instead."""

    def __init__(self, serve: ASGIApp) -> None:
        self._serve = serve

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._serve(scope, receive, send)


@dataclass
class Webhook:
    """The push endpoint's parts; ``app()`` is the ASGI application."""

    verifier: PushVerifier
    notices: NoticeSink
    authorizations: ShopAuthorizations
    metrics: Metrics
    max_body_bytes: int = 64 * 1024
    ack_timeout_seconds: float = 2.0
    ready: Callable[[], bool] = lambda: True
    clock: Callable[[], float] = time.time
    _acknowledgements: Acknowledgements = field(default_factory=Acknowledgements, init=False)
    _pushes: dict[tuple[str, str], Counter] = field(default_factory=dict, init=False)
    _deadlines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Deadlines] = field(
        default_factory=weakref.WeakKeyDictionary, init=False
    )

    def app(self) -> ASGIApp:
        """The ASGI application.

        ``POST /shopee/push`` goes straight to ``serve_push``: Starlette's middleware,
        router, ``Request`` and ``Response`` cost about as much CPU per push as the push's
        own work. Everything else (and the push path in another method: 405) goes through
        Starlette.
        """
        rest = Starlette(
            routes=[
                Route(PUSH_PATH, _PushRoute(self.serve_push), methods=["POST"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/readyz", self.readyz, methods=["GET"]),
                Route("/metrics", self.prometheus, methods=["GET"]),
            ]
        )
        serve_push = self.serve_push

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"] == PUSH_PATH and scope["method"] == "POST":
                await serve_push(scope, receive, send)
            else:
                await rest(scope, receive, send)

        return app

    def _answer(self, code: str, outcome: str, status: int = 200) -> int:
        series = self._pushes.get((code, outcome))
        if series is None:
            # Looked up once per code and outcome: labels() costs more than the increment.
            series = self._pushes[code, outcome] = self.metrics.pushes.labels(code, outcome)
        series.inc()
        return status

    async def serve_push(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one push (ASGI). An unexpected error propagates: the server answers 500,
        which Shopee retries, and logs it."""
        status = await self._push(scope, receive)
        # Shopee counts a push as delivered only on 2xx with an empty body; refusals are
        # empty too.
        await send(
            {"type": "http.response.start", "status": status, "headers": _EMPTY_BODY_HEADERS}
        )
        await send({"type": "http.response.body", "body": b""})

    async def _push(self, scope: Scope, receive: Receive) -> int:
        started = time.perf_counter()
        try:
            body = await _read_body(scope, receive, self.max_body_bytes)
        except _TooLarge:
            return self._answer("unknown", "too_large", 413)
        except _Disconnected:
            return self._answer("unknown", "disconnected", 400)
        if not self.verifier.verify(body, _header(scope, b"authorization")):
            self.metrics.push_verification_failures.inc()
            return self._answer("unknown", "bad_signature", 401)
        try:
            push = self.verifier.parse(body)
        except MalformedPush as exc:
            log.warning("refused a malformed push: %s", exc)
            return self._answer("unknown", "malformed", 400)
        code = str(push.code)
        if isinstance(push, VerificationPush):
            return self._answer(code, "verification")
        if isinstance(push, OrderStatusPush | TrackingNumberPush):
            return await self._write_notice(push, code, started)
        changes = authorization_changes(push, self.clock())
        if changes:
            try:
                await run_in_threadpool(
                    record_authorizations, self.authorizations, self.metrics, changes
                )
            except Exception as exc:
                if kind_of(exc) != "transient":
                    raise  # a bug: the server answers 500, which Shopee also retries
                log.warning("could not record a shop authorisation change (%s); 503", exc)
                return self._answer(code, "unavailable", 503)
            return self._answer(code, "partner_event")
        log.info("acknowledged push code %s that orderflow does not act on", code)
        return self._answer(code, "ignored")

    async def _write_notice(
        self, push: OrderStatusPush | TrackingNumberPush, code: str, started: float
    ) -> int:
        notice = notice_from_push(push, source="push", received_at=self.clock())
        try:
            acknowledged, on_done = self._acknowledgements.waiter()
            self.notices.enqueue(notice, on_done)
            remaining = max(0.0, self.ack_timeout_seconds - (time.perf_counter() - started))
            # On timeout only the waiter fails: the record may still land, and the producer
            # still counts it when it does.
            self._deadlines_of(acknowledged.get_loop()).fail_after(
                acknowledged, remaining, self.ack_timeout_seconds
            )
            await acknowledged
        except (KafkaUnavailable, TimeoutError) as exc:
            log.warning(
                "push for order %s of shop %d not acknowledged by Kafka in time (%s); "
                "answering 503 so Shopee retries",
                push.data.order_sn,
                push.shop_id,
                exc,
            )
            return self._answer(code, "unavailable", 503)
        status = self._answer(code, "accepted")
        self.metrics.push_ack_seconds.observe(time.perf_counter() - started)
        return status

    def _deadlines_of(self, loop: asyncio.AbstractEventLoop) -> Deadlines:
        deadlines = self._deadlines.get(loop)
        if deadlines is None:
            deadlines = self._deadlines[loop] = Deadlines(loop)
        return deadlines

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(self, request: Request) -> Response:
        ok = await run_in_threadpool(self.ready)
        return PlainTextResponse("ok\n" if ok else "unavailable\n", 200 if ok else 503)

    async def prometheus(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _settle_the_heap() -> None:
    """Move everything built at start-up (modules, schemas, clients) out of the collector's
    way: a full collection over those ~130k objects stalled every request in flight for
    70-230 ms once every few thousand pushes. Later collections only walk what requests
    allocate."""
    gc.collect()
    gc.freeze()


@click.command("webhook")
@click.option("--port", type=int, default=None, help="Listen here (ORDERFLOW_WEBHOOK_PORT).")
def webhook_command(port: int | None) -> None:
    """Receive Shopee pushes on POST /shopee/push and write them to the notices topic.

    Needs ORDERFLOW_WEBHOOK_PUBLIC_URL (the callback URL exactly as registered with Shopee)
    and the push key (ORDERFLOW_SHOPEE_PUSH_KEY, else ORDERFLOW_SHOPEE_PARTNER_KEY).
    """
    from producers.wiring import Ingest

    ingest = Ingest.open("webhook")
    try:
        verifier = PushVerifier.from_settings(ingest.settings)
        ingest.producer.warm_up(ingest.settings.topic_notices)
        # Notices are produced from a child process, on the other core (producers.writer);
        # this process's own producer only answers /readyz. A few milliseconds of linger
        # batch concurrent pushes into one produce request: at 1 ms, a push at 500/s cost a
        # third more CPU and its p99 grew (kafka-python builds and answers each request in
        # Python). No compression: a notice is ~200 bytes and a partition's batch holds a
        # handful, which gzip does not shrink.
        writer = WriterProcess(
            ingest.settings,
            ingest.metrics,
            warm_up=ingest.settings.topic_notices,
            producer_options={"linger_ms": 5, "compression_type": None},
            on_lost=stop_this_process,
        )
        ingest.on_close(writer.close)  # after uvicorn answered what was in flight
        webhook = Webhook(
            verifier=verifier,
            notices=ingest.notice_writer(writer),
            authorizations=ShopAuthorizations(ingest.engine),
            metrics=ingest.metrics,
            max_body_bytes=ingest.settings.webhook_max_body_bytes,
            ack_timeout_seconds=ingest.settings.webhook_ack_timeout_seconds,
            ready=ingest.producer.reachable,
        )
        config = uvicorn.Config(
            webhook.app(),
            host=ingest.settings.http_host,
            port=port if port is not None else ingest.settings.webhook_port,
            log_level="warning",
            access_log=False,
            # Shopee retries a push it got no answer for; a long drain helps nobody.
            timeout_graceful_shutdown=5,
        )
        _settle_the_heap()
        # uvicorn handles SIGTERM itself: it stops accepting, answers what is in flight.
        uvicorn.Server(config).run()
    finally:
        ingest.close()
