"""The ERP store on PostgreSQL, in a database of its own (several replicas share it)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.engine import Engine

from orderflow.db import create_engine, migrate
from tests.e2e.pipeline import fresh_database
from tests.integration.stack import Stack
from tests.unit.consumers.erp_store_contract import CHECKS


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_store_contract_on_postgres(check: Callable[[Engine], None], stack: Stack) -> None:
    if stack.postgres_url is None:
        pytest.skip("no PostgreSQL in the stack")
    engine = create_engine(fresh_database(stack))
    migrate(engine)
    try:
        check(engine)
    finally:
        engine.dispose()
