"""`orderflow auth` and `orderflow orders`: argument handling and the parts that need no API."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from orderflow.cli import cli
from orderflow.db import create_engine, migrate
from shopee.cli import describe_seconds, parse_when
from shopee.signing import sign_public
from shopee.tokens import ShopToken, SqlTokenStore

NOW = 1_700_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1690000000", 1690000000),
        ("7d", NOW - 7 * 86400),
        ("12h", NOW - 12 * 3600),
        ("30m", NOW - 1800),
        ("45s", NOW - 45),
        ("2024-05-01", int(datetime(2024, 5, 1, tzinfo=UTC).timestamp())),
        ("2024-05-01T08:00:00+07:00", int(datetime(2024, 5, 1, 1, tzinfo=UTC).timestamp())),
        ("2024-05-01T08:00:00", int(datetime(2024, 5, 1, 8, tzinfo=UTC).timestamp())),
    ],
)
def test_parse_when(text: str, expected: int) -> None:
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "7w", "-5", ""])
def test_parse_when_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="not a time"):
        parse_when(text, NOW)


def test_describe_seconds() -> None:
    assert describe_seconds(93784) == "1d 2h 3m"
    assert describe_seconds(-300) == "5m ago"
    assert describe_seconds(42) == "42s"


@pytest.fixture
def env(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    clean_env.setenv("ORDERFLOW_SHOPEE_PARTNER_ID", "2001887")
    clean_env.setenv("ORDERFLOW_SHOPEE_PARTNER_KEY", "cli-key")
    clean_env.setenv(
        "ORDERFLOW_SHOPEE_BASE_URL", "https://openplatform.sandbox.test-stable.shopee.sg"
    )
    clean_env.setenv("ORDERFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    return clean_env


def test_auth_url_is_public_signed(env: pytest.MonkeyPatch) -> None:
    before = int(time.time())
    result = CliRunner().invoke(
        cli, ["auth", "url", "--redirect", "https://seller.example/back?x=1"]
    )
    assert result.exit_code == 0, result.output
    url = urlsplit(result.output.strip())
    assert f"{url.scheme}://{url.netloc}" == "https://openplatform.sandbox.test-stable.shopee.sg"
    assert url.path == "/api/v2/shop/auth_partner"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["redirect"] == "https://seller.example/back?x=1"
    assert query["partner_id"] == "2001887"
    timestamp = int(query["timestamp"])
    assert before <= timestamp <= int(time.time())
    assert query["sign"] == sign_public("cli-key", 2001887, "/api/v2/shop/auth_partner", timestamp)


def test_auth_url_needs_the_redirect(env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli, ["auth", "url"])
    assert result.exit_code != 0
    assert "--redirect" in result.output


def test_auth_status_reports_token_ages(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    migrate(engine)
    now = int(time.time())
    SqlTokenStore(engine).save_authorized(
        ShopToken(55, "a", now + 3600, "r", now - 27 * 86400, now - 100 * 86400)
    )
    SqlTokenStore(engine).save_authorized(ShopToken(66, "b", now - 60, "s", now - 3600, now))
    text = CliRunner().invoke(cli, ["auth", "status"])
    assert text.exit_code == 0, text.output
    assert "refresh token dies in 2d" in text.output  # shop 55, 27 of 30 days used
    assert "expired" in text.output  # shop 66's access token
    as_json = CliRunner().invoke(cli, ["auth", "status", "--json"])
    rows = [json.loads(line) for line in as_json.output.splitlines()]
    assert [row["shop_id"] for row in rows] == [55, 66]
    assert 27 * 86400 <= rows[0]["refresh_token_age_seconds"] <= 27 * 86400 + 5
    assert not {"access_token", "refresh_token"} & set(rows[0])  # no credentials


def test_auth_status_without_shops(env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli, ["auth", "status"])
    assert result.exit_code == 0
    assert "no shop is authorised" in result.output


def test_orders_list_validates_times(env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli, ["orders", "list", "--shop-id", "1", "--since", "someday"])
    assert result.exit_code == 2
    assert "not a time" in result.output


def test_orders_list_refuses_unfilterable_statuses(env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(
        cli, ["orders", "list", "--shop-id", "1", "--since", "1d", "--status", "RETRY_SHIP"]
    )
    assert result.exit_code == 2


def test_missing_partner_settings_is_a_configuration_error(clean_env: pytest.MonkeyPatch) -> None:
    from orderflow.settings import ConfigError

    result = CliRunner().invoke(cli, ["auth", "url", "--redirect", "https://x"])
    assert isinstance(result.exception, ConfigError)
    assert "ORDERFLOW_SHOPEE_PARTNER_ID" in str(result.exception)
