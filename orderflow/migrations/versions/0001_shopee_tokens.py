"""Shopee token pairs per shop, with the refresh lease.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shopee_tokens",
        # Shopee shop ids reach 2**32 - 1, past a signed 32-bit column.
        sa.Column("shop_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("access_token", sa.Text, nullable=False),
        sa.Column("access_expires_at", sa.BigInteger, nullable=False),
        sa.Column("refresh_token", sa.Text, nullable=False),
        sa.Column("refresh_issued_at", sa.BigInteger, nullable=False),
        sa.Column("authorized_at", sa.BigInteger, nullable=False),
        # Who is refreshing this shop's tokens, and until when the claim holds if it dies.
        sa.Column("lease_holder", sa.String(200), nullable=True),
        sa.Column("lease_until", sa.Float, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("shopee_tokens")
