"""The webhook's answers, with a twin of the notice sink (the real one is tested against the
broker in tests/integration/producers/test_webhook.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.types import Message

from orderflow.db import create_engine, migrate
from orderflow.kafka import KafkaUnavailable, Outcome
from orderflow.metrics import Metrics
from producers.state import ShopAuthorizations
from producers.webhook import PUSH_PATH, Webhook
from schemas.models import OrderNotice
from shopee.push import PushVerifier
from shopee.signing import sign_push
from tests.unit.shopee.reference_samples import (
    PUSH_AUTHORIZATION_EXPIRY,
    PUSH_ORDER_STATUS_LIVE,
    PUSH_SHOP_AUTHORIZED,
    PUSH_TRACKING_LIVE,
    PUSH_VERIFICATION,
)

KEY = "push-key"
URL = "https://seller.example/shopee/push"


class SinkTwin:
    """Acknowledges at once, never, or fails, as told."""

    def __init__(self) -> None:
        self.mode = "ack"
        self.notices: list[OrderNotice] = []

    def enqueue(self, notice: OrderNotice, on_done: Callable[[Outcome], None]) -> None:
        if self.mode == "refuse":
            raise KafkaUnavailable("queue full")
        if self.mode == "ack":
            self.notices.append(notice)
            on_done((0, len(self.notices)))
        elif self.mode == "fail":
            on_done(KafkaUnavailable("not acknowledged"))
        # "never": on_done is not called


@pytest.fixture
def sink() -> SinkTwin:
    return SinkTwin()


@pytest.fixture
def setup(sink: SinkTwin, tmp_path: Path) -> Iterator[tuple[TestClient, Metrics, Webhook]]:
    engine = create_engine(f"sqlite:///{tmp_path}/webhook.db")
    migrate(engine)
    metrics = Metrics()
    webhook = Webhook(
        verifier=PushVerifier(KEY, URL),
        notices=sink,
        authorizations=ShopAuthorizations(engine),
        metrics=metrics,
        ack_timeout_seconds=0.3,
        max_body_bytes=4096,
    )
    with TestClient(webhook.app()) as client:
        yield client, metrics, webhook
    engine.dispose()


def _post(client: TestClient, body: str, signature: str | None = None) -> httpx.Response:
    raw = body.encode()
    return client.post(
        PUSH_PATH,
        content=raw,
        headers={"Authorization": signature or sign_push(KEY, URL, raw)},
    )


@pytest.mark.parametrize("mode", ["never", "fail", "refuse"])
def test_kafka_not_acknowledging_is_a_503(
    setup: tuple[TestClient, Metrics, Webhook], sink: SinkTwin, mode: str
) -> None:
    client, metrics, _ = setup
    sink.mode = mode
    response = _post(client, PUSH_ORDER_STATUS_LIVE)
    assert response.status_code == 503
    assert metrics.pushes.labels(code="3", outcome="unavailable")._value.get() == 1


@pytest.mark.parametrize("body", [PUSH_ORDER_STATUS_LIVE, PUSH_TRACKING_LIVE])
def test_order_pushes_are_acknowledged_empty_after_the_sink(
    setup: tuple[TestClient, Metrics, Webhook], sink: SinkTwin, body: str
) -> None:
    client, metrics, _ = setup
    response = _post(client, body)
    assert response.status_code == 200
    assert response.content == b""
    assert len(sink.notices) == 1
    assert metrics.push_ack_seconds._sum.get() > 0


def test_verification_and_unknown_codes_are_acknowledged_without_notices(
    setup: tuple[TestClient, Metrics, Webhook], sink: SinkTwin
) -> None:
    client, metrics, _ = setup
    for body in (PUSH_VERIFICATION, '{"code": 99, "shop_id": 1, "data": {"anything": 1}}'):
        response = _post(client, body)
        assert response.status_code == 200 and response.content == b""
    assert sink.notices == []
    assert metrics.pushes.labels(code="99", outcome="ignored")._value.get() == 1


def test_partner_codes_record_the_shops_authorisation(
    setup: tuple[TestClient, Metrics, Webhook], sink: SinkTwin
) -> None:
    client, _, webhook = setup
    assert _post(client, PUSH_SHOP_AUTHORIZED).status_code == 200
    assert _post(client, PUSH_AUTHORIZATION_EXPIRY).status_code == 200
    states = webhook.authorizations.all()
    assert states[60011111].state == "authorized"
    assert "expiring" in {s.state for s in states.values()}
    assert sink.notices == []


def test_refusals(setup: tuple[TestClient, Metrics, Webhook], sink: SinkTwin) -> None:
    client, metrics, _ = setup
    assert _post(client, PUSH_ORDER_STATUS_LIVE, "f" * 64).status_code == 401
    assert _post(client, "not json").status_code == 400
    big = '{"code": 3, "x": "' + "y" * 5000 + '"}'
    assert _post(client, big).status_code == 413
    assert sink.notices == []
    assert metrics.push_verification_failures._value.get() == 1


def test_answers_carry_only_an_empty_body(
    setup: tuple[TestClient, Metrics, Webhook], sink: SinkTwin
) -> None:
    client, _, _ = setup
    for body, status in ((PUSH_ORDER_STATUS_LIVE, 200), ("not json", 400)):
        response = _post(client, body)
        assert response.status_code == status
        assert response.content == b""
        assert response.headers["content-length"] == "0"
        assert "content-type" not in response.headers


def test_the_push_path_in_another_method_is_not_allowed(
    setup: tuple[TestClient, Metrics, Webhook], sink: SinkTwin
) -> None:
    client, _, _ = setup
    assert client.get(PUSH_PATH).status_code == 405
    assert client.get("/healthz").text == "ok\n"
    assert sink.notices == []


def _asgi_push(
    webhook: Webhook, messages: list[Message], headers: list[tuple[bytes, bytes]]
) -> list[Message]:
    """One request straight through the ASGI app: the body as ``messages``, what it sent."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": PUSH_PATH,
        "headers": headers,
        "query_string": b"",
    }
    pending = list(messages)
    sent: list[Message] = []

    async def receive() -> Message:
        return pending.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    async def request() -> None:
        await webhook.app()(scope, receive, send)

    asyncio.run(request())
    return sent


def test_a_body_in_several_chunks_is_read_whole(
    setup: tuple[TestClient, Metrics, Webhook], sink: SinkTwin
) -> None:
    _, _, webhook = setup
    raw = PUSH_ORDER_STATUS_LIVE.encode()
    chunks = [raw[:10], raw[10:40], raw[40:]]
    sent = _asgi_push(
        webhook,
        [{"type": "http.request", "body": c, "more_body": c is not chunks[-1]} for c in chunks],
        [(b"authorization", sign_push(KEY, URL, raw).encode())],
    )
    assert sent[0]["status"] == 200
    assert len(sink.notices) == 1


def test_a_client_gone_before_its_body_arrived_writes_nothing(
    setup: tuple[TestClient, Metrics, Webhook], sink: SinkTwin
) -> None:
    _, metrics, webhook = setup
    _asgi_push(webhook, [{"type": "http.disconnect"}], [])
    assert sink.notices == []
    assert metrics.pushes.labels(code="unknown", outcome="disconnected")._value.get() == 1


def test_an_unexpected_error_is_a_500_that_shopee_retries(
    setup: tuple[TestClient, Metrics, Webhook], sink: SinkTwin
) -> None:
    _, _, webhook = setup

    def broken(notice: OrderNotice, on_done: Callable[[Outcome], None]) -> None:
        raise RuntimeError("a bug")

    sink.enqueue = broken  # type: ignore[method-assign]
    with TestClient(webhook.app(), raise_server_exceptions=False) as client:
        assert _post(client, PUSH_ORDER_STATUS_LIVE).status_code == 500
