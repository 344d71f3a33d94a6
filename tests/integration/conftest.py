"""Integration fixtures: the real broker, registry and database, shared by the session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from orderflow.settings import Settings
from schemas.registry import SchemaRegistryClient
from tests.integration.stack import Stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def postgres_url(stack: Stack) -> str:
    if stack.postgres_url is None:
        pytest.skip("no PostgreSQL in the stack (its server binaries are not installed)")
    return stack.postgres_url


@pytest.fixture
def unique() -> str:
    """A short suffix that keeps topics, groups and subjects of one test apart from others."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings(stack: Stack, unique: str) -> Settings:
    """Settings pointing at the stack, with topic names of this test's own."""
    return Settings(
        kafka_bootstrap_servers=stack.bootstrap_servers,
        schema_registry_url=stack.registry_url,
        topic_notices=f"t{unique}.order-notices",
        topic_orders=f"t{unique}.orders",
        topic_actions=f"t{unique}.order-actions",
        topic_partitions=3,
        database_url=stack.postgres_url or "sqlite://",
    )


@pytest.fixture
def registry(stack: Stack) -> Iterator[SchemaRegistryClient]:
    with SchemaRegistryClient(stack.registry_url) as client:
        yield client
