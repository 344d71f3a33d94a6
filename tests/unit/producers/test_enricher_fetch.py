"""How the enricher isolates one bad order in a detail batch (a twin of the Shopee client)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import pytest

from producers.enricher import Enricher, EnricherConfig
from shopee.errors import FinalError, MalformedResponse, ShopAccessLost
from shopee.models import OrderDetail, OrderDetails


def _detail(order_sn: str) -> OrderDetail:
    return OrderDetail(
        order_sn=order_sn, order_status="READY_TO_SHIP", create_time=1, update_time=2
    )


class ClientTwin:
    """Answers like Shopee would if ``bad`` poisoned any call that includes it."""

    def __init__(self, bad: str, error: Exception) -> None:
        self.bad = bad
        self.error = error
        self.calls: list[list[str]] = []

    def get_order_detail(self, shop_id: int, order_sns: Iterable[str]) -> OrderDetails:
        wanted = list(order_sns)
        self.calls.append(wanted)
        if self.bad in wanted:
            raise self.error
        return OrderDetails(found=[_detail(sn) for sn in wanted], missing={})


def _enricher(client: ClientTwin) -> Enricher:
    fields: dict[str, Any] = dict.fromkeys(
        (
            "consumer",
            "notice_codec",
            "event_codec",
            "producer",
            "dead_letters",
            "snapshots",
            "parked",
            "metrics",
        ),
        None,
    )
    return Enricher(
        client=cast(Any, client),
        config=EnricherConfig(missing_retries=1, missing_retry_delay=0),
        sleep=lambda _s: None,
        **fields,
    )


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        # A final answer about one order is not asked again; a garbled one is, once.
        (FinalError("Shopee error error_param: Wrong parameters", error="error_param"), []),
        (MalformedResponse("unexpected response shape: order_list.3.item_list"), [["BAD"]]),
    ],
)
def test_one_bad_order_is_isolated_and_the_others_are_fetched(
    error: Exception, retried: list[list[str]]
) -> None:
    client = ClientTwin("BAD", error)
    details, missing = _enricher(client)._fetch(7, ["A", "BAD", "C"])
    assert sorted(d.order_sn for d in details) == ["A", "C"]
    assert list(missing) == ["BAD"]
    assert str(error) in missing["BAD"]
    # The batch, then each order alone, then the retries of the missing order.
    assert client.calls == [["A", "BAD", "C"], ["A"], ["BAD"], ["C"], *retried]


class _AllFail(ClientTwin):
    def get_order_detail(self, shop_id: int, order_sns: Iterable[str]) -> OrderDetails:
        self.calls.append(list(order_sns))
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        FinalError("Shopee error error_sign: Wrong sign", error="error_sign"),
        MalformedResponse("Shopee answered HTTP 200 with a body that is not JSON"),
    ],
)
def test_a_failure_no_order_escapes_is_not_blamed_on_the_orders(error: Exception) -> None:
    """Every order fails alone too: it is the app's or Shopee's problem, not theirs, so
    nothing is dead-lettered (the error propagates: retried if transient, else a crash)."""
    client = _AllFail("BAD", error)
    with pytest.raises(type(error)):
        _enricher(client)._fetch(7, ["A", "B", "C"])
    assert client.calls == [["A", "B", "C"], ["A"], ["B"], ["C"]]


def test_a_blocked_shop_is_not_split_into_single_calls() -> None:
    client = ClientTwin("BAD", ShopAccessLost("shop_no_linked", error="shop_no_linked"))
    with pytest.raises(ShopAccessLost):
        _enricher(client)._fetch(7, ["A", "BAD", "C"])
    assert client.calls == [["A", "BAD", "C"]]
