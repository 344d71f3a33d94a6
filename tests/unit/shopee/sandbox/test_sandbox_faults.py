"""The sandbox's request faults that leave the caller in doubt: a timeout (never processed,
never answered) and failures after the effect (processed, then an error, a bare 502, a
dropped connection or no answer), met by orderflow's own Shopee client over real HTTP on
localhost; and the lifecycle odds the control route now passes to the traffic generator."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from orderflow.db import create_engine, migrate
from orderflow.metrics import Metrics
from orderflow.settings import Settings
from shopee.client import ShopeeClient
from shopee.errors import CannotCancel, OutcomeUnknown, RetryableError
from shopee.models import CancelReason
from shopee.sandbox import FaultConfig, LifecycleOdds, SandboxConfig, SandboxServer
from shopee.sandbox.config import AFTER_EFFECT_KINDS, REFUSAL_KINDS, FaultKind
from shopee.sandbox.faults import applies_effect, failure_seen
from shopee.sandbox.traffic import odds_from

PARTNER_ID = 2001887
PARTNER_KEY = "unit-sandbox-faults-partner-key"
CANCEL = "order.cancel_order"


class World:
    """A running sandbox with one shop and one paid order, and orderflow's client for it."""

    def __init__(self, database: Path, faults: FaultConfig, client_timeout: float) -> None:
        self.sandbox = SandboxServer(
            SandboxConfig(partner_id=PARTNER_ID, partner_key=PARTNER_KEY, faults=faults)
        )
        self.sandbox.start()
        state = self.sandbox.state
        self.shop_id = state.add_shop()
        item_id = state.add_item(self.shop_id)
        self.order_sn = state.create_order(self.shop_id, [(item_id, 0, 1)])
        settings = Settings(
            shopee_partner_id=PARTNER_ID,
            shopee_partner_key=PARTNER_KEY,
            shopee_base_url=self.sandbox.base_url,
            shopee_timeout_seconds=client_timeout,
            shopee_max_retries=0,
            database_url=f"sqlite:///{database}",
        )
        self.engine = create_engine(settings.database_url)
        self.client = ShopeeClient.from_settings(
            settings, self.engine, Metrics(CollectorRegistry())
        )
        # The code exchange goes through before any fault is switched on.
        self.client.tokens.authorize(state.authorize(self.shop_id), self.shop_id)

    def fail(self, kind: FaultKind, *, hang_seconds: float = 30.0) -> None:
        """Every cancel_order fails with ``kind`` from now on."""
        self.sandbox.state.set_faults(
            FaultConfig(error_rates={CANCEL: 1.0}, error_kinds=(kind,), hang_seconds=hang_seconds)
        )

    def cancel(self) -> None:
        self.client.cancel_order(self.shop_id, self.order_sn, CancelReason.CUSTOMER_REQUEST)

    def status(self) -> str:
        return self.sandbox.state.order(self.order_sn).status

    def close(self) -> None:
        self.client.close()
        self.engine.dispose()
        self.sandbox.stop()


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated token database, made once: migrating takes longer than a test here."""
    path = tmp_path_factory.mktemp("tokens") / "template.db"
    engine = create_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture
def world(migrated: Path, tmp_path: Path) -> Iterator[World]:
    database = tmp_path / "tokens.db"
    shutil.copyfile(migrated, database)
    made = World(database, FaultConfig(), client_timeout=0.5)
    yield made
    made.close()


def test_the_kinds_say_whether_the_effect_happens_and_what_the_caller_sees() -> None:
    assert not any(applies_effect(kind) for kind in (*REFUSAL_KINDS, "timeout"))
    assert all(applies_effect(kind) for kind in AFTER_EFFECT_KINDS)
    assert [failure_seen(kind) for kind in AFTER_EFFECT_KINDS] == [
        "error_server",
        "http_502",
        "disconnect",
        "timeout",
    ]
    # Configurations written before these kinds existed keep getting refusals only.
    assert FaultConfig().error_kinds == REFUSAL_KINDS


def test_a_held_request_outlasts_the_clients_default_wait() -> None:
    # Otherwise the "timeout" fault would end in a dropped connection, not a client timeout.
    assert FaultConfig().hang_seconds > Settings().shopee_timeout_seconds


def test_a_timeout_is_never_answered_and_never_applied(world: World) -> None:
    world.fail("timeout")
    with pytest.raises(OutcomeUnknown, match="did not answer in time"):
        world.cancel()
    assert world.status() == "READY_TO_SHIP"
    (call,) = world.sandbox.state.call_log.snapshot(CANCEL)
    assert (call.error, call.http_status, call.fault) == ("timeout", 0, "timeout")
    assert (call.handled, call.applied, call.ok) == (False, False, False)


def test_a_client_that_waits_longer_than_the_hang_sees_the_connection_close(
    world: World,
) -> None:
    world.fail("timeout", hang_seconds=0.2)
    world.client.close()
    with httpx.Client(timeout=5) as http, pytest.raises(httpx.RemoteProtocolError):
        # Unsigned: the fault is drawn before the request is looked at.
        http.post(
            f"{world.sandbox.base_url}/api/v2/order/cancel_order",
            json={"order_sn": world.order_sn, "cancel_reason": "CUSTOMER_REQUEST"},
        )
    assert world.status() == "READY_TO_SHIP"


@pytest.mark.parametrize(
    ("kind", "seen"),
    [
        # An error envelope: orderflow's client reads "System error" after a mutation as an
        # unknown outcome too (shopee.errors.may_have_landed).
        ("effect_then_error_server", "error_server"),
        ("effect_then_http_502", "http_502"),
        ("effect_then_disconnect", "disconnect"),
        ("effect_then_timeout", "timeout"),
    ],
)
def test_a_failure_after_the_effect_leaves_the_client_with_an_unknown_outcome(
    world: World, kind: FaultKind, seen: str
) -> None:
    world.fail(kind)
    with pytest.raises(OutcomeUnknown):
        world.cancel()
    assert world.status() == "CANCELLED"  # applied, whatever the client heard
    (call,) = world.sandbox.state.call_log.snapshot(CANCEL)
    assert (call.error, call.fault) == (seen, kind)
    assert (call.handled, call.applied, call.ok) == (True, True, False)


def test_a_refusal_is_not_handled_and_changes_nothing(world: World) -> None:
    world.fail("error_system_busy")
    with pytest.raises(RetryableError):
        world.cancel()
    assert world.status() == "READY_TO_SHIP"
    (call,) = world.sandbox.state.call_log.snapshot(CANCEL)
    assert (call.handled, call.applied, call.fault) == (False, False, "error_system_busy")


def test_a_handled_request_the_handler_refuses_is_not_applied(world: World) -> None:
    world.cancel()
    with pytest.raises(CannotCancel):
        world.cancel()
    first, second = world.sandbox.state.call_log.snapshot(CANCEL)
    assert (first.handled, first.applied, first.ok) == (True, True, True)
    assert (second.handled, second.applied, second.ok) == (True, False, False)


def test_odds_from_overrides_the_defaults_and_names_what_is_wrong() -> None:
    odds = odds_from({"ready_buyer_requests_cancel": 0.5, "max_quantity": 1})
    assert odds == LifecycleOdds(ready_buyer_requests_cancel=0.5, max_quantity=1)
    assert odds_from({}) == LifecycleOdds()
    for bad, field in (
        ({"no_such_odds": 0.1}, "no_such_odds"),
        ({"returns": 1.5}, "returns"),
        ({"returns": True}, "returns"),
        ({"max_quantity": 0}, "max_quantity"),
        ({"max_quantity": 1.5}, "max_quantity"),
        ({"unpaid_timeout": -1}, "unpaid_timeout"),
    ):
        with pytest.raises(ValueError, match=field):
            odds_from(bad)


def test_the_control_route_starts_traffic_with_the_odds_it_is_given(world: World) -> None:
    base = world.sandbox.base_url
    with httpx.Client(base_url=base, timeout=5) as http:
        refused = http.post("/sandbox/traffic/start", json={"rate": 1, "odds": {"returns": 2}})
        assert refused.status_code == 400
        assert "returns" in refused.json()["message"]
        started = http.post(
            "/sandbox/traffic/start",
            json={
                "rate": 200,
                "seed": 3,
                "odds": {"unpaid_share": 1.0, "cod_share": 0, "max_quantity": 1},
            },
        )
        assert started.status_code == 200, started.text
        deadline = time.monotonic() + 10
        while http.get("/sandbox/traffic").json()["stats"]["created"] < 10:
            assert time.monotonic() < deadline, "traffic created no orders"
            time.sleep(0.05)
        http.post("/sandbox/traffic/stop")
    generated = [o for o in world.sandbox.state.orders() if o.order_sn != world.order_sn]
    assert len(generated) >= 10
    assert {order.status for order in generated} == {"UNPAID"}
    assert all(line.quantity == 1 for order in generated for line in order.lines)
