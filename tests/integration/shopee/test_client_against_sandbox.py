"""The Shopee client against the sandbox over real HTTP."""

from __future__ import annotations

import pytest

from shopee.client import ShopeeClient
from shopee.errors import (
    CannotCancel,
    InvalidOrderStatus,
    InvalidRequest,
    NotFound,
    ReauthorizationRequired,
    RetryableError,
    ShopAccessLost,
)
from shopee.models import (
    BuyerCancellationOperation,
    CancelItem,
    CancelReason,
    ModelStock,
    SellerStock,
)
from shopee.push import OrderStatusPush, parse_push_object
from shopee.sandbox import FaultConfig, SandboxServer

DAY = 86400


def _orders(
    sandbox: SandboxServer, shop: int, item: int, count: int, *, spread_days: int = 0
) -> list[str]:
    now = sandbox.state.now()
    return [
        sandbox.state.create_order(
            shop,
            lines=[(item, 0, 1)],
            create_time=now - (n * spread_days * DAY) // max(count, 1) if spread_days else None,
        )
        for n in range(count)
    ]


def test_paging_across_windows_and_cursors_returns_every_order_once(
    sandbox: SandboxServer, client: ShopeeClient, shop: int, item: int
) -> None:
    created = _orders(sandbox, shop, item, 420, spread_days=40)
    now = sandbox.state.now()
    found = [
        e.order_sn for e in client.iter_orders(shop, time_from=now - 41 * DAY, time_to=now + 1)
    ]
    assert len(found) == len(set(found))
    assert set(found) == set(created)
    calls = sandbox.state.call_log.snapshot("order.get_order_list")
    windows = {(c.query["time_from"], c.query["time_to"]) for c in calls}
    assert len(windows) == 3  # 41 days in windows of at most 14
    assert sum(1 for c in calls if c.query.get("cursor")) >= 3  # pages beyond the first
    assert all(c.ok for c in calls)
    assert all(int(c.query["time_to"]) - int(c.query["time_from"]) <= 14 * DAY for c in calls)


def test_list_entries_carry_the_status(
    sandbox: SandboxServer, client: ShopeeClient, shop: int, item: int
) -> None:
    (order_sn,) = _orders(sandbox, shop, item, 1)
    sandbox.state.advance(order_sn, "PROCESSED")
    now = sandbox.state.now()
    entries = list(client.iter_orders(shop, time_from=now - 60, time_to=now + 1))
    assert [(e.order_sn, e.order_status) for e in entries] == [(order_sn, "PROCESSED")]
    filtered = client.iter_orders(shop, time_from=now - 60, time_to=now + 1, order_status="UNPAID")
    assert list(filtered) == []


def test_details_are_fetched_fifty_at_a_time(
    sandbox: SandboxServer, client: ShopeeClient, shop: int, item: int
) -> None:
    created = _orders(sandbox, shop, item, 120)
    result = client.get_order_detail(shop, created)
    assert result.missing == {}
    details = result.found
    assert [d.order_sn for d in details] == created
    calls = sandbox.state.call_log.snapshot("order.get_order_detail")
    assert [len(c.order_sn_list) for c in calls] == [50, 50, 20]
    first = details[0]
    assert first.item_list and first.item_list[0].item_id == item
    assert first.total_amount is not None and first.total_amount > 0
    assert first.pay_time is not None
    assert first.package_list and first.package_list[0].package_number


def test_out_of_stock_cancel_needs_item_list(
    sandbox: SandboxServer, client: ShopeeClient, shop: int, item: int
) -> None:
    (order_sn,) = _orders(sandbox, shop, item, 1)
    with pytest.raises(InvalidRequest):
        client.cancel_order(shop, order_sn, CancelReason.OUT_OF_STOCK)
    assert sandbox.state.call_log.snapshot("order.cancel_order") == []
    update_time = client.cancel_order(
        shop, order_sn, CancelReason.OUT_OF_STOCK, [CancelItem(item_id=item, model_id=0)]
    )
    assert update_time is not None
    assert sandbox.state.order(order_sn).status == "CANCELLED"
    (detail,) = client.get_order_detail(shop, [order_sn]).found
    assert detail.order_status == "CANCELLED"
    assert detail.cancel_by == "seller"


def test_no_cancel_after_processed(
    sandbox: SandboxServer, client: ShopeeClient, shop: int, item: int
) -> None:
    (order_sn,) = _orders(sandbox, shop, item, 1)
    sandbox.state.advance(order_sn, "PROCESSED")
    with pytest.raises(CannotCancel):
        client.cancel_order(shop, order_sn, CancelReason.CUSTOMER_REQUEST)
    calls = sandbox.state.call_log.snapshot("order.cancel_order")
    assert [c.error for c in calls] == ["order.error_limit"]  # asked once, never retried
    assert sandbox.state.order(order_sn).status == "PROCESSED"


def test_buyer_cancellation_is_answered_once(
    sandbox: SandboxServer, client: ShopeeClient, shop: int, item: int
) -> None:
    (order_sn,) = _orders(sandbox, shop, item, 1)
    sandbox.state.advance(order_sn, "IN_CANCEL")
    assert client.handle_buyer_cancellation(shop, order_sn, BuyerCancellationOperation.ACCEPT)
    assert sandbox.state.order(order_sn).status == "CANCELLED"
    with pytest.raises(InvalidOrderStatus):
        client.handle_buyer_cancellation(shop, order_sn, BuyerCancellationOperation.ACCEPT)


@pytest.mark.parametrize(
    "sandbox",
    [
        {"invalid_access_token_error": "invalid_acceess_token"},
        {"invalid_access_token_error": "error_auth"},
    ],
    indirect=True,
    ids=["invalid_acceess_token", "error_auth"],
)
def test_expired_access_token_is_refreshed_and_the_call_retried_once(
    sandbox: SandboxServer, client: ShopeeClient, shop: int, item: int
) -> None:
    (order_sn,) = _orders(sandbox, shop, item, 1)
    sandbox.state.expire_access_tokens(shop)
    (detail,) = client.get_order_detail(shop, [order_sn]).found
    assert detail.order_sn == order_sn
    rejection = sandbox.state.config.invalid_access_token_error
    assert [(c.api, c.error) for c in sandbox.calls[1:]] == [
        ("order.get_order_detail", rejection),
        ("auth.access_token.get", ""),
        ("order.get_order_detail", ""),
    ]


def test_dead_refresh_token_means_reauthorisation_not_a_loop(
    sandbox: SandboxServer, client: ShopeeClient, shop: int
) -> None:
    sandbox.state.expire_access_tokens(shop)
    sandbox.state.expire_refresh_tokens(shop)
    with pytest.raises(ReauthorizationRequired):
        client.get_order_detail(shop, ["X"])
    assert [c.api for c in sandbox.calls[1:]] == [
        "order.get_order_detail",
        "auth.access_token.get",
    ]


def test_deauthorised_shop_is_a_final_answer(
    sandbox: SandboxServer, client: ShopeeClient, shop: int
) -> None:
    sandbox.state.deauthorize(shop)
    with pytest.raises(ShopAccessLost):
        client.get_order_detail(shop, ["X"])
    assert len(sandbox.state.call_log.snapshot("order.get_order_detail")) == 1


def test_injected_errors_are_retried_until_success(
    sandbox: SandboxServer, client: ShopeeClient, shop: int, item: int
) -> None:
    created = _orders(sandbox, shop, item, 30)
    sandbox.state.set_faults(FaultConfig(error_rates={"get_order_detail": 0.5}))
    for order_sn in created:
        (detail,) = client.get_order_detail(shop, [order_sn]).found
        assert detail.order_sn == order_sn
    calls = sandbox.state.call_log.snapshot("order.get_order_detail")
    faults = {c.fault for c in calls if c.fault}
    assert len(calls) > len(created)  # some were retried
    assert faults <= {
        "error_server",
        "error_system_busy",
        "error_rate_limit",
        "http_500",
        "http_502",
    }
    assert len(faults) >= 3
    assert sum(c.ok for c in calls) == len(created)


def test_retries_give_up_after_the_configured_count(
    sandbox: SandboxServer, client: ShopeeClient, shop: int
) -> None:
    sandbox.state.set_faults(FaultConfig(error_rates={"get_order_detail": 1.0}))
    with pytest.raises(RetryableError):
        client.get_order_detail(shop, ["X"])
    assert len(sandbox.state.call_log.snapshot("order.get_order_detail")) == 5  # 1 + 4 retries


def test_final_errors_are_not_retried(
    sandbox: SandboxServer, client: ShopeeClient, shop: int
) -> None:
    with pytest.raises(NotFound):
        client.get_model_list(shop, 404404)
    assert len(sandbox.state.call_log.snapshot("product.get_model_list")) == 1


def test_an_unknown_order_is_reported_missing_not_retried(
    sandbox: SandboxServer, client: ShopeeClient, shop: int
) -> None:
    details = client.get_order_detail(shop, ["NO-SUCH-ORDER"])
    assert details.found == []
    assert details.missing == {"NO-SUCH-ORDER": "Wrong parameters, detail: the order is not found."}
    assert len(sandbox.state.call_log.snapshot("order.get_order_detail")) == 1


@pytest.mark.parametrize(
    ("sandbox", "reason"),
    [
        ({"unknown_order_sn": "error"}, "Wrong parameters, detail: the order is not found."),
        ({"unknown_order_sn": "skip"}, "order_sn {sn} is not found."),
    ],
    indirect=["sandbox"],
    ids=["batch-fails", "order-skipped"],
)
def test_unknown_orders_do_not_hide_the_ones_that_exist(
    sandbox: SandboxServer, client: ShopeeClient, shop: int, item: int, reason: str
) -> None:
    created = _orders(sandbox, shop, item, 60)
    unknown = ["GONE-1", "GONE-2"]
    asked = [*created[:10], unknown[0], *created[10:], unknown[1]]
    details = client.get_order_detail(shop, asked)
    assert [d.order_sn for d in details.found] == created
    assert details.missing == {sn: reason.format(sn=sn) for sn in unknown}
    calls = sandbox.state.call_log.snapshot("order.get_order_detail")
    assert all(len(c.order_sn_list) <= 50 for c in calls)
    if sandbox.state.config.unknown_order_sn == "skip":
        assert [len(c.order_sn_list) for c in calls] == [50, 12]  # one call per batch
    else:
        # Each failing batch is halved until its one unknown order fails alone.
        assert sum(c.ok for c in calls) > 2
        assert len(calls) <= 2 * (1 + 2 * 6)


def test_lost_pushes_are_read_and_confirmed(
    sandbox: SandboxServer, client: ShopeeClient, shop: int, item: int
) -> None:
    created = _orders(sandbox, shop, item, 3)  # no callback URL: every push is lost
    page = client.get_lost_push_message()
    pushes = [parse_push_object(m.push_body()) for m in page.push_message_list]
    assert all(isinstance(p, OrderStatusPush) for p in pushes)
    assert {p.data.order_sn for p in pushes if isinstance(p, OrderStatusPush)} == set(created)
    assert page.last_message_id is not None
    client.confirm_consumed_lost_push_message(page.last_message_id)
    assert client.get_lost_push_message().push_message_list == []


def test_push_config_and_stock(sandbox: SandboxServer, client: ShopeeClient, shop: int) -> None:
    assert client.get_app_push_config().live_push_status
    item = sandbox.state.add_item(
        shop, models=[(221404189791, "SKU-RED", 5), (221404189792, "SKU-BLUE", 0)]
    )
    models = client.get_model_list(shop, item)
    assert {(m.model_id, m.model_sku) for m in models.model} == {
        (221404189791, "SKU-RED"),
        (221404189792, "SKU-BLUE"),
    }
    result = client.update_stock(
        shop, item, [ModelStock(model_id=221404189792, seller_stock=[SellerStock(stock=7)])]
    )
    assert [(s.model_id, s.stock) for s in result.success_list] == [(221404189792, 7)]
    assert result.failure_list == []
    assert sandbox.state.stock(item, 221404189792) == 7
