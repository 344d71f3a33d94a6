"""The PostgreSQL engine's connection limits, read back from a real connection."""

from __future__ import annotations

from typing import Any

import psycopg
import sqlalchemy as sa

from orderflow.db import POSTGRES_CONNECT_DEFAULTS, create_engine


def _parameters(url: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            raw: Any = conn.connection.dbapi_connection  # typed as the DB-API protocol
            assert isinstance(raw, psycopg.Connection)
            return raw.info.get_parameters()
    finally:
        engine.dispose()


def test_a_silent_server_fails_calls_instead_of_hanging_them(postgres_url: str) -> None:
    parameters = _parameters(postgres_url)
    for name, value in POSTGRES_CONNECT_DEFAULTS.items():
        assert parameters[name] == str(value), name


def test_a_url_that_sets_a_limit_keeps_its_own(postgres_url: str) -> None:
    url = sa.engine.make_url(postgres_url).update_query_dict({"connect_timeout": "3"})
    parameters = _parameters(url.render_as_string(hide_password=False))
    assert parameters["connect_timeout"] == "3"
    assert parameters["keepalives_idle"] == "30"
