"""Token storage (in-memory twin and SQLite, one contract) and the refresh lifecycle."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc

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


# --- "Invalid refresh_token" after someone else rotated the pair -----------------------------


def _refreshes(metrics: Metrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "orderflow_shopee_token_refreshes_total", {"shop_id": str(SHOP), "outcome": outcome}
    )
    return value or 0.0


class _ChangedMeanwhile(FakeGrantor):
    """Runs ``meanwhile`` (another replica, or the seller) just before Shopee answers our
    refresh, the first time only."""

    def __init__(self) -> None:
        super().__init__()
        self.meanwhile: Callable[[str], None] = lambda refresh_token: None

    def refresh_access_token(self, refresh_token: str, shop_id: int) -> TokenGrant:
        meanwhile, self.meanwhile = self.meanwhile, lambda refresh_token: None
        meanwhile(refresh_token)
        return super().refresh_access_token(refresh_token, shop_id)


def _another_replica_rotates(store: TokenStore, grantor: FakeGrantor) -> Callable[[str], None]:
    def rotate(refresh_token: str) -> None:
        # A replica whose lease ran out under it: it spends the token and stores its pair.
        grant = FakeGrantor.refresh_access_token(grantor, refresh_token, SHOP)
        assert store.save_refreshed(token_from_grant(SHOP, grant, NOW), refresh_token)

    return rotate


def _seller_reauthorises(store: TokenStore, grantor: FakeGrantor) -> Callable[[str], None]:
    def reauthorise(refresh_token: str) -> None:
        # Re-authorising replaces the pair; Shopee stops honouring the old refresh token.
        grantor.valid_refresh_tokens.discard(refresh_token)
        store.save_authorized(token_from_grant(SHOP, grantor.get_access_token("c2", SHOP), NOW))

    return reauthorise


def _refresh_token_dies(store: TokenStore, grantor: FakeGrantor) -> Callable[[str], None]:
    def expire(refresh_token: str) -> None:
        grantor.valid_refresh_tokens.discard(refresh_token)  # 30 days unused, say

    return expire


@pytest.mark.parametrize(
    ("meanwhile", "joins"),
    [(_another_replica_rotates, True), (_seller_reauthorises, True), (_refresh_token_dies, False)],
    ids=["another-replica-rotated", "seller-reauthorised", "refresh-token-dead"],
)
def test_invalid_refresh_token_rereads_the_store_before_giving_up(
    store: TokenStore,
    metrics: Metrics,
    meanwhile: Callable[[TokenStore, FakeGrantor], Callable[[str], None]],
    joins: bool,
) -> None:
    clock, grantor = FakeClock(NOW), _ChangedMeanwhile()
    tokens = _lifecycle(store, grantor, metrics, clock)
    first = _authorised(store, grantor, tokens)
    grantor.meanwhile = meanwhile(store, grantor)
    if joins:
        fresh = tokens.refresh_rejected(SHOP, first.access_token)
        stored = store.load(SHOP)
        assert stored is not None and fresh == stored.access_token != first.access_token
        assert grantor.burnt == [first.refresh_token]  # Shopee did refuse ours
        assert (_refreshes(metrics, "joined"), _refreshes(metrics, "reauthorize")) == (1, 0)
    else:
        with pytest.raises(ReauthorizationRequired):
            tokens.refresh_rejected(SHOP, first.access_token)
        assert store.load(SHOP) == first
        assert (_refreshes(metrics, "joined"), _refreshes(metrics, "reauthorize")) == (0, 1)
    assert store.try_lease(SHOP, "next", clock(), clock() + 1)  # the lease was given back


# --- an early refresh never waits for another refresher --------------------------------------


@pytest.mark.parametrize(
    ("age", "waits"),
    [
        (14400 - 1800, False),  # just inside the margin
        (14400 - 1, False),  # one second left
        (14400, True),  # expired: nothing to serve but a fresh token
        (14400 + 600, True),
    ],
)
def test_only_an_expired_token_waits_for_the_lease_holder(
    store: TokenStore, metrics: Metrics, age: int, waits: bool
) -> None:
    clock, grantor = FakeClock(NOW), FakeGrantor()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    tokens = _lifecycle(store, grantor, metrics, clock, sleep=sleep, lease_seconds=30)
    first = _authorised(store, grantor, tokens)
    clock.advance(age)
    assert store.try_lease(SHOP, "other-replica", clock(), clock() + 20)
    token = tokens.access_token(SHOP)
    if waits:
        assert token != first.access_token
        assert 20 <= sum(slept) <= 21  # until the other holder's lease ran out
        assert grantor.refresh_calls == [first.refresh_token]
    else:
        assert token == first.access_token
        assert slept == []
        assert grantor.refresh_calls == []


def test_an_early_refresh_joins_a_finished_one(store: TokenStore, metrics: Metrics) -> None:
    clock, grantor = FakeClock(NOW), FakeGrantor()
    tokens = _lifecycle(store, grantor, metrics, clock)
    first = _authorised(store, grantor, tokens)
    clock.advance(14400 - 1000)
    other = _lifecycle(store, grantor, metrics, clock)
    newer = other.refresh_rejected(SHOP, first.access_token)
    assert tokens.access_token(SHOP) == newer
    assert len(grantor.refresh_calls) == 1


# --- storing the new pair survives a database hiccup -----------------------------------------


def _db_down() -> sa_exc.OperationalError:
    return sa_exc.OperationalError(
        "UPDATE shopee_tokens ...", {}, Exception("server closed the connection unexpectedly")
    )


class _FlakySaves:
    """A TokenStore whose ``save_refreshed`` raises ``errors`` in turn before it works;
    ``after_commit`` makes a failing attempt commit first (the answer was lost, not the
    write)."""

    def __init__(
        self, inner: TokenStore, errors: list[Exception], *, after_commit: bool = False
    ) -> None:
        self.inner = inner
        self.errors = errors
        self.after_commit = after_commit
        self.attempts = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def save_refreshed(self, token: ShopToken, used_refresh_token: str) -> bool:
        self.attempts += 1
        if self.errors:
            if self.after_commit:
                self.inner.save_refreshed(token, used_refresh_token)
            raise self.errors.pop(0)
        return self.inner.save_refreshed(token, used_refresh_token)


@dataclass(frozen=True)
class SaveCase:
    name: str
    errors: list[Exception]
    after_commit: bool
    stored: bool  # the new pair ends up in the store and is handed out
    attempts: int
    slept: list[float]


SAVE_CASES = [
    SaveCase("first try", [], False, True, 1, []),
    SaveCase("two hiccups", [_db_down(), _db_down()], False, True, 3, [0.2, 0.4]),
    SaveCase("the lost answer had committed", [_db_down()], True, True, 2, [0.2]),
    SaveCase(
        "pool exhausted", [sa_exc.TimeoutError("QueuePool limit reached")], False, True, 2, [0.2]
    ),
    SaveCase("down for good", [_db_down()] * 5, False, False, 5, [0.2, 0.4, 0.8, 1.6]),
    SaveCase("not transient", [sa_exc.NoSuchTableError("shopee_tokens")], False, False, 1, []),
]


@pytest.mark.parametrize("case", SAVE_CASES, ids=[case.name for case in SAVE_CASES])
def test_the_new_pair_is_saved_through_transient_database_errors(
    store: TokenStore, metrics: Metrics, caplog: pytest.LogCaptureFixture, case: SaveCase
) -> None:
    clock, grantor = FakeClock(NOW), FakeGrantor()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    flaky = _FlakySaves(store, list(case.errors), after_commit=case.after_commit)
    tokens = _lifecycle(flaky, grantor, metrics, clock, sleep=sleep)  # type: ignore[arg-type]
    first = _authorised(store, grantor, tokens)
    if case.stored:
        fresh = tokens.refresh_rejected(SHOP, first.access_token)
        stored = store.load(SHOP)
        assert stored is not None and stored.access_token == fresh != first.access_token
        assert stored.refresh_token in grantor.valid_refresh_tokens
        assert _refreshes(metrics, "ok") == 1
    else:
        with pytest.raises(type(case.errors[0])):
            tokens.refresh_rejected(SHOP, first.access_token)
        assert store.load(SHOP) == first
        assert _refreshes(metrics, "save_failed") == 1
        (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
        assert "re-authorisation" in record.getMessage()
        assert first.refresh_token not in record.getMessage()
    assert flaky.attempts == case.attempts
    assert slept == case.slept
    assert grantor.refresh_calls == [first.refresh_token]  # never a second refresh
