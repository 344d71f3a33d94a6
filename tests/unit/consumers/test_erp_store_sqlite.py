"""The ERP store on SQLite (the default database)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from orderflow.db import create_engine, migrate
from tests.unit.consumers.erp_store_contract import CHECKS


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_store_contract_on_sqlite(check: Callable[[Engine], None], tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/erp.db")
    migrate(engine)
    try:
        check(engine)
    finally:
        engine.dispose()
