"""The envelope's error name and message decide the exception class."""

from __future__ import annotations

import pytest

import shopee.errors
from shopee.errors import (
    AuthError,
    CannotCancel,
    DailyLimitReached,
    FailureKind,
    FinalError,
    InvalidOrderStatus,
    InvalidRequest,
    MalformedPush,
    MalformedResponse,
    NotFound,
    NotSent,
    OutcomeUnknown,
    RateLimited,
    ReauthorizationRequired,
    RetryableError,
    ShopAccessLost,
    ShopeeError,
    classify,
    failure_kind,
    metric_outcome,
)

TABLE: list[tuple[str, str, type[ShopeeError]]] = [
    # access token rejected: refresh, then retry once
    ("invalid_acceess_token", "Invalid access_token, please have a check.", AuthError),
    ("invalid_access_token", "", AuthError),
    ("error_auth", "Invalid access_token.", AuthError),
    ("common.error_auth", "Invalid access_token.", AuthError),
    # transient
    ("error_rate_limit", "Too many requests. You have reached the rate limit.", RateLimited),
    ("error_server", "System error. Please try again later.", RetryableError),
    ("error_server", "Too many requests, please try again later", RetryableError),
    ("error_system_busy", "Our system is taking some time to respond", RetryableError),
    ("error_network", "Inner http call failed", RetryableError),
    ("error_inner", "", RetryableError),
    ("error_auth", "System error, please try again later.", RetryableError),
    # final
    ("error_param", "Wrong parameters, detail: order_sn is a required field.", FinalError),
    ("error_sign", "Wrong sign.", FinalError),
    ("error_permission", "", FinalError),
    ("common.error_auth", "Invalid sign", FinalError),
    ("error_auth", "No permission to current api.", FinalError),
    ("error_auth", "partner_id is invalid", FinalError),
    ("order.order_list_invalid_time", "Start time must be earlier than end time", FinalError),
    ("product.error_param", "invalid field ItemId: value must  Not Null", FinalError),
    ("order. error_param", "You can not cancel warehouse order.", FinalError),
    ("order.error_limit", "Can not cancel this order.", CannotCancel),
    ("order.error_limit", "Can not cancel this order", CannotCancel),
    ("error_param", "Can not cancel this order.", CannotCancel),
    (
        "error_limit",
        "The total API call number made by your APP has reached the daily",
        DailyLimitReached,
    ),
    ("common.error_limit", "daily API call limit", DailyLimitReached),
    ("shop_banned", "The shop account has been banned.", ShopAccessLost),
    ("shop_no_linked", "Partner and shop has no linked.", ShopAccessLost),
    ("partner_shop_no_link", "", ShopAccessLost),
    ("error_auth", "Invalid refresh_token.", ReauthorizationRequired),
    ("error_auth", "Your refresh_token expired.", ReauthorizationRequired),
    ("refresh_token_expired", "", ReauthorizationRequired),
    ("error_shop_refresh_token", "Your refresh token is error", ReauthorizationRequired),
    (
        "order.cancel_order_invalid_status",
        "The order status should be IN_CANCEL.",
        InvalidOrderStatus,
    ),
    ("order.order_status_invalid", "", InvalidOrderStatus),
    ("error_not_found", "Wrong parameters, detail: the order is not found.", NotFound),
    ("something_new", "", FinalError),
]


@pytest.mark.parametrize(("error", "message", "expected"), TABLE)
def test_classification_table(error: str, message: str, expected: type[ShopeeError]) -> None:
    assert classify(error, message) is expected


def test_subclasses_sit_under_the_three_families() -> None:
    for final in (CannotCancel, DailyLimitReached, ShopAccessLost, ReauthorizationRequired):
        assert issubclass(final, FinalError)
    assert issubclass(RateLimited, RetryableError)
    assert not issubclass(AuthError, RetryableError | FinalError)


def test_a_malformed_answer_is_transient_and_may_have_landed() -> None:
    # Transient: a broken answer must be retried, never read as "nothing there". An
    # OutcomeUnknown: a mutating call that got one may have been applied.
    assert issubclass(MalformedResponse, OutcomeUnknown)
    assert issubclass(MalformedResponse, RetryableError)
    assert not issubclass(MalformedResponse, FinalError)
    assert metric_outcome(MalformedResponse("x")) == "retryable"


# Every exception class in shopee.errors, and what a consumer does with it.
FAILURE_KINDS: list[tuple[type[ShopeeError], FailureKind]] = [
    (RetryableError, "transient"),
    (RateLimited, "transient"),
    (OutcomeUnknown, "transient"),
    (NotSent, "transient"),
    (MalformedResponse, "transient"),
    (AuthError, "transient"),
    (ShopAccessLost, "blocked"),
    (ReauthorizationRequired, "blocked"),
    (DailyLimitReached, "blocked"),
    (FinalError, "final"),
    (InvalidRequest, "final"),
    (NotFound, "final"),
    (CannotCancel, "final"),
    (InvalidOrderStatus, "final"),
    (MalformedPush, "final"),
    (ShopeeError, "final"),
]


@pytest.mark.parametrize(("error_class", "kind"), FAILURE_KINDS)
def test_failure_kind_table(error_class: type[ShopeeError], kind: FailureKind) -> None:
    assert failure_kind(error_class("x", api="order.get_order_detail")) == kind


def test_the_failure_kind_table_covers_every_class() -> None:
    every = {
        value
        for value in vars(shopee.errors).values()
        if isinstance(value, type) and issubclass(value, ShopeeError)
    }
    assert every == {error_class for error_class, _ in FAILURE_KINDS}


@pytest.mark.parametrize(("error", "message", "expected"), TABLE)
def test_every_classified_envelope_has_a_failure_kind(
    error: str, message: str, expected: type[ShopeeError]
) -> None:
    kind = failure_kind(classify(error, message)(message))
    assert kind == dict(FAILURE_KINDS)[expected]


def test_metric_outcome_labels() -> None:
    assert metric_outcome(RateLimited("x")) == "retryable"
    assert metric_outcome(AuthError("x")) == "auth"
    assert metric_outcome(CannotCancel("x")) == "final"


def test_error_text_carries_the_context_but_no_secrets() -> None:
    error = CannotCancel(
        "Shopee error order.error_limit", api="order.cancel_order", request_id="r1", http_status=200
    )
    assert (
        str(error) == "Shopee error order.error_limit api=order.cancel_order http=200 request_id=r1"
    )
