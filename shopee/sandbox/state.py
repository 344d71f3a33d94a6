"""The sandbox's world: shops, tokens, items with Shopee-side stock, orders and their lifecycle.

:class:`SandboxState` works without HTTP (unit tests drive it directly) and is thread-safe: the
server's request threads, the traffic generator and the test thread share one instance. Every
order status change bumps ``update_time`` and emits a code-3 push; arranging shipment (PROCESSED)
also emits a code-4 push with the tracking number. Pushes go to :attr:`SandboxState.pushes`.

Methods named after Shopee APIs raise :class:`~shopee.sandbox.errors.ShopeeApiError` (the answer
the API gives); the lifecycle helpers used by tests and the traffic generator raise
:class:`~shopee.sandbox.errors.SandboxError` subclasses.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from shopee.sandbox.calls import CallLog
from shopee.sandbox.clock import Clock, SystemClock
from shopee.sandbox.config import FaultConfig, SandboxConfig, seeded_random
from shopee.sandbox.errors import (
    InsufficientStock,
    InvalidTransition,
    SandboxError,
    ShopeeApiError,
    UnknownEntity,
)
from shopee.sandbox.faults import FaultInjector
from shopee.sandbox.model import (
    CANCELLED,
    COMPLETED,
    CURRENCY_BY_REGION,
    IN_CANCEL,
    ORDER_STATUSES,
    PROCESSED,
    READY_TO_SHIP,
    RETRY_SHIP,
    SHIPPED,
    TO_CONFIRM_RECEIVE,
    TO_RETURN,
    UNPAID,
    Item,
    ItemModel,
    Order,
    OrderLine,
    Package,
    Shop,
)
from shopee.sandbox.pushes import (
    PushMessage,
    PushOutbox,
    authorization_push,
    encode_push,
    order_status_push,
    tracking_number_push,
)
from shopee.sandbox.rules import (
    SELLER_CANCEL_REASONS,
    ListEntry,
    buyer_cancel_goes_straight_through,
    check_transition,
    logistics_status_for,
    sort_for_list,
    validate_seller_cancel,
)
from shopee.sandbox.tokens import TokenGrant, TokenStore

ModelSpec = tuple[int, str, int] | tuple[int, str, int, float]
"""(model_id, model_sku, stock) or (model_id, model_sku, stock, price); model_id 0 = no variants."""

OrderLineSpec = tuple[int, int, int]
"""(item_id, model_id, quantity)."""

_DEFAULT_PRICE: dict[str, float] = {
    "VND": 199000.0,
    "IDR": 99000.0,
    "TWD": 590.0,
    "CLP": 9990.0,
    "COP": 49900.0,
}
_DEFAULT_SHIPPING_FEE: dict[str, float] = {
    "VND": 15000.0,
    "IDR": 10000.0,
    "TWD": 60.0,
    "CLP": 2990.0,
    "COP": 8000.0,
}
_ORDER_SN_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_SYSTEM_CANCEL_REASON: dict[str, str] = {
    UNPAID: "Unpaid Order",
    READY_TO_SHIP: "Seller did not Ship",
    PROCESSED: "3PL pickup Fail",
    RETRY_SHIP: "3PL pickup Fail",
    SHIPPED: "Parcel is Lost",
    IN_CANCEL: "Auto Cancel",
    TO_RETURN: "Failed Delivery",
}
_BUYER_CANCEL_REASON = "Buyer Request to Cancel"


@dataclass(frozen=True)
class StockUpdateResult:
    """update_stock's per-model outcome lists, as the API returns them."""

    success_list: list[dict[str, object]]
    failure_list: list[dict[str, object]]


class SandboxState:
    """Everything the simulated Shopee knows, behind one re-entrant lock.

    * shops and authorisation: :meth:`add_shop`, :meth:`authorize` (returns a code),
      :meth:`deauthorize`, :meth:`expire_access_tokens`, :meth:`expire_refresh_tokens`;
    * catalogue: :meth:`add_item`, :meth:`stock`, :meth:`set_stock`, :meth:`items`;
    * orders: :meth:`create_order`, :meth:`order`, :meth:`orders`, and the lifecycle steps
      :meth:`pay`, :meth:`ship` (arrange shipment -> PROCESSED), :meth:`pickup` (-> SHIPPED),
      :meth:`retry_ship`, :meth:`deliver`, :meth:`complete`, :meth:`to_return`,
      :meth:`buyer_cancel`, :meth:`system_cancel`, or :meth:`advance` to a target status;
    * what the seller does through the API: :meth:`seller_cancel`,
      :meth:`handle_buyer_cancellation`, :meth:`update_stock`;
    * runtime settings: :meth:`set_faults`, :meth:`set_callback_url`;
    * records: :attr:`pushes` (emitted pushes, deliveries, lost store), :attr:`call_log`.

    Snapshots returned (``Order``, ``Item``, ``Shop``) are copies; change the world only
    through these methods.
    """

    def __init__(self, config: SandboxConfig | None = None, *, clock: Clock | None = None) -> None:
        self._config = config if config is not None else SandboxConfig()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.RLock()
        seed = self._config.seed
        self._ids = seeded_random(seed, "ids")
        self._choices = seeded_random(seed, "choices")
        self._tokens = TokenStore(self._config, seeded_random(seed, "tokens"))
        self._shops: dict[int, Shop] = {}
        self._items: dict[int, Item] = {}
        self._orders: dict[str, Order] = {}
        self.pushes = PushOutbox(self._config)
        self.fault_injector = FaultInjector(self._config.faults, seed)
        self.call_log = CallLog()

    # -- settings -------------------------------------------------------------------------

    @property
    def config(self) -> SandboxConfig:
        return self._config

    @property
    def faults(self) -> FaultConfig:
        return self.fault_injector.config

    def set_faults(self, faults: FaultConfig) -> None:
        self.fault_injector.configure(faults)

    @property
    def callback_url(self) -> str | None:
        return self.pushes.callback_url

    def set_callback_url(self, url: str | None) -> None:
        self.pushes.set_callback_url(url)

    def now(self) -> int:
        """The sandbox clock in whole seconds, as Shopee's timestamps are."""
        return int(self.clock.now())

    # -- shops and authorisation ---------------------------------------------------------

    def add_shop(self, shop_id: int | None = None, region: str = "SG", *, name: str = "") -> int:
        """Create a shop (not yet linked to the partner); returns its id."""
        region = region.upper()
        if region not in CURRENCY_BY_REGION:
            raise SandboxError(f"unknown region {region}; known: {sorted(CURRENCY_BY_REGION)}")
        with self._lock:
            if shop_id is None:
                shop_id = self._unique_int(100_000_000, 999_999_999, self._shops)
            if shop_id in self._shops:
                raise SandboxError(f"shop {shop_id} already exists")
            self._shops[shop_id] = Shop(shop_id, region, name or f"sandbox-shop-{shop_id}")
            return shop_id

    def shop(self, shop_id: int) -> Shop:
        with self._lock:
            return copy.deepcopy(self._shop(shop_id))

    def shop_ids(self) -> list[int]:
        with self._lock:
            return list(self._shops)

    def _shop(self, shop_id: int) -> Shop:
        shop = self._shops.get(shop_id)
        if shop is None:
            raise UnknownEntity(f"no shop {shop_id}")
        return shop

    def authorize(self, shop_id: int) -> str:
        """The seller authorises the partner: the shop becomes linked; returns an
        authorisation code (single use, expires after ``auth_code_ttl_seconds``)."""
        with self._lock:
            shop = self._shop(shop_id)
            now = self.now()
            shop.linked = True
            code = self._tokens.issue_code(shop_id, now)
            self._emit(
                authorization_push(
                    partner_id=self._config.partner_id,
                    shop_id=shop_id,
                    region=shop.region,
                    authorized=True,
                    timestamp=now,
                ),
                now,
            )
            return code

    def deauthorize(self, shop_id: int) -> None:
        """The seller cancels the authorisation: tokens stop working, API calls for the shop
        answer ``shop_no_linked``."""
        with self._lock:
            shop = self._shop(shop_id)
            now = self.now()
            shop.linked = False
            self._tokens.revoke(shop_id, now)
            self._emit(
                authorization_push(
                    partner_id=self._config.partner_id,
                    shop_id=shop_id,
                    region=shop.region,
                    authorized=False,
                    timestamp=now,
                ),
                now,
            )

    def exchange_code(self, code: str, shop_id: int) -> TokenGrant:
        """token/get."""
        with self._lock:
            if shop_id not in self._shops:
                raise ShopeeApiError("error_auth", "Invalid code")
            return self._tokens.exchange_code(code, shop_id, self.now())

    def refresh_access_token(self, refresh_token: str, shop_id: int) -> TokenGrant:
        """access_token/get."""
        with self._lock:
            shop = self._shops.get(shop_id)
            if shop is None or not shop.linked:
                raise ShopeeApiError("error_auth", "Invalid refresh_token.")
            return self._tokens.refresh(refresh_token, shop_id, self.now())

    def check_shop_access(self, shop_id: int, access_token: str) -> None:
        """Raise the error a shop API answers for this shop and token, if any."""
        with self._lock:
            shop = self._shops.get(shop_id)
            if shop is None:
                raise ShopeeApiError("error_auth", "Invalid partner_id or shopid.")
            if not shop.linked:
                raise ShopeeApiError("shop_no_linked", "Partner and shop has no linked.")
            if self._tokens.access_token_valid(access_token, shop_id, self.now()):
                return
            choice = self._config.invalid_access_token_error
            if choice == "random":
                choice = self._choices.choice(("invalid_acceess_token", "error_auth"))
            if choice == "invalid_acceess_token":
                raise ShopeeApiError(
                    "invalid_acceess_token", "Invalid access_token, please have a check."
                )
            raise ShopeeApiError("error_auth", "Invalid access_token.")

    def expire_access_tokens(self, shop_id: int) -> None:
        """Every access token of the shop expires now (to exercise refresh)."""
        with self._lock:
            self._shop(shop_id)
            self._tokens.expire_access_tokens(shop_id, self.now())

    def expire_refresh_tokens(self, shop_id: int) -> None:
        """Every refresh token of the shop expires now (refresh_token_expired)."""
        with self._lock:
            self._shop(shop_id)
            self._tokens.expire_refresh_tokens(shop_id, self.now())

    # -- catalogue and stock ----------------------------------------------------------------

    def add_item(
        self,
        shop_id: int,
        item_id: int | None = None,
        models: Sequence[ModelSpec] | None = None,
        *,
        name: str = "",
        price: float | None = None,
        weight_kg: float = 0.3,
    ) -> int:
        """Create an item with its models and Shopee-side (seller) stock; returns the item id.

        Without ``models`` the item has no variants: one model 0 with 100 in stock. A model
        spec without a price gets ``price`` (default: a typical price in the shop's currency).
        """
        with self._lock:
            shop = self._shop(shop_id)
            currency = CURRENCY_BY_REGION[shop.region]
            if item_id is None:
                item_id = self._unique_int(10_000_000_000, 99_999_999_999, self._items)
            if item_id in self._items:
                raise SandboxError(f"item {item_id} already exists")
            specs: Sequence[ModelSpec] = models if models else [(0, f"SKU-{item_id}", 100)]
            model_ids = [spec[0] for spec in specs]
            if len(set(model_ids)) != len(model_ids) or (0 in model_ids and len(model_ids) > 1):
                raise SandboxError("model ids must be unique, and model 0 must be the only one")
            base_price = price if price is not None else _DEFAULT_PRICE.get(currency, 19.9)
            item = Item(
                item_id=item_id,
                shop_id=shop_id,
                item_name=name or f"Sandbox item {item_id}",
                item_sku=f"ITEM-{item_id}",
                weight_kg=weight_kg,
                location_id=f"{shop.region}Z",
            )
            for index, spec in enumerate(specs):
                model_id, model_sku, stock = spec[0], spec[1], spec[2]
                model_price = float(spec[3]) if len(spec) == 4 else base_price
                if stock < 0:
                    raise SandboxError("stock cannot be negative")
                item.models[model_id] = ItemModel(
                    model_id=model_id,
                    model_sku=model_sku,
                    model_name="" if model_id == 0 else f"Variant {index + 1}",
                    stock=stock,
                    price=model_price,
                )
            self._items[item_id] = item
            return item_id

    def item(self, item_id: int) -> Item:
        with self._lock:
            return copy.deepcopy(self._item(item_id))

    def items(self, shop_id: int | None = None) -> list[Item]:
        with self._lock:
            return [
                copy.deepcopy(item)
                for item in self._items.values()
                if shop_id is None or item.shop_id == shop_id
            ]

    def _item(self, item_id: int) -> Item:
        item = self._items.get(item_id)
        if item is None:
            raise UnknownEntity(f"no item {item_id}")
        return item

    def _model(self, item_id: int, model_id: int) -> ItemModel:
        model = self._item(item_id).models.get(model_id)
        if model is None:
            raise UnknownEntity(f"item {item_id} has no model {model_id}")
        return model

    def stock(self, item_id: int, model_id: int = 0) -> int:
        """Shopee-side seller stock of one model."""
        with self._lock:
            return self._model(item_id, model_id).stock

    def set_stock(self, item_id: int, model_id: int, stock: int) -> None:
        with self._lock:
            if stock < 0:
                raise SandboxError("stock cannot be negative")
            self._model(item_id, model_id).stock = stock

    def shop_item(self, shop_id: int, item_id: int) -> tuple[Item, str]:
        """The item (a copy) and the shop's currency; error_not_found if not the shop's."""
        with self._lock:
            item = self._items.get(item_id)
            if item is None or item.shop_id != shop_id:
                raise ShopeeApiError(
                    "error_not_found", "Wrong parameters, detail: the item is not found."
                )
            return copy.deepcopy(item), CURRENCY_BY_REGION[self._shops[shop_id].region]

    def update_stock(
        self, shop_id: int, item_id: int, stock_list: Sequence[tuple[object, object]]
    ) -> StockUpdateResult:
        """update_stock: absolute seller stock per model. ``stock_list`` holds
        (model_id, stock) as received; bad entries land in the failure list."""
        with self._lock:
            item, _ = self.shop_item(shop_id, item_id)
            live = self._items[item_id]
            success: list[dict[str, object]] = []
            failure: list[dict[str, object]] = []
            for model_id, stock in stock_list:
                if not isinstance(model_id, int) or model_id not in item.models:
                    failure.append({"model_id": model_id, "failed_reason": "Invalid model_id."})
                elif not isinstance(stock, int) or isinstance(stock, bool) or stock < 0:
                    failure.append(
                        {"model_id": model_id, "failed_reason": "Stock should be at least 0."}
                    )
                else:
                    live.models[model_id].stock = stock
                    success.append(
                        {"model_id": model_id, "location_id": item.location_id, "stock": stock}
                    )
            return StockUpdateResult(success, failure)

    # -- orders ----------------------------------------------------------------------------

    def create_order(
        self,
        shop_id: int,
        lines: Sequence[OrderLineSpec],
        *,
        paid: bool = True,
        cod: bool = False,
        create_time: int | None = None,
        allow_oversell: bool = False,
        message_to_seller: str = "",
    ) -> str:
        """A buyer places an order; returns its order_sn and emits a code-3 push.

        The order starts READY_TO_SHIP when ``paid`` or ``cod`` (COD orders get a pay_time on
        delivery), else UNPAID. Shopee-side stock is taken now; with too little stock this
        raises :class:`InsufficientStock` unless ``allow_oversell`` (the line then takes what
        is left). ``create_time`` back-dates the order (for list-window tests).
        """
        if not lines:
            raise SandboxError("an order needs at least one line")
        with self._lock:
            shop = self._shop(shop_id)
            now = self.now()
            created = now if create_time is None else create_time
            wanted: dict[tuple[int, int], int] = {}
            for item_id, model_id, quantity in lines:
                if quantity < 1:
                    raise SandboxError("quantities must be at least 1")
                if self._item(item_id).shop_id != shop_id:
                    raise SandboxError(f"item {item_id} does not belong to shop {shop_id}")
                self._model(item_id, model_id)
                wanted[(item_id, model_id)] = wanted.get((item_id, model_id), 0) + quantity
            if not allow_oversell:
                for (item_id, model_id), quantity in wanted.items():
                    if self._model(item_id, model_id).stock < quantity:
                        raise InsufficientStock(
                            f"item {item_id} model {model_id}: {quantity} wanted, "
                            f"{self._model(item_id, model_id).stock} in stock"
                        )
            currency = CURRENCY_BY_REGION[shop.region]
            order_lines = [
                self._take_line(item_id, model_id, quantity)
                for (item_id, model_id), quantity in wanted.items()
            ]
            status = READY_TO_SHIP if (paid or cod) else UNPAID
            pay_time = created if (paid and not cod) else None
            order = Order(
                order_sn=self._new_order_sn(created),
                shop_id=shop_id,
                region=shop.region,
                currency=currency,
                cod=cod,
                status=status,
                create_time=created,
                update_time=created,
                pay_time=pay_time,
                days_to_ship=3,
                ship_by_date=created + 3 * 86400,
                lines=order_lines,
                package=Package(
                    package_number=f"OFG{self._ids.randrange(10**14, 10**15)}",
                    logistics_status=logistics_status_for(
                        status, has_tracking=False, paid=status != UNPAID
                    ),
                    shipping_carrier="Standard Delivery",
                    logistics_channel_id=18080,
                ),
                buyer_user_id=self._ids.randrange(10**8, 10**10),
                buyer_username="".join(
                    self._ids.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(10)
                ),
                recipient_address=self._masked_address(shop.region),
                message_to_seller=message_to_seller,
                estimated_shipping_fee=_DEFAULT_SHIPPING_FEE.get(currency, 2.99),
                payment_method="Cash on Delivery" if cod else "Credit/Debit Card",
                history=[(created, status)],
            )
            self._orders[order.order_sn] = order
            self._emit_status_push(order, now)
            return order.order_sn

    def _take_line(self, item_id: int, model_id: int, quantity: int) -> OrderLine:
        item = self._item(item_id)
        model = item.models[model_id]
        taken = min(quantity, model.stock)
        model.stock -= taken
        return OrderLine(
            item_id=item_id,
            model_id=model_id,
            item_name=item.item_name,
            item_sku=item.item_sku,
            model_name=model.model_name,
            model_sku=model.model_sku,
            quantity=quantity,
            original_price=model.price,
            discounted_price=model.price,
            weight_kg=item.weight_kg,
            location_id=item.location_id,
            taken_stock=taken,
        )

    def _new_order_sn(self, create_time: int) -> str:
        # Shopee's order_sn: YYMMDD of creation and 8 characters, e.g. 220810QSK8S7BX.
        day = datetime.fromtimestamp(create_time, tz=UTC).strftime("%y%m%d")
        while True:
            order_sn = day + "".join(self._ids.choice(_ORDER_SN_ALPHABET) for _ in range(8))
            if order_sn not in self._orders:
                return order_sn

    def _masked_address(self, region: str) -> dict[str, str]:
        return {
            "name": "S******x",
            "phone": f"******{self._ids.randrange(10, 100)}",
            "town": "",
            "district": "",
            "city": "Sandbox City",
            "state": "",
            "region": region,
            "zipcode": "",
            "full_address": "******",
        }

    def order(self, order_sn: str) -> Order:
        """A snapshot of one order."""
        with self._lock:
            return copy.deepcopy(self._order(order_sn))

    def orders(self, shop_id: int | None = None) -> list[Order]:
        """Snapshots of every order (of one shop), in creation order."""
        with self._lock:
            return [
                copy.deepcopy(order)
                for order in self._orders.values()
                if shop_id is None or order.shop_id == shop_id
            ]

    def _order(self, order_sn: str) -> Order:
        order = self._orders.get(order_sn)
        if order is None:
            raise UnknownEntity(f"no order {order_sn}")
        return order

    def _shop_order(self, shop_id: int | None, order_sn: str) -> Order:
        order = self._orders.get(order_sn)
        if order is None or (shop_id is not None and order.shop_id != shop_id):
            raise ShopeeApiError(
                "error_not_found", "Wrong parameters, detail: the order is not found."
            )
        return order

    # -- lifecycle ---------------------------------------------------------------------------

    def _change_status(self, order: Order, target: str, now: int) -> None:
        check_transition(order.status, target)
        was = order.status
        order.status = target
        # Same-second changes share an update_time, as on Shopee (timestamps are seconds).
        order.update_time = max(order.update_time, now)
        order.history.append((order.update_time, target))
        if target == COMPLETED:
            order.completed_scenario = "NORMAL"
        # A pending cancellation request does not move the parcel.
        if target != IN_CANCEL:
            order.package.logistics_status = logistics_status_for(
                target, has_tracking=order.has_tracking_number, paid=was != UNPAID
            )
        self._emit_status_push(order, now)

    def _step(self, order_sn: str, target: str, update: Callable[[Order, int], None]) -> Order:
        with self._lock:
            order = self._order(order_sn)
            now = self.now()
            check_transition(order.status, target)
            update(order, now)
            self._change_status(order, target, now)
            return copy.deepcopy(order)

    def pay(self, order_sn: str) -> Order:
        """UNPAID -> READY_TO_SHIP: the buyer paid."""

        def paid(order: Order, now: int) -> None:
            order.pay_time = now
            order.ship_by_date = now + order.days_to_ship * 86400

        return self._step(order_sn, READY_TO_SHIP, paid)

    def ship(self, order_sn: str) -> Order:
        """READY_TO_SHIP or RETRY_SHIP -> PROCESSED: shipment arranged, a tracking number
        exists (a new one after RETRY_SHIP); emits code 3 and then code 4."""
        with self._lock:
            order = self._order(order_sn)
            now = self.now()
            check_transition(order.status, PROCESSED)
            order.package.tracking_number = (
                f"SPX{order.region}0{self._ids.randrange(10**11, 10**12)}"
            )
            if not order.package.forder_id:
                order.package.forder_id = str(self._ids.randrange(10**18, 10**19))
            self._change_status(order, PROCESSED, now)
            self._emit(
                tracking_number_push(
                    shop_id=order.shop_id,
                    order_sn=order.order_sn,
                    forder_id=order.package.forder_id,
                    package_number=order.package.package_number,
                    tracking_no=order.package.tracking_number,
                    timestamp=now,
                    msg_id=self._msg_id() if self._config.push_msg_id else None,
                ),
                now,
            )
            return copy.deepcopy(order)

    def pickup(self, order_sn: str) -> Order:
        """PROCESSED -> SHIPPED: the 3PL picked the parcel up."""

        def picked(order: Order, now: int) -> None:
            order.pickup_done_time = now

        return self._step(order_sn, SHIPPED, picked)

    def retry_ship(self, order_sn: str) -> Order:
        """PROCESSED -> RETRY_SHIP: pickup failed; the seller must arrange shipment again."""
        return self._step(order_sn, RETRY_SHIP, lambda order, now: None)

    def deliver(self, order_sn: str) -> Order:
        """SHIPPED -> TO_CONFIRM_RECEIVE: the buyer received the parcel (COD is paid now)."""

        def delivered(order: Order, now: int) -> None:
            if order.cod and order.pay_time is None:
                order.pay_time = now

        return self._step(order_sn, TO_CONFIRM_RECEIVE, delivered)

    def complete(self, order_sn: str) -> Order:
        """TO_CONFIRM_RECEIVE or TO_RETURN -> COMPLETED (completed_scenario NORMAL)."""
        return self._step(order_sn, COMPLETED, lambda order, now: None)

    def to_return(self, order_sn: str) -> Order:
        """TO_CONFIRM_RECEIVE -> TO_RETURN: the buyer asked to return the order."""
        return self._step(order_sn, TO_RETURN, lambda order, now: None)

    def buyer_cancel(
        self,
        order_sn: str,
        *,
        request: bool | None = None,
        reason: str = "Change of mind / others",
    ) -> Order:
        """The buyer cancels. ``request=False``: straight to CANCELLED (cancel_by buyer);
        ``True``: a request the seller must answer (IN_CANCEL); ``None``: as Shopee decides -
        straight through while unpaid or within the free-cancel window after payment,
        otherwise IN_CANCEL."""
        with self._lock:
            order = self._order(order_sn)
            now = self.now()
            if request is None:
                request = not buyer_cancel_goes_straight_through(
                    order, now, self._config.buyer_free_cancel_window_seconds
                )
            if request:
                check_transition(order.status, IN_CANCEL)
                order.status_before_cancel_request = order.status
                order.buyer_cancel_reason = reason
                self._change_status(order, IN_CANCEL, now)
            else:
                if order.status not in (UNPAID, READY_TO_SHIP):
                    raise InvalidTransition(
                        f"a buyer cannot cancel an order in {order.status} without approval"
                    )
                order.buyer_cancel_reason = reason
                self._cancel(order, "buyer", _BUYER_CANCEL_REASON, now)
            return copy.deepcopy(order)

    def system_cancel(self, order_sn: str, reason: str | None = None) -> Order:
        """Shopee cancels (unpaid timeout, failed pickup, lost parcel, ...): cancel_by system.
        The default reason fits the status (UNPAID: "Unpaid Order")."""
        with self._lock:
            order = self._order(order_sn)
            now = self.now()
            check_transition(order.status, CANCELLED)
            self._cancel(order, "system", reason or _SYSTEM_CANCEL_REASON[order.status], now)
            return copy.deepcopy(order)

    def _cancel(
        self,
        order: Order,
        cancel_by: str,
        reason: str,
        now: int,
        zero_models: Iterable[tuple[int, int]] = (),
    ) -> None:
        check_transition(order.status, CANCELLED)
        # "Every cancelled order restores the stock automatically" (reference §8.3).
        zeroed = set(zero_models)
        for line in order.lines:
            model = self._items[line.item_id].models.get(line.model_id)
            if model is None:
                continue
            if (line.item_id, line.model_id) in zeroed:
                model.stock = 0
            else:
                model.stock += line.taken_stock
            line.taken_stock = 0
        order.cancel_by = cancel_by
        order.cancel_reason = reason
        self._change_status(order, CANCELLED, now)

    def seller_cancel(
        self,
        order_sn: str,
        cancel_reason: str,
        item_list: Sequence[tuple[int, int]] | None = None,
        *,
        shop_id: int | None = None,
    ) -> int:
        """cancel_order: the seller cancels; returns the new update_time.

        Raises the API's errors (``order.error_limit`` once a tracking number exists or the
        order is already cancelled, ``error_param`` for a bad reason or item_list,
        ``error_not_found`` for an order of another shop).
        """
        with self._lock:
            order = self._shop_order(shop_id, order_sn)
            validate_seller_cancel(
                order,
                cancel_reason,
                item_list,
                seller_cancel_unpaid=self._config.seller_cancel_unpaid,
                undeliverable_area_regions=self._config.undeliverable_area_regions,
            )
            zero: Sequence[tuple[int, int]] = ()
            if cancel_reason == "OUT_OF_STOCK" and self._config.out_of_stock_cancel_zeroes_stock:
                zero = item_list or ()
            now = self.now()
            self._cancel(order, "seller", SELLER_CANCEL_REASONS[cancel_reason], now, zero)
            return order.update_time

    def handle_buyer_cancellation(
        self, order_sn: str, operation: str, *, shop_id: int | None = None
    ) -> int:
        """handle_buyer_cancellation: ACCEPT cancels (cancel_by buyer), REJECT returns the
        order to the status the request interrupted; returns the new update_time."""
        with self._lock:
            order = self._shop_order(shop_id, order_sn)
            if operation not in ("ACCEPT", "REJECT"):
                raise ShopeeApiError(
                    "error_param", "Wrong parameters, detail: operation should be ACCEPT or REJECT."
                )
            if order.status != IN_CANCEL:
                raise ShopeeApiError(
                    "order.cancel_order_invalid_status",
                    "Invalid order_status.The order status should be IN_CANCEL.",
                )
            now = self.now()
            if operation == "ACCEPT":
                self._cancel(order, "buyer", _BUYER_CANCEL_REASON, now)
            else:
                previous = order.status_before_cancel_request or READY_TO_SHIP
                order.status_before_cancel_request = None
                self._change_status(order, previous, now)
            return order.update_time

    def advance(self, order_sn: str, status: str) -> Order:
        """Move an order to ``status`` with the step that leads there: READY_TO_SHIP pays
        (or rejects a pending cancellation), PROCESSED ships, SHIPPED picks up, RETRY_SHIP
        fails pickup, TO_CONFIRM_RECEIVE delivers, COMPLETED completes, TO_RETURN starts a
        return, IN_CANCEL is a buyer request, CANCELLED a system cancellation."""
        status = status.upper()
        if status not in ORDER_STATUSES:
            raise SandboxError(f"unknown order status {status}")
        current = self.order(order_sn)
        if current.status == IN_CANCEL and status == current.status_before_cancel_request:
            self.handle_buyer_cancellation(order_sn, "REJECT")
            return self.order(order_sn)
        steps: dict[str, Callable[[str], Order]] = {
            READY_TO_SHIP: self.pay,
            PROCESSED: self.ship,
            SHIPPED: self.pickup,
            RETRY_SHIP: self.retry_ship,
            TO_CONFIRM_RECEIVE: self.deliver,
            COMPLETED: self.complete,
            TO_RETURN: self.to_return,
            IN_CANCEL: lambda sn: self.buyer_cancel(sn, request=True),
            CANCELLED: self.system_cancel,
        }
        if status not in steps:
            raise InvalidTransition(f"no step leads to {status}")
        return steps[status](order_sn)

    # -- queries for the order APIs ------------------------------------------------------------

    def list_entries(
        self, shop_id: int, time_field: str, time_from: int, time_to: int, status: str | None
    ) -> list[ListEntry]:
        """The shop's orders with ``time_field`` in [time_from, time_to] (and the status),
        sorted as get_order_list returns them."""
        with self._lock:
            entries = [
                ListEntry(
                    order.create_time if time_field == "create_time" else order.update_time,
                    order.order_sn,
                    order.status,
                )
                for order in self._orders.values()
                if order.shop_id == shop_id and (status is None or order.status == status)
            ]
        return sort_for_list(e for e in entries if time_from <= e.time <= time_to)

    def orders_for_detail(
        self, shop_id: int, order_sns: Sequence[str]
    ) -> tuple[list[Order], list[str]]:
        """Snapshots of the shop's orders among ``order_sns`` (request order, duplicates
        dropped) and the order_sns it does not have."""
        found: list[Order] = []
        missing: list[str] = []
        with self._lock:
            for order_sn in dict.fromkeys(order_sns):
                order = self._orders.get(order_sn)
                if order is None or order.shop_id != shop_id:
                    missing.append(order_sn)
                else:
                    found.append(copy.deepcopy(order))
        return found, missing

    # -- pushes ----------------------------------------------------------------------------------

    def _msg_id(self) -> str:
        return f"{self._ids.getrandbits(128):032x}"

    def _completed_scenario(self, order: Order) -> str | None:
        if order.status == COMPLETED:
            return order.completed_scenario
        setting = self._config.empty_completed_scenario
        if setting == "random":
            setting = self._choices.choice(("empty", "null"))
        return "" if setting == "empty" else None

    def _emit_status_push(self, order: Order, now: int) -> None:
        self._emit(
            order_status_push(
                shop_id=order.shop_id,
                order_sn=order.order_sn,
                status=order.status,
                update_time=order.update_time,
                completed_scenario=self._completed_scenario(order),
                timestamp=now,
                msg_id=self._msg_id() if self._config.push_msg_id else None,
            ),
            now,
        )

    def _emit(self, payload: dict[str, object], now: int) -> None:
        msg_id = payload.get("msg_id")
        code = payload.get("code")
        shop_id = payload.get("shop_id")
        message = PushMessage(
            msg_id=msg_id if isinstance(msg_id, str) else self._msg_id(),
            code=code if isinstance(code, int) else -1,
            shop_id=shop_id if isinstance(shop_id, int) else None,
            timestamp=now,
            body=encode_push(payload),
        )
        self.pushes.emit(message, self.clock.now(), self.faults)

    # -- helpers ---------------------------------------------------------------------------------

    def _unique_int(self, low: int, high: int, taken: Mapping[int, object]) -> int:
        while True:
            candidate = self._ids.randrange(low, high)
            if candidate not in taken:
                return candidate
