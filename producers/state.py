"""The ingest side's durable state (tables of migration 0002), behind small stores.

Every write is one statement or one transaction and only ever moves forward: a watermark
never goes back, an emitted snapshot's ``update_time`` never decreases, a lease is taken only
when free. SQLite and PostgreSQL alike; several replicas may share one PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from orderflow.db import conflict_insert, upsert

metadata = sa.MetaData()

shop_authorizations = sa.Table(
    "shop_authorizations",
    metadata,
    sa.Column("shop_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("changed_at", sa.BigInteger, nullable=False),
    sa.Column("expire_before", sa.BigInteger, nullable=True),
    sa.Column("detail", sa.Text, nullable=False),
)

ingest_leases = sa.Table(
    "ingest_leases",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=True),
    sa.Column("until", sa.Float, nullable=True),
)

poll_watermarks = sa.Table(
    "poll_watermarks",
    metadata,
    sa.Column("shop_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("watermark", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

emitted_snapshots = sa.Table(
    "emitted_snapshots",
    metadata,
    sa.Column("shop_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("order_sn", sa.String(64), primary_key=True),
    sa.Column("update_time", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("emitted_at", sa.BigInteger, nullable=False),
)

backfill_progress = sa.Table(
    "backfill_progress",
    metadata,
    sa.Column("shop_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("since", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("until", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("done_upto", sa.BigInteger, nullable=False),
    sa.Column("orders_found", sa.BigInteger, nullable=False),
    sa.Column("api_calls", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

parked_notices = sa.Table(
    "parked_notices",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("shop_id", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("record_key", sa.LargeBinary, nullable=True),
    sa.Column("record_value", sa.LargeBinary, nullable=False),
    sa.Column("parked_at", sa.BigInteger, nullable=False),
)

AuthState = Literal["authorized", "deauthorized", "expiring"]


class Leases:
    """Named leases: one holder at a time, until it releases or its time runs out."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def try_take(self, name: str, holder: str, now: float, until: float) -> bool:
        """Take (or extend) ``name`` for ``holder`` if it is free, expired or already
        ``holder``'s. One statement, so the database decides between racing replicas."""
        current = ingest_leases.c
        with self._engine.begin() as conn:
            written = upsert(
                conn,
                ingest_leases,
                {"name": name, "holder": holder, "until": until},
                key=["name"],
                update=["holder", "until"],
                where=sa.or_(
                    current.holder.is_(None), current.until <= now, current.holder == holder
                ),
            )
        return written == 1

    def release(self, name: str, holder: str) -> None:
        c = ingest_leases.c
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(ingest_leases)
                .where(c.name == name, c.holder == holder)
                .values(holder=None, until=None)
            )


class Watermarks:
    """Per shop: the time before which every order change is acknowledged by Kafka."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, shop_id: int) -> int | None:
        with self._engine.connect() as conn:
            value = conn.execute(
                sa.select(poll_watermarks.c.watermark).where(poll_watermarks.c.shop_id == shop_id)
            ).scalar()
        return None if value is None else int(value)

    def advance(self, shop_id: int, watermark: int, now: int) -> None:
        """Move the shop's watermark forward to ``watermark``; never backwards."""
        with self._engine.begin() as conn:
            upsert(
                conn,
                poll_watermarks,
                {"shop_id": shop_id, "watermark": watermark, "updated_at": now},
                key=["shop_id"],
                update=["watermark", "updated_at"],
                where=poll_watermarks.c.watermark < watermark,
            )


@dataclass(frozen=True)
class ShopAuthorization:
    shop_id: int
    state: AuthState
    changed_at: int
    expire_before: int | None
    detail: str


class ShopAuthorizations:
    """Each shop's authorisation as Shopee last pushed it (codes 1, 2 and 12)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, change: ShopAuthorization) -> None:
        """Store ``change`` unless a newer one is already stored (pushes arrive out of
        order and twice)."""
        with self._engine.begin() as conn:
            upsert(
                conn,
                shop_authorizations,
                {
                    "shop_id": change.shop_id,
                    "state": change.state,
                    "changed_at": change.changed_at,
                    "expire_before": change.expire_before,
                    "detail": change.detail,
                },
                key=["shop_id"],
                update=["state", "changed_at", "expire_before", "detail"],
                where=shop_authorizations.c.changed_at <= change.changed_at,
            )

    def all(self) -> dict[int, ShopAuthorization]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(shop_authorizations)).all()
        return {
            int(row.shop_id): ShopAuthorization(
                int(row.shop_id),
                row.state,
                int(row.changed_at),
                None if row.expire_before is None else int(row.expire_before),
                str(row.detail),
            )
            for row in rows
        }


@dataclass(frozen=True)
class Snapshot:
    """The newest snapshot emitted for one order."""

    update_time: int
    status: str


class EmittedSnapshots:
    """Per order, the ``update_time`` and status of the newest snapshot emitted."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def latest(self, shop_id: int, order_sns: Iterable[str]) -> dict[str, Snapshot]:
        wanted = list(order_sns)
        found: dict[str, Snapshot] = {}
        c = emitted_snapshots.c
        with self._engine.connect() as conn:
            # Chunks keep the IN list inside every database's parameter limit.
            for start in range(0, len(wanted), 500):
                rows = conn.execute(
                    sa.select(c.order_sn, c.update_time, c.status).where(
                        c.shop_id == shop_id, c.order_sn.in_(wanted[start : start + 500])
                    )
                )
                for row in rows:
                    found[str(row.order_sn)] = Snapshot(int(row.update_time), str(row.status))
        return found

    def last_emitted_at(self) -> int | None:
        """When the newest remembered snapshot was emitted (None: nothing remembered)."""
        with self._engine.connect() as conn:
            value = conn.execute(sa.select(sa.func.max(emitted_snapshots.c.emitted_at))).scalar()
        return None if value is None else int(value)

    def record(self, shop_id: int, snapshots: dict[str, Snapshot], now: int) -> None:
        """Remember emitted snapshots in one transaction; an older one never overwrites (a
        same-second one does: it is the later change of that second)."""
        if not snapshots:
            return
        rows = [
            {
                "shop_id": shop_id,
                "order_sn": order_sn,
                "update_time": snapshot.update_time,
                "status": snapshot.status,
                "emitted_at": now,
            }
            for order_sn, snapshot in snapshots.items()
        ]
        with self._engine.begin() as conn:
            # One statement for the whole batch (executemany): compiling an upsert per order
            # was half of the enricher's time.
            conn.execute(_snapshot_upsert(conn.dialect.name), rows)


def _snapshot_upsert(dialect: str) -> sa.Executable:
    insert = conflict_insert(dialect, emitted_snapshots)
    return insert.on_conflict_do_update(
        index_elements=[emitted_snapshots.c.shop_id, emitted_snapshots.c.order_sn],
        set_={name: insert.excluded[name] for name in ("update_time", "status", "emitted_at")},
        where=emitted_snapshots.c.update_time <= insert.excluded.update_time,
    )


@dataclass(frozen=True)
class BackfillRun:
    shop_id: int
    since: int
    until: int
    done_upto: int
    orders_found: int
    api_calls: int


class BackfillRuns:
    """Progress of ``orderflow backfill`` per (shop, since): a later run of the same start
    resumes where the furthest earlier one stopped, whatever its end."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def load(self, shop_id: int, since: int) -> BackfillRun | None:
        """The run from ``since`` for ``shop_id`` that got furthest, if any."""
        c = backfill_progress.c
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(backfill_progress)
                .where(c.shop_id == shop_id, c.since == since)
                .order_by(c.done_upto.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        return BackfillRun(
            int(row.shop_id),
            int(row.since),
            int(row.until),
            int(row.done_upto),
            int(row.orders_found),
            int(row.api_calls),
        )

    def save(self, run: BackfillRun, now: int) -> None:
        with self._engine.begin() as conn:
            upsert(
                conn,
                backfill_progress,
                {
                    "shop_id": run.shop_id,
                    "since": run.since,
                    "until": run.until,
                    "done_upto": run.done_upto,
                    "orders_found": run.orders_found,
                    "api_calls": run.api_calls,
                    "updated_at": now,
                },
                key=["shop_id", "since", "until"],
                update=["done_upto", "orders_found", "api_calls", "updated_at"],
                where=backfill_progress.c.done_upto <= run.done_upto,
            )


@dataclass(frozen=True)
class ParkedRecord:
    id: int
    shop_id: int
    reason: str
    key: bytes | None
    value: bytes


class ParkedNotices:
    """Notices of blocked shops, held until the shop can be served again."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def park(
        self, shop_id: int, reason: str, records: Sequence[tuple[bytes | None, bytes]], now: int
    ) -> None:
        if not records:
            return
        with self._engine.begin() as conn:
            conn.execute(
                sa.insert(parked_notices),
                [
                    {
                        "shop_id": shop_id,
                        "reason": reason,
                        "record_key": key,
                        "record_value": value,
                        "parked_at": now,
                    }
                    for key, value in records
                ],
            )

    def counts(self) -> dict[int, int]:
        c = parked_notices.c
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(c.shop_id, sa.func.count()).group_by(c.shop_id))
            return {int(shop): int(count) for shop, count in rows}

    def take(self, shop_id: int, limit: int = 500) -> list[ParkedRecord]:
        c = parked_notices.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(parked_notices).where(c.shop_id == shop_id).order_by(c.id).limit(limit)
            ).all()
        return [
            ParkedRecord(int(r.id), int(r.shop_id), str(r.reason), r.record_key, r.record_value)
            for r in rows
        ]

    def delete(self, ids: Sequence[int]) -> None:
        if ids:
            with self._engine.begin() as conn:
                conn.execute(sa.delete(parked_notices).where(parked_notices.c.id.in_(ids)))
