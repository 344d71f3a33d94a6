"""Mutating Shopee calls made at most once per order and kind, ever, through the outbox.

The call is claimed in the outbox (``pending``) before anything is sent, marked ``sent``
just before the request, and ends ``succeeded`` or ``failed``. What happens on each answer:

=================================================  ==========================================
answer                                              outbox, and what the record does next
=================================================  ==========================================
success                                             succeeded; action ``applied``
``CannotCancel``, ``InvalidOrderStatus``            failed; action ``rejected`` (a final
                                                    answer about the order, not a retry)
another final error (bad parameters, ...)           failed; action ``failed``; the record is
                                                    poison (dead-lettered with the reason)
no usable answer (``OutcomeUnknown``: timeout,      unknown -> the order is read back: the
5xx, unreadable body) or a crash after ``sent``     change is there -> succeeded, else failed;
                                                    never sent again
an answer proving it was not applied (rate limit,   back to pending; the record is retried
server busy, connection never opened)               (transient) or parked (blocked shop)
=================================================  ==========================================
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from consumers.actions import ActionOutcome, make_action
from consumers.erp.outbox import ActionRecord, Outbox, OutboxCall
from orderflow.failures import Poison, Transient
from schemas.models import OrderEvent
from shopee.client import ShopeeClient
from shopee.errors import (
    CannotCancel,
    InvalidOrderStatus,
    OutcomeUnknown,
    ShopeeError,
    failure_kind,
)
from shopee.models import OrderDetail

log = logging.getLogger(__name__)

CallResult = Literal["succeeded", "failed", "rejected"]
Send = Callable[[], object]
Settled = Callable[[OrderDetail], bool]


@dataclass(frozen=True)
class CallSpec:
    """One mutating call: its outbox ``kind``, the action it is reported as, how to send
    it, and how to tell from the order read back whether it took effect."""

    kind: str
    action_kind: str
    send: Send
    settled: Settled
    lines: tuple[tuple[int, int, int], ...] = ()
    details: tuple[tuple[str, str], ...] = ()


class OnceCaller:
    def __init__(
        self,
        outbox: Outbox,
        actions: ActionRecord,
        client: ShopeeClient,
        *,
        consumer: str,
        clock: Callable[[], float] = time.time,
        in_flight_seconds: float = 30.0,
    ) -> None:
        self._outbox = outbox
        self._actions = actions
        self._client = client
        self._consumer = consumer
        self._clock = clock
        # Longer than one non-idempotent call may take (it is sent once, 10 s timeout).
        self._in_flight_seconds = in_flight_seconds

    def finish(self, event: OrderEvent, spec: CallSpec) -> CallResult | None:
        """Drive the call claimed for ``event``'s order to its end; None when it had already
        ended (nothing was done now). Raises what the record should do otherwise."""
        call = self._outbox.get(event.shop_id, event.order_sn, spec.kind)
        if call is None:
            raise RuntimeError(f"no {spec.kind} claimed for {event.order_sn}")
        if call.state in ("succeeded", "failed"):
            return None
        if call.state == "pending":
            return self._send(event, spec)
        return self._read_back(event, spec, call)

    def _send(self, event: OrderEvent, spec: CallSpec) -> CallResult | None:
        shop_id, order_sn, now = event.shop_id, event.order_sn, int(self._clock())
        if not self._outbox.move(shop_id, order_sn, spec.kind, "sent", now):
            return None  # another replica took it from pending first
        try:
            spec.send()
        except (CannotCancel, InvalidOrderStatus) as exc:
            self._end(event, spec, "failed", "rejected", str(exc))
            return "rejected"
        except OutcomeUnknown as exc:
            log.warning(
                "%s of %s: no usable answer (%s); reading it back", spec.kind, order_sn, exc
            )
            self._outbox.move(shop_id, order_sn, spec.kind, "unknown", now, error=str(exc))
            call = self._outbox.get(shop_id, order_sn, spec.kind)
            assert call is not None
            return self._read_back(event, spec, call)
        except ShopeeError as exc:
            if failure_kind(exc) in ("transient", "blocked"):
                # Shopee answered with a refusal or was never reached: not applied.
                self._outbox.move(shop_id, order_sn, spec.kind, "pending", now, error=str(exc))
                raise
            self._end(event, spec, "failed", "failed", str(exc))
            raise Poison(f"{spec.kind} of {order_sn} refused for good: {exc}") from exc
        self._end(event, spec, "succeeded", "applied", None)
        return "succeeded"

    def _read_back(self, event: OrderEvent, spec: CallSpec, call: OutboxCall) -> CallResult:
        shop_id, order_sn = event.shop_id, event.order_sn
        if call.state == "sent":
            if self._clock() - call.updated_at < self._in_flight_seconds:
                # Another replica may be waiting for Shopee's answer right now (records of
                # an order move between replicas on a rebalance): let it finish.
                raise Transient(f"{spec.kind} of {order_sn} is in flight elsewhere")
            # The process that sent it stopped before hearing back.
            self._outbox.move(
                shop_id, order_sn, spec.kind, "unknown", int(self._clock()), error="no answer kept"
            )
        found = self._client.get_order_detail(shop_id, [order_sn])
        if not found.found:
            raise Transient(
                f"{spec.kind} of {order_sn} has an unknown outcome and the order cannot be "
                f"read back yet: {found.missing.get(order_sn, 'not returned')}"
            )
        detail = found.found[0]
        if spec.settled(detail):
            self._end(event, spec, "succeeded", "applied", None, read_back=detail.order_status)
            return "succeeded"
        self._end(
            event,
            spec,
            "failed",
            "failed",
            f"outcome unknown and the order read back as {detail.order_status}: not applied; "
            "not sent again",
            read_back=detail.order_status,
        )
        return "failed"

    def _end(
        self,
        event: OrderEvent,
        spec: CallSpec,
        state: Literal["succeeded", "failed"],
        outcome: ActionOutcome,
        error: str | None,
        read_back: str | None = None,
    ) -> None:
        now = self._clock()
        details = dict(spec.details)
        if read_back is not None:
            details["read_back_status"] = read_back
        self._actions.record(
            make_action(
                event,
                consumer=self._consumer,
                kind=spec.action_kind,
                outcome=outcome,
                now=now,
                lines=spec.lines,
                error=error,
                details=details,
                facts=(spec.kind,),
            )
        )
        # Recorded first: a crash in between leaves the call open, and finishing it again
        # records the same action id, which is kept once.
        self._outbox.move(event.shop_id, event.order_sn, spec.kind, state, int(now), error=error)
