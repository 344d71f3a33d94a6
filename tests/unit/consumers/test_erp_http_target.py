"""The HTTP ERP target against a real HTTP server: a scripted ERP served in this process,
recording every request it gets. Backoff goes to a recorder, so no test waits."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from consumers.erp.http_target import HttpErpTarget, erp_post_action_id
from consumers.erp.outbox import ActionRecord
from orderflow.db import create_engine, migrate
from orderflow.failures import Poison, Transient
from schemas.models import ActionLine, OrderAction, OrderEvent, OrderLine, make_event_id
from tests.integration.servers import ServedApp

TOKEN = "erp-token-5f1c9a0e7b2d4c68"
PATH = "/orders/snapshots"


@dataclass(frozen=True)
class Seen:
    """One request as the ERP received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, str, dict[str, str]]
OK: Answer = (200, "", {})


@dataclass
class ScriptedErp:
    """Answers each request with the next scripted answer (the last one repeats; 200 until
    scripted) and keeps every request in ``seen``."""

    url: str = ""
    answers: list[Answer] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def script(self, *answers: Answer) -> None:
        self.answers = list(answers)

    async def receive(self, request: Request) -> Response:
        self.seen.append(
            Seen(request.method, request.url.path, dict(request.headers), await request.body())
        )
        status, body, headers = self.answers.pop(0) if len(self.answers) > 1 else self._last()
        return Response(body, status_code=status, headers=headers)

    def _last(self) -> Answer:
        return self.answers[0] if self.answers else OK


@pytest.fixture(scope="module")
def served_erp() -> Iterator[ScriptedErp]:
    # One server for the module: stopping uvicorn takes longer than all of a test.
    scripted = ScriptedErp()
    app = Starlette(routes=[Route(PATH, scripted.receive, methods=["POST"])])
    with ServedApp(app) as served:
        scripted.url = served.url + PATH
        yield scripted


@pytest.fixture
def erp(served_erp: ScriptedErp) -> ScriptedErp:
    """The served ERP, answering 200 and with no requests seen."""
    served_erp.answers.clear()
    served_erp.seen.clear()
    return served_erp


@pytest.fixture
def actions(tmp_path: Path) -> Iterator[ActionRecord]:
    engine = create_engine(f"sqlite:///{tmp_path}/actions.db")
    migrate(engine)
    yield ActionRecord(engine)
    engine.dispose()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_target(
    erp: ScriptedErp, http: httpx.Client, actions: ActionRecord, sleeps: list[float]
) -> Callable[..., HttpErpTarget]:
    def make(**overrides: Any) -> HttpErpTarget:
        options: dict[str, Any] = {
            "http": http,
            "actions": actions,
            "token": SecretStr(TOKEN),
            "sleep": sleeps.append,
        }
        options.update(overrides)
        return HttpErpTarget(options.pop("url", erp.url), **options)

    return make


def order_event(
    order_sn: str = "2211250AB12CD", status: str = "READY_TO_SHIP", update_time: int = 1764060000
) -> OrderEvent:
    updated = datetime.fromtimestamp(update_time, UTC)
    return OrderEvent(
        event_id=make_event_id(
            marketplace="shopee",
            shop_id=601234,
            order_sn=order_sn,
            status=status,
            update_time=updated,
            source="push",
        ),
        shop_id=601234,
        order_sn=order_sn,
        region="SG",
        currency="SGD",
        status=status,
        create_time=datetime.fromtimestamp(update_time - 3600, UTC),
        update_time=updated,
        total_amount=Decimal("123.45"),
        items=(
            OrderLine(item_id=11, model_id=21, item_sku="SHIRT", model_sku="SHIRT-M", quantity=2),
            OrderLine(item_id=12, model_id=0, item_sku="MUG", model_sku="", quantity=1),
        ),
        source="push",
        emitted_at=updated,
    )


def closed_port_url() -> str:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()  # never listened on: connecting is refused
    return f"http://127.0.0.1:{port}{PATH}"


def messages(exc: BaseException) -> str:
    """Every message in the exception's chain, as a log line or a dead letter would show it."""
    texts: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        texts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


def test_an_accepted_snapshot_is_posted_as_json_with_its_key_and_recorded(
    erp: ScriptedErp,
    make_target: Callable[..., HttpErpTarget],
    actions: ActionRecord,
    sleeps: list[float],
) -> None:
    event = order_event()
    assert make_target().apply([event], now=1764060100) == [True]

    (request,) = erp.seen
    assert (request.method, request.path) == ("POST", PATH)
    assert request.json() == event.model_dump(mode="json")
    assert request.json()["total_amount"] == "123.45"
    assert request.json()["update_time"].startswith("2025-11-25T08:40:00")
    assert request.headers["idempotency-key"] == event.event_id
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "orderflow-erp-sync"
    assert actions.all("erp-sync") == [
        OrderAction(
            action_id=erp_post_action_id(event.event_id),
            shop_id=601234,
            order_sn="2211250AB12CD",
            consumer="erp-sync",
            kind="erp_post",
            lines=(
                ActionLine(item_id=11, model_id=21, sku="SHIRT-M", quantity=2),
                ActionLine(item_id=12, model_id=0, sku="MUG", quantity=1),
            ),
            outcome="applied",
            event_id=event.event_id,
            details={"status": "READY_TO_SHIP", "update_time": "1764060000", "http_status": "200"},
            occurred_at=datetime.fromtimestamp(1764060100, UTC),
        )
    ]
    assert sleeps == []


def test_a_redelivered_event_sends_the_same_key_and_is_recorded_once(
    erp: ScriptedErp, make_target: Callable[..., HttpErpTarget], actions: ActionRecord
) -> None:
    event = order_event()
    target = make_target()
    assert target.apply([event], now=1) == [True]
    erp.script((201, "", {}))
    assert target.apply([event], now=2) == [True]

    assert [r.headers["idempotency-key"] for r in erp.seen] == [event.event_id] * 2
    assert erp.seen[0].body == erp.seen[1].body
    (action,) = actions.all()
    assert action.details["http_status"] == "200"  # the first acceptance is the one kept


def test_without_a_token_no_authorization_is_sent(
    erp: ScriptedErp, make_target: Callable[..., HttpErpTarget]
) -> None:
    make_target(token=None).apply([order_event()], now=1)
    assert "authorization" not in erp.seen[0].headers


def test_a_503_is_retried_with_the_same_request_until_accepted(
    erp: ScriptedErp,
    make_target: Callable[..., HttpErpTarget],
    actions: ActionRecord,
    sleeps: list[float],
) -> None:
    erp.script((503, "busy", {}), (503, "busy", {}), OK)
    assert make_target().apply([order_event()], now=1) == [True]
    assert len(erp.seen) == 3
    assert len({(r.body, r.headers["idempotency-key"]) for r in erp.seen}) == 1
    assert sleeps == [0.5, 1.0]
    assert len(actions.all()) == 1


def test_timeouts_conflicts_and_rate_limits_are_transient(
    erp: ScriptedErp, make_target: Callable[..., HttpErpTarget], sleeps: list[float]
) -> None:
    erp.script((408, "", {}), (409, "in flight", {}), (429, "", {}), (502, "", {}), OK)
    assert make_target(attempts=5).apply([order_event()], now=1) == [True]
    assert len(erp.seen) == 5
    assert sleeps == [0.5, 1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    ("status", "retry_after", "waited"),
    [
        (429, "2", 2.0),
        (503, "0", 0.0),
        (503, "120", 30.0),  # capped: a stuck consumer is worse than a rushed ERP
        (429, "Wed, 21 Oct 2015 07:28:00 GMT", 0.5),  # a date: ordinary backoff
        (429, "-1", 0.5),
        (500, "7", 0.5),  # only 429 and 503 are read for it
    ],
)
def test_retry_after_in_seconds_is_respected_on_429_and_503(
    erp: ScriptedErp,
    make_target: Callable[..., HttpErpTarget],
    sleeps: list[float],
    status: int,
    retry_after: str,
    waited: float,
) -> None:
    erp.script((status, "", {"Retry-After": retry_after}), OK)
    assert make_target().apply([order_event()], now=1) == [True]
    assert sleeps == [waited]


def test_a_persistent_500_is_transient_after_every_attempt(
    erp: ScriptedErp,
    make_target: Callable[..., HttpErpTarget],
    actions: ActionRecord,
    sleeps: list[float],
) -> None:
    erp.script((500, "database down", {}))
    with pytest.raises(Transient) as raised:
        make_target(attempts=5, backoff=4).apply([order_event()], now=1)
    assert len(erp.seen) == 5
    assert sleeps == [4.0, 8.0, 10.0, 10.0]  # doubling, capped; no wait after the last try
    message = str(raised.value)
    assert "127.0.0.1" in message and "HTTP 500" in message
    assert "601234:2211250AB12CD" in message
    assert actions.all() == []


def test_a_refused_connection_is_transient(
    make_target: Callable[..., HttpErpTarget], actions: ActionRecord, sleeps: list[float]
) -> None:
    with pytest.raises(Transient) as raised:
        make_target(url=closed_port_url(), attempts=3).apply([order_event()], now=1)
    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert "127.0.0.1" in str(raised.value) and "ConnectError" in str(raised.value)
    assert "601234:2211250AB12CD" in str(raised.value)
    assert sleeps == [0.5, 1.0]
    assert actions.all() == []


def test_a_422_is_poison_at_once(
    erp: ScriptedErp,
    make_target: Callable[..., HttpErpTarget],
    actions: ActionRecord,
    sleeps: list[float],
) -> None:
    erp.script((422, '{"error": "unknown sku MUG"}', {}))
    with pytest.raises(Poison) as raised:
        make_target().apply([order_event()], now=1)
    assert len(erp.seen) == 1 and sleeps == []
    message = str(raised.value)
    assert "HTTP 422" in message and "unknown sku MUG" in message
    assert "601234:2211250AB12CD" in message
    assert actions.all() == []


def test_a_poison_message_quotes_at_most_200_characters_of_the_body(
    erp: ScriptedErp, make_target: Callable[..., HttpErpTarget]
) -> None:
    erp.script((400, "x" * 1000, {}))
    with pytest.raises(Poison) as raised:
        make_target().apply([order_event()], now=1)
    assert "x" * 200 in str(raised.value) and "x" * 201 not in str(raised.value)


@pytest.mark.parametrize("status", [400, 401, 500])
def test_the_token_is_in_no_exception_message_even_when_the_erp_echoes_it(
    erp: ScriptedErp, make_target: Callable[..., HttpErpTarget], status: int
) -> None:
    erp.script((status, f"bad request; you sent Authorization: Bearer {TOKEN}", {}))
    with pytest.raises((Poison, Transient)) as raised:
        make_target().apply([order_event()], now=1)
    assert TOKEN not in messages(raised.value)
    assert erp.seen[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_the_token_and_url_password_are_in_no_message_when_unreachable(
    make_target: Callable[..., HttpErpTarget],
) -> None:
    url = closed_port_url().replace("http://", "http://seller:url-secret-93@")
    with pytest.raises(Transient) as raised:
        make_target(url=url, attempts=1).apply([order_event()], now=1)
    assert TOKEN not in messages(raised.value)
    assert "url-secret-93" not in messages(raised.value)


def test_a_refused_second_event_leaves_the_first_applied_and_recorded(
    erp: ScriptedErp, make_target: Callable[..., HttpErpTarget], actions: ActionRecord
) -> None:
    first, second = order_event("A1"), order_event("A2")
    erp.script(OK, (400, "missing buyer", {}))
    with pytest.raises(Poison) as raised:
        make_target().apply([first, second], now=1)
    assert "601234:A2" in str(raised.value) and "HTTP 400" in str(raised.value)
    assert [r.headers["idempotency-key"] for r in erp.seen] == [first.event_id, second.event_id]
    assert [a.event_id for a in actions.all()] == [first.event_id]


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("ftp://erp.example.com/orders", {}),
        ("erp.example.com/orders", {}),
        ("https://erp.example.com/orders", {"attempts": 0}),
        ("https://erp.example.com/orders", {"backoff": -1}),
        ("https://erp.example.com/orders", {"token": SecretStr("")}),
    ],
)
def test_a_misconfigured_target_is_refused_when_built(
    url: str, options: dict[str, Any], http: httpx.Client, tmp_path: Path
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/unused.db")
    with pytest.raises(ValueError):
        HttpErpTarget(url, http=http, actions=ActionRecord(engine), **options)
    engine.dispose()
