"""The ``TokenStore`` contract, run against every implementation (the in-memory twin, SQLite
and PostgreSQL): subclass ``TokenStoreContract`` and provide a ``contract_store`` fixture."""

from __future__ import annotations

import threading

from shopee.tokens import ShopToken, TokenStore

SHOP = 4242
NOW = 1_700_000_000


def shop_token(n: int = 1, *, expires_at: int = NOW + 14400, issued_at: int = NOW) -> ShopToken:
    return ShopToken(
        shop_id=SHOP,
        access_token=f"access-{n}",
        access_expires_at=expires_at,
        refresh_token=f"refresh-{n}",
        refresh_issued_at=issued_at,
        authorized_at=NOW - 86400,
    )


class TokenStoreContract:
    def test_store_round_trip_and_upsert(self, contract_store: TokenStore) -> None:
        assert contract_store.load(SHOP) is None
        contract_store.save_authorized(shop_token(1))
        assert contract_store.load(SHOP) == shop_token(1)
        contract_store.save_authorized(shop_token(2))
        assert contract_store.load(SHOP) == shop_token(2)
        other = ShopToken(7, "a", 1, "r", 1, 1)
        contract_store.save_authorized(other)
        assert [t.shop_id for t in contract_store.load_all()] == [7, SHOP]

    def test_big_shop_ids_fit(self, contract_store: TokenStore) -> None:
        token = ShopToken(4294967295, "a", 2**40, "r", 2**40, 1)
        contract_store.save_authorized(token)
        assert contract_store.load(4294967295) == token

    def test_lease_is_exclusive_until_released_or_expired(self, contract_store: TokenStore) -> None:
        assert not contract_store.try_lease(SHOP, "a", NOW, NOW + 30)  # unknown shop
        contract_store.save_authorized(shop_token(1))
        assert contract_store.try_lease(SHOP, "a", NOW, NOW + 30)
        assert not contract_store.try_lease(SHOP, "b", NOW + 10, NOW + 40)
        contract_store.release_lease(SHOP, "b")  # not b's to release
        assert not contract_store.try_lease(SHOP, "b", NOW + 10, NOW + 40)
        assert contract_store.try_lease(SHOP, "b", NOW + 30, NOW + 60)  # a's lease ran out
        contract_store.release_lease(SHOP, "b")
        assert contract_store.try_lease(SHOP, "c", NOW + 31, NOW + 61)

    def test_save_refreshed_is_compare_and_set_and_frees_the_lease(
        self, contract_store: TokenStore
    ) -> None:
        contract_store.save_authorized(shop_token(1))
        assert contract_store.try_lease(SHOP, "a", NOW, NOW + 30)
        assert not contract_store.save_refreshed(shop_token(3), used_refresh_token="refresh-2")
        assert contract_store.save_refreshed(shop_token(2), used_refresh_token="refresh-1")
        stored = contract_store.load(SHOP)
        assert stored is not None
        assert stored.refresh_token == "refresh-2"
        assert stored.authorized_at == NOW - 86400
        assert contract_store.try_lease(SHOP, "b", NOW + 1, NOW + 31)

    def test_authorisation_clears_a_lease(self, contract_store: TokenStore) -> None:
        contract_store.save_authorized(shop_token(1))
        assert contract_store.try_lease(SHOP, "a", NOW, NOW + 30)
        contract_store.save_authorized(shop_token(2))
        assert contract_store.try_lease(SHOP, "b", NOW, NOW + 30)

    def test_only_one_of_many_racing_holders_gets_the_lease(
        self, contract_store: TokenStore
    ) -> None:
        contract_store.save_authorized(shop_token(1))
        start = threading.Barrier(8)
        winners: list[int] = []

        def race(n: int) -> None:
            start.wait()
            if contract_store.try_lease(SHOP, f"holder-{n}", NOW, NOW + 30):
                winners.append(n)

        threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert len(winners) == 1
