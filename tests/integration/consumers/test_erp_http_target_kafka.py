"""erp-sync with the seller's own ERP over HTTP (``ORDERFLOW_ERP_HTTP_URL``): events from
Kafka are POSTed with ``Idempotency-Key`` = event id; a busy ERP is waited out without
committing; a refusal dead-letters that order only, and ``orderflow replay`` brings it back
once the ERP is fixed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consumers import deadletter
from consumers.replay import replay_command
from schemas.models import order_key
from tests.integration.consumers.conftest import ConsumerWorld
from tests.integration.consumers.events import order_event
from tests.integration.servers import ServedApp

SHOP = 880001


@dataclass(frozen=True)
class Post:
    idempotency_key: str
    event_id: str
    order_sn: str
    status: int


@dataclass
class FakeErp:
    """A seller's ERP endpoint: answers 503 to the next ``busy`` requests, 422 to orders in
    ``refused``, 200 otherwise; remembers every request."""

    busy: int = 0
    refused: set[str] = field(default_factory=set)
    posts: list[Post] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def orders(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            if self.busy:
                self.busy -= 1
                status = 503
            else:
                status = 422 if body["order_sn"] in self.refused else 200
            self.posts.append(
                Post(
                    request.headers.get("Idempotency-Key", ""),
                    body["event_id"],
                    body["order_sn"],
                    status,
                )
            )
        if status == 503:
            return Response(status_code=503, headers={"Retry-After": "0"})
        if status == 422:
            return JSONResponse({"error": "unknown customer group"}, status_code=422)
        return JSONResponse({"stored": True})

    def accepted(self) -> set[str]:
        """Idempotency keys answered 2xx."""
        with self._lock:
            return {p.idempotency_key for p in self.posts if p.status == 200}

    def answered(self, status: int) -> list[Post]:
        with self._lock:
            return [p for p in self.posts if p.status == status]


@pytest.fixture
def erp(world: ConsumerWorld) -> Iterator[FakeErp]:
    fake = FakeErp()
    with ServedApp(Starlette(routes=[Route("/orders", fake.orders, methods=["POST"])])) as served:
        world.configure(erp_http_url=f"{served.url}/orders")
        yield fake


def test_events_are_posted_with_their_event_id_and_a_busy_erp_is_waited_out(
    world: ConsumerWorld, erp: FakeErp
) -> None:
    now = int(time.time())
    events = [order_event(SHOP, f"ORDER-{n}", update_time=now - 60) for n in range(4)]
    # One event's four tries fail, then two more: the batch is retried, not committed.
    erp.busy = 6
    world.writer.send(events)
    sync = world.consumer("erp-sync")
    sync.runtime.config.backoff_base = 0.05

    sync.run_until(
        lambda: sync.metric("orderflow_consumer_transient_retries_total", consumer="erp-sync") >= 1,
        "a transient failure",
    )
    committed, ends = world.offsets("erp-sync")
    assert set(committed.values()) == {0} and sum(ends.values()) == len(events)
    assert erp.accepted() == set()

    world.catch_up(sync)

    assert erp.accepted() == {e.event_id for e in events}
    assert len(erp.answered(503)) == 6
    for post in erp.posts:
        assert post.idempotency_key == post.event_id
    by_order = {e.order_sn: e.event_id for e in events}
    assert {(p.order_sn, p.event_id) for p in erp.posts} <= set(by_order.items())
    assert world.dead_letters("erp-sync") == []
    posted = [a for a in world.actions() if a.kind == "erp_post"]
    assert sorted(a.event_id or "" for a in posted) == sorted(by_order.values())
    assert {a.details["http_status"] for a in posted} == {"200"}


def test_a_refused_order_is_dead_lettered_alone_and_replayed_after_a_fix(
    world: ConsumerWorld, erp: FakeErp
) -> None:
    now = int(time.time())
    events = [order_event(SHOP, f"ORDER-{n}", update_time=now - 60) for n in range(5)]
    refused = events[2]
    erp.refused.add(refused.order_sn)
    world.writer.send(events)
    sync = world.consumer("erp-sync")

    world.catch_up(sync)

    (letter,) = world.dead_letters("erp-sync")
    assert letter.key == order_key(SHOP, refused.order_sn)
    assert letter.value == world.writer.codec.encode(refused)
    assert "HTTP 422" in (letter.header(deadletter.ERROR) or "")
    assert letter.header("event_id") == refused.event_id
    others = {e.event_id for e in events if e is not refused}
    assert erp.accepted() == others
    assert {p.order_sn for p in erp.answered(422)} == {refused.order_sn}

    # The seller fixes the ERP; the operator replays the dead letters.
    erp.refused.clear()
    dlq = f"{world.settings.topic_orders}.dlq.erp-sync"
    result = CliRunner().invoke(replay_command, ["--dlq", dlq], env=world.env())
    assert result.exit_code == 0, result.output
    assert "replayed 1 records" in result.output

    world.catch_up(sync)

    assert erp.accepted() == others | {refused.event_id}
    assert len(world.dead_letters("erp-sync")) == 1
