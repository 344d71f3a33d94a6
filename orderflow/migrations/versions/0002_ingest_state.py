"""Ingest state: shop authorisation, leases, poll watermarks, emitted snapshots, backfill
progress and parked notices.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shop_authorizations",
        sa.Column("shop_id", sa.BigInteger, primary_key=True, autoincrement=False),
        # authorized | deauthorized | expiring (code 12)
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("changed_at", sa.BigInteger, nullable=False),
        sa.Column("expire_before", sa.BigInteger, nullable=True),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "ingest_leases",
        # e.g. "poll:shop:123" or "poll:lost_push": who works on it, until when.
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=True),
        sa.Column("until", sa.Float, nullable=True),
    )
    op.create_table(
        "poll_watermarks",
        sa.Column("shop_id", sa.BigInteger, primary_key=True, autoincrement=False),
        # Every change with update_time before this is acknowledged by Kafka.
        sa.Column("watermark", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "emitted_snapshots",
        sa.Column("shop_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("order_sn", sa.String(64), primary_key=True),
        sa.Column("update_time", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("emitted_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "backfill_progress",
        sa.Column("shop_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("since", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("until", sa.BigInteger, primary_key=True, autoincrement=False),
        # Every window ending at or before this is on Kafka.
        sa.Column("done_upto", sa.BigInteger, nullable=False),
        sa.Column("orders_found", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("api_calls", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "parked_notices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("shop_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("record_key", sa.LargeBinary, nullable=True),
        sa.Column("record_value", sa.LargeBinary, nullable=False),
        sa.Column("parked_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "parked_notices",
        "backfill_progress",
        "emitted_snapshots",
        "poll_watermarks",
        "ingest_leases",
        "shop_authorizations",
    ):
        op.drop_table(table)
