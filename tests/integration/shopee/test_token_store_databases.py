"""The SQL token store on every supported database (SQLite, and PostgreSQL when reachable)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orderflow.db import create_engine
from shopee.tokens import SqlTokenStore, TokenStore
from tests.unit.shopee.token_store_contract import TokenStoreContract


class TestSqlTokenStore(TokenStoreContract):
    @pytest.fixture
    def contract_store(self, database_url: str) -> Iterator[TokenStore]:
        engine = create_engine(database_url)
        yield SqlTokenStore(engine)
        engine.dispose()
