"""Records of blocked shops, parked per consumer until the shop can be served again.

A shop whose authorisation is gone (or whose app ran out of daily calls) cannot be served,
but nothing is wrong with its records: they wait here, in arrival order, instead of in a
dead-letter topic, and the consumer's offsets move on so the other shops keep flowing.
Parking is durable before the offset is committed, and parking the same record twice (a
redelivery after a crash) keeps it once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from orderflow.db import conflict_insert
from orderflow.kafka import ConsumedRecord

metadata = sa.MetaData()
_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

# Owned by migration 0004; declared here for queries.
consumer_parked = sa.Table(
    "consumer_parked",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("consumer", sa.String(40), nullable=False),
    sa.Column("shop_id", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("topic", sa.String(255), nullable=False),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("record_offset", sa.BigInteger, nullable=False),
    sa.Column("record_key", sa.LargeBinary, nullable=True),
    sa.Column("record_value", sa.LargeBinary, nullable=False),
    sa.Column("record_headers", sa.Text, nullable=False),
    sa.Column("parked_at", sa.BigInteger, nullable=False),
)


@dataclass(frozen=True)
class Parked:
    id: int
    reason: str
    record: ConsumedRecord


class ParkedRecords:
    """One consumer's parked records."""

    def __init__(self, engine: Engine, consumer: str) -> None:
        self._engine = engine
        self.consumer = consumer

    def park(self, shop_id: int, reason: str, records: Sequence[ConsumedRecord], now: int) -> None:
        if not records:
            return
        insert = conflict_insert(self._engine.dialect.name, consumer_parked)
        with self._engine.begin() as conn:
            conn.execute(
                insert.on_conflict_do_nothing(
                    index_elements=["consumer", "topic", "partition", "record_offset"]
                ),
                [
                    {
                        "consumer": self.consumer,
                        "shop_id": shop_id,
                        "reason": reason,
                        "topic": r.topic,
                        "partition": r.partition,
                        "record_offset": r.offset,
                        "record_key": r.key,
                        "record_value": r.value or b"",
                        "record_headers": json.dumps(
                            {name: value.decode("latin-1") for name, value in r.headers.items()}
                        ),
                        "parked_at": now,
                    }
                    for r in records
                ],
            )

    def shops(self) -> dict[int, str]:
        """Shops with parked records, and the reason the newest was parked for."""
        c = consumer_parked.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(c.shop_id, c.reason).where(c.consumer == self.consumer).order_by(c.id)
            ).all()
        return {int(row.shop_id): str(row.reason) for row in rows}

    def count(self) -> int:
        c = consumer_parked.c
        with self._engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(c.consumer == self.consumer)
                ).scalar_one()
            )

    def take(self, shop_id: int, limit: int = 100) -> list[Parked]:
        """The shop's oldest parked records, in the order they were parked (not removed)."""
        c = consumer_parked.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(consumer_parked)
                .where(c.consumer == self.consumer, c.shop_id == shop_id)
                .order_by(c.id)
                .limit(limit)
            ).all()
        return [
            Parked(
                int(row.id),
                str(row.reason),
                ConsumedRecord(
                    topic=str(row.topic),
                    partition=int(row.partition),
                    offset=int(row.record_offset),
                    key=row.record_key,
                    value=row.record_value,
                    headers={
                        name: value.encode("latin-1")
                        for name, value in json.loads(row.record_headers).items()
                    },
                ),
            )
            for row in rows
        ]

    def delete(self, ids: Sequence[int]) -> None:
        if ids:
            with self._engine.begin() as conn:
                conn.execute(sa.delete(consumer_parked).where(consumer_parked.c.id.in_(list(ids))))
