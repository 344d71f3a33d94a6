"""Token storage (in-memory twin and SQLite, one contract) and the refresh lifecycle."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from orderflow.metrics import Metrics
from shopee.errors import ReauthorizationRequired, RetryableError
from shopee.models import TokenGrant
from shopee.tokens import (
    InMemoryTokenStore,
    ShopToken,
    ShopTokens,
    TokenStore,
    access_expiry,
    token_from_grant,
)
from tests.unit.shopee.token_fakes import FakeClock, FakeGrantor, sqlite_store
from tests.unit.shopee.token_store_contract import NOW, SHOP, TokenStoreContract, shop_token


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> TokenStore:
    if request.param == "memory":
        return InMemoryTokenStore()
    return sqlite_store(tmp_path)


# --- the store contract, on the twin and on SQLite -------------------------------------------


class TestInMemoryTokenStore(TokenStoreContract):
    @pytest.fixture
    def contract_store(self) -> TokenStore:
        return InMemoryTokenStore()


class TestSqliteTokenStore(TokenStoreContract):
    @pytest.fixture
    def contract_store(self, tmp_path: Path) -> TokenStore:
        return sqlite_store(tmp_path)


# --- pure helpers ----------------------------------------------------------------------------


def test_access_expiry_reads_lifetimes_and_epochs() -> None:
    assert access_expiry(14400, NOW) == NOW + 14400
    # Shopee's own token/get sample puts an epoch in expire_in.
    assert access_expiry(1767001812, NOW) == 1767001812


def test_needs_refresh_uses_the_margin() -> None:
    near_expiry = shop_token(expires_at=NOW + 1800)
    assert not near_expiry.needs_refresh(NOW, 1799)
    assert near_expiry.needs_refresh(NOW, 1800)


def test_token_repr_hides_credentials() -> None:
    text = repr(shop_token(1))
    assert "access-1" not in text
    assert "refresh-1" not in text


def test_token_from_grant() -> None:
    grant = TokenGrant(access_token="a", refresh_token="r", expire_in=14400)
    token = token_from_grant(SHOP, grant, NOW + 0.7, authorized_at=5)
    assert (token.access_expires_at, token.refresh_issued_at, token.authorized_at) == (
        NOW + 14400,
        NOW,
        5,
    )


# --- the lifecycle ---------------------------------------------------------------------------


def _lifecycle(
    store: TokenStore,
    grantor: FakeGrantor,
    metrics: Metrics,
    clock: FakeClock,
    *,
    sleep: object = None,
    lease_seconds: float = 30.0,
    poll_seconds: float = 0.5,
) -> ShopTokens:
    return ShopTokens(
        store,
        grantor,
        metrics,
        refresh_margin_seconds=1800,
        lease_seconds=lease_seconds,
        poll_seconds=poll_seconds,
        clock=clock,
        sleep=sleep if callable(sleep) else clock.advance,
    )


def _authorised(store: TokenStore, grantor: FakeGrantor, tokens: ShopTokens) -> ShopToken:
    return tokens.authorize("the-code", SHOP)


def test_fresh_token_is_used_without_refreshing(store: TokenStore, metrics: Metrics) -> None:
    clock, grantor = FakeClock(NOW), FakeGrantor()
    tokens = _lifecycle(store, grantor, metrics, clock)
    first = _authorised(store, grantor, tokens)
    assert tokens.access_token(SHOP) == first.access_token
    assert grantor.refresh_calls == []


def test_refreshes_inside_the_margin_and_persists_the_new_pair(
    store: TokenStore, metrics: Metrics
) -> None:
    clock, grantor = FakeClock(NOW), FakeGrantor()
    tokens = _lifecycle(store, grantor, metrics, clock)
    first = _authorised(store, grantor, tokens)
    clock.advance(14400 - 1800)
    stored_when_answered: list[ShopToken | None] = []
    fresh = tokens.access_token(SHOP)
    stored_when_answered.append(store.load(SHOP))
    assert fresh != first.access_token
    assert grantor.refresh_calls == [first.refresh_token]
    stored = stored_when_answered[0]
    assert stored is not None
    assert stored.access_token == fresh
    assert stored.refresh_token in grantor.valid_refresh_tokens
    assert stored.refresh_issued_at == int(clock())
    assert (
        metrics.registry.get_sample_value(
            "orderflow_shopee_token_refreshes_total", {"shop_id": str(SHOP), "outcome": "ok"}
        )
        == 1.0
    )


def test_rejected_token_already_replaced_is_not_refreshed_again(
    store: TokenStore, metrics: Metrics
) -> None:
    clock, grantor = FakeClock(NOW), FakeGrantor()
    tokens = _lifecycle(store, grantor, metrics, clock)
    first = _authorised(store, grantor, tokens)
    second = tokens.refresh_rejected(SHOP, first.access_token)
    assert tokens.refresh_rejected(SHOP, first.access_token) == second
    assert len(grantor.refresh_calls) == 1


def test_concurrent_refreshers_spend_the_refresh_token_once(
    store: TokenStore, metrics: Metrics
) -> None:
    grantor = FakeGrantor(delay=0.05)
    tokens = ShopTokens(
        store, grantor, metrics, refresh_margin_seconds=1800, lease_seconds=30, poll_seconds=0.005
    )
    first = tokens.authorize("code", SHOP)
    results: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def refresher() -> None:
        start.wait()
        try:
            results.append(tokens.refresh_rejected(SHOP, first.access_token))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=refresher) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert grantor.refresh_calls == [first.refresh_token]
    assert grantor.burnt == []
    assert len(set(results)) == 1
    stored = store.load(SHOP)
    assert stored is not None and stored.access_token == results[0]


def test_dead_holders_lease_expires(store: TokenStore, metrics: Metrics) -> None:
    clock, grantor = FakeClock(NOW), FakeGrantor()
    tokens = _lifecycle(store, grantor, metrics, clock, lease_seconds=30)
    first = _authorised(store, grantor, tokens)
    assert store.try_lease(SHOP, "crashed-replica", clock(), clock() + 30)
    fresh = tokens.refresh_rejected(SHOP, first.access_token)
    assert fresh != first.access_token
    assert clock() >= NOW + 30  # it waited for the lease to run out, no longer
    assert clock() <= NOW + 31


def test_gives_up_when_another_holder_keeps_the_lease(store: TokenStore, metrics: Metrics) -> None:
    clock, grantor = FakeClock(NOW), FakeGrantor()
    tokens = ShopTokens(
        store,
        grantor,
        metrics,
        refresh_margin_seconds=1800,
        lease_seconds=30,
        wait_seconds=10,
        clock=clock,
        sleep=clock.advance,
    )
    first = _authorised(store, grantor, tokens)
    assert store.try_lease(SHOP, "slow-replica", clock(), clock() + 3600)
    with pytest.raises(RetryableError, match="another process"):
        tokens.refresh_rejected(SHOP, first.access_token)
    assert grantor.refresh_calls == []


def test_rejected_refresh_token_needs_reauthorisation_and_frees_the_lease(
    store: TokenStore, metrics: Metrics
) -> None:
    clock, grantor = FakeClock(NOW), FakeGrantor()
    tokens = _lifecycle(store, grantor, metrics, clock)
    first = _authorised(store, grantor, tokens)
    grantor.valid_refresh_tokens.clear()  # e.g. 30 days unused
    with pytest.raises(ReauthorizationRequired):
        tokens.refresh_rejected(SHOP, first.access_token)
    assert store.try_lease(SHOP, "next", clock(), clock() + 1)
    assert (
        metrics.registry.get_sample_value(
            "orderflow_shopee_token_refreshes_total",
            {"shop_id": str(SHOP), "outcome": "reauthorize"},
        )
        == 1.0
    )


def test_unknown_shop_needs_authorisation(store: TokenStore, metrics: Metrics) -> None:
    tokens = _lifecycle(store, FakeGrantor(), metrics, FakeClock(NOW))
    with pytest.raises(ReauthorizationRequired, match="orderflow auth"):
        tokens.access_token(999)


class _FlakyGrantor(FakeGrantor):
    def refresh_access_token(self, refresh_token: str, shop_id: int) -> TokenGrant:
        raise RetryableError("error_server")


def test_transient_refresh_failure_keeps_a_still_valid_token(
    store: TokenStore, metrics: Metrics
) -> None:
    clock, grantor = FakeClock(NOW), _FlakyGrantor()
    tokens = _lifecycle(store, grantor, metrics, clock)
    first = _authorised(store, grantor, tokens)
    clock.advance(14400 - 60)
    assert tokens.access_token(SHOP) == first.access_token
    clock.advance(120)
    with pytest.raises(RetryableError):
        tokens.access_token(SHOP)


def test_reauthorisation_during_a_refresh_wins(store: TokenStore, metrics: Metrics) -> None:
    clock, grantor = FakeClock(NOW), FakeGrantor()
    tokens = _lifecycle(store, grantor, metrics, clock)
    first = _authorised(store, grantor, tokens)
    reauthorised = shop_token(99)
    grantor.before_answer = lambda: store.save_authorized(reauthorised)
    assert tokens.refresh_rejected(SHOP, first.access_token) == reauthorised.access_token


def test_gauges_tick_with_the_clock(store: TokenStore, metrics: Metrics) -> None:
    clock, grantor = FakeClock(NOW), FakeGrantor()
    tokens = _lifecycle(store, grantor, metrics, clock)
    _authorised(store, grantor, tokens)
    labels = {"shop_id": str(SHOP)}
    age = "orderflow_shopee_refresh_token_age_seconds"
    expires = "orderflow_shopee_access_token_expires_in_seconds"
    assert metrics.registry.get_sample_value(age, labels) == 0.0
    assert metrics.registry.get_sample_value(expires, labels) == 14400.0
    clock.advance(3 * 86400)
    assert metrics.registry.get_sample_value(age, labels) == 3 * 86400.0
    assert metrics.registry.get_sample_value(expires, labels) == 14400.0 - 3 * 86400


def test_publish_all_covers_every_stored_shop(store: TokenStore, metrics: Metrics) -> None:
    clock = FakeClock(NOW + 100)
    store.save_authorized(shop_token(1))
    store.save_authorized(ShopToken(7, "a", NOW + 5, "r", NOW - 50, NOW - 50))
    tokens = _lifecycle(store, FakeGrantor(), metrics, clock)
    assert [t.shop_id for t in tokens.publish_all()] == [7, SHOP]
    age = "orderflow_shopee_refresh_token_age_seconds"
    assert metrics.registry.get_sample_value(age, {"shop_id": "7"}) == 150.0
    assert metrics.registry.get_sample_value(age, {"shop_id": str(SHOP)}) == 100.0
