"""The Shopee Open Platform v2 routes, answering like the documented API.

Every ``/api/v2/...`` request passes, in order: added latency, injected faults (most before
any processing, so the failed request has no side effect; see ``FaultConfig``), the rate
limit, ``partner_id``,
``timestamp`` (within the tolerance of the sandbox clock), the presence of ``sign`` (and of
``access_token`` and ``shop_id`` for shop APIs), the signature (shop formula for shop APIs,
public formula for auth and push APIs), and for shop APIs the shop link and access token.
Then the API's own parameter checks run. Every request is recorded in the state's call log,
with what the caller was answered and whether the sandbox handled it (and applied its effect).

Answers use Shopee's envelopes: ``{"request_id", "error": "", "message": "", "response"}`` on
success (the auth endpoints are flat: their fields sit at top level), ``{"request_id",
"error", "message"}`` on failure. Clients must decide by ``error``, never the HTTP status.
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from shopee.sandbox.config import FaultKind
from shopee.sandbox.errors import ShopeeApiError, param_error
from shopee.sandbox.faults import (
    RATE_LIMIT_MESSAGE,
    api_name,
    applies_effect,
    failure_seen,
    fault_error,
)
from shopee.sandbox.pushes import AttemptResult
from shopee.sandbox.render import item_base_info, model_list, order_detail
from shopee.sandbox.rules import (
    LIST_STATUS_FILTERS,
    TIME_RANGE_FIELDS,
    page_orders,
    split_csv,
    validate_list_window,
    validate_page_size,
)
from shopee.sandbox.state import SandboxState
from shopee.signing import sign_public, sign_shop

UINT32_MAX = 4294967295
VerifyCallback = Callable[[str], AttemptResult]


@dataclass(frozen=True)
class ApiContext:
    """What a handler gets: the state, the (sandbox-clock) time and the validated request."""

    state: SandboxState
    now: float
    query: Mapping[str, str]
    body: Mapping[str, Any]
    shop_id: int | None
    verify_callback: VerifyCallback


@dataclass(frozen=True)
class Answer:
    """A handler's success: the ``response`` object (or flat fields), an optional
    ``warning``, or a redirect (auth_partner)."""

    payload: dict[str, Any] = field(default_factory=dict)
    warning: list[str] | None = None
    redirect: str | None = None


Handler = Callable[[ApiContext], Answer]
Envelope = Literal["response", "flat", "push"]


@dataclass(frozen=True)
class ApiRoute:
    method: Literal["GET", "POST"]
    shop_level: bool
    envelope: Envelope
    handler: Handler


# -- parameter helpers ----------------------------------------------------------------------


def _query_int(query: Mapping[str, str], name: str) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        raise param_error(f"{name} is a required field.")
    try:
        return int(raw)
    except ValueError as exc:
        raise param_error(f"{name} should be an integer.") from exc


def _query_str(query: Mapping[str, str], name: str) -> str:
    value = query.get(name, "")
    if not value:
        raise param_error(f"{name} is a required field.")
    return value


def _body_str(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise param_error(f"{name} is a required field.")
    return value


def _body_int(body: Mapping[str, Any], name: str) -> int:
    value = body.get(name)
    if value is None:
        raise param_error(f"{name} is a required field.")
    if not isinstance(value, int) or isinstance(value, bool):
        raise param_error(f"{name} should be an integer.")
    return value


def _shop_id(ctx: ApiContext) -> int:
    assert ctx.shop_id is not None, "shop-level handlers run only after authentication"
    return ctx.shop_id


# -- authentication ---------------------------------------------------------------------------


def authenticate(
    state: SandboxState, path: str, route: ApiRoute, query: Mapping[str, str], now: float
) -> int | None:
    """Check the common parameters and the signature; returns the shop id for shop APIs.

    Raises the error envelope Shopee answers for the first problem found.
    """
    config = state.config
    raw_partner = query.get("partner_id")
    if not raw_partner:
        raise ShopeeApiError("error_param", "There is no partner_id in query.")
    if not raw_partner.isdigit() or int(raw_partner) > UINT32_MAX:
        raise ShopeeApiError(
            "error_param",
            "Partner_id is invalid, should be an integer between 0 and 4294967295.",
        )
    partner_id = int(raw_partner)
    if partner_id != config.partner_id:
        raise ShopeeApiError("invalid_partner_id", "Invalid partner_id, please have a check.")
    raw_timestamp = query.get("timestamp")
    if not raw_timestamp:
        raise ShopeeApiError("error_param", "There is no timestamp in query.")
    if not raw_timestamp.isdigit() or int(raw_timestamp) > UINT32_MAX:
        raise ShopeeApiError(
            "error_param",
            "Timestamp is invalid, should be an integer between 0 and 4294967295.",
        )
    timestamp = int(raw_timestamp)
    age = now - timestamp
    if age > config.timestamp_tolerance_seconds or -age > config.timestamp_future_tolerance_seconds:
        raise ShopeeApiError("error_param", "Timestamp is expired.")
    sign = query.get("sign")
    if not sign:
        raise ShopeeApiError("error_param", "There is no sign in query.")
    if not route.shop_level:
        expected = sign_public(config.partner_key, partner_id, path, timestamp)
        if not hmac.compare_digest(expected, sign.lower()):
            raise ShopeeApiError("error_sign", "Wrong sign.")
        return None
    access_token = query.get("access_token")
    if not access_token:
        raise ShopeeApiError("error_param", "There is no access_token in query.")
    raw_shop = query.get("shop_id")
    if not raw_shop:
        raise ShopeeApiError("error_param", "There is no shop_id in query.")
    if not raw_shop.isdigit() or int(raw_shop) > UINT32_MAX:
        raise ShopeeApiError(
            "error_param", "shop_id is invalid, should be an integer between 0 and 4294967295."
        )
    shop_id = int(raw_shop)
    expected = sign_shop(config.partner_key, partner_id, path, timestamp, access_token, shop_id)
    if not hmac.compare_digest(expected, sign.lower()):
        raise ShopeeApiError("error_sign", "Wrong sign.")
    state.check_shop_access(shop_id, access_token)
    return shop_id


# -- auth ---------------------------------------------------------------------------------------


def _check_body_partner(ctx: ApiContext) -> None:
    partner = ctx.body.get("partner_id")
    if partner is not None and partner != ctx.state.config.partner_id:
        raise param_error("partner_id in the body does not match the query.")


def auth_partner(ctx: ApiContext) -> Answer:
    """The authorisation page, already "approved": redirects with a fresh code. The shop is
    ``shop_id`` from the query (a sandbox extension), else the first shop (created if none)."""
    redirect = _query_str(ctx.query, "redirect")
    state = ctx.state
    raw_shop = ctx.query.get("shop_id")
    if raw_shop:
        shop_id = _query_int(ctx.query, "shop_id")
        if shop_id not in state.shop_ids():
            state.add_shop(shop_id)
    else:
        shop_ids = state.shop_ids()
        shop_id = shop_ids[0] if shop_ids else state.add_shop()
    code = state.authorize(shop_id)
    separator = "&" if "?" in redirect else "?"
    return Answer(redirect=f"{redirect}{separator}{urlencode({'code': code, 'shop_id': shop_id})}")


def token_get(ctx: ApiContext) -> Answer:
    _check_body_partner(ctx)
    code = _body_str(ctx.body, "code")
    shop_id = _body_int(ctx.body, "shop_id")
    grant = ctx.state.exchange_code(code, shop_id)
    return Answer(
        {
            "access_token": grant.access_token,
            "refresh_token": grant.refresh_token,
            "expire_in": grant.expire_in,
        }
    )


def access_token_get(ctx: ApiContext) -> Answer:
    _check_body_partner(ctx)
    refresh_token = _body_str(ctx.body, "refresh_token")
    shop_id = _body_int(ctx.body, "shop_id")
    grant = ctx.state.refresh_access_token(refresh_token, shop_id)
    return Answer(
        {
            "partner_id": ctx.state.config.partner_id,
            "shop_id": shop_id,
            "access_token": grant.access_token,
            "refresh_token": grant.refresh_token,
            "expire_in": grant.expire_in,
        }
    )


# -- orders -------------------------------------------------------------------------------------


def get_order_list(ctx: ApiContext) -> Answer:
    query = ctx.query
    time_field = _query_str(query, "time_range_field")
    if time_field not in TIME_RANGE_FIELDS:
        raise param_error("time_range_field should be create_time or update_time.")
    time_from = _query_int(query, "time_from")
    time_to = _query_int(query, "time_to")
    page_size = _query_int(query, "page_size")
    config = ctx.state.config
    validate_list_window(
        time_from,
        time_to,
        max_span=config.order_list_max_span_seconds,
        accept_exact_max_span=config.order_list_accept_exact_max_span,
    )
    validate_page_size(page_size)
    status = query.get("order_status") or None
    if status is not None and status not in LIST_STATUS_FILTERS:
        raise param_error(f"order_status {status} is invalid.")
    entries = ctx.state.list_entries(_shop_id(ctx), time_field, time_from, time_to, status)
    page, next_cursor = page_orders(
        entries, query.get("cursor", ""), page_size, config.order_list_cursor
    )
    with_status = "order_status" in split_csv(query.get("response_optional_fields", ""))
    order_list: list[dict[str, Any]] = [
        {"order_sn": entry.order_sn, "order_status": entry.status}
        if with_status
        else {"order_sn": entry.order_sn}
        for entry in page
    ]
    return Answer({"more": bool(next_cursor), "next_cursor": next_cursor, "order_list": order_list})


def get_order_detail(ctx: ApiContext) -> Answer:
    order_sns = split_csv(ctx.query.get("order_sn_list", ""))
    if not order_sns:
        raise param_error("order_sn_list is a required field.")
    if len(order_sns) > 50:
        raise param_error("order_sn_list should contain 1 to 50 order_sn.")
    found, missing = ctx.state.orders_for_detail(_shop_id(ctx), order_sns)
    warning: list[str] | None = None
    if missing:
        if ctx.state.config.unknown_order_sn == "error" or not found:
            raise ShopeeApiError(
                "error_not_found", "Wrong parameters, detail: the order is not found."
            )
        warning = [f"order_sn {order_sn} is not found." for order_sn in missing]
    fields = split_csv(ctx.query.get("response_optional_fields", ""))
    return Answer({"order_list": [order_detail(order, fields) for order in found]}, warning)


def _item_pairs(raw: object, name: str) -> list[tuple[int, int]]:
    if not isinstance(raw, list):
        raise param_error(f"{name} should be a list.")
    pairs: list[tuple[int, int]] = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise param_error(f"{name} entries should be objects.")
        pairs.append((_body_int(entry, "item_id"), _body_int(entry, "model_id")))
    return pairs


def cancel_order(ctx: ApiContext) -> Answer:
    order_sn = _body_str(ctx.body, "order_sn")
    cancel_reason = _body_str(ctx.body, "cancel_reason")
    if "partial_cancel_item_list" in ctx.body:
        raise param_error("partial_cancel_item_list is not available for this shop.")
    raw_items = ctx.body.get("item_list")
    item_list = _item_pairs(raw_items, "item_list") if raw_items is not None else None
    update_time = ctx.state.seller_cancel(order_sn, cancel_reason, item_list, shop_id=_shop_id(ctx))
    return Answer({"update_time": update_time})


def handle_buyer_cancellation(ctx: ApiContext) -> Answer:
    order_sn = _body_str(ctx.body, "order_sn")
    operation = _body_str(ctx.body, "operation")
    update_time = ctx.state.handle_buyer_cancellation(order_sn, operation, shop_id=_shop_id(ctx))
    return Answer({"update_time": update_time})


def get_tracking_number(ctx: ApiContext) -> Answer:
    """logistics.get_tracking_number (not in the reference; shape from Shopee's docs):
    ``tracking_number`` is "" until shipment is arranged."""
    order_sn = _query_str(ctx.query, "order_sn")
    found, _ = ctx.state.orders_for_detail(_shop_id(ctx), [order_sn])
    if not found:
        raise ShopeeApiError("error_not_found", "Wrong parameters, detail: the order is not found.")
    package = found[0].package
    package_number = ctx.query.get("package_number")
    if package_number and package_number != package.package_number:
        raise param_error("package_number is invalid.")
    return Answer(
        {
            "tracking_number": package.tracking_number,
            "plp_number": "",
            "first_mile_tracking_number": "",
            "last_mile_tracking_number": "",
            "hint": "" if package.tracking_number else "Tracking number is not ready yet.",
        }
    )


# -- products -----------------------------------------------------------------------------------


def get_model_list(ctx: ApiContext) -> Answer:
    item_id = _query_int(ctx.query, "item_id")
    item, currency = ctx.state.shop_item(_shop_id(ctx), item_id)
    return Answer(model_list(item, currency))


def get_item_base_info(ctx: ApiContext) -> Answer:
    raw_ids = split_csv(ctx.query.get("item_id_list", ""))
    if not 1 <= len(raw_ids) <= 50:
        raise param_error("item_id_list should contain 1 to 50 item_id.")
    if not all(raw.isdigit() for raw in raw_ids):
        raise param_error("item_id_list should contain integers.")
    items = []
    for raw in dict.fromkeys(raw_ids):
        item, currency = ctx.state.shop_item(_shop_id(ctx), int(raw))
        items.append(item_base_info(item, currency))
    return Answer({"item_list": items})


def update_stock(ctx: ApiContext) -> Answer:
    item_id = _body_int(ctx.body, "item_id")
    stock_list = ctx.body.get("stock_list")
    if not isinstance(stock_list, list) or not 1 <= len(stock_list) <= 50:
        raise param_error("stock_list length should be between 1 to 50.")
    entries: list[tuple[object, object]] = []
    for entry in stock_list:
        if not isinstance(entry, dict):
            raise param_error("stock_list entries should be objects.")
        seller_stock = entry.get("seller_stock")
        if not isinstance(seller_stock, list) or not seller_stock:
            raise param_error("seller_stock is a required field.")
        first = seller_stock[0]
        if not isinstance(first, dict) or "stock" not in first:
            raise param_error("seller_stock.stock is a required field.")
        entries.append((entry.get("model_id", 0), first["stock"]))
    result = ctx.state.update_stock(_shop_id(ctx), item_id, entries)
    payload: dict[str, Any] = {
        "success_list": result.success_list,
        "failure_list": result.failure_list,
    }
    if not result.success_list:
        raise ShopeeApiError(
            "error_busi_update_stock_failed",
            "Update stock failed, please check failure_list for detailed reason",
            response=payload,
        )
    return Answer(payload)


# -- push ---------------------------------------------------------------------------------------


def get_lost_push_message(ctx: ApiContext) -> Answer:
    page = ctx.state.pushes.lost_page(ctx.now)
    as_string = ctx.state.config.lost_push_data_as_string
    entries: list[dict[str, Any]] = []
    for lost in page.entries:
        entry: dict[str, Any] = {}
        if lost.message.shop_id is not None:
            entry["shop_id"] = lost.message.shop_id
        entry["code"] = lost.message.code
        entry["timestamp"] = int(lost.lost_at)
        entry["data"] = lost.message.body.decode() if as_string else lost.message.payload()
        entries.append(entry)
    return Answer(
        {
            "push_message_list": entries,
            "has_next_page": page.has_next_page,
            "last_message_id": page.last_message_id,
        }
    )


def confirm_consumed_lost_push_message(ctx: ApiContext) -> Answer:
    ctx.state.pushes.confirm_lost(_body_int(ctx.body, "last_message_id"))
    return Answer({})


def get_app_push_config(ctx: ApiContext) -> Answer:
    subscribed = ctx.state.pushes.subscribed_codes
    return Answer(
        {
            "callback_url": ctx.state.callback_url or "",
            "live_push_status": "Normal",
            "suspended_time": 0,
            "blocked_shop_id_list": [],
            "push_config_on_list": sorted(subscribed),
            "push_config_off_list": sorted(set(range(1, 14)) - subscribed),
        }
    )


def set_app_push_config(ctx: ApiContext) -> Answer:
    """Changing the callback URL first sends it the code-0 verification push; the URL is
    saved only if that push succeeds (2xx, empty body, within the timeout)."""
    body = ctx.body
    url = body.get("callback_url")
    if url is not None:
        if not isinstance(url, str) or not url:
            raise param_error("callback_url should be a non-empty string.")
        result = ctx.verify_callback(url)
        if not result.ok:
            raise ShopeeApiError(
                "error_param",
                "Shopee have sent a test push to this call back url, but we didn't get any "
                "response in 3 seconds with 2xx code",
            )
    codes = set(ctx.state.pushes.subscribed_codes)
    for name, switch_on in (("push_config_on_list", True), ("push_config_off_list", False)):
        raw = body.get(name, [])
        if not isinstance(raw, list) or not all(isinstance(c, int) for c in raw):
            raise param_error(f"{name} should be a list of integers.")
        codes = codes | set(raw) if switch_on else codes - set(raw)
    if url is not None:
        ctx.state.set_callback_url(url)
    ctx.state.pushes.set_subscribed_codes(frozenset(codes))
    return Answer({"result": "success"})


ROUTES: dict[str, ApiRoute] = {
    "/api/v2/shop/auth_partner": ApiRoute("GET", False, "flat", auth_partner),
    "/api/v2/auth/token/get": ApiRoute("POST", False, "flat", token_get),
    "/api/v2/auth/access_token/get": ApiRoute("POST", False, "flat", access_token_get),
    "/api/v2/order/get_order_list": ApiRoute("GET", True, "response", get_order_list),
    "/api/v2/order/get_order_detail": ApiRoute("GET", True, "response", get_order_detail),
    "/api/v2/order/cancel_order": ApiRoute("POST", True, "response", cancel_order),
    "/api/v2/order/handle_buyer_cancellation": ApiRoute(
        "POST", True, "response", handle_buyer_cancellation
    ),
    "/api/v2/logistics/get_tracking_number": ApiRoute("GET", True, "response", get_tracking_number),
    "/api/v2/product/get_model_list": ApiRoute("GET", True, "response", get_model_list),
    "/api/v2/product/get_item_base_info": ApiRoute("GET", True, "response", get_item_base_info),
    "/api/v2/product/update_stock": ApiRoute("POST", True, "response", update_stock),
    "/api/v2/push/get_lost_push_message": ApiRoute("GET", False, "push", get_lost_push_message),
    "/api/v2/push/confirm_consumed_lost_push_message": ApiRoute(
        "POST", False, "push", confirm_consumed_lost_push_message
    ),
    "/api/v2/push/get_app_push_config": ApiRoute("GET", False, "response", get_app_push_config),
    "/api/v2/push/set_app_push_config": ApiRoute("POST", False, "response", set_app_push_config),
}
"""Every Shopee path the sandbox answers."""


# -- the pipeline ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    """How a request ended. ``handled``: it reached the API's handler (authenticated, not
    refused by a fault or the rate limit); ``applied``: the handler succeeded, so its effect
    happened, whatever the caller is told. ``error``/``response`` are what the caller gets."""

    response: Response
    error: str
    message: str
    shop_id: int | None
    fault: str | None
    handled: bool = False
    applied: bool = False


def _request_id() -> str:
    return uuid.uuid4().hex


def _envelope_success(route: ApiRoute, answer: Answer, placeholders: bool) -> dict[str, Any]:
    envelope: dict[str, Any] = {"request_id": _request_id()}
    if route.envelope == "push" and placeholders:
        envelope.update({"error": "-", "message": "-", "warning": "-"})
    else:
        envelope.update({"error": "", "message": ""})
    if answer.warning:
        envelope["warning"] = answer.warning
    if route.envelope == "flat":
        envelope.update(answer.payload)
    else:
        envelope["response"] = answer.payload
    return envelope


def _envelope_error(exc: ShopeeApiError) -> JSONResponse:
    envelope: dict[str, Any] = {
        "request_id": _request_id(),
        "error": exc.error,
        "message": exc.message,
    }
    if exc.response is not None:
        envelope["response"] = exc.response
    return JSONResponse(envelope, status_code=exc.http_status)


_TRANSPORT_PAGES = {
    "http_500": (500, "<html><body><h1>500 Internal Server Error</h1></body></html>"),
    "http_502": (502, "<html><body><h1>502 Bad Gateway</h1></body></html>"),
}
# Recorded as the HTTP status of a request that got no answer (timeout, dropped connection).
NO_ANSWER = 0


class _NoAnswer(Response):
    """Closes the connection without a complete answer: at once after the status line and
    headers (``disconnect``), or after holding the request ``hang_seconds`` or until the
    client gives up (``timeout``)."""

    def __init__(self, hang_seconds: float | None) -> None:
        super().__init__(status_code=200)
        self._hang_seconds = hang_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._hang_seconds is not None:
            with anyio.move_on_after(self._hang_seconds):
                # The body was read already: the next message is the client going away.
                while (await receive())["type"] != "http.disconnect":
                    pass
                return  # the client gave up first: there is no one left to answer
        # Headers promising a body that never comes; returning now makes the server close the
        # connection (see ``server.DeliberateDropFilter``).
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
            }
        )


def _failure(seen: str, hang_seconds: float) -> tuple[Response, str, str]:
    """The response, ``error`` and ``message`` of a failure the caller sees."""
    if seen == "timeout":
        return _NoAnswer(hang_seconds), seen, "no answer"
    if seen == "disconnect":
        return _NoAnswer(None), seen, "connection closed mid-answer"
    envelope_error = fault_error(seen)
    if envelope_error is None:
        status, page = _TRANSPORT_PAGES[seen]
        return Response(page, status, media_type="text/html"), seen, ""
    return _envelope_error(envelope_error), envelope_error.error, envelope_error.message


def _refused(fault: FaultKind, hang_seconds: float) -> _Outcome:
    response, error, message = _failure(failure_seen(fault), hang_seconds)
    return _Outcome(response, error, message, None, fault)


def _then_failed(outcome: _Outcome, fault: FaultKind, hang_seconds: float) -> _Outcome:
    """``outcome`` happened (its effect applied); the caller gets ``fault``'s failure."""
    response, error, message = _failure(failure_seen(fault), hang_seconds)
    return _Outcome(
        response, error, message, outcome.shop_id, fault, outcome.handled, outcome.applied
    )


class _InvalidJson:
    """Marks a body that was not JSON, so the pipeline can answer error_param."""


_INVALID_JSON: Any = _InvalidJson()


def _process(
    state: SandboxState,
    verify_callback: VerifyCallback,
    method: str,
    path: str,
    query: dict[str, str],
    body: Any,
    fault: FaultKind | None,
) -> _Outcome:
    """Everything after the latency, synchronously (it runs in a worker thread).
    ``fault``: the injected fault drawn for this request, if any."""
    now = state.clock.now()
    route = ROUTES.get(path)
    if route is None:
        exc = ShopeeApiError("error_not_found", f"The API {path} is not found.")
        return _Outcome(_envelope_error(exc), exc.error, exc.message, None, None)
    hang_seconds = state.faults.hang_seconds
    if fault is not None and not applies_effect(fault):
        return _refused(fault, hang_seconds)
    shop_hint = query.get("shop_id", "")
    limiter_key = f"shop:{shop_hint}" if route.shop_level else f"partner:{query.get('partner_id')}"
    if not state.fault_injector.admit(limiter_key, now):
        exc = ShopeeApiError("error_rate_limit", RATE_LIMIT_MESSAGE)
        outcome = _Outcome(_envelope_error(exc), exc.error, exc.message, None, "rate_limit")
    else:
        outcome = _handle(state, verify_callback, route, method, path, query, body, now)
    if fault is not None:
        return _then_failed(outcome, fault, hang_seconds)
    return outcome


def _handle(
    state: SandboxState,
    verify_callback: VerifyCallback,
    route: ApiRoute,
    method: str,
    path: str,
    query: dict[str, str],
    body: Any,
    now: float,
) -> _Outcome:
    """Authentication, then the API's handler."""
    shop_id: int | None = None
    handled = False
    try:
        if method != route.method:
            raise param_error(f"{path} expects HTTP {route.method}.")
        if body is _INVALID_JSON or (route.method == "POST" and not isinstance(body, dict)):
            raise param_error("the request body should be a JSON object.")
        shop_id = authenticate(state, path, route, query, now)
        ctx = ApiContext(
            state=state,
            now=now,
            query=query,
            body=body if isinstance(body, dict) else {},
            shop_id=shop_id,
            verify_callback=verify_callback,
        )
        handled = True
        answer = route.handler(ctx)
    except ShopeeApiError as exc:
        return _Outcome(_envelope_error(exc), exc.error, exc.message, shop_id, None, handled)
    if answer.redirect is not None:
        return _Outcome(RedirectResponse(answer.redirect, 302), "", "", shop_id, None, True, True)
    envelope = _envelope_success(route, answer, state.config.push_api_placeholders)
    return _Outcome(JSONResponse(envelope), "", "", shop_id, None, True, True)


def shopee_endpoint(
    state: SandboxState, verify_callback: VerifyCallback
) -> Callable[[Request], Any]:
    """The Starlette endpoint for ``/api/v2/{path}``."""

    async def endpoint(request: Request) -> Response:
        path = request.url.path
        query = dict(request.query_params)
        raw = await request.body()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = _INVALID_JSON
        latency = state.fault_injector.latency_seconds()
        if latency > 0:
            await anyio.sleep(latency)
        fault = state.fault_injector.injected_fault(path) if path in ROUTES else None
        outcome = await run_in_threadpool(
            _process, state, verify_callback, request.method, path, query, body, fault
        )
        recorded_shop = outcome.shop_id
        if recorded_shop is None and query.get("shop_id", "").isdigit():
            recorded_shop = int(query["shop_id"])
        no_answer = isinstance(outcome.response, _NoAnswer)
        # Recorded before a held request is let go: the call log says when it was decided.
        state.call_log.record(
            at=state.clock.now(),
            method=request.method,
            path=path,
            api=api_name(path),
            shop_id=recorded_shop,
            query=query,
            body=raw.decode(errors="replace") if body is _INVALID_JSON else body,
            error=outcome.error,
            message=outcome.message,
            http_status=NO_ANSWER if no_answer else outcome.response.status_code,
            fault=outcome.fault,
            handled=outcome.handled,
            applied=outcome.applied,
        )
        return outcome.response

    return endpoint
