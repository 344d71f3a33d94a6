"""A record of every /api/v2 request the sandbox answered, so tests can count and inspect them."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from shopee.sandbox.rules import split_csv


@dataclass(frozen=True)
class RecordedCall:
    """One request and the answer it got.

    ``api`` is the dotted name (``order.get_order_detail``); ``error`` is the envelope's
    ``error`` the caller got ("" on success), or ``http_500``/``http_502`` for an injected
    transport error, ``disconnect`` or ``timeout`` when it got no answer (``http_status`` 0);
    ``fault`` names the injected fault that produced the answer (a ``FaultKind``, or
    ``rate_limit`` when the configured rate limit refused the request), else None.
    ``handled``: the request reached the API's handler (authenticated, not refused by a fault
    or the rate limit); ``applied``: the handler succeeded, so its effect happened even when
    an ``effect_then_*`` fault then told the caller otherwise.
    """

    seq: int
    at: float
    method: str
    path: str
    api: str
    shop_id: int | None
    query: dict[str, str]
    body: Any
    error: str
    message: str
    http_status: int
    fault: str | None
    handled: bool = False
    applied: bool = False

    @property
    def ok(self) -> bool:
        """The caller was answered with success."""
        return self.error == "" and 200 <= self.http_status < 300

    @property
    def order_sn_list(self) -> list[str]:
        """The order_sns a get_order_detail call asked for (empty for other APIs)."""
        return split_csv(self.query.get("order_sn_list", ""))


class CallLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[RecordedCall] = []
        self._seq = 0

    def record(
        self,
        *,
        at: float,
        method: str,
        path: str,
        api: str,
        shop_id: int | None,
        query: dict[str, str],
        body: Any,
        error: str,
        message: str,
        http_status: int,
        fault: str | None,
        handled: bool,
        applied: bool,
    ) -> RecordedCall:
        with self._lock:
            self._seq += 1
            call = RecordedCall(
                seq=self._seq,
                at=at,
                method=method,
                path=path,
                api=api,
                shop_id=shop_id,
                query=query,
                body=body,
                error=error,
                message=message,
                http_status=http_status,
                fault=fault,
                handled=handled,
                applied=applied,
            )
            self._calls.append(call)
            return call

    def snapshot(self, api: str | None = None) -> list[RecordedCall]:
        """Calls in arrival order, optionally only those to ``api`` (dotted name or path)."""
        with self._lock:
            calls = list(self._calls)
        if api is None:
            return calls
        return [call for call in calls if api in (call.api, call.path)]

    def counts(self) -> dict[str, int]:
        """Number of calls per dotted API name."""
        with self._lock:
            return dict(Counter(call.api for call in self._calls))

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
