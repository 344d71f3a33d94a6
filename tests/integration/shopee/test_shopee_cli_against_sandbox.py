"""`orderflow auth` and `orderflow orders list` end to end against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from click.testing import CliRunner

from orderflow.cli import cli
from shopee.sandbox import SandboxServer
from tests.integration.shopee.conftest import PARTNER_ID, PARTNER_KEY

DAY = 86400


@pytest.fixture
def cli_env(clean_env: pytest.MonkeyPatch, sandbox: SandboxServer, tmp_path: Path) -> None:
    clean_env.setenv("ORDERFLOW_SHOPEE_PARTNER_ID", str(PARTNER_ID))
    clean_env.setenv("ORDERFLOW_SHOPEE_PARTNER_KEY", PARTNER_KEY)
    clean_env.setenv("ORDERFLOW_SHOPEE_BASE_URL", sandbox.base_url)
    clean_env.setenv("ORDERFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")


def test_authorise_then_list_orders_over_many_windows(
    cli_env: None, sandbox: SandboxServer, shop: int, item: int
) -> None:
    runner = CliRunner()
    link = runner.invoke(cli, ["auth", "url", "--redirect", "https://seller.example/back"])
    assert link.exit_code == 0, link.output
    # The sandbox's consent page checks the public signature and sends the seller back.
    opened = httpx.get(link.output.strip(), follow_redirects=False)
    assert opened.status_code == 302, opened.text
    back = urlsplit(opened.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == "https://seller.example/back"
    returned = {name: values[0] for name, values in parse_qs(back.query).items()}
    assert returned["shop_id"] == str(shop)
    code = returned["code"]

    exchanged = runner.invoke(cli, ["auth", "exchange", "--code", code, "--shop-id", str(shop)])
    assert exchanged.exit_code == 0, exchanged.output
    assert f"shop {shop} authorised" in exchanged.output
    reused = runner.invoke(cli, ["auth", "exchange", "--code", code, "--shop-id", str(shop)])
    assert reused.exit_code == 1
    assert "not authorised" in reused.output

    now = sandbox.state.now()
    created = {
        sandbox.state.create_order(shop, lines=[(item, 0, 1)], create_time=now - n * 3 * DAY)
        for n in range(12)  # 33 days back
    }
    listed = runner.invoke(
        cli, ["orders", "list", "--shop-id", str(shop), "--since", "40d", "--json"]
    )
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {row["order_sn"] for row in rows} == created
    assert len(rows) == len(created)
    assert all(row["order_status"] == "READY_TO_SHIP" for row in rows)
    windows = {
        (c.query["time_from"], c.query["time_to"])
        for c in sandbox.state.call_log.snapshot("order.get_order_list")
    }
    assert len(windows) == 3

    status = runner.invoke(cli, ["auth", "status", "--json"])
    (row,) = [json.loads(line) for line in status.output.splitlines()]
    assert row["shop_id"] == shop
    assert row["access_token_expires_in_seconds"] > 3 * 3600


def test_orders_list_for_an_unauthorised_shop_explains_what_to_do(cli_env: None, shop: int) -> None:
    result = CliRunner().invoke(cli, ["orders", "list", "--shop-id", str(shop), "--since", "1d"])
    assert result.exit_code == 1
    assert "orderflow auth url" in result.output
