"""``erp_orders.lines_digest``: a digest of the lines an order was stored with, so that a
snapshot that changes only the status (most of them: an order's lines are fixed once it is
placed) leaves ``erp_order_lines`` alone instead of deleting and inserting the same rows.
Rows stored before have none (NULL) and get their lines written again at their next change.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("erp_orders", sa.Column("lines_digest", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("erp_orders") as batch:
        batch.drop_column("lines_digest")
