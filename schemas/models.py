"""Python mirrors of the Avro records in ``schemas/avro``.

The ``.avsc`` files are the source of truth for subscribers; these models are how orderflow's
own code builds and reads records. ``tests/unit/schemas/test_models.py`` fails when the two
drift apart. Timestamps are timezone-aware UTC with millisecond precision (what Avro
``timestamp-millis`` can hold); amounts are ``Decimal`` with at most four decimal places.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Fixed forever: changing it would change every event id.
_EVENT_ID_NAMESPACE = uuid.UUID("6f726465-7266-6c6f-7700-6576656e7473")
_EVENT_ID_PREFIX = _EVENT_ID_NAMESPACE.bytes

Source = Literal["push", "poll", "lost_push", "backfill"]
SOURCES: tuple[Source, ...] = ("push", "poll", "lost_push", "backfill")

# Avro decimal(18, 4): 14 integer digits, 4 fractional.
AMOUNT_SCALE = 4
AMOUNT_PRECISION = 18


_AMOUNT_LIMIT = Decimal(10) ** (AMOUNT_PRECISION - AMOUNT_SCALE)


def _to_utc_millis(value: datetime) -> datetime:
    if value.tzinfo is UTC and not value.microsecond % 1000:
        return value  # already UTC to the millisecond, as every decoded timestamp is
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


def _check_amount(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("amounts must be finite")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite decimals have an int exponent
    if exponent < -AMOUNT_SCALE:
        raise ValueError(f"amounts carry at most {AMOUNT_SCALE} decimal places, got {value}")
    if abs(value) >= _AMOUNT_LIMIT:
        raise ValueError(f"amount {value} does not fit decimal({AMOUNT_PRECISION},{AMOUNT_SCALE})")
    return value


Timestamp = Annotated[datetime, AfterValidator(_to_utc_millis)]
Amount = Annotated[Decimal, AfterValidator(_check_amount)]
Long = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Int = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


class Record(BaseModel):
    """Base of every event record: immutable, and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_avro(self) -> dict[str, Any]:
        """The record as the plain dict fastavro writes."""
        return self.model_dump()


class OrderNotice(Record):
    event_id: str
    marketplace: str = "shopee"
    shop_id: Long
    order_sn: str
    status: str | None = None
    update_time: Timestamp | None = None
    source: Source
    push_code: Int | None = None
    msg_id: str | None = None
    received_at: Timestamp


class OrderLine(Record):
    item_id: Long
    model_id: Long
    order_item_id: Long | None = None
    promotion_group_id: Long | None = None
    item_name: str = ""
    model_name: str = ""
    item_sku: str | None = None
    model_sku: str | None = None
    quantity: Int
    original_price: Amount | None = None
    discounted_price: Amount | None = None


class PackageLine(Record):
    item_id: Long
    model_id: Long
    quantity: Int


class Package(Record):
    package_number: str
    logistics_status: str | None = None
    shipping_carrier: str | None = None
    tracking_number: str | None = None
    items: tuple[PackageLine, ...] = ()


class OrderEvent(Record):
    event_id: str
    marketplace: str = "shopee"
    shop_id: Long
    order_sn: str
    region: str
    currency: str
    status: str
    previous_status: str | None = None
    completed_scenario: str | None = None
    create_time: Timestamp
    update_time: Timestamp
    pay_time: Timestamp | None = None
    ship_by_date: Timestamp | None = None
    days_to_ship: Int | None = None
    cod: bool = False
    total_amount: Amount | None = None
    estimated_shipping_fee: Amount | None = None
    actual_shipping_fee: Amount | None = None
    payment_method: str | None = None
    shipping_carrier: str | None = None
    buyer_user_id: Long | None = None
    cancel_by: str | None = None
    cancel_reason: str | None = None
    buyer_cancel_reason: str | None = None
    items: tuple[OrderLine, ...] = ()
    packages: tuple[Package, ...] = ()
    source: Source
    emitted_at: Timestamp


class ActionLine(Record):
    item_id: Long
    model_id: Long
    sku: str | None = None
    quantity: Int


class OrderAction(Record):
    action_id: str
    marketplace: str = "shopee"
    shop_id: Long
    order_sn: str
    consumer: str
    kind: str
    lines: tuple[ActionLine, ...] = ()
    outcome: Literal["applied", "skipped", "dry_run", "rejected", "failed"]
    error: str | None = None
    event_id: str | None = None
    details: dict[str, str] = Field(default_factory=dict)
    occurred_at: Timestamp


def order_key(shop_id: int, order_sn: str) -> bytes:
    """The Kafka key of every record about one order: per-order ordering across topics."""
    return f"{shop_id}:{order_sn}".encode()


def make_event_id(
    *,
    marketplace: str,
    shop_id: int,
    order_sn: str,
    status: str | None,
    update_time: datetime | None,
    source: str,
    discriminator: str | None = None,
) -> str:
    """A stable id for "this order reached this state, seen through this source".

    Two records describing the same change from the same source get the same id, so any
    subscriber can drop duplicates with a set of ids it has seen.

    ``discriminator`` is something that tells two triggers apart when ``update_time`` cannot,
    e.g. a push's ``msg_id`` or a digest of its raw body: without it, every push that carries
    no ``update_time`` (a tracking-number push, say) gets the same id for its order. It is
    mixed in only when given, so ids computed without it never change.
    """
    millis = "" if update_time is None else str(int(update_time.timestamp() * 1000))
    parts = [marketplace, str(shop_id), order_sn, status or "", millis, source]
    if discriminator is not None:
        parts.append(discriminator)
    return uuid5_text("|".join(parts))


def uuid5_text(name: str) -> str:
    """``str(uuid.uuid5(_EVENT_ID_NAMESPACE, name))``, built from the SHA-1 digest directly: the
    webhook makes one per push, and ``uuid.UUID``'s construction and formatting took ~10 us
    of it (this: ~4 us; 18 us before)."""
    digest = bytearray(
        hashlib.sha1(_EVENT_ID_PREFIX + name.encode(), usedforsecurity=False).digest()
    )
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
