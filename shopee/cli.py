"""``orderflow auth`` and ``orderflow orders``: the operator's handles on the Shopee adapter.

``auth url`` prints the seller's authorisation link, ``auth exchange`` stores the first token
pair from the code Shopee hands back, ``auth status`` shows how old each shop's tokens are.
``orders list`` lists a shop's orders over any time range (split into windows, every page
followed): a quick look for an operator and an end-to-end check of the client.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import click

from orderflow.db import create_engine, migrate
from orderflow.metrics import Metrics
from orderflow.settings import Settings, load_settings
from shopee.auth import authorization_url
from shopee.client import ShopeeClient
from shopee.errors import ShopeeError
from shopee.models import ORDER_LIST_STATUS_FILTERS, TimeRangeField
from shopee.tokens import REFRESH_TOKEN_LIFETIME_SECONDS, ShopToken
from shopee.transport import HOSTS

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RELATIVE = re.compile(r"^(\d+)([smhd])$")
# Warn this long before Shopee kills an unused refresh token (the alert should fire earlier).
_REFRESH_WARNING_SECONDS = 5 * 86400

# "\b" keeps click from re-wrapping the host list into one paragraph.
_AUTH_HELP = (
    "Authorise shops and inspect their tokens.\n\n\b\nShopee hosts for "
    "ORDERFLOW_SHOPEE_BASE_URL:\n" + "\n".join(f"  {name:<15} {url}" for name, url in HOSTS.items())
)


def parse_when(text: str, now: float) -> int:
    """Unix seconds from ``1700000000``, ``7d``/``12h``/``30m``/``45s`` (ago), or ISO 8601
    (``2024-05-01``, ``2024-05-01T08:00:00+07:00``; no offset means UTC)."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    relative = _RELATIVE.match(value)
    if relative:
        return int(now) - int(relative.group(1)) * _UNITS[relative.group(2)]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(
            f"{text!r} is not a time: use Unix seconds, 7d/12h/30m (ago) or ISO 8601"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def describe_seconds(seconds: float) -> str:
    """``93784`` -> ``1d 2h 3m``; negative values read as "... ago"."""
    remaining = int(abs(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if remaining >= size:
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    text = " ".join(parts) or f"{remaining}s"
    return f"{text} ago" if seconds < 0 else text


def token_status(token: ShopToken, now: float) -> dict[str, Any]:
    """What ``auth status`` reports for one shop (no secrets)."""
    return {
        "shop_id": token.shop_id,
        "access_token_expires_in_seconds": int(token.access_expires_in(now)),
        "refresh_token_age_seconds": int(token.refresh_token_age(now)),
        "refresh_token_expires_in_seconds": int(token.refresh_token_expires_in(now)),
        "authorized_at": datetime.fromtimestamp(token.authorized_at, UTC).isoformat(),
    }


def _time_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_when(value, time.time())
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _open_client(settings: Settings) -> ShopeeClient:
    engine = create_engine(settings.database_url)
    migrate(engine)
    return ShopeeClient.from_settings(settings, engine, Metrics())


@click.group(name="auth", help=_AUTH_HELP)
def auth() -> None:
    pass


@auth.command(name="url")
@click.option(
    "--redirect",
    required=True,
    help="URL Shopee sends the seller back to, with ?code=...&shop_id=... appended.",
)
def auth_url(redirect: str) -> None:
    """Print the link a seller opens to authorise this app (valid 5 minutes)."""
    settings = load_settings()
    partner_id, partner_key = settings.require_shopee()
    click.echo(
        authorization_url(
            base_url=settings.shopee_base_url,
            partner_id=partner_id,
            partner_key=partner_key,
            redirect_url=redirect,
            timestamp=int(time.time()),
        )
    )


@auth.command(name="exchange")
@click.option("--code", required=True, help="The code from the redirect (single use, 10 min).")
@click.option("--shop-id", required=True, type=click.IntRange(0, 4294967295))
def auth_exchange(code: str, shop_id: int) -> None:
    """Trade an authorisation code for the shop's token pair and store it."""
    with _open_client(load_settings()) as client:
        try:
            token = client.tokens.authorize(code, shop_id)
        except ShopeeError as exc:
            raise click.ClickException(f"shop {shop_id} not authorised: {exc}") from exc
        now = time.time()
    click.echo(
        f"shop {shop_id} authorised; access token expires in "
        f"{describe_seconds(token.access_expires_in(now))}, refresh token valid for "
        f"{describe_seconds(token.refresh_token_expires_in(now))}"
    )


@auth.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per shop.")
def auth_status(as_json: bool) -> None:
    """Show each authorised shop's access-token expiry and refresh-token age (30-day limit)."""
    with _open_client(load_settings()) as client:
        tokens = client.tokens.publish_all()
    now = time.time()
    if not tokens:
        click.echo("no shop is authorised; start with `orderflow auth url`", err=True)
        return
    if as_json:
        for token in tokens:
            click.echo(json.dumps(token_status(token, now)))
        return
    click.echo(f"{'shop_id':>12}  {'access token':<22}  {'refresh token age':<18}  note")
    for token in tokens:
        expires_in = token.access_expires_in(now)
        access = f"expires in {describe_seconds(expires_in)}" if expires_in > 0 else "expired"
        note = ""
        if token.refresh_token_expires_in(now) <= 0:
            note = "refresh token expired: re-authorise"
        elif token.refresh_token_expires_in(now) < _REFRESH_WARNING_SECONDS:
            note = f"refresh token dies in {describe_seconds(token.refresh_token_expires_in(now))}"
        age = describe_seconds(token.refresh_token_age(now))
        days = REFRESH_TOKEN_LIFETIME_SECONDS // 86400
        click.echo(f"{token.shop_id:>12}  {access:<22}  {age + f' / {days}d':<18}  {note}".rstrip())


@click.group(name="orders")
def orders() -> None:
    """Look at a shop's orders through the Shopee API."""


@orders.command(name="list")
@click.option("--shop-id", required=True, type=click.IntRange(0, 4294967295))
@click.option(
    "--since",
    required=True,
    callback=_time_option,
    help="Start: Unix seconds, 7d/12h/30m (ago) or ISO 8601 (UTC unless an offset is given).",
)
@click.option("--until", callback=_time_option, help="End, same formats; default now.")
@click.option("--status", type=click.Choice(ORDER_LIST_STATUS_FILTERS), help="Only this status.")
@click.option(
    "--time-field",
    type=click.Choice([field.value for field in TimeRangeField]),
    default=TimeRangeField.UPDATE_TIME.value,
    show_default=True,
    help="Which order time the range applies to.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per order.")
def orders_list(
    shop_id: int,
    since: int,
    until: int | None,
    status: str | None,
    time_field: str,
    as_json: bool,
) -> None:
    """List a shop's orders over any range (split into windows, every page followed)."""
    end = until if until is not None else int(time.time())
    count = 0
    with _open_client(load_settings()) as client:
        try:
            for entry in client.iter_orders(
                shop_id,
                time_from=since,
                time_to=end,
                time_range_field=TimeRangeField(time_field),
                order_status=status,
            ):
                count += 1
                if as_json:
                    click.echo(json.dumps(entry.model_dump(mode="json")))
                else:
                    click.echo(f"{entry.order_sn}\t{entry.order_status or ''}")
        except ShopeeError as exc:
            raise click.ClickException(f"listing orders of shop {shop_id} failed: {exc}") from exc
    click.echo(f"{count} order(s)", err=True)
