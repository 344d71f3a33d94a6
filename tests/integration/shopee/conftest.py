"""Fixtures for the Shopee client against the sandbox over real HTTP, and token databases.

The token-store tests run on SQLite always and on PostgreSQL when one answers:
``ORDERFLOW_TEST_POSTGRES_URL``, else a PostgreSQL ``ORDERFLOW_DATABASE_URL`` (the stack's),
else ``postgresql://orderflow@127.0.0.1:5433/orderflow`` (`make up`), else the PostgreSQL of
the stack the test session starts itself. Each PostgreSQL test gets a schema of its own,
dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy.engine import Engine, make_url

from orderflow.db import create_engine, migrate, normalise_url
from orderflow.metrics import Metrics
from orderflow.settings import Settings
from shopee.client import ShopeeClient
from shopee.sandbox import SandboxConfig, SandboxServer

PARTNER_ID = 2001887
PARTNER_KEY = "integration-partner-key"
LOCAL_POSTGRES = "postgresql://orderflow@127.0.0.1:5433/orderflow"


def _configured_postgres() -> str:
    # Read at import: tests later clear ORDERFLOW_* variables with the clean_env fixture.
    database = os.environ.get("ORDERFLOW_DATABASE_URL", "")
    stack = database if database.startswith("postgres") else ""
    url = os.environ.get("ORDERFLOW_TEST_POSTGRES_URL") or stack or LOCAL_POSTGRES
    # psycopg takes libpq URLs, without SQLAlchemy's driver suffix.
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


CONFIGURED_POSTGRES = _configured_postgres()


def postgres_base_url() -> str | None:
    """A reachable PostgreSQL URL, or None."""
    import psycopg

    url = CONFIGURED_POSTGRES
    try:
        with psycopg.connect(url, connect_timeout=2):
            return url
    except psycopg.Error:
        return None


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections put every table (migrations included) in ``schema``."""
    parsed = make_url(normalise_url(url))
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tokens.db'}"
        migrate(create_engine(url))
        yield url
        return
    # A configured or `make up` PostgreSQL first; otherwise the test stack's own, which the
    # session starts (and which skips only where PostgreSQL is not installed at all).
    base = postgres_base_url() or str(request.getfixturevalue("postgres_url"))
    import psycopg

    schema = f"shopee_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = with_search_path(base, schema)
    engine = create_engine(url)
    migrate(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def sandbox(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    """A running sandbox; indirect parametrisation passes SandboxConfig overrides."""
    overrides: dict[str, object] = getattr(request, "param", {})
    config = SandboxConfig.model_validate(
        {"partner_id": PARTNER_ID, "partner_key": PARTNER_KEY, "seed": 7, **overrides}
    )
    with SandboxServer(config) as server:
        yield server


def client_settings(base_url: str, database_url: str, **overrides: object) -> Settings:
    """Settings for a client of ``base_url``; generous rate limits keep the tests quick."""
    values: dict[str, object] = {
        "shopee_partner_id": PARTNER_ID,
        "shopee_partner_key": SecretStr(PARTNER_KEY),
        "shopee_base_url": base_url,
        "shopee_rate_limit_partner_per_second": 1000.0,
        "shopee_rate_limit_shop_per_second": 1000.0,
        "shopee_max_retries": 4,
        "database_url": database_url,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


ClientFactory = Callable[..., ShopeeClient]


@pytest.fixture
def make_client(
    sandbox: SandboxServer, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> Iterator[ClientFactory]:
    """Builds clients of the sandbox (each its own engine, like separate replicas)."""
    clients: list[ShopeeClient] = []
    engines: list[Engine] = []
    default_url = f"sqlite:///{tmp_path / 'client.db'}"
    migrate(create_engine(default_url))

    def build(database_url: str = default_url, **overrides: object) -> ShopeeClient:
        settings = client_settings(sandbox.base_url, database_url, **overrides)
        engine = create_engine(settings.database_url)
        engines.append(engine)
        # Backoff delays shrink to a few milliseconds; the retry counts stay real.
        client = ShopeeClient.from_settings(
            settings, engine, Metrics(CollectorRegistry()), random=lambda: 0.01
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()
    for engine in engines:
        engine.dispose()


@pytest.fixture
def shop(sandbox: SandboxServer) -> int:
    return sandbox.state.add_shop(shop_id=500123, region="SG")


@pytest.fixture
def item(sandbox: SandboxServer, shop: int) -> int:
    return sandbox.state.add_item(shop, item_id=23620853561, models=[(0, "SKU-PLAIN", 100_000)])


@pytest.fixture
def client(make_client: ClientFactory, sandbox: SandboxServer, shop: int) -> ShopeeClient:
    """A client whose database holds the shop's first token pair."""
    built = make_client()
    built.tokens.authorize(sandbox.state.authorize(shop), shop)
    return built
