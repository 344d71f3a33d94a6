"""A seeded stream of buyer activity: orders created at a chosen rate and moved through the
real lifecycle with realistic odds and delays.

:func:`next_step` is the policy (pure, given a random generator); :class:`TrafficGenerator`
applies it on ``tick(now)`` (no threads, so tests drive it with a manual clock);
:class:`TrafficRunner` ticks a generator from a background thread until stopped.

Delays are Shopee-world seconds, multiplied by ``time_factor`` to get sandbox-clock seconds:
with 0.001 a day passes in 86 s. Order creation is a Poisson process at ``rate`` orders per
sandbox-clock second (not scaled). Steps the sandbox cannot know about (the seller arranging
shipment, the 3PL picking up, the buyer confirming) are simulated here; what the system under
test does (cancel_order, handle_buyer_cancellation) simply changes the order, and the pending
step re-plans from whatever status it finds.
"""

from __future__ import annotations

import heapq
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from shopee.sandbox.config import seeded_random
from shopee.sandbox.errors import SandboxError, ShopeeApiError
from shopee.sandbox.model import (
    IN_CANCEL,
    PROCESSED,
    READY_TO_SHIP,
    RETRY_SHIP,
    SHIPPED,
    TERMINAL_STATUSES,
    TO_CONFIRM_RECEIVE,
    TO_RETURN,
    UNPAID,
)
from shopee.sandbox.state import OrderLineSpec, SandboxState

HOUR = 3600.0
DAY = 86400.0


@dataclass(frozen=True)
class LifecycleOdds:
    """Probabilities and delays (Shopee-world seconds) of the simulated lifecycle."""

    unpaid_share: float = 0.15  # orders created UNPAID (the rest paid or COD)
    cod_share: float = 0.1
    unpaid_pays: float = 0.85
    unpaid_buyer_cancels: float = 0.05  # the rest time out: system cancel "Unpaid Order"
    unpaid_timeout: float = DAY
    ready_buyer_cancels: float = 0.03  # within the free window: straight to CANCELLED
    ready_buyer_requests_cancel: float = 0.04  # later: IN_CANCEL, the seller must answer
    processed_pickup_fails: float = 0.05  # RETRY_SHIP
    processed_buyer_requests_cancel: float = 0.01
    shipped_lost: float = 0.01  # system cancel "Parcel is Lost"
    returns: float = 0.05  # TO_CONFIRM_RECEIVE -> TO_RETURN
    return_refunded: float = 0.5  # TO_RETURN -> CANCELLED, else COMPLETED
    # If the seller never answers a cancellation request, it is accepted after this long
    # (Shopee's real timing is undocumented).
    in_cancel_auto_accept: float = 2 * DAY
    max_quantity: int = 3
    two_line_share: float = 0.2


_COUNTS = frozenset({"max_quantity"})
_DELAYS = frozenset({"unpaid_timeout", "in_cancel_auto_accept"})


def odds_from(overrides: Mapping[str, object]) -> LifecycleOdds:
    """The default odds with ``overrides`` (field name -> number) applied, for callers that
    start traffic from JSON. Raises ValueError naming the first field that is unknown or out
    of range (shares in [0, 1], delays >= 0, ``max_quantity`` >= 1)."""
    known = {f.name for f in fields(LifecycleOdds)}
    # Any: each value was checked against its field above, which mypy cannot follow by name.
    values: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in known:
            raise ValueError(f"odds has no field {name!r}; known: {', '.join(sorted(known))}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"odds.{name} must be a number, got {value!r}")
        if name in _COUNTS:
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"odds.{name} must be a whole number >= 1, got {value!r}")
        elif name in _DELAYS:
            if value < 0:
                raise ValueError(f"odds.{name} is seconds and must be >= 0, got {value!r}")
        elif not 0 <= value <= 1:
            raise ValueError(f"odds.{name} is a probability and must be in [0, 1], got {value!r}")
        values[name] = value
    return replace(LifecycleOdds(), **values)


@dataclass(frozen=True)
class Step:
    """A lifecycle action and its delay in Shopee-world seconds."""

    action: str
    delay: float


def next_step(status: str, rng: random.Random, odds: LifecycleOdds) -> Step | None:
    """What happens next to an order in ``status`` (None once it is COMPLETED/CANCELLED)."""
    roll = rng.random()
    if status == UNPAID:
        if roll < odds.unpaid_pays:
            return Step("pay", rng.uniform(60, 30 * 60))
        if roll < odds.unpaid_pays + odds.unpaid_buyer_cancels:
            return Step("buyer_cancel", rng.uniform(60, HOUR))
        return Step("system_cancel", odds.unpaid_timeout)
    if status == READY_TO_SHIP:
        if roll < odds.ready_buyer_cancels:
            return Step("buyer_cancel", rng.uniform(60, 30 * 60))
        if roll < odds.ready_buyer_cancels + odds.ready_buyer_requests_cancel:
            return Step("buyer_request_cancel", rng.uniform(HOUR, 12 * HOUR))
        return Step("ship", rng.uniform(30 * 60, DAY))
    if status == PROCESSED:
        if roll < odds.processed_pickup_fails:
            return Step("retry_ship", rng.uniform(HOUR, 12 * HOUR))
        if roll < odds.processed_pickup_fails + odds.processed_buyer_requests_cancel:
            return Step("buyer_request_cancel", rng.uniform(10 * 60, 2 * HOUR))
        return Step("pickup", rng.uniform(HOUR, 12 * HOUR))
    if status == RETRY_SHIP:
        return Step("ship", rng.uniform(HOUR, 6 * HOUR))
    if status == IN_CANCEL:
        return Step("accept_cancel", odds.in_cancel_auto_accept)
    if status == SHIPPED:
        if roll < odds.shipped_lost:
            return Step("system_cancel", rng.uniform(DAY, 7 * DAY))
        return Step("deliver", rng.uniform(DAY, 4 * DAY))
    if status == TO_CONFIRM_RECEIVE:
        if roll < odds.returns:
            return Step("to_return", rng.uniform(HOUR, 3 * DAY))
        return Step("complete", rng.uniform(DAY, 7 * DAY))
    if status == TO_RETURN:
        if roll < odds.return_refunded:
            return Step("system_cancel", rng.uniform(DAY, 5 * DAY))
        return Step("complete", rng.uniform(DAY, 5 * DAY))
    if status in TERMINAL_STATUSES:
        return None
    raise ValueError(f"unknown order status {status}")


@dataclass(order=True)
class _Pending:
    due: float
    seq: int
    order_sn: str = field(compare=False)
    expected_status: str = field(compare=False)
    action: str = field(compare=False)


class TrafficGenerator:
    """Creates and advances orders in ``state`` each time :meth:`tick` is called."""

    def __init__(
        self,
        state: SandboxState,
        *,
        rate: float,
        seed: int,
        time_factor: float,
        odds: LifecycleOdds | None = None,
        shop_ids: Sequence[int] | None = None,
    ) -> None:
        if rate < 0:
            raise ValueError("rate must be >= 0 orders per second")
        if time_factor <= 0:
            raise ValueError("time_factor must be > 0")
        self._state = state
        self._rate = rate
        self._time_factor = time_factor
        self._odds = odds or LifecycleOdds()
        self._shop_ids = list(shop_ids) if shop_ids else None
        self._rng = seeded_random(seed, "traffic")
        self._next_arrival: float | None = None
        self._pending: list[_Pending] = []
        self._seq = 0
        self._lock = threading.Lock()
        self._stats = {"created": 0, "steps": 0, "replanned": 0, "skipped_no_stock": 0}
        self.order_sns: list[str] = []

    @property
    def stats(self) -> dict[str, int]:
        """Orders created, steps applied, steps re-planned, arrivals skipped for no stock."""
        with self._lock:
            return {**self._stats, "pending_steps": len(self._pending)}

    def set_rate(self, rate: float) -> None:
        """Change the arrival rate; 0 stops new orders while existing ones keep moving."""
        if rate < 0:
            raise ValueError("rate must be >= 0 orders per second")
        with self._lock:
            self._rate = rate
            self._next_arrival = None

    def tick(self, now: float) -> None:
        """Create the orders that arrived by ``now`` and apply every step due by ``now``."""
        with self._lock:
            if self._rate > 0:
                if self._next_arrival is None:
                    self._next_arrival = now + self._rng.expovariate(self._rate)
                while self._next_arrival <= now:
                    self._create_order()
                    self._next_arrival += self._rng.expovariate(self._rate)
            # Steps planned while firing wait for the next tick, so a zero delay cannot spin.
            due: list[_Pending] = []
            while self._pending and self._pending[0].due <= now:
                due.append(heapq.heappop(self._pending))
            for pending in due:
                self._fire(pending, now)

    def _plan(self, order_sn: str, status: str, now: float) -> None:
        step = next_step(status, self._rng, self._odds)
        if step is None:
            return
        self._seq += 1
        heapq.heappush(
            self._pending,
            _Pending(
                now + step.delay * self._time_factor, self._seq, order_sn, status, step.action
            ),
        )

    def _create_order(self) -> None:
        state = self._state
        shop_ids = self._shop_ids or state.shop_ids()
        if not shop_ids:
            self._stats["skipped_no_stock"] += 1
            return
        shop_id = self._rng.choice(shop_ids)
        in_stock = [
            (item.item_id, model.model_id, model.stock)
            for item in state.items(shop_id)
            for model in item.models.values()
            if model.stock > 0
        ]
        if not in_stock:
            self._stats["skipped_no_stock"] += 1
            return
        line_count = (
            2 if len(in_stock) > 1 and self._rng.random() < self._odds.two_line_share else 1
        )
        lines: list[OrderLineSpec] = []
        for item_id, model_id, stock in self._rng.sample(in_stock, line_count):
            quantity = self._rng.randint(1, min(self._odds.max_quantity, stock))
            lines.append((item_id, model_id, quantity))
        cod = self._rng.random() < self._odds.cod_share
        paid = self._rng.random() >= self._odds.unpaid_share
        try:
            order_sn = state.create_order(shop_id, lines, paid=paid, cod=cod)
        except SandboxError:
            # Another actor took the stock between the look and the order.
            self._stats["skipped_no_stock"] += 1
            return
        self._stats["created"] += 1
        self.order_sns.append(order_sn)
        self._plan(order_sn, state.order(order_sn).status, state.clock.now())

    def _fire(self, pending: _Pending, now: float) -> None:
        state = self._state
        status = state.order(pending.order_sn).status
        if status == pending.expected_status:
            try:
                self._apply(pending.order_sn, pending.action)
                self._stats["steps"] += 1
            except (SandboxError, ShopeeApiError):
                self._stats["replanned"] += 1
            status = state.order(pending.order_sn).status
        else:
            self._stats["replanned"] += 1
        self._plan(pending.order_sn, status, now)

    def _apply(self, order_sn: str, action: str) -> None:
        state = self._state
        if action == "buyer_cancel":
            state.buyer_cancel(order_sn, request=False)
        elif action == "buyer_request_cancel":
            state.buyer_cancel(order_sn, request=True)
        elif action == "accept_cancel":
            state.handle_buyer_cancellation(order_sn, "ACCEPT")
        elif action == "system_cancel":
            state.system_cancel(order_sn)
        else:
            simple = {
                "pay": state.pay,
                "ship": state.ship,
                "pickup": state.pickup,
                "retry_ship": state.retry_ship,
                "deliver": state.deliver,
                "complete": state.complete,
                "to_return": state.to_return,
            }
            simple[action](order_sn)


class TrafficRunner:
    """Runs at most one :class:`TrafficGenerator` in a background thread."""

    def __init__(self, state: SandboxState, *, tick_interval: float = 0.02) -> None:
        self._state = state
        self._tick_interval = tick_interval
        self._lock = threading.Lock()
        self._generator: TrafficGenerator | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def generator(self) -> TrafficGenerator | None:
        with self._lock:
            return self._generator

    @property
    def running(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def start(
        self,
        *,
        rate: float,
        seed: int | None = None,
        time_factor: float | None = None,
        odds: LifecycleOdds | None = None,
        shop_ids: Sequence[int] | None = None,
    ) -> TrafficGenerator:
        """Stop any running generator and start a new one (seed and time factor default to
        the sandbox's)."""
        self.stop()
        config = self._state.config
        generator = TrafficGenerator(
            self._state,
            rate=rate,
            seed=config.seed if seed is None else seed,
            time_factor=config.time_factor if time_factor is None else time_factor,
            odds=odds,
            shop_ids=shop_ids,
        )
        stopping = threading.Event()
        thread = threading.Thread(
            target=self._run, args=(generator, stopping), name="sandbox-traffic", daemon=True
        )
        with self._lock:
            self._generator = generator
            self._thread = thread
            self._stopping = stopping
        thread.start()
        return generator

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            thread, stopping = self._thread, self._stopping
            self._thread = None
        stopping.set()
        if thread is not None:
            thread.join(timeout)

    def _run(self, generator: TrafficGenerator, stopping: threading.Event) -> None:
        clock = self._state.clock
        while not stopping.wait(self._tick_interval):
            generator.tick(clock.now())
