"""A whole batch of rows in one statement per table, for the paths that write every record.

SQLAlchemy Core compiles a statement's parameters row by row and expands ``IN`` lists value by
value on every execution: for a batch of 500 orders that costs more than the database spends
running it. These helpers hand the rows to the driver as they are: PostgreSQL receives one
array per column and ``unnest``s them (one round trip per statement, whatever the batch size);
SQLite receives the rows as the driver's ``executemany`` or, where rows must come back, a few
multi-row statements. The SQL is built once per table and column list, from the table's own
column types, so it cannot drift from ``consumers.erp.tables``.

Every function runs inside the caller's transaction and keeps the caller's row order where
order matters (locks are taken in key order). The SQL is assembled from the names in the table
metadata only; every value is a bound parameter (hence the ``noqa: S608`` on each statement).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

Row = tuple[Any, ...]

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]
# The lowest limit on bound parameters of any SQLite build (3.32 raised the default to 32766).
_SQLITE_MAX_PARAMETERS = 999


def select_keys(
    conn: sa.Connection,
    table: sa.Table,
    key: Sequence[str],
    columns: Sequence[str],
    keys: Sequence[Row],
    *,
    lock: bool = False,
) -> list[Row]:
    """``columns`` of the rows whose ``key`` is one of ``keys``, in key order; with ``lock``,
    the rows stay locked (PostgreSQL: ``FOR UPDATE``, taken in key order) until the
    transaction ends. SQLite's write transaction already holds the whole database."""
    if not keys:
        return []
    if _postgres(conn):
        sql = _pg_select(table, tuple(key), tuple(columns), lock)
        return [tuple(row) for row in conn.exec_driver_sql(sql, _arrays(keys, len(key)))]
    found: list[Row] = []
    per_chunk = _SQLITE_MAX_PARAMETERS // len(key)
    for start in range(0, len(keys), per_chunk):
        chunk = keys[start : start + per_chunk]
        sql = _sqlite_select(table, tuple(key), tuple(columns), len(chunk))
        found.extend(tuple(row) for row in conn.exec_driver_sql(sql, _flat(chunk)))
    # Chunks are each in key order; the whole must be too.
    return found if len(keys) <= per_chunk else sorted(found, key=lambda row: row[: len(key)])


def insert_rows(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    unless_exists: Sequence[str] = (),
) -> None:
    """Insert ``rows`` (values in ``columns`` order); with ``unless_exists`` (the columns of a
    unique key), a row whose key is already stored is skipped instead of failing."""
    if not rows:
        return
    if _postgres(conn):
        sql = _pg_insert(table, tuple(columns), tuple(unless_exists), ())
        conn.exec_driver_sql(sql, _arrays(rows, len(columns)))
        return
    conn.exec_driver_sql(_sqlite_insert(table, tuple(columns), tuple(unless_exists)), list(rows))


def insert_new_rows(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    key: Sequence[str],
) -> set[Row]:
    """Insert the ``rows`` whose ``key`` (a unique key, the first columns of ``columns``) is
    not stored yet; the keys of those inserted. A row another writer stored meanwhile is left
    as that writer stored it."""
    if not rows:
        return set()
    if tuple(columns[: len(key)]) != tuple(key):
        raise ValueError(f"the key {list(key)} must lead the columns {list(columns)}")
    if _postgres(conn):
        sql = _pg_insert(table, tuple(columns), tuple(key), tuple(key))
        return {tuple(row) for row in conn.exec_driver_sql(sql, _arrays(rows, len(columns)))}
    inserted: set[Row] = set()
    per_chunk = _SQLITE_MAX_PARAMETERS // len(columns)
    for start in range(0, len(rows), per_chunk):
        chunk = rows[start : start + per_chunk]
        sql = _sqlite_insert_returning(table, tuple(columns), tuple(key), len(chunk))
        inserted.update(tuple(row) for row in conn.exec_driver_sql(sql, _flat(chunk)))
    return inserted


def update_rows(
    conn: sa.Connection,
    table: sa.Table,
    key: Sequence[str],
    columns: Sequence[str],
    rows: Sequence[Row],
) -> None:
    """Set ``columns`` of the row with ``key``, for each of ``rows`` (key values first, then
    the new values in ``columns`` order)."""
    if not rows:
        return
    if _postgres(conn):
        sql = _pg_update(table, tuple(key), tuple(columns))
        conn.exec_driver_sql(sql, _arrays(rows, len(key) + len(columns)))
        return
    sql = _sqlite_update(table, tuple(key), tuple(columns))
    # The statement names the new values first, then the key.
    conn.exec_driver_sql(sql, [row[len(key) :] + row[: len(key)] for row in rows])


def delete_keys(
    conn: sa.Connection, table: sa.Table, key: Sequence[str], keys: Sequence[Row]
) -> None:
    """Delete every row whose ``key`` (not necessarily unique) is one of ``keys``."""
    if not keys:
        return
    if _postgres(conn):
        conn.exec_driver_sql(_pg_delete(table, tuple(key)), _arrays(keys, len(key)))
        return
    conn.exec_driver_sql(_sqlite_delete(table, tuple(key)), list(keys))


# -- PostgreSQL: one array per column -------------------------------------------------------------


def _postgres(conn: sa.Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _arrays(rows: Sequence[Row], width: int) -> tuple[list[Any], ...]:
    columns: tuple[list[Any], ...] = tuple([] for _ in range(width))
    for row in rows:
        for values, value in zip(columns, row, strict=True):
            values.append(value)
    return columns


def _unnest(table: sa.Table, columns: tuple[str, ...], alias: str) -> str:
    """``unnest`` of one array parameter per column, cast to the column's type, as ``alias``.
    The arrays travel in the binary format (``%b``): as text, psycopg would quote and escape
    every element in Python."""
    casts = ", ".join(f"%b::{table.c[name].type.compile(dialect=_PG)}[]" for name in columns)
    return f"unnest({casts}) AS {alias}({', '.join(columns)})"


def _matches(key: tuple[str, ...], left: str, right: str) -> str:
    return " AND ".join(f"{left}.{name} = {right}.{name}" for name in key)


@cache
def _pg_select(table: sa.Table, key: tuple[str, ...], columns: tuple[str, ...], lock: bool) -> str:
    return (
        f"SELECT {', '.join('t.' + name for name in columns)} FROM {table.name} AS t "  # noqa: S608
        f"JOIN {_unnest(table, key, 'k')} ON {_matches(key, 't', 'k')} "
        f"ORDER BY {', '.join('t.' + name for name in key)}" + (" FOR UPDATE OF t" if lock else "")
    )


@cache
def _pg_insert(
    table: sa.Table,
    columns: tuple[str, ...],
    unless_exists: tuple[str, ...],
    returning: tuple[str, ...],
) -> str:
    rows = _unnest(table, columns, "v")
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM {rows}"  # noqa: S608
    if unless_exists:
        sql += f" ON CONFLICT ({', '.join(unless_exists)}) DO NOTHING"
    if returning:
        sql += f" RETURNING {', '.join(returning)}"
    return sql


@cache
def _pg_update(table: sa.Table, key: tuple[str, ...], columns: tuple[str, ...]) -> str:
    return (
        f"UPDATE {table.name} AS t SET {', '.join(f'{name} = v.{name}' for name in columns)} "  # noqa: S608
        f"FROM {_unnest(table, key + columns, 'v')} WHERE {_matches(key, 't', 'v')}"
    )


@cache
def _pg_delete(table: sa.Table, key: tuple[str, ...]) -> str:
    return (
        f"DELETE FROM {table.name} AS t USING {_unnest(table, key, 'k')} "  # noqa: S608
        f"WHERE {_matches(key, 't', 'k')}"
    )


# -- SQLite: the driver's executemany, or multi-row statements ------------------------------------


def _flat(rows: Sequence[Row]) -> tuple[Any, ...]:
    return tuple(value for row in rows for value in row)


def _placeholders(width: int) -> str:
    return "(" + ", ".join("?" * width) + ")"


@lru_cache(maxsize=256)
def _sqlite_select(
    table: sa.Table, key: tuple[str, ...], columns: tuple[str, ...], count: int
) -> str:
    values = ", ".join([_placeholders(len(key))] * count)
    return (
        f"SELECT {', '.join(columns)} FROM {table.name} "  # noqa: S608
        f"WHERE ({', '.join(key)}) IN (VALUES {values}) ORDER BY {', '.join(key)}"
    )


@cache
def _sqlite_insert(
    table: sa.Table, columns: tuple[str, ...], unless_exists: tuple[str, ...]
) -> str:
    values = _placeholders(len(columns))
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES {values}"  # noqa: S608
    if unless_exists:
        sql += f" ON CONFLICT ({', '.join(unless_exists)}) DO NOTHING"
    return sql


@lru_cache(maxsize=256)
def _sqlite_insert_returning(
    table: sa.Table, columns: tuple[str, ...], key: tuple[str, ...], count: int
) -> str:
    values = ", ".join([_placeholders(len(columns))] * count)
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES {values} "  # noqa: S608
        f"ON CONFLICT ({', '.join(key)}) DO NOTHING RETURNING {', '.join(key)}"
    )


@cache
def _sqlite_update(table: sa.Table, key: tuple[str, ...], columns: tuple[str, ...]) -> str:
    return (
        f"UPDATE {table.name} SET {', '.join(f'{name} = ?' for name in columns)} "  # noqa: S608
        f"WHERE {' AND '.join(f'{name} = ?' for name in key)}"
    )


@cache
def _sqlite_delete(table: sa.Table, key: tuple[str, ...]) -> str:
    match = " AND ".join(f"{name} = ?" for name in key)
    return f"DELETE FROM {table.name} WHERE {match}"  # noqa: S608
