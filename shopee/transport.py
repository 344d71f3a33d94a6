"""One signed HTTP exchange with Shopee, with rate limiting, retries and metrics.

The transport knows the wire rules and nothing about individual APIs:

* every request carries ``partner_id``, ``timestamp`` and ``sign`` in the query (plus
  ``access_token`` and ``shop_id`` for shop APIs); GET parameters go in the query, POST
  parameters in a JSON body; the signature uses the public formula for ``PUBLIC_SIGNED_PATHS``
  and the shop formula otherwise;
* the envelope's ``error`` decides success, not the HTTP status; an ``error`` that is not a
  string (a number, an object, ``true``) is a ``MalformedResponse``, never success; a response
  without an envelope decides by status (5xx, 408 and 429 are transient; a 2xx whose body is
  not a JSON object is a ``MalformedResponse``, transient too; any other status is final);
* each attempt is signed afresh (Shopee rejects timestamps older than 5 minutes), waits for the
  rate limiter, and is recorded in ``orderflow_shopee_requests_total`` and
  ``orderflow_shopee_request_seconds``.
"""

from __future__ import annotations

import json
import random as _random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeVar, overload

import httpx
from pydantic import SecretStr

from orderflow.metrics import Metrics
from shopee.errors import (
    FinalError,
    MalformedResponse,
    NotSent,
    OutcomeUnknown,
    RateLimited,
    RetryableError,
    ShopeeError,
    classify,
    may_have_landed,
    metric_outcome,
)
from shopee.ratelimit import RateLimiter
from shopee.retry import RetryPolicy, call_with_retries
from shopee.signing import PUBLIC_SIGNED_PATHS, sign_public, sign_shop

# Documented hosts (``ORDERFLOW_SHOPEE_BASE_URL`` picks one; the code never assumes any).
HOST_LIVE = "https://partner.shopeemobile.com"
HOST_LIVE_CHINA = "https://openplatform.shopee.cn"
HOST_LIVE_BRAZIL = "https://openplatform.shopee.com.br"
HOST_SANDBOX = "https://openplatform.sandbox.test-stable.shopee.sg"
HOST_SANDBOX_CHINA = "https://openplatform.sandbox.test-stable.shopee.cn"
# Still printed as test_url in Shopee's API docs; whether it still answers is unknown.
HOST_SANDBOX_LEGACY = "https://partner.test-stable.shopeemobile.com"

HOSTS: Mapping[str, str] = {
    "live": HOST_LIVE,
    "live-china": HOST_LIVE_CHINA,
    "live-brazil": HOST_LIVE_BRAZIL,
    "sandbox": HOST_SANDBOX,
    "sandbox-china": HOST_SANDBOX_CHINA,
    "sandbox-legacy": HOST_SANDBOX_LEGACY,
}

API_PREFIX = "/api/v2/"
# Official samples of the lost-push and stock APIs fill error/message with "-" on success.
PLACEHOLDER_ERRORS = frozenset({"-"})

Method = Literal["GET", "POST"]
T = TypeVar("T")
Params = Mapping[str, str | int]


def api_name(path: str) -> str:
    """``/api/v2/order/get_order_list`` -> ``order.get_order_list`` (the metric label)."""
    return path.removeprefix(API_PREFIX).replace("/", ".")


@dataclass(frozen=True)
class ShopCredentials:
    """What a shop-level call signs with."""

    shop_id: int
    access_token: str


class ShopeeTransport:
    """Sends signed requests to ``base_url`` (scheme and host only) and returns the decoded
    JSON object of a successful call, or raises a ``ShopeeError`` subclass.

    ``clock`` gives Unix seconds for the signature timestamp; ``sleep`` and ``random`` drive
    the retry backoff. The ``http`` client is owned by the caller (timeouts are set there).
    ``placeholder_errors`` lists ``error`` values that mean success (Shopee's samples use
    ``"-"``; whether live answers do is not documented).
    """

    def __init__(
        self,
        *,
        base_url: str,
        partner_id: int,
        partner_key: SecretStr,
        http: httpx.Client,
        metrics: Metrics,
        limiter: RateLimiter,
        retry: RetryPolicy,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
        placeholder_errors: frozenset[str] = PLACEHOLDER_ERRORS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.partner_id = partner_id
        self._partner_key = partner_key
        self._http = http
        self._metrics = metrics
        self._limiter = limiter
        self._retry = retry
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._placeholder_errors = placeholder_errors

    def close(self) -> None:
        self._http.close()

    @overload
    def call(
        self,
        method: Method,
        path: str,
        *,
        shop: ShopCredentials | None = None,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]: ...

    @overload
    def call(
        self,
        method: Method,
        path: str,
        *,
        parse: Callable[[dict[str, Any]], T],
        shop: ShopCredentials | None = None,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> T: ...

    def call(
        self,
        method: Method,
        path: str,
        *,
        parse: Callable[[dict[str, Any]], Any] | None = None,
        shop: ShopCredentials | None = None,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:
        """One API call with retries: the decoded envelope, or ``parse(envelope)``.

        ``parse`` turns a successful envelope into the API's result and runs inside each
        attempt, so an answer it rejects with ``MalformedResponse`` is retried and counted
        like any other transient failure rather than read as an empty result.

        ``idempotent=False`` (cancel, answer a buyer cancellation, refresh a token) retries
        only failures that prove Shopee did not act: the rate limit and connections that never
        opened. Anything else propagates, ``OutcomeUnknown`` (``MalformedResponse`` included)
        when the request may have landed, an ``error_server`` envelope included
        (``may_have_landed``).
        """
        if shop is None and path not in PUBLIC_SIGNED_PATHS:
            raise ValueError(f"{path} is a shop API and needs shop credentials")
        if shop is not None and path in PUBLIC_SIGNED_PATHS:
            raise ValueError(f"{path} is signed with the public formula; pass no shop")

        def should_retry(exc: ShopeeError) -> bool:
            if not isinstance(exc, RetryableError):
                return False
            return idempotent or isinstance(exc, RateLimited | NotSent)

        def attempt() -> Any:
            try:
                return self._attempt(method, path, shop, params, body, parse)
            except RetryableError as exc:
                if idempotent or isinstance(exc, OutcomeUnknown) or not may_have_landed(exc.error):
                    raise
                # "System error" after a cancel may follow the cancel itself: whoever sent it
                # must read the order back, never simply send it again.
                raise OutcomeUnknown(
                    f"{exc.reason}; the change may have been applied",
                    api=exc.api,
                    error=exc.error,
                    message=exc.message,
                    request_id=exc.request_id,
                    http_status=exc.http_status,
                ) from exc

        return call_with_retries(
            attempt,
            self._retry,
            should_retry=should_retry,
            sleep=self._sleep,
            random=self._random,
        )

    def _signed_query(self, path: str, shop: ShopCredentials | None) -> dict[str, str | int]:
        """The common parameters for a request to ``path`` sent now."""
        timestamp = int(self._clock())
        key = self._partner_key.get_secret_value()
        if shop is None:
            sign = sign_public(key, self.partner_id, path, timestamp)
            return {"partner_id": self.partner_id, "timestamp": timestamp, "sign": sign}
        sign = sign_shop(key, self.partner_id, path, timestamp, shop.access_token, shop.shop_id)
        return {
            "partner_id": self.partner_id,
            "timestamp": timestamp,
            "access_token": shop.access_token,
            "shop_id": shop.shop_id,
            "sign": sign,
        }

    def _attempt(
        self,
        method: Method,
        path: str,
        shop: ShopCredentials | None,
        params: Params | None,
        body: Mapping[str, Any] | None,
        parse: Callable[[dict[str, Any]], Any] | None,
    ) -> Any:
        api = api_name(path)
        self._limiter.acquire(shop.shop_id if shop is not None else None)
        query = self._signed_query(path, shop)
        if params:
            query.update(params)
        started = time.perf_counter()
        try:
            try:
                response = self._http.request(
                    method,
                    self.base_url + path,
                    params=query,
                    json=dict(body or {}) if method == "POST" else None,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                raise NotSent(f"could not connect to Shopee: {exc!r}", api=api) from exc
            except httpx.TimeoutException as exc:
                raise OutcomeUnknown(f"Shopee did not answer in time: {exc!r}", api=api) from exc
            except httpx.TransportError as exc:
                raise OutcomeUnknown(f"connection to Shopee failed: {exc!r}", api=api) from exc
            finally:
                self._metrics.shopee_request_seconds.labels(api=api).observe(
                    time.perf_counter() - started
                )
            data = self._decode(api, response)
            result = data if parse is None else parse(data)
        except ShopeeError as exc:
            self._metrics.shopee_requests.labels(api=api, outcome=metric_outcome(exc)).inc()
            raise
        self._metrics.shopee_requests.labels(api=api, outcome="ok").inc()
        return result

    def _decode(self, api: str, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        try:
            # Decimal keeps money exact; ids are JSON integers and stay ints.
            data = json.loads(response.content, parse_float=Decimal)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _without_envelope(api, status, "a body that is not JSON") from exc
        if not isinstance(data, dict):
            raise _without_envelope(api, status, "a JSON body that is not an object")
        message = _as_text(data.get("message"))
        request_id = _as_text(data.get("request_id"))
        raw_error = data.get("error")
        if raw_error is not None and not isinstance(raw_error, str):
            # A failure in a shape we do not know must not pass for success.
            raise MalformedResponse(
                f"Shopee answered HTTP {status} with an error field of type "
                f"{type(raw_error).__name__}, not a string",
                api=api,
                message=message,
                request_id=request_id,
                http_status=status,
            )
        error = _as_text(raw_error)
        if error and error not in self._placeholder_errors:
            error_class = classify(error, message)
            raise error_class(
                f"Shopee error {error}: {message}",
                api=api,
                error=error,
                message=message,
                request_id=request_id,
                http_status=status,
            )
        if status >= 400:
            raise _without_envelope(api, status, "an HTTP error without an error field")
        return data


def _as_text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _without_envelope(api: str, status: int, what: str) -> ShopeeError:
    reason = f"Shopee answered HTTP {status} with {what}"
    if status == 429:
        return RateLimited(reason, api=api, http_status=status)
    if status >= 500 or status == 408:
        return OutcomeUnknown(reason, api=api, http_status=status)
    if 200 <= status < 300:
        # Something answered "OK" with a body we cannot read (a proxy page, a truncated
        # body): worth another try, and never an empty result.
        return MalformedResponse(reason, api=api, http_status=status)
    # A 4xx (or a redirect) from something that is not Shopee's API: a wrong base URL or path,
    # a firewall. The same request will be refused again.
    return FinalError(reason, api=api, http_status=status)
