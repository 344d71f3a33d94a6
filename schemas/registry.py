"""A client for a Confluent-compatible schema registry (Apicurio's ``/apis/ccompat/v7``,
Confluent Schema Registry, Karapace, ...).

Ids are cached for the life of the process: a registered schema's id never changes, so each
schema is registered once and each writer schema fetched once.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Literal, Protocol

import httpx

Compatibility = Literal[
    "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FULL", "FULL_TRANSITIVE", "NONE"
]

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryError(Exception):
    """The registry refused a request or could not be reached."""


class NotFoundError(RegistryError):
    """The registry has no such schema id, subject or version."""


class UnknownSchemaId(NotFoundError):
    """The registry has no schema with the id a record's frame names.

    Transient, not poison: a producer registered that id before it wrote the record, so a
    registry that does not know it yet is restarting, replicating, or restoring its storage.
    Callers back off and retry the same record; nothing about the miss is cached.
    """

    def __init__(self, schema_id: int, registry: str) -> None:
        super().__init__(
            f"schema id {schema_id} is unknown to the schema registry at {registry}; a producer "
            "registered it before writing the record, so the registry is probably restarting "
            "or behind: retry later"
        )
        self.schema_id = schema_id


class IncompatibleSchemaError(RegistryError):
    """The registry's compatibility rule rejected a new schema version."""


def subject_for(topic: str) -> str:
    """The TopicNameStrategy subject that holds a topic's value schema."""
    return f"{topic}-value"


def canonical(schema: dict[str, Any] | str) -> str:
    """A stable text form of a schema, so equal schemas register (and cache) as equal."""
    parsed = json.loads(schema) if isinstance(schema, str) else schema
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"))


class SchemaRegistry(Protocol):
    """What the codec needs from a registry; the real client and the in-memory twin both fit.

    ``schema_by_id`` raises UnknownSchemaId for an id the registry does not know.
    """

    def register(self, subject: str, schema: dict[str, Any] | str) -> int: ...

    def schema_by_id(self, schema_id: int) -> str: ...


class InMemorySchemaRegistry:
    """The registry's twin for unit tests: same ids for same schemas, 404-style errors for
    unknown ids. Does not enforce compatibility rules."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: dict[str, int] = {}
        self._subjects: dict[str, list[int]] = {}

    def register(self, subject: str, schema: dict[str, Any] | str) -> int:
        text = canonical(schema)
        with self._lock:
            schema_id = self._ids.setdefault(text, len(self._ids) + 1)
            versions = self._subjects.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
            return schema_id

    def schema_by_id(self, schema_id: int) -> str:
        with self._lock:
            for text, known in self._ids.items():
                if known == schema_id:
                    return text
        raise UnknownSchemaId(schema_id, "in memory")

    def subjects(self) -> list[str]:
        with self._lock:
            return sorted(self._subjects)


class SchemaRegistryClient:
    """Register schemas and fetch them by id. Thread-safe; one instance per process."""

    def __init__(
        self,
        url: str,
        *,
        auth: tuple[str, str] | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            auth=auth,
            timeout=timeout,
            headers={"Accept": _CONTENT_TYPE},
            transport=transport,
        )
        self._lock = threading.Lock()
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, str] = {}

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SchemaRegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(
                method,
                path,
                content=None if body is None else json.dumps(body),
                headers=None if body is None else {"Content-Type": _CONTENT_TYPE},
            )
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"schema registry unreachable at {self._http.base_url}: {exc}"
            ) from exc
        if response.status_code == 404:
            raise NotFoundError(f"{method} {path} answered 404: {response.text}")
        if response.status_code == 409:
            raise IncompatibleSchemaError(f"{method} {path}: {response.text}")
        if response.status_code >= 400:
            raise RegistryError(f"{method} {path} answered {response.status_code}: {response.text}")
        try:
            return response.json()
        except ValueError as exc:
            raise RegistryError(f"{method} {path} answered a body that is not JSON") from exc

    def register(self, subject: str, schema: dict[str, Any] | str) -> int:
        """The id of ``schema`` under ``subject``, registering it as a new version if needed."""
        text = canonical(schema)
        with self._lock:
            cached = self._ids.get((subject, text))
        if cached is not None:
            return cached
        answer = self._request(
            "POST", f"/subjects/{subject}/versions", {"schema": text, "schemaType": "AVRO"}
        )
        schema_id = int(answer["id"])
        with self._lock:
            self._ids[(subject, text)] = schema_id
            self._schemas[schema_id] = text
        return schema_id

    def schema_by_id(self, schema_id: int) -> str:
        """The schema text registered with ``schema_id``; UnknownSchemaId if the registry
        does not know it (asked again on the next call)."""
        with self._lock:
            cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        try:
            answer = self._request("GET", f"/schemas/ids/{schema_id}")
        except NotFoundError as exc:
            raise UnknownSchemaId(schema_id, str(self._http.base_url)) from exc
        text = str(answer["schema"])
        with self._lock:
            self._schemas[schema_id] = text
        return text

    def set_compatibility(self, subject: str, level: Compatibility) -> None:
        self._request("PUT", f"/config/{subject}", {"compatibility": level})

    def is_compatible(self, subject: str, schema: dict[str, Any] | str) -> bool:
        """Whether ``schema`` could be registered next under ``subject``'s rule."""
        try:
            answer = self._request(
                "POST",
                f"/compatibility/subjects/{subject}/versions/latest",
                {"schema": canonical(schema), "schemaType": "AVRO"},
            )
        except NotFoundError:
            return True  # no versions yet: anything is compatible
        return bool(answer.get("is_compatible"))

    def subjects(self) -> list[str]:
        return [str(s) for s in self._request("GET", "/subjects")]
