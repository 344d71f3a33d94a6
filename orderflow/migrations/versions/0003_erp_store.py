"""ERP store: orders and lines, stock per model, the stock ledger and stock adjustments, the
outbox of Shopee calls and the record of actions.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "erp_orders",
        sa.Column("shop_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("order_sn", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("update_time", sa.BigInteger, nullable=False),
        sa.Column("synced_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "erp_order_lines",
        sa.Column("shop_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("order_sn", sa.String(64), primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("item_id", sa.BigInteger, nullable=False),
        sa.Column("model_id", sa.BigInteger, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id", "order_sn"],
            ["erp_orders.shop_id", "erp_orders.order_sn"],
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "erp_stock",
        sa.Column("item_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("model_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("on_hand", sa.BigInteger, nullable=False),
        sa.Column("reserved", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        # A reservation is only ever given back or deducted by the quantity taken.
        sa.CheckConstraint("reserved >= 0", name="erp_stock_reserved_not_negative"),
    )
    op.create_table(
        "stock_ledger",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("shop_id", sa.BigInteger, nullable=False),
        sa.Column("order_sn", sa.String(64), nullable=False),
        sa.Column("item_id", sa.BigInteger, nullable=False),
        sa.Column("model_id", sa.BigInteger, nullable=False),
        # 1: leaving none (reserved or closed); 2: leaving reserved (deducted or released).
        sa.Column("step", sa.SmallInteger, nullable=False),
        sa.Column("from_state", sa.String(20), nullable=False),
        sa.Column("to_state", sa.String(20), nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("on_hand_delta", sa.BigInteger, nullable=False),
        sa.Column("reserved_delta", sa.BigInteger, nullable=False),
        sa.Column("order_status", sa.String(40), nullable=False),
        sa.Column("order_update_time", sa.BigInteger, nullable=False),
        sa.Column("recorded_at", sa.BigInteger, nullable=False),
        # Each transition of a line happens once, whoever applies it and however often.
        sa.UniqueConstraint(
            "shop_id", "order_sn", "item_id", "model_id", "step", name="stock_ledger_once"
        ),
    )
    op.create_index("stock_ledger_model", "stock_ledger", ["item_id", "model_id"])
    op.create_table(
        "stock_adjustments",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("item_id", sa.BigInteger, nullable=False),
        sa.Column("model_id", sa.BigInteger, nullable=False),
        sa.Column("on_hand_delta", sa.BigInteger, nullable=False),
        sa.Column("on_hand_after", sa.BigInteger, nullable=False),
        # set | import
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("recorded_at", sa.BigInteger, nullable=False),
    )
    op.create_index("stock_adjustments_model", "stock_adjustments", ["item_id", "model_id"])
    op.create_table(
        "shopee_outbox",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("shop_id", sa.BigInteger, nullable=False),
        sa.Column("order_sn", sa.String(64), nullable=False),
        # e.g. cancel_order, handle_buyer_cancellation
        sa.Column("kind", sa.String(40), nullable=False),
        # pending | sent | succeeded | failed | unknown
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        # At most one call of each kind per order, ever.
        sa.UniqueConstraint("shop_id", "order_sn", "kind", name="shopee_outbox_once"),
    )
    op.create_index("shopee_outbox_state", "shopee_outbox", ["state"])
    op.create_table(
        "order_actions",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("action_id", sa.String(64), nullable=False, unique=True),
        sa.Column("shop_id", sa.BigInteger, nullable=False),
        sa.Column("order_sn", sa.String(64), nullable=False),
        sa.Column("consumer", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
        sa.Column("occurred_at", sa.BigInteger, nullable=False),
        # When the OrderAction reached shopee.order-actions (None: not yet).
        sa.Column("published_at", sa.BigInteger, nullable=True),
    )
    op.create_index("order_actions_order", "order_actions", ["shop_id", "order_sn"])


def downgrade() -> None:
    for table in (
        "order_actions",
        "shopee_outbox",
        "stock_adjustments",
        "stock_ledger",
        "erp_stock",
        "erp_order_lines",
        "erp_orders",
    ):
        op.drop_table(table)
