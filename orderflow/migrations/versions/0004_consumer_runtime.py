"""Consumer runtime: records of blocked shops parked per consumer, and the outbox index the
auto-cancel daily budget counts with.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "consumer_parked",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("consumer", sa.String(40), nullable=False),
        sa.Column("shop_id", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("record_offset", sa.BigInteger, nullable=False),
        sa.Column("record_key", sa.LargeBinary, nullable=True),
        sa.Column("record_value", sa.LargeBinary, nullable=False),
        # The record's headers as a JSON object of latin-1 strings (event_id, source).
        sa.Column("record_headers", sa.Text, nullable=False),
        sa.Column("parked_at", sa.BigInteger, nullable=False),
        # A record redelivered after a crash before its offset was committed parks once.
        sa.UniqueConstraint(
            "consumer", "topic", "partition", "record_offset", name="consumer_parked_once"
        ),
    )
    op.create_index("consumer_parked_shop", "consumer_parked", ["consumer", "shop_id", "id"])
    op.create_index("shopee_outbox_shop_day", "shopee_outbox", ["shop_id", "created_at"])
    # Each consumer looks for its unpublished actions after every batch.
    op.create_index(
        "order_actions_unpublished",
        "order_actions",
        ["consumer", "id"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("order_actions_unpublished", "order_actions")
    op.drop_index("shopee_outbox_shop_day", "shopee_outbox")
    op.drop_table("consumer_parked")
