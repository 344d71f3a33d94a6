"""The typed Shopee API v2 client orderflow's producers and consumers call.

``ShopeeClient.from_settings(settings, engine, metrics)`` wires the parts: the transport
(signing, rate limits, retries, metrics), the database token store and the token lifecycle.
Every shop-level call gets a fresh access token first; if Shopee still rejects the token, the
client refreshes it and retries the call exactly once. It is synchronous and safe to share
between threads.

Nothing is ever read from a failure: an answer without the ``response`` object its API always
returns, or without the list a page is made of, raises ``MalformedResponse`` (transient, and
retried inside the transport) instead of passing for "no orders".
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Engine

from orderflow.metrics import Metrics
from orderflow.settings import Settings
from shopee.auth import AuthApi
from shopee.errors import AuthError, InvalidRequest, MalformedResponse, NotFound
from shopee.models import (
    ORDER_LIST_STATUS_FILTERS,
    AppPushConfig,
    BuyerCancellationOperation,
    CancelItem,
    CancelReason,
    LostPushPage,
    ModelList,
    ModelStock,
    OrderDetail,
    OrderDetailList,
    OrderDetails,
    OrderListEntry,
    OrderListPage,
    StockUpdateResult,
    TimeRangeField,
    UpdateTimeResult,
)
from shopee.ratelimit import RateLimiter
from shopee.retry import RetryPolicy
from shopee.tokens import ShopTokens, SqlTokenStore
from shopee.transport import Method, Params, ShopCredentials, ShopeeTransport, api_name
from shopee.windows import DEFAULT_WINDOW_SECONDS, SHOPEE_MAX_WINDOW_SECONDS, split_windows

ORDER_LIST_PATH = "/api/v2/order/get_order_list"
ORDER_DETAIL_PATH = "/api/v2/order/get_order_detail"
CANCEL_ORDER_PATH = "/api/v2/order/cancel_order"
HANDLE_BUYER_CANCELLATION_PATH = "/api/v2/order/handle_buyer_cancellation"
MODEL_LIST_PATH = "/api/v2/product/get_model_list"
UPDATE_STOCK_PATH = "/api/v2/product/update_stock"
LOST_PUSH_PATH = "/api/v2/push/get_lost_push_message"
CONFIRM_LOST_PUSH_PATH = "/api/v2/push/confirm_consumed_lost_push_message"
APP_PUSH_CONFIG_PATH = "/api/v2/push/get_app_push_config"

MAX_PAGE_SIZE = 100
MAX_DETAIL_BATCH = 50
MAX_STOCK_MODELS = 50

# get_order_detail returns only a handful of fields unless asked; these are what an order
# event carries (items, amounts, cancellation, packages and tracking, payment). Buyer PII
# (username, address, notes, invoice data) is never requested: events carry ids only.
DETAIL_FIELDS: tuple[str, ...] = (
    "item_list",
    "total_amount",
    "pay_time",
    "cancel_by",
    "cancel_reason",
    "buyer_cancel_reason",
    "package_list",
    "shipping_carrier",
    "payment_method",
    "buyer_user_id",
    "estimated_shipping_fee",
    "actual_shipping_fee",
    "actual_shipping_fee_confirmed",
    "split_up",
    "fulfillment_flag",
    "pickup_done_time",
    "order_chargeable_weight_gram",
    "return_request_due_date",
)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def _request_id(envelope: Mapping[str, Any]) -> str:
    value = envelope.get("request_id")
    return value if isinstance(value, str) else ""


def _validate(model: type[M], path: str, payload: object, envelope: Mapping[str, Any]) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "response"
        raise MalformedResponse(
            f"unexpected response shape ({exc.error_count()} problem(s)); first: "
            f"response.{where}: {first['msg']}",
            api=api_name(path),
            request_id=_request_id(envelope),
        ) from exc


def _response_object(path: str, envelope: Mapping[str, Any]) -> dict[str, Any]:
    """The ``response`` object of a successful answer.

    Only for APIs whose success always carries one: without it the answer says nothing, and
    "nothing" must never be read as "no orders" or "no lost pushes".
    """
    payload = envelope.get("response")
    if not isinstance(payload, dict):
        what = "no response" if payload is None else f"a response of type {type(payload).__name__}"
        raise MalformedResponse(
            f"Shopee reported success with {what}, not a response object",
            api=api_name(path),
            request_id=_request_id(envelope),
        )
    return payload


def _response(model: type[M], path: str) -> Callable[[dict[str, Any]], M]:
    """A transport ``parse`` reading ``model`` from the answer's required ``response``."""

    def parse(envelope: dict[str, Any]) -> M:
        return _validate(model, path, _response_object(path, envelope), envelope)

    return parse


def _warnings(envelope: Mapping[str, Any]) -> list[str]:
    """The envelope's ``warning`` as a list: a string on most APIs, a list on get_order_detail,
    ``"-"`` in some samples."""
    raw = envelope.get("warning")
    items = raw if isinstance(raw, list) else [raw]
    return [
        item.strip() for item in items if isinstance(item, str) and item.strip() not in ("", "-")
    ]


@dataclass(frozen=True)
class _DetailPage:
    orders: list[OrderDetail]
    warnings: list[str]


def _detail_page(envelope: dict[str, Any]) -> _DetailPage:
    details = _validate(
        OrderDetailList,
        ORDER_DETAIL_PATH,
        _response_object(ORDER_DETAIL_PATH, envelope),
        envelope,
    )
    return _DetailPage(details.order_list, _warnings(envelope))


def _missing_reason(order_sn: str, warnings: Sequence[str]) -> str:
    """Why ``order_sn`` did not come back from a call that succeeded without it."""
    naming = [warning for warning in warnings if order_sn in warning]
    if naming:
        return "; ".join(naming)
    if warnings:
        return "Shopee left the order out with warning: " + "; ".join(warnings)
    return "Shopee left the order out of its answer without an error or a warning"


class ShopeeClient:
    """Shopee Open Platform API v2 for one partner app and any number of shops."""

    def __init__(
        self,
        transport: ShopeeTransport,
        tokens: ShopTokens,
        *,
        window_seconds: int = DEFAULT_WINDOW_SECONDS,
        detail_fields: Sequence[str] = DETAIL_FIELDS,
    ) -> None:
        if not 0 < window_seconds <= SHOPEE_MAX_WINDOW_SECONDS:
            raise ValueError("window_seconds must be between 1 second and 15 days")
        self.transport = transport
        self.tokens = tokens
        self.window_seconds = window_seconds
        self._detail_fields = ",".join(detail_fields)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        engine: Engine,
        metrics: Metrics,
        *,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
    ) -> ShopeeClient:
        """The client a process uses. Tokens live in ``engine``'s database, which must be
        migrated (``orderflow.db.migrate``). ``http`` replaces the HTTP client (tests)."""
        partner_id, partner_key = settings.require_shopee()
        retry = RetryPolicy(max_retries=settings.shopee_max_retries)
        transport = ShopeeTransport(
            base_url=settings.shopee_base_url,
            partner_id=partner_id,
            partner_key=partner_key,
            http=http
            if http is not None
            else httpx.Client(timeout=settings.shopee_timeout_seconds),
            metrics=metrics,
            limiter=RateLimiter(
                settings.shopee_rate_limit_partner_per_second,
                settings.shopee_rate_limit_shop_per_second,
                clock=monotonic,
                sleep=sleep,
            ),
            retry=retry,
            clock=clock,
            sleep=sleep,
            random=random,
        )
        tokens = ShopTokens(
            SqlTokenStore(engine),
            AuthApi(transport),
            metrics,
            refresh_margin_seconds=settings.shopee_token_refresh_margin_seconds,
            # The lease must outlive one refresh call with every retry it may make.
            lease_seconds=retry.worst_case_seconds(settings.shopee_timeout_seconds) + 5.0,
            clock=clock,
            sleep=sleep,
        )
        return cls(transport, tokens, window_seconds=settings.shopee_order_list_window_seconds)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> ShopeeClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -----------------------------------------------------------------------------------------
    # Orders

    def get_order_list(
        self,
        shop_id: int,
        *,
        time_from: int,
        time_to: int,
        time_range_field: TimeRangeField = TimeRangeField.UPDATE_TIME,
        cursor: str = "",
        page_size: int = MAX_PAGE_SIZE,
        order_status: str | None = None,
    ) -> OrderListPage:
        """One page of orders whose ``time_range_field`` lies in the window (at most
        ``window_seconds`` long). Entries carry ``order_status``."""
        if not time_from < time_to:
            raise InvalidRequest(f"time_from ({time_from}) must be before time_to ({time_to})")
        if time_to - time_from > self.window_seconds:
            raise InvalidRequest(
                f"window of {time_to - time_from}s is longer than {self.window_seconds}s; "
                "use iter_orders for longer ranges"
            )
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidRequest(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        if order_status is not None and order_status not in ORDER_LIST_STATUS_FILTERS:
            raise InvalidRequest(
                f"get_order_list cannot filter by {order_status!r}; "
                f"one of {', '.join(ORDER_LIST_STATUS_FILTERS)}"
            )
        params: dict[str, str | int] = {
            "time_range_field": TimeRangeField(time_range_field).value,
            "time_from": time_from,
            "time_to": time_to,
            "page_size": page_size,
            "cursor": cursor,
            "response_optional_fields": "order_status",
        }
        if order_status is not None:
            params["order_status"] = order_status
        return self._shop_call(
            "GET",
            ORDER_LIST_PATH,
            shop_id,
            params=params,
            parse=_response(OrderListPage, ORDER_LIST_PATH),
        )

    def iter_orders(
        self,
        shop_id: int,
        *,
        time_from: int,
        time_to: int,
        time_range_field: TimeRangeField = TimeRangeField.UPDATE_TIME,
        order_status: str | None = None,
    ) -> Iterator[OrderListEntry]:
        """Every order in ``[time_from, time_to]`` once, across as many windows and pages as
        it takes. An order seen twice (window boundaries, or updated while paging) is
        yielded the first time only."""
        try:
            windows = split_windows(time_from, time_to, self.window_seconds)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc
        seen: set[str] = set()
        for start, end in windows:
            cursor = ""
            while True:
                page = self.get_order_list(
                    shop_id,
                    time_from=start,
                    time_to=end,
                    time_range_field=time_range_field,
                    cursor=cursor,
                    order_status=order_status,
                )
                for entry in page.order_list:
                    if entry.order_sn not in seen:
                        seen.add(entry.order_sn)
                        yield entry
                if not page.more:
                    break
                if not page.next_cursor or page.next_cursor == cursor:
                    # Following the same cursor again would loop for ever.
                    raise MalformedResponse(
                        f"more=true but next_cursor is {page.next_cursor!r}",
                        api=api_name(ORDER_LIST_PATH),
                    )
                cursor = page.next_cursor

    def get_order_detail(self, shop_id: int, order_sns: Iterable[str]) -> OrderDetails:
        """Full snapshots of the given orders (every field in ``DETAIL_FIELDS``), and which of
        them Shopee did not return.

        Orders are asked for in batches of at most 50, one call per batch when Shopee knows
        them all; an order asked for twice is fetched once. Every requested order ends up in
        ``found`` (request order) or ``missing`` (order_sn -> reason):

        * Shopee leaves an unknown order out and names it in ``warning``: ``missing`` gets
          that warning (or says it was left out silently);
        * Shopee fails a whole batch with ``error_not_found``: the batch is halved until the
          orders that exist came back and each unknown one failed alone; ``missing`` gets
          Shopee's message. An unknown order costs about ``2 * log2(batch size)`` extra calls.

        Orders returned that were not asked for are ignored. Any other failure (including a
        malformed answer) propagates for the whole call: a partial answer is never passed off
        as a complete one.
        """
        unique = list(dict.fromkeys(order_sns))
        found: dict[str, OrderDetail] = {}
        missing: dict[str, str] = {}
        for offset in range(0, len(unique), MAX_DETAIL_BATCH):
            batch = unique[offset : offset + MAX_DETAIL_BATCH]
            self._fetch_details(shop_id, batch, found, missing)
        return OrderDetails(
            found=[found[sn] for sn in unique if sn in found],
            missing={sn: missing[sn] for sn in unique if sn in missing},
        )

    def _fetch_details(
        self,
        shop_id: int,
        batch: Sequence[str],
        found: dict[str, OrderDetail],
        missing: dict[str, str],
    ) -> None:
        """Fetch ``batch`` into ``found``/``missing``, bisecting on ``error_not_found``."""
        params = {
            "order_sn_list": ",".join(batch),
            "response_optional_fields": self._detail_fields,
        }
        try:
            page = self._shop_call(
                "GET", ORDER_DETAIL_PATH, shop_id, params=params, parse=_detail_page
            )
        except NotFound as exc:
            if len(batch) == 1:
                missing[batch[0]] = exc.message or exc.reason
                return
            # Shopee names no culprit when one unknown order fails the batch; halving finds
            # it while the orders that do exist still come back.
            middle = len(batch) // 2
            self._fetch_details(shop_id, batch[:middle], found, missing)
            self._fetch_details(shop_id, batch[middle:], found, missing)
            return
        wanted = set(batch)
        for detail in page.orders:
            if detail.order_sn in wanted:
                found.setdefault(detail.order_sn, detail)
        for order_sn in batch:
            if order_sn not in found:
                missing[order_sn] = _missing_reason(order_sn, page.warnings)

    def cancel_order(
        self,
        shop_id: int,
        order_sn: str,
        reason: CancelReason,
        item_list: Sequence[CancelItem] = (),
    ) -> int | None:
        """Cancel an order as the seller; Shopee's ``update_time`` of the change.

        OUT_OF_STOCK needs the short lines in ``item_list`` (checked before sending).
        ``CannotCancel`` when Shopee refuses (shipped, tracking number issued, already
        cancelled): final. Never retried once the request may have reached Shopee.

        The reference (§7.1, §10.4) shows every success carrying ``response:
        {"update_time"}``. So an answer without a ``response`` object (say a bare ``{}``
        from a proxy) is a ``MalformedResponse``, an ``OutcomeUnknown``: the cancel may or
        may not have happened, so read the order back. A ``response`` without
        ``update_time`` is accepted (None), because the field itself is not something a
        caller can rely on (Shopee's own sample for the sister API has an 11-digit value).
        """
        reason = CancelReason(reason)
        if reason is CancelReason.OUT_OF_STOCK and not item_list:
            raise InvalidRequest("cancel_reason OUT_OF_STOCK needs item_list (the short lines)")
        body: dict[str, Any] = {"order_sn": order_sn, "cancel_reason": reason.value}
        if item_list:
            body["item_list"] = [
                item.model_dump(include={"item_id", "model_id"}) for item in item_list
            ]
        result = self._shop_call(
            "POST",
            CANCEL_ORDER_PATH,
            shop_id,
            body=body,
            idempotent=False,
            parse=_response(UpdateTimeResult, CANCEL_ORDER_PATH),
        )
        return result.update_time

    def handle_buyer_cancellation(
        self, shop_id: int, order_sn: str, operation: BuyerCancellationOperation
    ) -> int | None:
        """Accept or reject a buyer's cancellation request (the order must be IN_CANCEL,
        else ``InvalidOrderStatus``); Shopee's ``update_time`` of the change.

        Answers are read as in ``cancel_order`` (reference §7.2, §10.4): no ``response``
        object is a ``MalformedResponse`` (outcome unknown, never resent), a ``response``
        without ``update_time`` gives None.
        """
        body = {"order_sn": order_sn, "operation": BuyerCancellationOperation(operation).value}
        result = self._shop_call(
            "POST",
            HANDLE_BUYER_CANCELLATION_PATH,
            shop_id,
            body=body,
            idempotent=False,
            parse=_response(UpdateTimeResult, HANDLE_BUYER_CANCELLATION_PATH),
        )
        return result.update_time

    # -----------------------------------------------------------------------------------------
    # Products and stock

    def get_model_list(self, shop_id: int, item_id: int) -> ModelList:
        """An item's variants with their SKUs and stock."""
        return self._shop_call(
            "GET",
            MODEL_LIST_PATH,
            shop_id,
            params={"item_id": item_id},
            parse=_response(ModelList, MODEL_LIST_PATH),
        )

    def update_stock(
        self, shop_id: int, item_id: int, stock_list: Sequence[ModelStock]
    ) -> StockUpdateResult:
        """Set absolute seller stock for up to 50 models of one item (absolute values are
        why a retry is harmless). Per-model failures come back in ``failure_list``."""
        if not 1 <= len(stock_list) <= MAX_STOCK_MODELS:
            raise InvalidRequest(
                f"stock_list needs 1..{MAX_STOCK_MODELS} models, got {len(stock_list)}"
            )
        body = {
            "item_id": item_id,
            "stock_list": [
                entry.model_dump(mode="json", exclude_none=True) for entry in stock_list
            ],
        }
        return self._shop_call(
            "POST",
            UPDATE_STOCK_PATH,
            shop_id,
            body=body,
            parse=_response(StockUpdateResult, UPDATE_STOCK_PATH),
        )

    # -----------------------------------------------------------------------------------------
    # Push (partner level, public signature)

    def get_lost_push_message(self) -> LostPushPage:
        """The earliest (up to 100) pushes Shopee failed to deliver in the last 3 days and
        not yet confirmed. Store them before confirming: confirming drops them for good."""
        return self.transport.call(
            "GET", LOST_PUSH_PATH, parse=_response(LostPushPage, LOST_PUSH_PATH)
        )

    def confirm_consumed_lost_push_message(self, last_message_id: int) -> None:
        """Tell Shopee every lost push up to ``last_message_id`` is safely stored.

        Nothing is read from the answer, so none is required: a confirmation lost this way
        only means the same pushes come back, which downstream deduplication absorbs.
        """
        self.transport.call(
            "POST", CONFIRM_LOST_PUSH_PATH, body={"last_message_id": last_message_id}
        )

    def get_app_push_config(self) -> AppPushConfig:
        """The app's push settings, including ``live_push_status`` (Shopee suspends pushes
        when too many fail)."""
        return self.transport.call(
            "GET", APP_PUSH_CONFIG_PATH, parse=_response(AppPushConfig, APP_PUSH_CONFIG_PATH)
        )

    # -----------------------------------------------------------------------------------------

    def _shop_call(
        self,
        method: Method,
        path: str,
        shop_id: int,
        *,
        parse: Callable[[dict[str, Any]], T],
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> T:
        token = self.tokens.access_token(shop_id)
        try:
            return self.transport.call(
                method,
                path,
                shop=ShopCredentials(shop_id, token),
                params=params,
                body=body,
                idempotent=idempotent,
                parse=parse,
            )
        except AuthError:
            # Shopee rejected the token (expired early, or replaced by a re-authorisation).
            # One refresh and one retry; a second rejection propagates, so this cannot loop.
            token = self.tokens.refresh_rejected(shop_id, token)
        return self.transport.call(
            method,
            path,
            shop=ShopCredentials(shop_id, token),
            params=params,
            body=body,
            idempotent=idempotent,
            parse=parse,
        )
