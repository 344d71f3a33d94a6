"""Recorded OrderActions may keep the Kafka record they are published as: the framed Avro
value, encoded once when the consumer records the action (erp-sync records one per event),
and the event it answers (the record's ``event_id`` header). The publisher then sends the
stored bytes; rows without them are encoded from ``detail`` as before.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("order_actions", sa.Column("event_id", sa.String(64), nullable=True))
    op.add_column("order_actions", sa.Column("record_value", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("order_actions") as batch:
        batch.drop_column("record_value")
        batch.drop_column("event_id")
