"""The typed client over httpx.MockTransport: wire format, paging, batching, errors, retries."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
import pytest

from orderflow.metrics import Metrics
from shopee import client as api
from shopee.client import ShopeeClient
from shopee.errors import (
    AuthError,
    CannotCancel,
    FinalError,
    InvalidRequest,
    MalformedResponse,
    OutcomeUnknown,
    RetryableError,
)
from shopee.models import (
    BuyerCancellationOperation,
    CancelItem,
    CancelReason,
    ModelStock,
    SellerStock,
    TimeRangeField,
)
from tests.unit.shopee.fake_shopee import Call, Handler, Harness, Reply, error, make_harness, ok

SHOP = 14701711
DAY = 86400


@pytest.fixture
def h(tmp_path: Path, metrics: Metrics, clean_env: pytest.MonkeyPatch) -> Iterator[Harness]:
    harness = make_harness(tmp_path, metrics)
    harness.client.tokens.authorize("code", SHOP)
    yield harness
    harness.client.close()


def _count(h: Harness, api_name: str, outcome: str) -> float:
    value = h.metrics.registry.get_sample_value(
        "orderflow_shopee_requests_total", {"api": api_name, "outcome": outcome}
    )
    return value or 0.0


# --- wire format -----------------------------------------------------------------------------


def test_order_list_request_is_signed_and_complete(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: ok(
        {
            "more": False,
            "next_cursor": "",
            "order_list": [{"order_sn": "A", "order_status": "UNPAID"}],
        }
    )
    page = h.client.get_order_list(SHOP, time_from=1000, time_to=2000)
    assert [(e.order_sn, e.order_status) for e in page.order_list] == [("A", "UNPAID")]
    (call,) = h.shopee.calls_to(api.ORDER_LIST_PATH)
    assert call.method == "GET"
    assert call.query["shop_id"] == str(SHOP)
    assert call.query["access_token"] == "access-1"
    assert call.query["timestamp"] == str(int(h.clock()))
    assert call.query["time_range_field"] == "update_time"
    assert (call.query["time_from"], call.query["time_to"]) == ("1000", "2000")
    assert call.query["page_size"] == "100"
    assert call.query["cursor"] == ""
    assert call.query["response_optional_fields"] == "order_status"
    assert _count(h, "order.get_order_list", "ok") == 1
    assert (
        h.metrics.registry.get_sample_value(
            "orderflow_shopee_request_seconds_count", {"api": "order.get_order_list"}
        )
        == 1
    )


def test_auth_exchange_is_public_signed_with_a_json_body(h: Harness) -> None:
    (call,) = h.shopee.calls_to("/api/v2/auth/token/get")
    assert call.method == "POST"
    assert call.body == {"code": "code", "shop_id": SHOP, "partner_id": 2001887}


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"time_from": 0, "time_to": 15 * DAY}, "longer than"),
        ({"time_from": 10, "time_to": 10}, "before"),
        ({"time_from": 0, "time_to": 10, "page_size": 101}, "page_size"),
        ({"time_from": 0, "time_to": 10, "page_size": 0}, "page_size"),
        ({"time_from": 0, "time_to": 10, "order_status": "RETRY_SHIP"}, "cannot filter"),
    ],
)
def test_order_list_limits_are_checked_before_sending(
    h: Harness, kwargs: dict[str, int | str], why: str
) -> None:
    with pytest.raises(InvalidRequest, match=why):
        h.client.get_order_list(SHOP, **kwargs)  # type: ignore[arg-type]
    assert h.shopee.calls_to(api.ORDER_LIST_PATH) == []


# --- paging ----------------------------------------------------------------------------------


def _paged_orders(orders: dict[str, int], page_size: int = 3) -> Handler:
    """A get_order_list that pages ``orders`` (order_sn -> update_time) with opaque cursors."""

    def handler(call: Call) -> Reply:
        start, end = int(call.query["time_from"]), int(call.query["time_to"])
        assert end - start <= 14 * DAY
        matching = sorted(sn for sn, t in orders.items() if start <= t <= end)
        offset = int(call.query["cursor"].removeprefix("c") or 0)
        page = matching[offset : offset + page_size]
        more = offset + page_size < len(matching)
        return ok(
            {
                "more": more,
                "next_cursor": f"c{offset + page_size}" if more else "",
                "order_list": [{"order_sn": sn, "order_status": "READY_TO_SHIP"} for sn in page],
            }
        )

    return handler


def test_iter_orders_follows_every_window_and_page_once(h: Harness) -> None:
    # 40 orders over 60 days, one exactly on a window boundary (asked about twice).
    orders = {f"O{n:03}": n * int(1.5 * DAY) for n in range(40)}
    orders["EDGE"] = 14 * DAY
    h.shopee.handlers[api.ORDER_LIST_PATH] = _paged_orders(orders)
    found = [e.order_sn for e in h.client.iter_orders(SHOP, time_from=0, time_to=60 * DAY)]
    assert sorted(found) == sorted(orders)
    assert len(found) == len(set(found))
    calls = h.shopee.calls_to(api.ORDER_LIST_PATH)
    assert {(c.query["time_from"], c.query["time_to"]) for c in calls} == {
        ("0", str(14 * DAY)),
        (str(14 * DAY), str(28 * DAY)),
        (str(28 * DAY), str(42 * DAY)),
        (str(42 * DAY), str(56 * DAY)),
        (str(56 * DAY), str(60 * DAY)),
    }
    assert any(c.query["cursor"] for c in calls)


def test_iter_orders_passes_the_status_filter_and_time_field(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = _paged_orders({"A": 5})
    list(
        h.client.iter_orders(
            SHOP,
            time_from=0,
            time_to=10,
            time_range_field=TimeRangeField.CREATE_TIME,
            order_status="CANCELLED",
        )
    )
    (call,) = h.shopee.calls_to(api.ORDER_LIST_PATH)
    assert call.query["order_status"] == "CANCELLED"
    assert call.query["time_range_field"] == "create_time"


def test_a_cursor_that_does_not_move_stops_the_iteration(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: ok(
        {"more": True, "next_cursor": "same", "order_list": [{"order_sn": "A"}]}
    )
    with pytest.raises(MalformedResponse, match="next_cursor"):
        list(h.client.iter_orders(SHOP, time_from=0, time_to=10))
    assert len(h.shopee.calls_to(api.ORDER_LIST_PATH)) == 2


# --- details ---------------------------------------------------------------------------------


NOT_FOUND = "Wrong parameters, detail: the order is not found."


def _detail(order_sn: str) -> dict[str, object]:
    return {
        "order_sn": order_sn,
        "order_status": "READY_TO_SHIP",
        "create_time": 1,
        "update_time": 2,
    }


def _detail_shopee(
    known: Iterable[str],
    *,
    unknown: Literal["error", "skip", "silent"] = "error",
    warning_as: Literal["list", "str"] = "list",
    extra: Sequence[str] = (),
) -> Handler:
    """A get_order_detail that knows ``known`` and treats any other order_sn like the sandbox:
    ``error`` fails the whole call with error_not_found, ``skip`` leaves it out and names it
    in ``warning``, ``silent`` leaves it out without a word. ``extra`` orders come back in
    every answer, asked for or not."""
    known = set(known)

    def handler(call: Call) -> Reply:
        sns = call.query["order_sn_list"].split(",")
        assert len(sns) <= 50
        absent = [sn for sn in sns if sn not in known]
        if absent and unknown == "error":
            return error("error_not_found", NOT_FOUND, status=404)
        status, envelope = ok(
            {"order_list": [_detail(sn) for sn in [*sns, *extra] if sn in known or sn in extra]}
        )
        if absent and unknown == "skip":
            warnings = [f"order_sn {sn} is not found." for sn in absent]
            envelope["warning"] = warnings if warning_as == "list" else " ".join(warnings)
        return status, envelope

    return handler


def test_details_are_fetched_in_batches_of_fifty(h: Harness) -> None:
    sns = [f"S{n:03}" for n in range(120)]
    h.shopee.handlers[api.ORDER_DETAIL_PATH] = _detail_shopee(sns)
    details = h.client.get_order_detail(SHOP, [*sns, "S000"])
    assert [d.order_sn for d in details.found] == sns
    assert details.missing == {}
    calls = h.shopee.calls_to(api.ORDER_DETAIL_PATH)
    assert [len(c.query["order_sn_list"].split(",")) for c in calls] == [50, 50, 20]
    fields = set(calls[0].query["response_optional_fields"].split(","))
    for needed in (
        "item_list",
        "total_amount",
        "pay_time",
        "cancel_by",
        "cancel_reason",
        "buyer_cancel_reason",
        "package_list",
        "shipping_carrier",
        "payment_method",
    ):
        assert needed in fields


def test_no_orders_no_calls(h: Harness) -> None:
    assert h.client.get_order_detail(SHOP, []) == api.OrderDetails(found=[], missing={})
    assert h.shopee.calls_to(api.ORDER_DETAIL_PATH) == []


BATCH = [f"B{n:02}" for n in range(50)]


@dataclass(frozen=True)
class DetailCase:
    name: str
    requested: list[str]
    known: list[str]
    missing: dict[str, str]
    max_calls: int
    unknown: Literal["error", "skip", "silent"] = "error"
    warning_as: Literal["list", "str"] = "list"
    extra: tuple[str, ...] = ()


DETAIL_CASES = [
    DetailCase("all known: one call", BATCH, BATCH, {}, 1),
    DetailCase(
        "one unknown fails the batch: bisected",
        [*BATCH[:20], "GONE", *BATCH[20:49]],
        BATCH,
        {"GONE": NOT_FOUND},
        1 + 2 * 6,  # one failing and one good half per level, log2(50) < 6 levels
    ),
    DetailCase(
        "two unknowns far apart",
        ["GONE-1", *BATCH[:48], "GONE-2"],
        BATCH,
        {"GONE-1": NOT_FOUND, "GONE-2": NOT_FOUND},
        1 + 2 * 2 * 6,
    ),
    DetailCase(
        "all unknown",
        ["X1", "X2", "X3"],
        [],
        {"X1": NOT_FOUND, "X2": NOT_FOUND, "X3": NOT_FOUND},
        5,
    ),
    DetailCase("a single unknown order", ["X1"], [], {"X1": NOT_FOUND}, 1),
    DetailCase(
        "unknown in the second batch only: the first batch is one call",
        [f"S{n:03}" for n in range(60)] + ["GONE"],
        [f"S{n:03}" for n in range(60)],
        {"GONE": NOT_FOUND},
        1 + 1 + 2 * 4,
    ),
    DetailCase(
        "skipped with a warning list naming it",
        [*BATCH[:10], "GONE"],
        BATCH,
        {"GONE": "order_sn GONE is not found."},
        1,
        unknown="skip",
    ),
    DetailCase(
        "skipped, warning a string",
        [*BATCH[:10], "GONE-1", "GONE-2"],
        BATCH,
        {
            "GONE-1": "order_sn GONE-1 is not found. order_sn GONE-2 is not found.",
            "GONE-2": "order_sn GONE-1 is not found. order_sn GONE-2 is not found.",
        },
        1,
        unknown="skip",
        warning_as="str",
    ),
    DetailCase(
        "skipped silently",
        [*BATCH[:10], "GONE"],
        BATCH,
        {"GONE": "Shopee left the order out of its answer without an error or a warning"},
        1,
        unknown="silent",
    ),
    DetailCase(
        "an order nobody asked for is ignored",
        BATCH[:3],
        BATCH,
        {},
        1,
        extra=("STRANGER",),
    ),
    DetailCase("duplicates are asked once", [*BATCH[:3], BATCH[0], BATCH[1]], BATCH, {}, 1),
]


@pytest.mark.parametrize("case", DETAIL_CASES, ids=[case.name for case in DETAIL_CASES])
def test_details_report_found_and_missing_orders(h: Harness, case: DetailCase) -> None:
    h.shopee.handlers[api.ORDER_DETAIL_PATH] = _detail_shopee(
        case.known, unknown=case.unknown, warning_as=case.warning_as, extra=case.extra
    )
    details = h.client.get_order_detail(SHOP, case.requested)
    wanted = list(dict.fromkeys(case.requested))
    assert [d.order_sn for d in details.found] == [sn for sn in wanted if sn not in case.missing]
    assert details.missing == case.missing
    assert list(details.missing) == [sn for sn in wanted if sn in case.missing]
    calls = h.shopee.calls_to(api.ORDER_DETAIL_PATH)
    assert 1 <= len(calls) <= case.max_calls
    assert all(len(c.query["order_sn_list"].split(",")) <= 50 for c in calls)
    # error_not_found is an answer, not something to retry.
    assert _count(h, "order.get_order_detail", "retryable") == 0


def test_other_failures_while_bisecting_propagate(h: Harness) -> None:
    replies = iter([error("error_not_found", NOT_FOUND), error("error_param", "Wrong parameters")])
    h.shopee.handlers[api.ORDER_DETAIL_PATH] = lambda call: next(replies)
    with pytest.raises(FinalError, match="error_param"):
        h.client.get_order_detail(SHOP, ["A", "B"])


@pytest.mark.parametrize(
    "reply",
    [
        ok(None),
        ok({}),
        (200, {"error": "", "message": "", "request_id": "r"}),
        ok({"order_list": [{"order_sn": "A"}]}),  # no status, no times
        (200, {"error": 404, "message": "not found"}),
    ],
    ids=["response null", "no order_list", "no response", "order without fields", "error a number"],
)
def test_a_malformed_detail_answer_never_reports_orders_missing(h: Harness, reply: Reply) -> None:
    h.shopee.handlers[api.ORDER_DETAIL_PATH] = lambda call: reply
    with pytest.raises(MalformedResponse):
        h.client.get_order_detail(SHOP, ["A"])
    assert len(h.shopee.calls_to(api.ORDER_DETAIL_PATH)) == 4  # retried like any transient


def test_an_empty_detail_list_is_an_answer(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_DETAIL_PATH] = lambda call: ok({"order_list": []})
    details = h.client.get_order_detail(SHOP, ["A"])
    assert details.found == [] and list(details.missing) == ["A"]


# --- cancellation ----------------------------------------------------------------------------


def test_out_of_stock_needs_item_list_before_anything_is_sent(h: Harness) -> None:
    with pytest.raises(InvalidRequest, match="item_list"):
        h.client.cancel_order(SHOP, "A", CancelReason.OUT_OF_STOCK)
    assert h.shopee.calls_to(api.CANCEL_ORDER_PATH) == []


def test_cancel_sends_reason_and_lines(h: Harness) -> None:
    h.shopee.handlers[api.CANCEL_ORDER_PATH] = lambda call: ok({"update_time": 1603184533})
    items = [CancelItem(item_id=23620853561, model_id=221404189791)]
    assert h.client.cancel_order(SHOP, "A", CancelReason.OUT_OF_STOCK, items) == 1603184533
    (call,) = h.shopee.calls_to(api.CANCEL_ORDER_PATH)
    assert call.body == {
        "order_sn": "A",
        "cancel_reason": "OUT_OF_STOCK",
        "item_list": [{"item_id": 23620853561, "model_id": 221404189791}],
    }


def test_cannot_cancel_is_final_and_not_retried(h: Harness) -> None:
    h.shopee.handlers[api.CANCEL_ORDER_PATH] = lambda call: error(
        "order.error_limit", "Can not cancel this order."
    )
    with pytest.raises(CannotCancel):
        h.client.cancel_order(SHOP, "A", CancelReason.CUSTOMER_REQUEST)
    assert len(h.shopee.calls_to(api.CANCEL_ORDER_PATH)) == 1
    assert _count(h, "order.cancel_order", "final") == 1


def test_cancel_is_not_resent_when_its_outcome_is_unknown(h: Harness) -> None:
    h.shopee.handlers[api.CANCEL_ORDER_PATH] = lambda call: (502, b"<html>bad gateway</html>")
    with pytest.raises(OutcomeUnknown):
        h.client.cancel_order(SHOP, "A", CancelReason.CUSTOMER_REQUEST)
    assert len(h.shopee.calls_to(api.CANCEL_ORDER_PATH)) == 1


@pytest.mark.parametrize("server_fault", ["error_server", "error_inner", "common.error_network"])
def test_a_mutation_answered_with_a_server_fault_may_have_landed(
    h: Harness, server_fault: str
) -> None:
    # Found by `make chaos` (sandbox-faults): Shopee applied the cancel, then answered
    # "System error"; read as a refusal, it was sent a second time.
    h.shopee.handlers[api.CANCEL_ORDER_PATH] = lambda call: error(
        server_fault, "System error. Please try again later."
    )
    with pytest.raises(OutcomeUnknown) as caught:
        h.client.cancel_order(SHOP, "A", CancelReason.CUSTOMER_REQUEST)
    assert caught.value.error == server_fault
    assert len(h.shopee.calls_to(api.CANCEL_ORDER_PATH)) == 1  # never resent automatically


def test_a_read_answered_with_a_server_fault_is_retried_as_before(h: Harness) -> None:
    replies = iter([error("error_server", "System error."), ok({"order_list": []})])
    h.shopee.handlers[api.ORDER_DETAIL_PATH] = lambda call: next(replies)
    assert h.client.get_order_detail(SHOP, ["A"]).found == []
    assert len(h.shopee.calls_to(api.ORDER_DETAIL_PATH)) == 2


def test_a_mutation_shopee_was_too_busy_for_is_a_plain_refusal(h: Harness) -> None:
    h.shopee.handlers[api.CANCEL_ORDER_PATH] = lambda call: error(
        "error_system_busy", "Our system is taking some time to respond, please try later."
    )
    with pytest.raises(RetryableError) as caught:
        h.client.cancel_order(SHOP, "A", CancelReason.CUSTOMER_REQUEST)
    assert not isinstance(caught.value, OutcomeUnknown)
    assert len(h.shopee.calls_to(api.CANCEL_ORDER_PATH)) == 1


def test_cancel_is_retried_when_shopee_refused_it_unprocessed(h: Harness) -> None:
    replies = iter([error("error_rate_limit", "Too many requests."), ok({"update_time": 7})])
    h.shopee.handlers[api.CANCEL_ORDER_PATH] = lambda call: next(replies)
    assert h.client.cancel_order(SHOP, "A", CancelReason.CUSTOMER_REQUEST) == 7
    assert len(h.shopee.calls_to(api.CANCEL_ORDER_PATH)) == 2


def test_buyer_cancellation_answer(h: Harness) -> None:
    h.shopee.handlers[api.HANDLE_BUYER_CANCELLATION_PATH] = lambda call: ok({"update_time": 9})
    assert h.client.handle_buyer_cancellation(SHOP, "A", BuyerCancellationOperation.ACCEPT) == 9
    (call,) = h.shopee.calls_to(api.HANDLE_BUYER_CANCELLATION_PATH)
    assert call.body == {"order_sn": "A", "operation": "ACCEPT"}


# --- retries and error envelopes -------------------------------------------------------------


def test_transient_errors_are_retried_with_backoff(h: Harness) -> None:
    replies = iter(
        [
            error("error_server", "System error."),
            (502, b"<html>bad gateway</html>"),
            error("error_system_busy", "busy", status=500),
            ok({"more": False, "order_list": []}),
        ]
    )
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: next(replies)
    h.client.get_order_list(SHOP, time_from=0, time_to=10)
    assert len(h.shopee.calls_to(api.ORDER_LIST_PATH)) == 4
    # random() is 0.5: half of 0.5 s, 1 s, 2 s.
    assert h.slept == [0.25, 0.5, 1.0]
    assert _count(h, "order.get_order_list", "retryable") == 3
    assert _count(h, "order.get_order_list", "ok") == 1
    # Each attempt is signed afresh with the clock of its own moment.
    stamps = [c.query["timestamp"] for c in h.shopee.calls_to(api.ORDER_LIST_PATH)]
    assert stamps == sorted(stamps) and stamps[0] != stamps[-1]


def test_retries_stop_at_the_configured_maximum(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: error("error_server", "System error.")
    with pytest.raises(RetryableError):
        h.client.get_order_list(SHOP, time_from=0, time_to=10)
    assert len(h.shopee.calls_to(api.ORDER_LIST_PATH)) == 4  # 1 + shopee_max_retries


@pytest.mark.parametrize(
    "reply",
    [
        error("error_param", "Wrong parameters"),
        error("invalid_partner_id", "Invalid partner_id, please have a check.", status=403),
        (404, {"message": "not here"}),
        (403, b"<html>forbidden by the firewall</html>"),
        (301, b""),
    ],
)
def test_final_answers_are_not_retried(h: Harness, reply: Reply) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: reply
    with pytest.raises(FinalError):
        h.client.get_order_list(SHOP, time_from=0, time_to=10)
    assert len(h.shopee.calls_to(api.ORDER_LIST_PATH)) == 1
    assert h.slept == []


# Answers that are not the documented shape. Each must raise MalformedResponse (never pass
# for an empty page) and be retried like any transient failure.
MALFORMED_ORDER_LIST: list[tuple[str, Reply]] = [
    ("body not JSON", (200, b"not json")),
    ("body a JSON list", (200, [1, 2])),
    ("body a JSON string", (200, "ok")),
    ("error a number", (200, {"error": 0, "message": "", "response": {"more": False}})),
    ("error true", (200, {"error": True, "response": {"more": False, "order_list": []}})),
    ("error false", (200, {"error": False, "response": {"more": False, "order_list": []}})),
    ("error an object", (200, {"error": {"code": "error_server"}, "message": "busy"})),
    ("error a list", (200, {"error": ["error_server"], "message": "busy"})),
    ("no response", (200, {"error": "", "message": "", "request_id": "r"})),
    ("response null", ok(None)),
    ("response a list", ok([{"order_sn": "A"}])),
    ("response a string", ok("")),
    ("empty object", (200, {})),
    ("response without order_list", ok({"more": False, "next_cursor": ""})),
    ("response without more", ok({"order_list": [{"order_sn": "A"}]})),
    ("order_list an object", ok({"more": False, "order_list": {"order_sn": "A"}})),
]


@pytest.mark.parametrize(
    "reply", [reply for _, reply in MALFORMED_ORDER_LIST], ids=[n for n, _ in MALFORMED_ORDER_LIST]
)
def test_a_malformed_order_list_is_never_an_empty_page(h: Harness, reply: Reply) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: reply
    with pytest.raises(MalformedResponse) as caught:
        list(h.client.iter_orders(SHOP, time_from=0, time_to=10))
    assert caught.value.api == "order.get_order_list"
    assert len(h.shopee.calls_to(api.ORDER_LIST_PATH)) == 4  # 1 + shopee_max_retries
    assert _count(h, "order.get_order_list", "retryable") == 4


@pytest.mark.parametrize(
    "reply", [reply for _, reply in MALFORMED_ORDER_LIST], ids=[n for n, _ in MALFORMED_ORDER_LIST]
)
def test_a_malformed_order_list_is_retried_until_a_real_answer(h: Harness, reply: Reply) -> None:
    replies = iter(
        [reply, ok({"more": False, "next_cursor": "", "order_list": [{"order_sn": "A"}]})]
    )
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: next(replies)
    assert [e.order_sn for e in h.client.iter_orders(SHOP, time_from=0, time_to=10)] == ["A"]
    assert h.slept == [0.25]


@pytest.mark.parametrize(
    "response",
    [
        {"more": False, "next_cursor": "", "order_list": []},
        {"more": False, "order_list": []},
        # Go-built services send an empty slice as null; that is still an answer.
        {"more": False, "order_list": None},
    ],
)
def test_an_empty_order_list_is_an_answer(h: Harness, response: dict[str, object]) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: ok(response)
    assert h.client.get_order_list(SHOP, time_from=0, time_to=10).order_list == []
    assert len(h.shopee.calls_to(api.ORDER_LIST_PATH)) == 1


def test_the_malformed_error_names_the_request(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: (
        200,
        {"error": 42, "message": "odd", "request_id": "req-42"},
    )
    with pytest.raises(MalformedResponse, match="int") as caught:
        h.client.get_order_list(SHOP, time_from=0, time_to=10)
    assert (caught.value.request_id, caught.value.http_status) == ("req-42", 200)


def test_the_envelope_decides_not_the_http_status(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: (
        500,
        {"error": "", "response": {"more": False}},
    )
    with pytest.raises(OutcomeUnknown):
        h.client.get_order_list(SHOP, time_from=0, time_to=10)
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: error("error_param", "bad", status=500)
    with pytest.raises(FinalError):
        h.client.get_order_list(SHOP, time_from=0, time_to=10)


def test_transport_failures_are_wrapped_and_retried(h: Harness) -> None:
    failures = iter([httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])

    def flaky(call: Call) -> Reply:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return ok({"more": False, "order_list": []})

    h.shopee.handlers[api.ORDER_LIST_PATH] = flaky
    h.client.get_order_list(SHOP, time_from=0, time_to=10)
    assert len(h.shopee.calls_to(api.ORDER_LIST_PATH)) == 3


def test_timeouts_surface_as_outcome_unknown_with_the_cause(h: Harness) -> None:
    def slow(call: Call) -> Reply:
        raise httpx.ReadTimeout("slow")

    h.shopee.handlers[api.CANCEL_ORDER_PATH] = slow
    with pytest.raises(OutcomeUnknown) as caught:
        h.client.cancel_order(SHOP, "A", CancelReason.CUSTOMER_REQUEST)
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


# --- access token rejected: refresh, retry once ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("invalid_acceess_token", "Invalid access_token, please have a check."),
        ("invalid_access_token", ""),
        ("error_auth", "Invalid access_token."),
    ],
)
def test_rejected_access_token_is_refreshed_and_the_call_retried_once(
    h: Harness, name: str, message: str
) -> None:
    def handler(call: Call) -> Reply:
        if call.query["access_token"] == "access-1":
            return error(name, message, status=403)
        return ok({"more": False, "order_list": [{"order_sn": "A"}]})

    h.shopee.handlers[api.ORDER_LIST_PATH] = handler
    page = h.client.get_order_list(SHOP, time_from=0, time_to=10)
    assert [e.order_sn for e in page.order_list] == ["A"]
    tokens = [c.query["access_token"] for c in h.shopee.calls_to(api.ORDER_LIST_PATH)]
    assert tokens == ["access-1", "access-2"]
    (refresh,) = h.shopee.calls_to("/api/v2/auth/access_token/get")
    assert refresh.body == {"refresh_token": "refresh-1", "shop_id": SHOP, "partner_id": 2001887}
    stored = h.client.tokens.store.load(SHOP)
    assert stored is not None and stored.refresh_token == "refresh-2"


def test_a_second_rejection_propagates_instead_of_looping(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: error(
        "invalid_acceess_token", "Invalid access_token, please have a check."
    )
    with pytest.raises(AuthError):
        h.client.get_order_list(SHOP, time_from=0, time_to=10)
    assert len(h.shopee.calls_to(api.ORDER_LIST_PATH)) == 2
    assert len(h.shopee.calls_to("/api/v2/auth/access_token/get")) == 1


def test_permission_error_auth_does_not_refresh(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: error(
        "error_auth", "No permission to current api."
    )
    with pytest.raises(FinalError):
        h.client.get_order_list(SHOP, time_from=0, time_to=10)
    assert h.shopee.calls_to("/api/v2/auth/access_token/get") == []


def test_access_token_near_expiry_is_refreshed_before_the_call(h: Harness) -> None:
    h.shopee.handlers[api.ORDER_LIST_PATH] = lambda call: ok({"more": False, "order_list": []})
    h.clock.advance(14400 - 1800 + 1)  # inside the default 30-minute margin
    h.client.get_order_list(SHOP, time_from=0, time_to=10)
    (call,) = h.shopee.calls_to(api.ORDER_LIST_PATH)
    assert call.query["access_token"] == "access-2"


# --- stock, push config, lost pushes ---------------------------------------------------------


def test_update_stock_sends_absolute_values(h: Harness) -> None:
    h.shopee.handlers[api.UPDATE_STOCK_PATH] = lambda call: ok(
        {"success_list": [{"model_id": 5, "stock": 3}], "failure_list": []}
    )
    result = h.client.update_stock(
        SHOP, 1000, [ModelStock(model_id=5, seller_stock=[SellerStock(stock=3)])]
    )
    assert result.success_list[0].stock == 3
    (call,) = h.shopee.calls_to(api.UPDATE_STOCK_PATH)
    assert call.body == {
        "item_id": 1000,
        "stock_list": [{"model_id": 5, "seller_stock": [{"stock": 3}]}],
    }


@pytest.mark.parametrize("count", [0, 51])
def test_update_stock_model_count_is_checked(h: Harness, count: int) -> None:
    stock = [ModelStock(model_id=n, seller_stock=[SellerStock(stock=1)]) for n in range(count)]
    with pytest.raises(InvalidRequest):
        h.client.update_stock(SHOP, 1, stock)


def test_model_list(h: Harness) -> None:
    h.shopee.handlers[api.MODEL_LIST_PATH] = lambda call: ok(
        {
            "tier_variation": [{"name": "Size"}],
            "model": [
                {
                    "model_id": 221404189791,
                    "model_sku": "SKU-1",
                    "stock_info_v2": {"seller_stock": [{"stock": 4}]},
                }
            ],
        }
    )
    models = h.client.get_model_list(SHOP, 23620853561)
    assert models.model[0].model_sku == "SKU-1"
    assert models.model[0].stock_info_v2 is not None
    assert models.model[0].stock_info_v2.seller_stock[0].stock == 4
    assert h.shopee.calls_to(api.MODEL_LIST_PATH)[0].query["item_id"] == "23620853561"


def test_lost_pushes_with_dash_placeholders_and_string_data(h: Harness) -> None:
    h.shopee.handlers[api.LOST_PUSH_PATH] = lambda call: (
        200,
        {
            "error": "-",
            "message": "-",
            "warning": "-",
            "request_id": "r",
            "response": {
                "push_message_list": [
                    {
                        "shop_id": SHOP,
                        "code": 3,
                        "timestamp": 5,
                        "data": '{"ordersn": "A", "status": "CANCELLED", "update_time": 4}',
                    }
                ],
                "has_next_page": True,
                "last_message_id": 176610,
            },
        },
    )
    h.shopee.handlers[api.CONFIRM_LOST_PUSH_PATH] = lambda call: (
        200,
        {"error": "-", "message": "-"},
    )
    page = h.client.get_lost_push_message()
    assert page.has_next_page is True
    assert page.push_message_list[0].data["ordersn"] == "A"
    h.client.confirm_consumed_lost_push_message(176610)
    (confirm,) = h.shopee.calls_to(api.CONFIRM_LOST_PUSH_PATH)
    assert confirm.body == {"last_message_id": 176610}


def test_app_push_config(h: Harness) -> None:
    h.shopee.handlers[api.APP_PUSH_CONFIG_PATH] = lambda call: ok(
        {"callback_url": "https://x/cb", "live_push_status": "Normal"}
    )
    assert h.client.get_app_push_config().live_push_status == "Normal"


# --- a success without its response object ---------------------------------------------------

ReadCall = Callable[[ShopeeClient], object]

# APIs whose success always carries a response object, with a call that reads it.
RESPONSE_REQUIRED: list[tuple[str, str, ReadCall]] = [
    (
        "get_order_list",
        api.ORDER_LIST_PATH,
        lambda c: c.get_order_list(SHOP, time_from=0, time_to=10),
    ),
    ("get_order_detail", api.ORDER_DETAIL_PATH, lambda c: c.get_order_detail(SHOP, ["A"])),
    ("get_lost_push_message", api.LOST_PUSH_PATH, lambda c: c.get_lost_push_message()),
    ("get_app_push_config", api.APP_PUSH_CONFIG_PATH, lambda c: c.get_app_push_config()),
    ("get_model_list", api.MODEL_LIST_PATH, lambda c: c.get_model_list(SHOP, 1)),
    (
        "update_stock",
        api.UPDATE_STOCK_PATH,
        lambda c: c.update_stock(SHOP, 1, [ModelStock(seller_stock=[SellerStock(stock=1)])]),
    ),
]
EMPTY_SUCCESSES: list[tuple[str, Reply]] = [
    ("no response", (200, {"error": "", "message": "", "request_id": "r"})),
    ("response null", ok(None)),
    ("response a list", ok([])),
    ("placeholder envelope only", (200, {"error": "-", "message": "-", "warning": "-"})),
]


@pytest.mark.parametrize(
    ("path", "read"),
    [(path, read) for _, path, read in RESPONSE_REQUIRED],
    ids=[name for name, _, _ in RESPONSE_REQUIRED],
)
@pytest.mark.parametrize(
    "reply", [reply for _, reply in EMPTY_SUCCESSES], ids=[n for n, _ in EMPTY_SUCCESSES]
)
def test_a_success_without_its_response_is_malformed(
    h: Harness, path: str, read: ReadCall, reply: Reply
) -> None:
    h.shopee.handlers[path] = lambda call: reply
    with pytest.raises(MalformedResponse, match="response"):
        read(h.client)
    assert len(h.shopee.calls_to(path)) == 4  # idempotent reads: retried as transient


MUTATIONS: list[tuple[str, str, ReadCall]] = [
    (
        "cancel_order",
        api.CANCEL_ORDER_PATH,
        lambda c: c.cancel_order(SHOP, "A", CancelReason.CUSTOMER_REQUEST),
    ),
    (
        "handle_buyer_cancellation",
        api.HANDLE_BUYER_CANCELLATION_PATH,
        lambda c: c.handle_buyer_cancellation(SHOP, "A", BuyerCancellationOperation.ACCEPT),
    ),
]


@pytest.mark.parametrize(
    ("path", "act"), [(p, a) for _, p, a in MUTATIONS], ids=[n for n, _, _ in MUTATIONS]
)
@pytest.mark.parametrize(
    "reply",
    [reply for _, reply in EMPTY_SUCCESSES] + [(200, {}), (200, {"error": 1})],
    ids=[n for n, _ in EMPTY_SUCCESSES] + ["empty object", "error a number"],
)
def test_a_mutation_answered_without_its_response_may_have_landed(
    h: Harness, path: str, act: ReadCall, reply: Reply
) -> None:
    h.shopee.handlers[path] = lambda call: reply
    with pytest.raises(MalformedResponse) as caught:
        act(h.client)
    assert isinstance(caught.value, OutcomeUnknown)  # read the order back before resending
    assert len(h.shopee.calls_to(path)) == 1  # never resent automatically


@pytest.mark.parametrize(
    ("path", "act"), [(p, a) for _, p, a in MUTATIONS], ids=[n for n, _, _ in MUTATIONS]
)
@pytest.mark.parametrize(
    ("response", "update_time"),
    [({"update_time": 1603184533}, 1603184533), ({}, None), ({"update_time": None}, None)],
)
def test_a_mutation_response_may_be_small(
    h: Harness, path: str, act: ReadCall, response: dict[str, object], update_time: int | None
) -> None:
    h.shopee.handlers[path] = lambda call: ok(response)
    assert act(h.client) == update_time


def test_confirming_lost_pushes_needs_no_response(h: Harness) -> None:
    h.shopee.handlers[api.CONFIRM_LOST_PUSH_PATH] = lambda call: (200, {"error": "", "message": ""})
    h.client.confirm_consumed_lost_push_message(5)
    assert len(h.shopee.calls_to(api.CONFIRM_LOST_PUSH_PATH)) == 1
