"""The webhook on a real broker and registry, fed by the sandbox's signed pushes over HTTP.

Refusals leave the notices topic untouched; a valid push is answered 2xx with an empty body
only once its record is on the topic, readable by a plain kafka-python consumer and by
Confluent's own Avro deserializer pointed at our registry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient as ConfluentRegistry
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from orderflow.db import create_engine, migrate
from orderflow.kafka import Admin, Producer
from orderflow.metrics import Metrics
from orderflow.settings import Settings
from orderflow.topics import ensure_topics
from producers.notices import NoticeWriter
from producers.state import ShopAuthorizations
from producers.webhook import PUSH_PATH, Webhook
from schemas.codec import AvroCodec
from schemas.models import OrderNotice
from schemas.registry import SchemaRegistryClient
from shopee.push import PushVerifier
from shopee.sandbox import SandboxServer
from shopee.sandbox.config import SandboxConfig
from shopee.signing import sign_push
from tests.integration.servers import ServedApp
from tests.integration.topics import read_topic

PARTNER_KEY = "partner-key-0123456789abcdef"
PUSH_KEY = "live-push-partner-key-fedcba9876543210"
ORDER_PUSH = (
    b'{"data":{"items":[],"ordersn":"2211250AB12CD","status":"READY_TO_SHIP",'
    b'"completed_scenario":"","update_time":1764060000},"shop_id":601234,"code":3,'
    b'"timestamp":1764060001}'
)


@dataclass
class RunningWebhook:
    url: str
    settings: Settings
    metrics: Metrics
    engine_url: str

    def post(self, body: bytes, authorization: str | None) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if authorization is not None:
            headers["Authorization"] = authorization
        return httpx.post(self.url, content=body, headers=headers, timeout=10)

    def notices(self) -> int:
        return len(read_topic(self.settings, self.settings.topic_notices))


@pytest.fixture
def webhook(
    settings: Settings, registry: SchemaRegistryClient, tmp_path: object
) -> Iterator[RunningWebhook]:
    admin = Admin(settings)
    ensure_topics(settings, admin, registry)
    admin.close()
    metrics = Metrics()
    engine_url = f"sqlite:///{tmp_path}/webhook.db"
    engine = create_engine(engine_url)
    migrate(engine)
    producer = Producer(settings, metrics, linger_ms=1)
    producer.warm_up(settings.topic_notices)
    codec = AvroCodec(OrderNotice, settings.topic_notices, registry)
    placeholder = Webhook(
        verifier=PushVerifier(PUSH_KEY, "http://placeholder"),
        notices=NoticeWriter(producer, codec, metrics),
        authorizations=ShopAuthorizations(engine),
        metrics=metrics,
        max_body_bytes=64 * 1024,
    )
    # The verifier needs the public URL, which needs the port: serve, then point it there.
    with ServedApp(placeholder.app()) as served:
        url = served.url + PUSH_PATH
        placeholder.verifier = PushVerifier(PUSH_KEY, url)
        yield RunningWebhook(url, settings, metrics, engine_url)
    producer.close()
    engine.dispose()


def test_forged_and_damaged_pushes_are_refused_and_write_nothing(
    webhook: RunningWebhook,
) -> None:
    good = sign_push(PUSH_KEY, webhook.url, ORDER_PUSH)
    reserialised = json.dumps(json.loads(ORDER_PUSH)).encode()  # ", " and ": " separators
    assert reserialised != ORDER_PUSH
    refusals = {
        "no signature": webhook.post(ORDER_PUSH, None),
        "forged signature": webhook.post(ORDER_PUSH, "0" * 64),
        "re-serialised body": webhook.post(reserialised, good),
        "trailing slash in the callback URL": webhook.post(
            ORDER_PUSH, sign_push(PUSH_KEY, webhook.url + "/", ORDER_PUSH)
        ),
        "partner key instead of the push key": webhook.post(
            ORDER_PUSH, sign_push(PARTNER_KEY, webhook.url, ORDER_PUSH)
        ),
    }
    for what, response in refusals.items():
        assert response.status_code == 401, what
    malformed = b'{"code": 3, "shop_id": 601234, "data": {"ordersn": '
    assert webhook.post(malformed, sign_push(PUSH_KEY, webhook.url, malformed)).status_code == 400
    missing_field = b'{"code":3,"shop_id":601234,"data":{"ordersn":"X1"},"timestamp":1}'
    response = webhook.post(missing_field, sign_push(PUSH_KEY, webhook.url, missing_field))
    assert response.status_code == 400
    oversized = b'{"code":3,"pad":"' + b"x" * (64 * 1024) + b'"}'
    assert webhook.post(oversized, sign_push(PUSH_KEY, webhook.url, oversized)).status_code == 413
    assert webhook.notices() == 0


def test_a_valid_push_is_on_the_topic_before_the_empty_2xx(
    webhook: RunningWebhook, stack: object
) -> None:
    response = webhook.post(ORDER_PUSH, sign_push(PUSH_KEY, webhook.url, ORDER_PUSH))
    assert 200 <= response.status_code < 300
    assert response.content == b""
    # No waiting: the answer came only after the broker acknowledged the record.
    (record,) = read_topic(webhook.settings, webhook.settings.topic_notices)
    assert record.key == b"601234:2211250AB12CD"
    assert record.header("source") == "push"

    with ConfluentRegistry({"url": webhook.settings.schema_registry_url}) as confluent_registry:
        decoded = AvroDeserializer(confluent_registry)(
            record.value,
            SerializationContext(webhook.settings.topic_notices, MessageField.VALUE),
        )
    assert decoded["order_sn"] == "2211250AB12CD"
    assert decoded["status"] == "READY_TO_SHIP"
    assert decoded["source"] == "push"
    assert decoded["event_id"] == record.header("event_id")
    assert decoded["update_time"].timestamp() == 1764060000

    # The same push again (Shopee repeats pushes) is acknowledged too.
    again = webhook.post(ORDER_PUSH, sign_push(PUSH_KEY, webhook.url, ORDER_PUSH))
    assert again.status_code == 200 and again.content == b""


def test_sandbox_pushes_over_http_reach_the_topic(webhook: RunningWebhook) -> None:
    config = SandboxConfig(partner_key=PARTNER_KEY, push_key=PUSH_KEY, callback_url=webhook.url)
    with SandboxServer(config) as sandbox:
        verification = sandbox.send_verification_push(webhook.url)
        assert verification.ok, verification.detail
        shop_id = sandbox.state.add_shop()
        item_id = sandbox.state.add_item(shop_id, None, [(0, "SKU-1", 50)])
        order_sn = sandbox.state.create_order(shop_id, [(item_id, 0, 1)])
        sandbox.state.ship(order_sn)  # code 3 (PROCESSED) and code 4 (tracking number)
        deadline = time.monotonic() + 20
        while sandbox.pushes.unfinished_count() and time.monotonic() < deadline:
            time.sleep(0.05)
        attempts = sandbox.pushes.attempts()
    assert attempts and all(a.result.ok for a in attempts), [a.result for a in attempts]
    records = read_topic(webhook.settings, webhook.settings.topic_notices)
    codes = sorted(r.header("source") or "" for r in records)
    assert codes == ["push"] * len(attempts)
    # Two tracking-number or status pushes never share an event id.
    assert len({r.header("event_id") for r in records}) == len(records)


def test_sandbox_pushes_signed_with_the_partner_key_are_refused(webhook: RunningWebhook) -> None:
    """The app is configured with a separate push key; Shopee signing with the partner key
    (an older console) is refused, and Shopee's retries are refused too: nothing written."""
    config = SandboxConfig(
        partner_key=PARTNER_KEY, push_key=None, callback_url=webhook.url, time_factor=0.0001
    )
    with SandboxServer(config) as sandbox:
        shop_id = sandbox.state.add_shop()
        item_id = sandbox.state.add_item(shop_id, None, [(0, "SKU-1", 50)])
        sandbox.state.create_order(shop_id, [(item_id, 0, 1)])
        deadline = time.monotonic() + 20
        while sandbox.pushes.unfinished_count() and time.monotonic() < deadline:
            time.sleep(0.05)
        attempts = sandbox.pushes.attempts()
        lost = sandbox.pushes.summary()["lost"]
    assert len(attempts) == 4  # the first try and Shopee's three retries
    assert {a.result.http_status for a in attempts} == {401}
    assert lost == 1
    assert webhook.notices() == 0
