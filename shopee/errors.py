"""One exception hierarchy for everything that can go wrong talking to Shopee.

``ShopeeError`` is the root. Callers decide by class, never by parsing messages:

* ``RetryableError``: transient (rate limit, Shopee server trouble, timeouts, connection
  errors, 5xx without an envelope, an answer that is not the documented shape). Back off and
  try again. ``OutcomeUnknown`` is the subset where a mutating request may already have been
  applied (timeout, 5xx or an unreadable answer after sending).
* ``AuthError``: the access token was rejected; refresh it and retry the call once.
* ``FinalError``: retrying the same request cannot help (parameters, permissions, signature,
  shop banned or unlinked, daily quota, "Can not cancel this order", ...).
* ``MalformedPush``: a push body that is not one of the documented shapes.

``classify`` is the pure decision from an envelope's ``error``/``message`` to a class; the
transport raises what it returns. ``failure_kind`` is the pure decision a consumer runtime
needs from any of these: retry, park the shop, or give up on the record.
"""

from __future__ import annotations

from typing import Literal

# Shopee prefixes some error names with a module ("common.error_auth", "order.error_limit",
# and even "order. error_param" with a space); the base name decides most cases.
_RETRYABLE = frozenset({"error_server", "error_system_busy", "error_network", "error_inner"})
_RATE_LIMITED = frozenset({"error_rate_limit"})
_ACCESS_TOKEN_REJECTED = frozenset({"invalid_acceess_token", "invalid_access_token"})
_SHOP_ACCESS_LOST = frozenset(
    {"shop_banned", "shop_no_linked", "partner_shop_no_link", "shop_access_expired"}
)
_REFRESH_TOKEN_REJECTED = frozenset({"refresh_token_expired", "error_shop_refresh_token"})
_INVALID_ORDER_STATUS = frozenset({"cancel_order_invalid_status", "order_status_invalid"})
_NOT_FOUND = frozenset({"error_not_found"})
# Shopee's own failures: they may come after the change was written as well as before.
_SERVER_FAULTS = frozenset({"error_server", "error_inner", "error_network"})


class ShopeeError(Exception):
    """A Shopee call failed.

    ``api`` is the API name (e.g. ``order.get_order_list``), ``error``/``message`` are the
    envelope's fields as sent (empty for transport failures), ``request_id`` is Shopee's
    tracking id when there is one, ``http_status`` the HTTP status when a response arrived.
    """

    def __init__(
        self,
        reason: str,
        *,
        api: str = "",
        error: str = "",
        message: str = "",
        request_id: str = "",
        http_status: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.api = api
        self.error = error
        self.message = message
        self.request_id = request_id
        self.http_status = http_status

    def __str__(self) -> str:
        parts = [self.reason]
        if self.api:
            parts.append(f"api={self.api}")
        if self.http_status is not None:
            parts.append(f"http={self.http_status}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


class RetryableError(ShopeeError):
    """Transient: the same request may succeed later."""


class RateLimited(RetryableError):
    """Shopee answered error_rate_limit, or the client would exceed its own limit."""


class OutcomeUnknown(RetryableError):
    """The request was sent but no usable answer came back (timeout, 5xx without an
    envelope, or a ``MalformedResponse``).

    A mutating call (cancel, buyer-cancellation answer) may or may not have been applied;
    read the order back before deciding to send it again.
    """


class NotSent(RetryableError):
    """The connection never opened, so Shopee cannot have acted on the request."""


class MalformedResponse(OutcomeUnknown):
    """Shopee answered, but not with the documented shape: a body that is not a JSON object,
    an ``error`` that is not a string, a success without the ``response`` object (or list)
    the API always returns.

    Never read as an empty result: "no orders" taken from a broken answer would let a poller
    move past orders it never saw. Transient, because a broken answer (a proxy page, a
    half-deployed Shopee node) is usually gone on the next try. It is an ``OutcomeUnknown``
    because the request did reach something that answered: after a mutating call (cancel,
    buyer-cancellation answer, token refresh) it may have been applied, so it is never
    resent automatically; read the order back instead.
    """


class AuthError(ShopeeError):
    """The access token was rejected; refreshing it and retrying once may succeed."""


class FinalError(ShopeeError):
    """Retrying the same request cannot succeed."""


class InvalidRequest(FinalError):
    """Rejected client-side before anything was sent (e.g. OUT_OF_STOCK without item_list)."""


class NotFound(FinalError):
    """Shopee does not know the order (or object) asked for."""


class CannotCancel(FinalError):
    """``order.error_limit`` "Can not cancel this order": shipped, tracking number issued,
    or already cancelled. A final answer for this order, never a reason to retry."""


class InvalidOrderStatus(FinalError):
    """The order is not in the status the operation needs (e.g. not IN_CANCEL)."""


class DailyLimitReached(FinalError):
    """The app's daily call quota is spent; Shopee resets it at 00:00 UTC+08:00."""


class ShopAccessLost(FinalError):
    """The shop is banned, unlinked or its authorisation expired; the seller must act."""


class ReauthorizationRequired(FinalError):
    """The shop's refresh token is gone (used, expired or never stored).

    Only the seller can fix this, by authorising the app again (``orderflow auth url``).
    """


class MalformedPush(ShopeeError):
    """A push body that is not valid JSON or lacks a required field; ``reason`` says which."""


def split_error_name(error: str) -> tuple[str, str]:
    """``"order.error_limit"`` -> ``("order", "error_limit")``; no module -> ``("", name)``."""
    module, dot, base = error.partition(".")
    if not dot:
        return "", error.strip()
    return module.strip(), base.strip()


def is_access_token_rejection(error: str, message: str) -> bool:
    """True when Shopee rejected the access token itself (expired or replaced)."""
    _, base = split_error_name(error)
    if base in _ACCESS_TOKEN_REJECTED:
        return True
    # error_auth also means "no permission" or "bad partner"; only its access-token message
    # is worth a refresh, which is why the message is checked here.
    return base == "error_auth" and "invalid access_token" in message.lower()


def classify(error: str, message: str) -> type[ShopeeError]:
    """The exception class for a non-empty envelope ``error`` and its ``message``."""
    module, base = split_error_name(error)
    lowered = message.lower()
    if is_access_token_rejection(error, message):
        return AuthError
    if "can not cancel this order" in lowered:
        return CannotCancel
    if base in _RATE_LIMITED:
        return RateLimited
    if base in _RETRYABLE:
        return RetryableError
    if base == "error_auth":
        if "system error" in lowered:
            return RetryableError
        if "refresh_token" in lowered:
            return ReauthorizationRequired
        return FinalError
    if base in _REFRESH_TOKEN_REJECTED:
        return ReauthorizationRequired
    if base == "error_limit":
        # The same name means "this order cannot be cancelled" under the order module and
        # "daily quota spent" at the top level.
        if module == "order":
            return CannotCancel
        if module in ("", "common"):
            return DailyLimitReached
        return FinalError
    if base in _SHOP_ACCESS_LOST:
        return ShopAccessLost
    if base in _INVALID_ORDER_STATUS:
        return InvalidOrderStatus
    if base in _NOT_FOUND:
        return NotFound
    return FinalError


def may_have_landed(error: str) -> bool:
    """Whether a mutating request answered with the envelope ``error`` may still have been
    applied. Shopee's internal failures (``error_server`` "System error", ``error_inner``,
    ``error_network``) do not say whether the change was written before things went wrong;
    refusals (rate limit, system busy, parameters, permissions, "Can not cancel") come
    before any processing."""
    _, base = split_error_name(error)
    return base in _SERVER_FAULTS


def metric_outcome(exc: ShopeeError) -> str:
    """The bounded ``outcome`` label for a failed call."""
    if isinstance(exc, RetryableError):
        return "retryable"
    if isinstance(exc, AuthError):
        return "auth"
    return "final"


FailureKind = Literal["transient", "blocked", "final"]


def failure_kind(exc: ShopeeError) -> FailureKind:
    """What a consumer should do with a record whose Shopee call raised ``exc``.

    =============================================================  =========  ==================
    class                                                          kind       the consumer
    =============================================================  =========  ==================
    ``RetryableError``: ``RateLimited``, ``OutcomeUnknown``,       transient  backs off and
    ``MalformedResponse``, ``NotSent`` and plain ones                         retries, no commit
    ``AuthError`` (the client already refreshed and retried once)  transient  same
    ``ShopAccessLost``, ``ReauthorizationRequired``,               blocked    parks the shop's
    ``DailyLimitReached``                                                     records, alerts
    every other ``FinalError`` (``NotFound``, ``CannotCancel``,    final      dead-letters the
    ``InvalidOrderStatus``, ``InvalidRequest``, plain ones)                   record
    anything else (``MalformedPush``)                              final      same
    =============================================================  =========  ==================

    "blocked": the shop (or, for the daily quota, the whole app) cannot be served until a
    person re-authorises it or the clock passes 00:00 UTC+08:00. Nothing is wrong with the
    record, so it must never be dead-lettered for that, let alone a whole shop's records.
    """
    if isinstance(exc, RetryableError | AuthError):
        return "transient"
    if isinstance(exc, ShopAccessLost | ReauthorizationRequired | DailyLimitReached):
        return "blocked"
    return "final"
