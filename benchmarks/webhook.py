"""The webhook against a bare endpoint on the same server stack, measured in the same run.

The webhook runs as ``orderflow webhook`` does: the command itself, in a process of its own,
with its own settings (producer, interpreter and server), doing all its work per push: read
the body, check the signature over the raw bytes and the registered URL, parse and validate
the push, build the OrderNotice, Avro-encode it (Confluent framing), write it with the
idempotent acks=all producer, and answer 200 only after the broker acknowledged it. The
baseline answers 204 after reading the body, routed as the webhook routes pushes (a plain ASGI
route ahead of Starlette), on uvicorn with the same settings (one process, h11, the asyncio
loop, no access log), also in a process of its own.
One load generator, in a third process, drives both with the same signed code-3 pushes
(distinct order_sn each) over as many keep-alive connections:

* pushes/s, each side's capacity: closed loops over each of ``THROUGHPUT_CONNECTIONS``
  connection counts, ``THROUGHPUT_ROUNDS`` equal rounds of each, and the best round of each
  side counts (as in ``benchmarks/codec.py``). One count is not enough: a closed loop carries
  at most as many pushes as it has connections, so with too few it measures the answer's
  latency (Little's law) instead of what the server can serve, and with too many the bare
  endpoint loses to its own connection handling. Target: the webhook serves at least 0.4 of
  what the bare endpoint serves;
* acknowledgement latency p50/p99 at a fixed offered rate of ``RATE`` pushes/s (open loop,
  from the scheduled send to the answer), over all ``LATENCY_ROUNDS`` rounds of each; target:
  p99 at most 100 ms.

Both figures move with whatever else the machine runs, the broker included, so the notes
give each side's CPU per push (server CPU time over answers), which moves much less. Only
the notices topic is created, and it is deleted again at the end.

``python -m benchmarks.webhook`` runs this benchmark alone.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path

import httpx
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from benchmarks.loadgen import Load, Outcome, Target, pooled, run_loads
from benchmarks.report import Bound, Figure, figure, print_table
from benchmarks.stack import running_stack
from orderflow.kafka import Admin, KafkaUnavailable
from orderflow.settings import Settings
from orderflow.topics import plan
from producers.webhook import PUSH_PATH
from tests.integration.stack import Stack, free_port

CONNECTIONS = 32  # the latency rounds
# The webhook holds a connection until the broker acknowledged the push (~50 ms at its
# capacity): at 128 connections that alone caps it near 2,600/s, below what it can serve.
THROUGHPUT_CONNECTIONS = (64, 128, 256)
RATE = 500.0
# Each round measures the bare endpoint, then the webhook, on fresh connections after a
# warm-up; rounds repeat so that a burst of other load on the machine cannot favour one side.
THROUGHPUT_ROUNDS = 4  # the best round of each side counts (the machine's speed wanders)
LATENCY_ROUNDS = 2  # the latencies of all rounds count
WARMUP = 1.0
THROUGHPUT_SECONDS = 3.0
LATENCY_SECONDS = 4.5
HOST = "127.0.0.1"
PUSH_KEY = "bench-live-push-partner-key-0123456789"
SHOP_ID = 601234


# -- the two servers, each in a process of its own ---------------------------------------------


async def _healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


def serve_push_route(push: Callable[[Request], Awaitable[Response]], port: int) -> None:
    """``push`` on the push path and ``/healthz``, on uvicorn with the settings `orderflow
    webhook` uses: the server stack every bare side of a benchmark shares with the webhook.
    Returns when the server stops."""
    _run_uvicorn(_routes(Route(PUSH_PATH, push, methods=["POST"])), port)


def _routes(*routes: Route) -> Starlette:
    return Starlette(routes=[*routes, Route("/healthz", _healthz, methods=["GET"])])


def _run_uvicorn(app: ASGIApp, port: int) -> None:
    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()


async def _bare_push(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the body, answer 204: the push route with none of the push's work."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _serve_bare(port: int) -> None:
    """The bare endpoint, routed as `orderflow webhook` routes pushes: ``POST`` on the push
    path as a plain ASGI route ahead of Starlette (producers/webhook.py ``Webhook.app``), so
    the baseline pays the same server and routing costs and the ratio is the push's work."""
    rest = _routes()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PUSH_PATH and scope["method"] == "POST":
            await _bare_push(scope, receive, send)
        else:
            await rest(scope, receive, send)

    _run_uvicorn(app, port)


def _serve_webhook(env: dict[str, str], port: int) -> None:
    os.environ.update(env)
    from producers.webhook import webhook_command

    webhook_command.main(["--port", str(port)], standalone_mode=False)


@contextmanager
def _serving(
    name: str, port: int, target: Callable[..., object], *args: object
) -> Iterator[BaseProcess]:
    """Start a server process and wait until ``/healthz`` answers; stop it on the way out.
    Not a daemon: the webhook starts its Kafka writer process (producers.writer)."""
    process = multiprocessing.get_context("spawn").Process(
        target=target, args=args, name=name, daemon=False
    )
    process.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            if not process.is_alive():
                raise RuntimeError(f"the {name} exited with code {process.exitcode}")
            try:
                if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {name} did not answer /healthz within 60 s")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()  # SIGTERM: uvicorn drains, the webhook flushes its producer
        process.join(15)
        if process.is_alive():
            process.kill()
            process.join()


def _accepted_pushes(port: int) -> int:
    """What the webhook's own /metrics says it accepted (written to Kafka and answered)."""
    text = httpx.get(f"http://{HOST}:{port}/metrics", timeout=5).text
    return round(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "orderflow_webhook_pushes_total"
            and sample.labels.get("outcome") == "accepted"
        )
    )


# -- the benchmark ------------------------------------------------------------------------------


def _settings(stack: Stack, unique: str, database: Path) -> Settings:
    return Settings(
        kafka_bootstrap_servers=stack.bootstrap_servers,
        schema_registry_url=stack.registry_url,
        topic_notices=f"bench{unique}.order-notices",
        topic_orders=f"bench{unique}.orders",
        topic_actions=f"bench{unique}.order-actions",
        database_url=f"sqlite:///{database}",
    )


def _webhook_env(settings: Settings, port: int, callback_url: str) -> dict[str, str]:
    return {
        "ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "ORDERFLOW_SCHEMA_REGISTRY_URL": settings.schema_registry_url,
        "ORDERFLOW_TOPIC_NOTICES": settings.topic_notices,
        "ORDERFLOW_TOPIC_ORDERS": settings.topic_orders,
        "ORDERFLOW_TOPIC_ACTIONS": settings.topic_actions,
        "ORDERFLOW_DATABASE_URL": settings.database_url,
        "ORDERFLOW_SHOPEE_PUSH_KEY": PUSH_KEY,
        "ORDERFLOW_WEBHOOK_PUBLIC_URL": callback_url,
        "ORDERFLOW_WEBHOOK_PORT": str(port),
        "ORDERFLOW_HTTP_HOST": HOST,
        "ORDERFLOW_LOG_LEVEL": "ERROR",
    }


def _cpu_note(what: str, outcome: Outcome) -> str:
    if outcome.cpu is None:
        return f"{what}: CPU not measured"
    per_push = ""
    if outcome.cpu.process is not None and outcome.answered:
        per_push = f"; server CPU per push {outcome.cpu.process / outcome.per_second * 1e6:.0f} us"
    # "server": the server process with those it started (the webhook's Kafka writer).
    return f"{what}: {outcome.cpu.describe('load generator', 'server')}{per_push}"


def _errors(*outcomes: Outcome) -> int:
    return sum(n for o in outcomes for status, n in o.statuses.items() if not 200 <= status < 300)


@dataclass(frozen=True)
class _Measured:
    bare_rate: Outcome
    hook_rate: Outcome
    bare_latency: Outcome
    hook_latency: Outcome
    answered_200: int  # pushes the webhook answered 200, all rounds
    accepted: int  # what the webhook's /metrics says it accepted


def run(stack: Stack | None = None) -> list[Figure]:
    with running_stack(stack) as found, tempfile.TemporaryDirectory() as tmp:
        measured = _measure(found, Path(tmp))
    return _report(measured)


def _measure(stack: Stack, tmp: Path) -> _Measured:
    unique = uuid.uuid4().hex[:10]
    settings = _settings(stack, unique, tmp / "webhook.db")
    # Only the topic the webhook writes, as `orderflow topics` configures it (the webhook
    # registers its schema itself); every partition costs the broker memory until deleted.
    (notices,) = [p.spec for p in plan(settings) if p.spec.name == settings.topic_notices]
    admin = Admin(settings)
    try:
        admin.create_topics([notices])
        return _measure_on(settings, unique)
    finally:
        try:
            admin.delete_topics([notices.name])
        except KafkaUnavailable as exc:
            # The figures stand; a busy broker only keeps the topic a while longer.
            print(f"could not delete {notices.name}, left on the stack: {exc}")
        admin.close()


def _measure_on(settings: Settings, unique: str) -> _Measured:
    webhook_port, bare_port = free_port(), free_port()
    webhook_url = f"http://{HOST}:{webhook_port}{PUSH_PATH}"
    bare_url = f"http://{HOST}:{bare_port}{PUSH_PATH}"
    env = _webhook_env(settings, webhook_port, webhook_url)
    with (
        _serving("webhook", webhook_port, _serve_webhook, env, webhook_port) as webhook,
        _serving("bare endpoint", bare_port, _serve_bare, bare_port) as bare,
    ):

        def hook(run: str) -> Target:
            prefix = f"B{unique}{run}"
            return Target(
                HOST, webhook_port, PUSH_PATH, webhook_url, PUSH_KEY, SHOP_ID, prefix, webhook.pid
            )

        def plain(run: str) -> Target:
            prefix = f"B{unique}{run}"
            return Target(HOST, bare_port, PUSH_PATH, bare_url, PUSH_KEY, SHOP_ID, prefix, bare.pid)

        opened = Load(CONNECTIONS, WARMUP, LATENCY_SECONDS, rate=RATE)
        jobs = []
        for i in range(THROUGHPUT_ROUNDS):
            for connections in THROUGHPUT_CONNECTIONS:
                closed = Load(connections, WARMUP, THROUGHPUT_SECONDS)
                run = f"t{i}c{connections}"
                jobs += [(plain(run), closed), (hook(run), closed)]
        for i in range(LATENCY_ROUNDS):
            jobs += [(plain(f"l{i}"), opened), (hook(f"l{i}"), opened)]
        outcomes = run_loads(jobs)
        accepted = _accepted_pushes(webhook_port)
    closed_loops = 2 * THROUGHPUT_ROUNDS * len(THROUGHPUT_CONNECTIONS)
    rates, latencies = outcomes[:closed_loops], outcomes[closed_loops:]
    return _Measured(
        bare_rate=max(rates[0::2], key=lambda o: o.per_second),
        hook_rate=max(rates[1::2], key=lambda o: o.per_second),
        bare_latency=pooled(latencies[0::2]),
        hook_latency=pooled(latencies[1::2]),
        answered_200=sum(o.statuses[200] for o in outcomes[1::2]),
        accepted=accepted,
    )


def _report(m: _Measured) -> list[Figure]:
    ms = 1000.0
    figures = [
        figure(
            "webhook_pushes_per_s",
            "pushes/s",
            m.hook_rate.per_second,
            m.bare_rate.per_second,
            Bound("ratio", ">=", 0.4),
        ),
        figure(
            "webhook_ack_latency_p50_ms",
            "ms",
            m.hook_latency.percentile(50) * ms,
            m.bare_latency.percentile(50) * ms,
        ),
        figure(
            "webhook_ack_latency_p99_ms",
            "ms",
            m.hook_latency.percentile(99) * ms,
            m.bare_latency.percentile(99) * ms,
            Bound("value", "<=", 100),
        ),
    ]
    slowest = max(m.hook_latency.latencies) * ms
    notes = [
        "keep-alive connections from one load-generator process, rounds interleaved "
        f"bare/webhook, {WARMUP:g} s warm-up each; pushes/s: the best of {THROUGHPUT_ROUNDS} x "
        f"{THROUGHPUT_SECONDS:g} s at each of {' and '.join(map(str, THROUGHPUT_CONNECTIONS))} "
        f"connections (best: webhook at {m.hook_rate.connections}, bare at "
        f"{m.bare_rate.connections}); latency: all of {LATENCY_ROUNDS} x "
        f"{LATENCY_SECONDS:g} s at {RATE:.0f}/s over {CONNECTIONS} connections",
        "baseline: a plain ASGI route answering 204, ahead of Starlette as the webhook's "
        "push route is, on the same uvicorn settings; "
        "ratio = value / baseline",
        _cpu_note("best closed-loop round, webhook", m.hook_rate),
        _cpu_note("best closed-loop round, bare", m.bare_rate),
        _cpu_note(f"{RATE:.0f}/s, webhook", m.hook_latency),
        _cpu_note(f"{RATE:.0f}/s, bare", m.bare_latency),
        f"open loop answered {m.hook_latency.per_second:.0f}/s (webhook), "
        f"{m.bare_latency.per_second:.0f}/s (bare); webhook p99.9 "
        f"{m.hook_latency.percentile(99.9) * ms:.1f} ms, max {slowest:.1f} ms",
        f"non-2xx answers or broken connections: webhook {_errors(m.hook_rate, m.hook_latency)}, "
        f"bare {_errors(m.bare_rate, m.bare_latency)}",
        f"the webhook answered 200 to {m.answered_200} pushes; its /metrics counts {m.accepted} "
        "accepted",
    ]
    print_table(
        "webhook: signed push -> Kafka (acks=all) -> 200, against a bare 204", figures, notes
    )
    if m.accepted != m.answered_200:
        raise AssertionError(
            f"the webhook answered 200 to {m.answered_200} pushes but accepted {m.accepted}"
        )
    return figures


if __name__ == "__main__":
    # kafka-python warns whenever its network loop stalls; the figures already carry the cost.
    logging.getLogger("kafka").setLevel(logging.ERROR)
    run()
