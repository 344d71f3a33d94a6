"""The seller's own ERP as erp-sync's target: each order snapshot POSTed to a URL they chose.

What the seller's endpoint must do:

* answer 2xx only once the snapshot is stored: a 2xx is the one answer that lets the
  consumer move on, and nothing is sent again after it;
* dedupe by the ``Idempotency-Key`` header (the event id, the same for every delivery of one
  order change): a repeated key must be answered 2xx again, even when the body differs in
  ``emitted_at`` or ``previous_status`` (a producer that restarts may emit one change twice);
* ignore a snapshot whose ``update_time`` is older than the one it holds, and still answer
  2xx: snapshots of one order arrive in order, but a replay may repeat old ones.

How answers are read: 2xx is accepted; 408, 409 (the same key still in flight), 429, 5xx and
a connection that fails or times out are transient and retried with backoff; any other
answer (a 4xx, a redirect) is final and makes the event poison. The body is the
``OrderEvent`` as JSON (``model_dump(mode="json")``: amounts as strings, timestamps as
ISO-8601 in UTC); the ``Authorization`` header carries the seller's bearer token when one is
configured.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from consumers.erp.outbox import ActionRecord
from orderflow.failures import Poison, Transient
from schemas.models import ActionLine, OrderAction, OrderEvent

CONSUMER = "erp-sync"
ACTION_KIND = "erp_post"
USER_AGENT = "orderflow-erp-sync"

# Fixed forever: changing it would give every POST already recorded a new action id, so a
# redelivered event would be recorded (and published) a second time.
_ACTION_ID_NAMESPACE = uuid.UUID("6f726465-7266-6c6f-7765-7270706f7374")

# 409: under idempotency-key semantics, a request with the same key is still in flight.
_TRANSIENT_STATUSES = frozenset({408, 409, 429})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_MAX_BACKOFF_SECONDS = 10.0
_MAX_RETRY_AFTER_SECONDS = 30.0
_BODY_EXCERPT_CHARS = 200


def erp_post_action_id(event_id: str) -> str:
    """The action id of POSTing ``event_id``: the same for every delivery of the event."""
    return str(uuid.uuid5(_ACTION_ID_NAMESPACE, f"{ACTION_KIND}|{event_id}"))


class HttpErpTarget:
    """POSTs order snapshots to one seller's ERP endpoint and records each accepted one as an
    ``erp_post`` action of ``erp-sync``.

    Each event is tried up to ``attempts`` times; between tries it waits ``backoff`` seconds,
    doubling, at most 10 s, or what a numeric ``Retry-After`` on a 429 or 503 asks for, at
    most 30 s. The ``http`` client is owned by the caller (timeouts are set there). The token
    is sent only in the ``Authorization`` header: no exception message carries it, and a
    response body quoted in one has it masked.
    """

    def __init__(
        self,
        url: str,
        *,
        http: httpx.Client,
        actions: ActionRecord,
        token: SecretStr | None = None,
        attempts: int = 4,
        backoff: float = 0.5,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # Not the URL itself: it may carry credentials.
            raise ValueError("the ERP endpoint must be an http:// or https:// URL with a host")
        if token is not None and not token.get_secret_value():
            raise ValueError("the ERP token is empty; leave it unset to send no Authorization")
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        if backoff < 0:
            raise ValueError(f"backoff must not be negative, got {backoff}")
        self._url = url
        self._host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        self._http = http
        self._actions = actions
        self._token = token
        self._attempts = attempts
        self._backoff = backoff
        self._sleep = sleep
        # Text from outside (a response body, a library's error) may echo them back.
        self._secrets = [s for s in (parts.password, _secret(token)) if s]

    def apply(self, events: Sequence[OrderEvent], now: int) -> list[bool]:
        """POST each event in order; per event True when the ERP accepted it.

        Every value is True: a 2xx cannot tell a stored snapshot from an ignored stale one, and
        an event the ERP did not accept raises instead. ``Poison`` means the ERP gave a final
        answer about that event (a 4xx other than 408, 409 and 429); ``Transient`` means every
        try failed transiently. Events before the one that raised were already accepted and
        recorded; that is safe, because the runtime retries them one by one and the ERP dedupes
        by ``Idempotency-Key``, and the action record by action id. ``now`` (Unix seconds) is
        when the actions are recorded as having happened.
        """
        accepted: list[bool] = []
        for event in events:
            status = self._post(event)
            self._actions.record(_erp_post_action(event, status, now))
            accepted.append(True)
        return accepted

    def _post(self, event: OrderEvent) -> int:
        """The 2xx status the ERP accepted ``event`` with, after as many tries as it takes."""
        body = json.dumps(
            event.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": event.event_id,
            "User-Agent": USER_AGENT,
        }
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        order = f"{event.shop_id}:{event.order_sn}"
        last_failure = ""
        cause: httpx.TransportError | None = None
        for attempt in range(1, self._attempts + 1):
            wait = self._backoff_after(attempt)
            try:
                response = self._http.post(self._url, content=body, headers=headers)
            except httpx.TransportError as exc:
                last_failure = self._redact(f"{type(exc).__name__}: {exc}")
                cause = exc
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return status
                if not _is_transient(status):
                    raise Poison(
                        f"The ERP at {self._host} refused order {order} with HTTP {status}: "
                        f"{self._excerpt(response)}"
                    )
                last_failure = f"HTTP {status}"
                cause = None
                if status in _RETRY_AFTER_STATUSES:
                    wait = _retry_after(response, default=wait)
            if attempt < self._attempts:
                self._sleep(wait)
        raise Transient(
            f"The ERP at {self._host} did not accept order {order} in {self._attempts} "
            f"tries (last: {last_failure})."
        ) from cause

    def _backoff_after(self, attempt: int) -> float:
        # The exponent is capped only so that a huge ``attempts`` cannot overflow the float.
        return min(self._backoff * 2.0 ** min(attempt - 1, 64), _MAX_BACKOFF_SECONDS)

    def _excerpt(self, response: httpx.Response) -> str:
        # Masked before cutting, so a secret split at the cut cannot show half of itself.
        text = self._redact(" ".join(response.text.split()))
        return text[:_BODY_EXCERPT_CHARS] or "(empty body)"

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _secret(token: SecretStr | None) -> str | None:
    return None if token is None else token.get_secret_value()


def _is_transient(status: int) -> bool:
    return status in _TRANSIENT_STATUSES or 500 <= status < 600


def _retry_after(response: httpx.Response, *, default: float) -> float:
    """The delay a ``Retry-After`` in seconds asks for, at most 30 s; ``default`` when there is
    none or it is an HTTP date (the ERP's clock is not ours to trust)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value.isascii() or not value.isdigit():
        return default
    return min(float(value), _MAX_RETRY_AFTER_SECONDS)


def _erp_post_action(event: OrderEvent, status: int, now: int) -> OrderAction:
    return OrderAction(
        action_id=erp_post_action_id(event.event_id),
        shop_id=event.shop_id,
        order_sn=event.order_sn,
        consumer=CONSUMER,
        kind=ACTION_KIND,
        lines=tuple(
            ActionLine(
                item_id=line.item_id,
                model_id=line.model_id,
                sku=line.model_sku or line.item_sku,
                quantity=line.quantity,
            )
            for line in event.items
        ),
        outcome="applied",
        event_id=event.event_id,
        details={
            "status": event.status,
            "update_time": str(int(event.update_time.timestamp())),
            "http_status": str(status),
        },
        occurred_at=datetime.fromtimestamp(now, UTC),
    )
