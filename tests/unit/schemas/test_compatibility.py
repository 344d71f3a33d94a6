"""Schemas evolve so that old readers read new data and new readers read old data.

Every version ever published is kept in schemas/avro/history; the current schema must be
compatible with each of them in both directions (Apache Avro's own resolution rules).
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from avro.schema import parse

from schemas.codec import SCHEMA_FILES, load_schema


def compatible(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        parse(json.dumps(reader)), parse(json.dumps(writer))
    )
    return result.compatibility is SchemaCompatibilityType.compatible


def history() -> list[tuple[str, str]]:
    folder = resources.files("schemas").joinpath("avro", "history")
    pairs = []
    for current in SCHEMA_FILES.values():
        stem = current.removesuffix(".avsc")
        for old in sorted(p.name for p in folder.iterdir() if p.name.startswith(stem + ".v")):
            pairs.append((current, f"history/{old}"))
    return pairs


def test_every_schema_has_a_published_history() -> None:
    assert {current for current, _ in history()} == set(SCHEMA_FILES.values())


@pytest.mark.parametrize(("current", "old"), history())
def test_new_readers_read_old_data_and_old_readers_read_new_data(current: str, old: str) -> None:
    new_schema, old_schema = load_schema(current), load_schema(old)
    assert compatible(reader=new_schema, writer=old_schema), "new readers cannot read old data"
    assert compatible(reader=old_schema, writer=new_schema), "old readers cannot read new data"


@pytest.mark.parametrize("current", list(SCHEMA_FILES.values()))
def test_adding_a_field_without_a_default_is_caught(current: str) -> None:
    old = load_schema(current)
    new = copy.deepcopy(old)
    new["fields"].append({"name": "brand_new", "type": "string"})
    assert not compatible(reader=new, writer=old)


@pytest.mark.parametrize("current", list(SCHEMA_FILES.values()))
def test_removing_a_required_field_is_caught(current: str) -> None:
    old = load_schema(current)
    new = copy.deepcopy(old)
    new["fields"] = [f for f in new["fields"] if f["name"] != "order_sn"]
    assert not compatible(reader=old, writer=new)


def test_adding_an_optional_field_with_a_default_is_allowed() -> None:
    old = load_schema("order_event.avsc")
    new = copy.deepcopy(old)
    new["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    assert compatible(reader=new, writer=old) and compatible(reader=old, writer=new)
