"""The ERP store's tables (migrations 0003-0006), for queries; the migrations own the
schema."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

erp_orders = sa.Table(
    "erp_orders",
    metadata,
    sa.Column("shop_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("order_sn", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("update_time", sa.BigInteger, nullable=False),
    sa.Column("synced_at", sa.BigInteger, nullable=False),
    # OrderSnapshot.lines_digest of the stored lines (migration 0007; NULL: stored before).
    sa.Column("lines_digest", sa.String(32), nullable=True),
)

erp_order_lines = sa.Table(
    "erp_order_lines",
    metadata,
    sa.Column("shop_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("order_sn", sa.String(64), primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("item_id", sa.BigInteger, nullable=False),
    sa.Column("model_id", sa.BigInteger, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
)

erp_stock = sa.Table(
    "erp_stock",
    metadata,
    sa.Column("item_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("model_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("on_hand", sa.BigInteger, nullable=False),
    sa.Column("reserved", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

stock_ledger = sa.Table(
    "stock_ledger",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("shop_id", sa.BigInteger, nullable=False),
    sa.Column("order_sn", sa.String(64), nullable=False),
    sa.Column("item_id", sa.BigInteger, nullable=False),
    sa.Column("model_id", sa.BigInteger, nullable=False),
    sa.Column("step", sa.SmallInteger, nullable=False),
    sa.Column("from_state", sa.String(20), nullable=False),
    sa.Column("to_state", sa.String(20), nullable=False),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("on_hand_delta", sa.BigInteger, nullable=False),
    sa.Column("reserved_delta", sa.BigInteger, nullable=False),
    sa.Column("order_status", sa.String(40), nullable=False),
    sa.Column("order_update_time", sa.BigInteger, nullable=False),
    sa.Column("recorded_at", sa.BigInteger, nullable=False),
)

stock_adjustments = sa.Table(
    "stock_adjustments",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("item_id", sa.BigInteger, nullable=False),
    sa.Column("model_id", sa.BigInteger, nullable=False),
    sa.Column("on_hand_delta", sa.BigInteger, nullable=False),
    sa.Column("on_hand_after", sa.BigInteger, nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("recorded_at", sa.BigInteger, nullable=False),
)

shopee_outbox = sa.Table(
    "shopee_outbox",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("shop_id", sa.BigInteger, nullable=False),
    sa.Column("order_sn", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

order_actions = sa.Table(
    "order_actions",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("action_id", sa.String(64), nullable=False),
    sa.Column("shop_id", sa.BigInteger, nullable=False),
    sa.Column("order_sn", sa.String(64), nullable=False),
    sa.Column("consumer", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    # The action as JSON; None for a row recorded with its Kafka record (migration 0006).
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("occurred_at", sa.BigInteger, nullable=False),
    sa.Column("published_at", sa.BigInteger, nullable=True),
    # The record it is published as, when recorded with it (migration 0005).
    sa.Column("event_id", sa.String(64), nullable=True),
    sa.Column("record_value", sa.LargeBinary, nullable=True),
)
