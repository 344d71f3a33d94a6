"""Hypothesis strategies for every event record, within what Avro can carry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from schemas.models import (
    SOURCES,
    ActionLine,
    OrderAction,
    OrderEvent,
    OrderLine,
    OrderNotice,
    Package,
    PackageLine,
)

longs = st.integers(min_value=-(2**63), max_value=2**63 - 1)
ids = st.integers(min_value=0, max_value=2**63 - 1)
ints = st.integers(min_value=-(2**31), max_value=2**31 - 1)
text = st.text(max_size=30)
optional_text = st.none() | text
timestamps = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
).map(lambda t: t - timedelta(microseconds=t.microsecond % 1000))
amounts = st.decimals(
    min_value=Decimal("-99999999999999.9999"),
    max_value=Decimal("99999999999999.9999"),
    places=4,
    allow_nan=False,
    allow_infinity=False,
)
sources = st.sampled_from(SOURCES)

notices = st.builds(
    OrderNotice,
    event_id=text,
    marketplace=text,
    shop_id=ids,
    order_sn=text,
    status=optional_text,
    update_time=st.none() | timestamps,
    source=sources,
    push_code=st.none() | ints,
    msg_id=optional_text,
    received_at=timestamps,
)

order_lines = st.builds(
    OrderLine,
    item_id=ids,
    model_id=ids,
    order_item_id=st.none() | ids,
    promotion_group_id=st.none() | longs,
    item_name=text,
    model_name=text,
    item_sku=optional_text,
    model_sku=optional_text,
    quantity=ints,
    original_price=st.none() | amounts,
    discounted_price=st.none() | amounts,
)

packages = st.builds(
    Package,
    package_number=text,
    logistics_status=optional_text,
    shipping_carrier=optional_text,
    tracking_number=optional_text,
    items=st.lists(
        st.builds(PackageLine, item_id=ids, model_id=ids, quantity=ints), max_size=3
    ).map(tuple),
)

events = st.builds(
    OrderEvent,
    event_id=text,
    marketplace=text,
    shop_id=ids,
    order_sn=text,
    region=text,
    currency=text,
    status=text,
    previous_status=optional_text,
    completed_scenario=optional_text,
    create_time=timestamps,
    update_time=timestamps,
    pay_time=st.none() | timestamps,
    ship_by_date=st.none() | timestamps,
    days_to_ship=st.none() | ints,
    cod=st.booleans(),
    total_amount=st.none() | amounts,
    estimated_shipping_fee=st.none() | amounts,
    actual_shipping_fee=st.none() | amounts,
    payment_method=optional_text,
    shipping_carrier=optional_text,
    buyer_user_id=st.none() | longs,
    cancel_by=optional_text,
    cancel_reason=optional_text,
    buyer_cancel_reason=optional_text,
    items=st.lists(order_lines, max_size=4).map(tuple),
    packages=st.lists(packages, max_size=2).map(tuple),
    source=sources,
    emitted_at=timestamps,
)

actions = st.builds(
    OrderAction,
    action_id=text,
    marketplace=text,
    shop_id=ids,
    order_sn=text,
    consumer=text,
    kind=text,
    lines=st.lists(
        st.builds(ActionLine, item_id=ids, model_id=ids, sku=optional_text, quantity=ints),
        max_size=4,
    ).map(tuple),
    outcome=st.sampled_from(["applied", "skipped", "dry_run", "rejected", "failed"]),
    error=optional_text,
    event_id=optional_text,
    details=st.dictionaries(text, text, max_size=3),
    occurred_at=timestamps,
)
