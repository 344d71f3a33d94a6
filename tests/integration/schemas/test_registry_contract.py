"""One contract, two implementations: the in-memory twin and the real registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from schemas.codec import schema_for
from schemas.models import OrderAction, OrderEvent
from schemas.registry import (
    InMemorySchemaRegistry,
    NotFoundError,
    SchemaRegistry,
    SchemaRegistryClient,
    UnknownSchemaId,
)
from tests.integration.stack import Stack


@pytest.fixture(params=["twin", "apicurio"])
def any_registry(request: pytest.FixtureRequest) -> Iterator[SchemaRegistry]:
    if request.param == "twin":
        yield InMemorySchemaRegistry()
        return
    stack: Stack = request.getfixturevalue("stack")
    with SchemaRegistryClient(stack.registry_url) as client:
        yield client


def test_the_same_schema_gets_the_same_id(any_registry: SchemaRegistry, unique: str) -> None:
    first = any_registry.register(f"{unique}-a-value", schema_for(OrderEvent))
    again = any_registry.register(f"{unique}-a-value", schema_for(OrderEvent))
    assert again == first


def test_a_schema_is_fetched_back_by_id(any_registry: SchemaRegistry, unique: str) -> None:
    schema_id = any_registry.register(f"{unique}-b-value", schema_for(OrderAction))
    import json

    assert json.loads(any_registry.schema_by_id(schema_id)) == schema_for(OrderAction)


def test_an_unknown_id_is_not_found(any_registry: SchemaRegistry) -> None:
    with pytest.raises(UnknownSchemaId, match="schema id 987654321 is unknown") as caught:
        any_registry.schema_by_id(987654321)
    assert isinstance(caught.value, NotFoundError)
    assert caught.value.schema_id == 987654321


def test_a_fresh_client_gets_the_same_id_from_the_real_registry(stack: Stack, unique: str) -> None:
    with (
        SchemaRegistryClient(stack.registry_url) as one,
        SchemaRegistryClient(stack.registry_url) as two,
    ):
        assert one.register(f"{unique}-value", schema_for(OrderEvent)) == two.register(
            f"{unique}-value", schema_for(OrderEvent)
        )


def test_the_real_registry_refuses_a_backward_incompatible_version(
    registry: SchemaRegistryClient, unique: str
) -> None:
    subject = f"{unique}-value"
    registry.set_compatibility(subject, "BACKWARD")
    registry.register(subject, schema_for(OrderEvent))
    breaking = schema_for(OrderEvent)
    breaking["fields"].append({"name": "brand_new", "type": "string"})
    assert not registry.is_compatible(subject, breaking)
    additive = schema_for(OrderEvent)
    additive["fields"].append({"name": "brand_new", "type": ["null", "string"], "default": None})
    assert registry.is_compatible(subject, additive)
