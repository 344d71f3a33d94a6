"""``orderflow sandbox``: run the Shopee sandbox in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from shopee.sandbox.config import (
    ALL_FAULT_KINDS,
    REFUSAL_KINDS,
    FaultConfig,
    FaultKind,
    InvalidTokenError,
    SandboxConfig,
)
from shopee.sandbox.server import SandboxServer
from shopee.sandbox.world import populate


def _parse_error_rates(values: tuple[str, ...]) -> dict[str, float]:
    rates: dict[str, float] = {}
    for value in values:
        api, sep, raw_rate = value.rpartition("=")
        if not sep or not api:
            raise click.BadParameter(f"{value!r} is not API=RATE", param_hint="--error-rate")
        try:
            rate = float(raw_rate)
        except ValueError as exc:
            raise click.BadParameter(
                f"{raw_rate!r} is not a number", param_hint="--error-rate"
            ) from exc
        if not 0 <= rate <= 1:
            raise click.BadParameter("rates are between 0 and 1", param_hint="--error-rate")
        rates[api] = rate
    return rates


_KINDS: dict[str, FaultKind] = {kind: kind for kind in ALL_FAULT_KINDS}
_TOKEN_ERRORS: dict[str, InvalidTokenError] = {
    "random": "random",
    "invalid_acceess_token": "invalid_acceess_token",
    "error_auth": "error_auth",
}


def _parse_kinds(raw: str) -> tuple[FaultKind, ...]:
    kinds: list[FaultKind] = []
    for name in (part.strip() for part in raw.split(",")):
        if name not in _KINDS:
            raise click.BadParameter(
                f"{name!r}; choose from {', '.join(_KINDS)}", param_hint="--error-kinds"
            )
        kinds.append(_KINDS[name])
    return tuple(kinds)


@click.command(
    "sandbox",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="""\b
Examples:
  orderflow sandbox --port 8181 --shops 2 --items 5
  orderflow sandbox --callback-url http://127.0.0.1:8080/shopee/push --traffic-rate 2 \\
      --time-factor 0.001 --error-rate get_order_detail=0.05 --push-drop-rate 0.1
  curl -X POST http://127.0.0.1:8181/sandbox/shops/<shop_id>/authorize   # a fresh code
""",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8181, show_default=True, help="Port to listen on (0 = any free).")
@click.option(
    "--partner-id",
    default=2001887,
    show_default=True,
    envvar="ORDERFLOW_SHOPEE_PARTNER_ID",
    show_envvar=True,
    help="The partner_id requests must carry.",
)
@click.option(
    "--partner-key",
    default="sandbox-partner-key",
    show_default=True,
    envvar="ORDERFLOW_SHOPEE_PARTNER_KEY",
    show_envvar=True,
    help="The key requests are signed with.",
)
@click.option(
    "--push-key",
    default=None,
    envvar="ORDERFLOW_SHOPEE_PUSH_KEY",
    show_envvar=True,
    help="The key pushes are signed with [default: the partner key].",
)
@click.option(
    "--callback-url",
    default=None,
    envvar="ORDERFLOW_WEBHOOK_PUBLIC_URL",
    show_envvar=True,
    help="Where signed pushes are POSTed. Without it every push goes to the lost-push store "
    "(get_lost_push_message).",
)
@click.option("--shops", default=1, show_default=True, help="Number of shops to create.")
@click.option(
    "--shop-id",
    "shop_ids",
    multiple=True,
    type=int,
    help="Create a shop with this id (repeatable; replaces --shops).",
)
@click.option("--region", default="SG", show_default=True, help="Region of the shops.")
@click.option("--items", default=3, show_default=True, help="Items per shop.")
@click.option("--stock", default=100, show_default=True, help="Initial stock of every model.")
@click.option("--seed", default=1, show_default=True, help="Seed of every random choice.")
@click.option(
    "--time-factor",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Scales Shopee's durations: the push retry schedule (300 s, 1800 s, 10800 s) and the "
    "traffic lifecycle delays. 0.001 makes a simulated day last 86 s.",
)
@click.option(
    "--traffic-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="TRAFFIC: new orders per second (0 = none). Orders then move through the real "
    "lifecycle with realistic odds: UNPAID -> READY_TO_SHIP -> PROCESSED -> SHIPPED -> "
    "TO_CONFIRM_RECEIVE -> COMPLETED, with buyer cancellations (straight or IN_CANCEL, which "
    "your system must answer), unpaid timeouts, RETRY_SHIP and TO_RETURN; delays scaled by "
    "--time-factor.",
)
@click.option(
    "--error-rate",
    "error_rates",
    multiple=True,
    metavar="API=RATE",
    help="FAULTS: fail this share of requests to API before processing them (repeatable). "
    "API is a path, a dotted name (order.get_order_detail), a bare name (get_order_detail) or "
    "* for all.",
)
@click.option(
    "--error-kinds",
    default=",".join(REFUSAL_KINDS),
    show_default=True,
    help="FAULTS: comma-separated kinds an injected failure is drawn from. Refused unprocessed: "
    "error envelopes (error_server, error_system_busy, error_rate_limit) or bare HTTP 500/502 "
    "(http_500, http_502); timeout (never processed, never answered). Processed first, its "
    "effect applied, then failed: effect_then_error_server, effect_then_http_502, "
    "effect_then_disconnect, effect_then_timeout.",
)
@click.option(
    "--hang-seconds",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="FAULTS: how long a timeout holds a request before closing it unanswered.",
)
@click.option(
    "--latency-ms", default=0.0, show_default=True, help="FAULTS: added to every API response."
)
@click.option(
    "--latency-jitter-ms",
    default=0.0,
    show_default=True,
    help="FAULTS: plus a uniform random 0..this.",
)
@click.option(
    "--rate-limit",
    default=None,
    type=click.IntRange(min=1),
    help="FAULTS: requests per second per shop (per partner for public APIs); more get "
    "error_rate_limit.",
)
@click.option(
    "--push-drop-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="FAULTS: share of pushes never delivered.",
)
@click.option(
    "--push-drop-silent",
    is_flag=True,
    help="FAULTS: dropped pushes vanish instead of appearing in get_lost_push_message.",
)
@click.option(
    "--push-duplicate-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="FAULTS: share of pushes delivered twice (same msg_id and body).",
)
@click.option(
    "--push-reorder",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="FAULTS: delay each push by a random 0..SECONDS, so close pushes arrive out of order.",
)
@click.option(
    "--push-timeout",
    default=3.0,
    show_default=True,
    help="Seconds a callback has to answer 2xx with an empty body.",
)
@click.option(
    "--access-token-ttl", default=14400, show_default=True, help="Access token lifetime (s)."
)
@click.option(
    "--refresh-token-ttl",
    default=30 * 86400,
    show_default=True,
    help="Refresh token lifetime (s).",
)
@click.option(
    "--invalid-token-error",
    type=click.Choice(list(_TOKEN_ERRORS)),
    default="random",
    show_default=True,
    help="Which error an invalid access token gets (Shopee documents both).",
)
@click.option(
    "--seller-cancel-unpaid",
    is_flag=True,
    help="Let cancel_order cancel UNPAID orders (undocumented on Shopee).",
)
@click.option(
    "--oos-cancel-zeroes-stock",
    is_flag=True,
    help="An OUT_OF_STOCK seller cancel sets the named models' stock to 0 instead of "
    "restoring it (a third-party claim).",
)
def sandbox(
    host: str,
    port: int,
    partner_id: int,
    partner_key: str,
    push_key: str | None,
    callback_url: str | None,
    shops: int,
    shop_ids: tuple[int, ...],
    region: str,
    items: int,
    stock: int,
    seed: int,
    time_factor: float,
    traffic_rate: float,
    error_rates: tuple[str, ...],
    error_kinds: str,
    hang_seconds: float,
    latency_ms: float,
    latency_jitter_ms: float,
    rate_limit: int | None,
    push_drop_rate: float,
    push_drop_silent: bool,
    push_duplicate_rate: float,
    push_reorder: float,
    push_timeout: float,
    access_token_ttl: int,
    refresh_token_ttl: int,
    invalid_token_error: str,
    seller_cancel_unpaid: bool,
    oos_cancel_zeroes_stock: bool,
) -> None:
    """Run a Shopee Open Platform (API v2) sandbox in the foreground.

    It answers the real /api/v2 paths with Shopee's envelopes, checks signatures, timestamps
    and tokens, delivers signed pushes with Shopee's retry schedule, keeps lost pushes for
    get_lost_push_message, and offers unsigned control routes under /sandbox/ (create
    shops, items and orders, advance orders, authorize shops, read recorded calls, change
    faults, start/stop traffic). On start it prints the base URL and an authorization code per
    shop for `orderflow auth exchange`. Stop with Ctrl-C or SIGTERM.
    """
    faults = FaultConfig(
        error_rates=_parse_error_rates(error_rates),
        error_kinds=_parse_kinds(error_kinds),
        hang_seconds=hang_seconds,
        latency_ms=latency_ms,
        latency_jitter_ms=latency_jitter_ms,
        rate_limit_per_second=rate_limit,
        push_drop_rate=push_drop_rate,
        dropped_push_to_lost_store=not push_drop_silent,
        push_duplicate_rate=push_duplicate_rate,
        push_reorder_max_delay_seconds=push_reorder,
    )
    config = SandboxConfig(
        partner_id=partner_id,
        partner_key=partner_key,
        push_key=push_key,
        callback_url=callback_url,
        time_factor=time_factor,
        seed=seed,
        faults=faults,
        access_token_ttl_seconds=access_token_ttl,
        refresh_token_ttl_seconds=refresh_token_ttl,
        invalid_access_token_error=_TOKEN_ERRORS[invalid_token_error],
        seller_cancel_unpaid=seller_cancel_unpaid,
        out_of_stock_cancel_zeroes_stock=oos_cancel_zeroes_stock,
        push_timeout_seconds=push_timeout,
    )
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with SandboxServer(config, host=host, port=port) as sb:
            created = populate(
                sb.state,
                shops=shops,
                shop_ids=shop_ids,
                region=region,
                items_per_shop=items,
                stock=stock,
            )
            base = sb.base_url
            print(f"Shopee sandbox listening on {base} (partner_id {partner_id})", flush=True)
            print(f"  ORDERFLOW_SHOPEE_BASE_URL={base}")
            for shop_id in created:
                code = sb.state.authorize(shop_id)
                print(f"  shop {shop_id} ({region}): authorization code {code}")
            print(
                f"  codes are single-use and expire after {config.auth_code_ttl_seconds // 60} "
                f"min; a fresh one: curl -X POST {base}/sandbox/shops/<shop_id>/authorize"
            )
            print(f"  pushes: {callback_url or 'no callback URL, every push goes to lost store'}")
            if traffic_rate > 0:
                sb.start_traffic(traffic_rate)
                print(f"  traffic: {traffic_rate} orders/s, time factor {time_factor}")
            print(f"  control routes: GET {base}/sandbox/state, {base}/sandbox/calls/counts")
            print("Press Ctrl-C to stop.", flush=True)
            while not stopping.wait(0.5):
                pass
            print("Stopping the sandbox.", flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
