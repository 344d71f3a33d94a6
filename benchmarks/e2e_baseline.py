"""The floor of the end-to-end benchmark: the pipeline's hops and nothing but the hops.

Three processes, as the pipeline has a process per hop, built from the same parts (Starlette
on uvicorn, kafka-python, SQLAlchemy on the same database):

* **endpoint**: a route on uvicorn with the settings `orderflow webhook` uses; it reads the
  push, notes when it got it, produces the raw body to Kafka (acks=all, 5 ms linger, like the
  webhook's producer) and answers 204 once the broker acknowledged it;
* **relay**: a kafka-python consumer that copies each polled batch to a second topic,
  flushes, then commits (the enricher's hop: notices in, events out);
* **sink**: a kafka-python consumer that upserts ``(shop_id, order_sn, status, update_time,
  received_at)`` of each push into ``bench_e2e_bare_orders`` in the same database, the newest
  ``update_time`` winning, one transaction per poll, then commits (erp-sync's hop).

Left out, on purpose, because they are the pipeline's own work: the signature check, Avro and
the schema registry, get_order_detail, the enricher's linger and Kafka transactions (and so
read_committed), the ERP's order lines, and the other consumers.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

import httpx
import kafka
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import Response

from benchmarks.webhook import serve_push_route
from orderflow.db import create_engine
from orderflow.kafka import Admin, TopicSpec, client_config, read_since
from orderflow.settings import Settings
from producers.webhook import PUSH_PATH

HOST = "127.0.0.1"
ACK_TIMEOUT = 2.0  # the webhook's default: an unacknowledged push is answered 503

metadata = sa.MetaData()
bare_orders = sa.Table(
    "bench_e2e_bare_orders",
    metadata,
    sa.Column("shop_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("order_sn", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("update_time", sa.BigInteger, nullable=False),
    sa.Column("received_at", sa.Float(precision=53), nullable=False),
)


@dataclass(frozen=True)
class BareChain:
    """Where the chain's parts live; every name unique to one run."""

    bootstrap_servers: str
    database_url: str
    raw_topic: str
    relayed_topic: str
    group_prefix: str
    partitions: int
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{PUSH_PATH}"

    def kafka_config(self) -> dict[str, Any]:
        return client_config(Settings(kafka_bootstrap_servers=self.bootstrap_servers))


# -- the three processes --------------------------------------------------------------------


def serve_endpoint(chain: BareChain) -> None:
    producer = kafka.KafkaProducer(**chain.kafka_config(), acks="all", linger_ms=5)

    async def push(request: Request) -> Response:
        body = await request.body()
        payload = json.loads(body)
        received = time.time()  # after the body is read and parsed, as the webhook stamps it
        data = payload.get("data") or {}
        if payload.get("code") != 3:
            return Response(status_code=204)  # the benchmark measures order status pushes
        loop = asyncio.get_running_loop()
        acknowledged: asyncio.Future[None] = loop.create_future()

        def settle(error: BaseException | None) -> None:
            if acknowledged.done():
                return
            if error is None:
                acknowledged.set_result(None)
            else:
                acknowledged.set_exception(error)

        sent = producer.send(
            chain.raw_topic,
            key=f"{payload['shop_id']}:{data['ordersn']}".encode(),
            value=body,
            headers=[("received_at", repr(received).encode())],
        )
        # kafka-python calls back on its I/O thread; the answer is settled on the event loop.
        sent.add_callback(lambda _: loop.call_soon_threadsafe(settle, None))
        sent.add_errback(lambda exc: loop.call_soon_threadsafe(settle, exc))
        await asyncio.wait_for(acknowledged, ACK_TIMEOUT)
        return Response(status_code=204)

    try:
        serve_push_route(push, chain.port)
    finally:
        producer.close(timeout=5)


def _stop_on_sigterm() -> list[bool]:
    stopping = [False]

    def stop(signum: int, frame: object) -> None:
        stopping[0] = True

    signal.signal(signal.SIGTERM, stop)
    return stopping


def _consumer(chain: BareChain, topic: str, name: str) -> Any:
    return kafka.KafkaConsumer(
        topic,
        **chain.kafka_config(),
        group_id=f"{chain.group_prefix}{name}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


def _polled(consumer: Any) -> list[Any]:
    return [record for batch in consumer.poll(timeout_ms=500).values() for record in batch]


def run_relay(chain: BareChain) -> None:
    stopping = _stop_on_sigterm()
    consumer = _consumer(chain, chain.raw_topic, "relay")
    producer = kafka.KafkaProducer(**chain.kafka_config(), acks="all", linger_ms=5)
    try:
        while not stopping[0]:
            records = _polled(consumer)
            if not records:
                continue
            for record in records:
                producer.send(
                    chain.relayed_topic, key=record.key, value=record.value, headers=record.headers
                )
            producer.flush(timeout=30)
            consumer.commit()  # the positions of what was just relayed
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=5)


def sink_rows(values: list[tuple[bytes, float]]) -> list[dict[str, Any]]:
    """One row per order from raw push bodies and their receipt times, the newest
    ``update_time`` of each order kept (one statement cannot upsert a row twice)."""
    newest: dict[tuple[int, str], dict[str, Any]] = {}
    for body, received in values:
        payload = json.loads(body)
        data = payload["data"]
        key = (int(payload["shop_id"]), str(data["ordersn"]))
        update_time = int(data["update_time"])
        if key not in newest or update_time >= newest[key]["update_time"]:
            newest[key] = {
                "shop_id": key[0],
                "order_sn": key[1],
                "status": str(data["status"]),
                "update_time": update_time,
                "received_at": received,
            }
    return list(newest.values())


def upsert(engine: Engine) -> Any:
    """``INSERT ... ON CONFLICT DO UPDATE`` that applies a row only when it is not older."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(bare_orders)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[bare_orders.c.shop_id, bare_orders.c.order_sn],
        set_={"status": excluded.status, "update_time": excluded.update_time},
        where=excluded.update_time >= bare_orders.c.update_time,
    )


def run_sink(chain: BareChain) -> None:
    stopping = _stop_on_sigterm()
    consumer = _consumer(chain, chain.relayed_topic, "sink")
    engine = create_engine(chain.database_url)
    statement = upsert(engine)
    try:
        while not stopping[0]:
            records = _polled(consumer)
            if not records:
                continue
            rows = sink_rows(
                [(record.value, float(dict(record.headers)["received_at"])) for record in records]
            )
            with engine.begin() as conn:
                conn.execute(statement, rows)
            consumer.commit()  # only once the rows are durable
    finally:
        consumer.close(autocommit=False)
        engine.dispose()


# -- running the chain ------------------------------------------------------------------------


@contextmanager
def running(chain: BareChain) -> Iterator[dict[str, int]]:
    """Topics, the table, and the three processes (SIGTERM on the way out); yields each
    process's pid by name once the endpoint answers."""
    admin = Admin(Settings(kafka_bootstrap_servers=chain.bootstrap_servers))
    try:
        admin.create_topics(
            [
                TopicSpec(topic, chain.partitions, 1)
                for topic in (chain.raw_topic, chain.relayed_topic)
            ]
        )
    finally:
        admin.close()
    engine = create_engine(chain.database_url)
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()
    context = multiprocessing.get_context("spawn")
    processes: dict[str, BaseProcess] = {
        name: context.Process(target=target, args=(chain,), name=f"bare {name}", daemon=True)
        for name, target in (("endpoint", serve_endpoint), ("relay", run_relay), ("sink", run_sink))
    }
    for process in processes.values():
        process.start()
    try:
        _wait_healthy(chain, processes)
        yield {name: process.pid for name, process in processes.items() if process.pid}
        for name, process in processes.items():
            if not process.is_alive():
                raise RuntimeError(f"the bare {name} exited with code {process.exitcode}")
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.join(15)
            if process.is_alive():
                process.kill()
                process.join()


def _wait_healthy(chain: BareChain, processes: dict[str, BaseProcess]) -> None:
    deadline = time.monotonic() + 60
    while True:
        for name, process in processes.items():
            if not process.is_alive():
                raise RuntimeError(f"the bare {name} exited with code {process.exitcode}")
        try:
            if httpx.get(f"http://{HOST}:{chain.port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the bare endpoint did not answer /healthz within 60 s")
        time.sleep(0.1)


def relayed_times(chain: BareChain) -> dict[tuple[int, str, str, int], float]:
    """When the relay produced each change to the second topic (the record's timestamp)."""
    settings = Settings(kafka_bootstrap_servers=chain.bootstrap_servers)
    produced: dict[tuple[int, str, str, int], float] = {}
    for record in read_since(settings, chain.relayed_topic):
        (row,) = sink_rows([(record.value or b"", 0.0)])
        key = (row["shop_id"], row["order_sn"], row["status"], row["update_time"])
        at = record.timestamp_ms / 1000
        produced[key] = min(at, produced.get(key, at))
    return produced


def receipts(engine: Engine) -> dict[tuple[int, str, str, int], float]:
    """When the endpoint received the push behind each row, by change."""
    c = bare_orders.c
    query = sa.select(c.shop_id, c.order_sn, c.status, c.update_time, c.received_at)
    with engine.connect() as conn:
        return {
            (int(r.shop_id), str(r.order_sn), str(r.status), int(r.update_time)): float(
                r.received_at
            )
            for r in conn.execute(query)
        }
