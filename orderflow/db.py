"""Database wiring: one engine per process and the schema migrations.

SQLite (a file) serves a single replica; PostgreSQL serves several. The schema is the same on
both and is owned by the Alembic migrations in ``orderflow/migrations``; table objects for
queries live beside the code that owns them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

_MIGRATIONS = Path(__file__).parent / "migrations"
# libpq waits without limit by default: for a connection to open, and on an open one whose
# server went silent (a partition that drops packets instead of refusing them), so every
# process would hang with no error to retry on. With these a silent server fails the call
# within about a minute (an OperationalError: transient, retried with backoff): connecting
# gives up after 10 s, an idle connection is probed after 30 s of silence, and sent data
# left unacknowledged for 60 s drops the connection. A URL that sets any of them keeps its
# own value. No statement timeout: a long import or migration is not a fault.
POSTGRES_CONNECT_DEFAULTS: dict[str, int] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 60_000,
}
# Any constant works; it only has to be the same for every replica that migrates.
_MIGRATION_LOCK_ID = 0x6F72646572666C6F


def normalise_url(url: str) -> str:
    """Let operators write ``postgresql://`` and still get the psycopg 3 driver."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.removeprefix("postgres://")
    return url


def create_engine(url: str) -> Engine:
    """An engine for ``url`` with settings that make concurrent writers safe."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        # hide_parameters: a failed statement's message would otherwise carry the tokens.
        engine = sa.create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            # WAL lets readers run beside the one writer; foreign keys are off by default.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    given = sa.engine.make_url(url).query
    return sa.create_engine(
        url,
        connect_args={k: v for k, v in POSTGRES_CONNECT_DEFAULTS.items() if k not in given},
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        hide_parameters=True,
    )


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe when several replicas start at once."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
            )
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def conflict_insert(dialect: str, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT for ``table`` that can say ``ON CONFLICT``: both dialects have the clause,
    under different classes."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def upsert(
    conn: sa.Connection,
    table: sa.Table,
    values: dict[str, object],
    *,
    key: list[str],
    update: list[str],
    where: sa.ColumnElement[bool] | None = None,
) -> int:
    """Insert ``values`` or, when a row with the same ``key`` exists, set its ``update``
    columns, only where ``where`` holds (if given) for the existing row. Returns the number
    of rows written (0 when ``where`` kept the existing row). SQLite and PostgreSQL alike."""
    statement = conflict_insert(conn.dialect.name, table).values(**values)
    upserting = statement.on_conflict_do_update(
        index_elements=[table.c[name] for name in key],
        set_={name: statement.excluded[name] for name in update},
        where=where,
    ).returning(table.c[key[0]])
    # RETURNING, not rowcount: drivers disagree on rowcount for INSERT .. ON CONFLICT
    # (psycopg 3 under SQLAlchemy reports -1), and a lease decision hangs on this number.
    return len(conn.execute(upserting).all())


@contextmanager
def write_transaction(engine: Engine) -> Iterator[sa.Connection]:
    """A transaction that may read, decide and write without another writer changing what
    it read in between, on either database: SQLite takes its write lock up front (a deferred
    transaction would read, then fail to upgrade its lock); PostgreSQL callers lock the rows
    or keys they decide on (``FOR UPDATE``, advisory locks)."""
    with engine.connect() as conn:
        if engine.dialect.name != "postgresql":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


@click.command("migrate")
def migrate_command() -> None:
    """Bring the database at ORDERFLOW_DATABASE_URL to the newest schema (every process also
    does this when it starts; run it on its own before a rolling upgrade)."""
    from orderflow.settings import load_settings

    engine = create_engine(load_settings().database_url)
    try:
        migrate(engine)
        with engine.connect() as conn:
            revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    click.echo(f"database schema at revision {revision}")
