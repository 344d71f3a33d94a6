"""What partner-level pushes (codes 1, 2 and 12) say about shops (pure)."""

from __future__ import annotations

from producers.state import ShopAuthorization
from producers.webhook import authorization_changes
from shopee.push import parse_push
from tests.unit.shopee.reference_samples import (
    PUSH_AUTHORIZATION_EXPIRY,
    PUSH_ORDER_STATUS_LIVE,
    PUSH_SHOP_AUTHORIZATION_EXPIRED,
    PUSH_SHOP_AUTHORIZED,
    PUSH_SHOP_DEAUTHORIZED,
)


def test_authorized_and_deauthorized() -> None:
    (authorized,) = authorization_changes(parse_push(PUSH_SHOP_AUTHORIZED.encode()), now=5)
    assert (authorized.shop_id, authorized.state, authorized.changed_at) == (
        60011111,
        "authorized",
        1660616278,
    )
    (expired,) = authorization_changes(parse_push(PUSH_SHOP_AUTHORIZATION_EXPIRED.encode()), now=5)
    assert (expired.shop_id, expired.state) == (22000000, "deauthorized")


def test_a_deauthorisation_without_a_shop_changes_nothing() -> None:
    assert authorization_changes(parse_push(PUSH_SHOP_DEAUTHORIZED.encode()), now=5) == []


def test_expiry_push_marks_every_named_shop() -> None:
    changes = authorization_changes(parse_push(PUSH_AUTHORIZATION_EXPIRY.encode()), now=5)
    assert changes and all(isinstance(c, ShopAuthorization) for c in changes)
    assert {c.state for c in changes} == {"expiring"}
    assert all(c.expire_before is not None for c in changes)


def test_order_pushes_are_not_partner_events() -> None:
    assert authorization_changes(parse_push(PUSH_ORDER_STATUS_LIVE.encode()), now=5) == []
