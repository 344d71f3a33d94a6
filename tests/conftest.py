"""Fixtures every test folder may use. Broker-backed fixtures live in tests/integration; the
stack itself is here so integration and e2e tests share one per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from orderflow.metrics import Metrics


@pytest.fixture
def metrics() -> Metrics:
    """A fresh metric set on its own registry, so tests never see each other's counts."""
    return Metrics(CollectorRegistry())


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No ORDERFLOW_* variables from the developer's shell leak into settings tests."""
    import os

    for name in list(os.environ):
        if name.startswith("ORDERFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir("/")  # and no .env file from the checkout
    yield monkeypatch


@pytest.fixture(scope="session")
def stack() -> Iterator[object]:
    """The real Kafka, registry and PostgreSQL: reused if running, else started (and
    stopped at the end of the session)."""
    from tests.integration.stack import find_or_start, stop

    found = find_or_start()
    yield found
    if found.stack_dir is not None:
        stop(found.stack_dir)
