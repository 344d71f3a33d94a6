"""An action recorded with its Kafka record (``record_value``, migration 0005) need not keep
its JSON too: the record holds every field, and the JSON was the larger part of writing the
row. ``detail`` is left empty (NULL) for such rows; rows without a record keep their JSON.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite cannot drop NOT NULL in place: the batch copies the table.
    with op.batch_alter_table("order_actions") as batch:
        batch.alter_column("detail", existing_type=sa.Text, nullable=True)


def downgrade() -> None:
    # Rows recorded without their JSON keep only their record: an empty object stands in.
    op.execute("UPDATE order_actions SET detail = '{}' WHERE detail IS NULL")
    with op.batch_alter_table("order_actions") as batch:
        batch.alter_column("detail", existing_type=sa.Text, nullable=False)
