"""End-to-end tests: the pipeline's real processes against the sandbox on the real stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orderflow.settings import Settings
from tests.e2e.pipeline import TOPIC_PREFIXES
from tests.integration.stack import Stack
from tests.integration.topics import delete_topics_with_prefixes


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def _remove_pipeline_topics(stack: Stack) -> Iterator[None]:
    """Delete the topics of this session's pipelines once every e2e test is done (a reused
    stack would otherwise keep them all)."""
    yield
    settings = Settings(kafka_bootstrap_servers=stack.bootstrap_servers)
    delete_topics_with_prefixes(settings, TOPIC_PREFIXES)
