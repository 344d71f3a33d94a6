"""The four kinds of failure (design.md), decided once for every process.

* ``poison``: this record can never be processed (bad bytes, invalid event, a final answer
  about this record) -> dead-letter it with the reason, commit, move on;
* ``transient``: the broker, the registry, the database or Shopee is busy or away -> back off
  and retry without committing;
* ``blocked``: one shop (or the app's daily quota) cannot be served until a person or the
  clock fixes it -> park that shop's work and alert, the other shops carry on;
* anything else crashes the process loudly (``kind_of`` answers None).
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy.exc

from orderflow.kafka import KafkaUnavailable
from schemas.codec import RecordDecodeError
from schemas.registry import IncompatibleSchemaError, RegistryError
from shopee.errors import ShopeeError, failure_kind

FailureKind = Literal["poison", "transient", "blocked"]


class Poison(Exception):
    """This record can never be processed as it is (a final answer about it, a value the
    effect refuses); the message says why and goes into the dead letter's headers."""


class Transient(Exception):
    """Something the record needs is busy or away (an ERP endpoint, a lock); retry later."""


class Blocked(Exception):
    """One shop cannot be served until a person or the clock fixes it; its records are
    parked, not dead-lettered."""

    def __init__(self, shop_id: int, reason: str) -> None:
        super().__init__(f"shop {shop_id} is blocked: {reason}")
        self.shop_id = shop_id
        self.reason = reason


def kind_of(exc: BaseException) -> FailureKind | None:
    """Which kind ``exc`` is; None means "a bug or an unknown state: crash"."""
    if isinstance(exc, Poison):
        return "poison"
    if isinstance(exc, Transient):
        return "transient"
    if isinstance(exc, Blocked):
        return "blocked"
    if isinstance(exc, RecordDecodeError):
        return "poison"
    if isinstance(exc, ShopeeError):
        kind = failure_kind(exc)
        # A final Shopee answer is about the request, so about this record.
        return "poison" if kind == "final" else kind
    if isinstance(exc, IncompatibleSchemaError):
        return None  # a deploy whose schema the registry refuses: only a person can fix it
    if isinstance(exc, KafkaUnavailable | RegistryError):
        return "transient"
    if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        return "transient"
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return "transient"
    return None
