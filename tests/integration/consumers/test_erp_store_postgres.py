"""The ERP store on PostgreSQL, in a database of its own (several replicas share it)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.engine import Engine

from consumers.erp.outbox import ActionRecord
from consumers.erp.store import ErpStore
from consumers.erp_sync import ErpSync, StoreTarget
from orderflow.db import create_engine, migrate
from tests.e2e.pipeline import fresh_database
from tests.integration.stack import Stack
from tests.unit.consumers.erp_store_contract import CHECKS
from tests.unit.consumers.twins import T0, delivery, order_event


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


def test_erp_sync_starts_a_batch_and_finishes_it_later_on_postgres(stack: Stack) -> None:
    """On PostgreSQL erp-sync starts a batch, its writes finish on the store's writer thread,
    and the returned call gives what ``handle`` would: outcomes, orders and actions."""
    if stack.postgres_url is None:
        pytest.skip("no PostgreSQL in the stack")
    engine = create_engine(fresh_database(stack))
    migrate(engine)
    try:
        store = ErpStore(engine)
        handler = ErpSync(StoreTarget(store), clock=lambda: 1_800_000_000.0)
        events = [
            order_event("A", "UNPAID", update_time=T0),
            order_event("B", "UNPAID", update_time=T0),
            order_event("A", "UNPAID", update_time=T0),  # a duplicate
        ]
        finish = handler.start([delivery(e, offset) for offset, e in enumerate(events)])
        assert finish is not None
        assert finish() == ["applied", "applied", "unchanged"]
        assert [o.order_sn for o in store.orders()] == ["A", "B"]
        assert len(ActionRecord(engine).all("erp-sync")) == 2
        # A later batch: the stored A is locked and updated, B is left alone.
        later = order_event("A", "READY_TO_SHIP", update_time=T0 + 60)
        finish = handler.start([delivery(later, 3)])
        assert finish is not None
        assert finish() == ["applied"]
        assert [o.status for o in store.orders()] == ["READY_TO_SHIP", "UNPAID"]
    finally:
        engine.dispose()
