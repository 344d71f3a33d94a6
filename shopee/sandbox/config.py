"""How a sandbox behaves: credentials, lifetimes, the documented-but-uncertain choices, faults.

Every place where the Shopee reference is marked [UNCERTAIN] is a field here with the default
the reference suggests, so a test can pin the behaviour it relies on or explore the other one.
"""

from __future__ import annotations

import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


def seeded_random(seed: int, stream: str) -> random.Random:
    """A reproducible generator for one concern of a sandbox seeded with ``seed``.

    Each concern gets its own stream so that, e.g., issuing a token does not shift the next
    order_sn. Reproducibility is the point, not secrecy: sandbox tokens guard nothing.
    """
    return random.Random(f"{seed}:{stream}")  # noqa: S311


FaultKind = Literal[
    "error_server",
    "error_system_busy",
    "error_rate_limit",
    "http_500",
    "http_502",
    "timeout",
    "effect_then_error_server",
    "effect_then_http_502",
    "effect_then_disconnect",
    "effect_then_timeout",
]
# Answered without processing the request: the caller can tell nothing happened, except
# after a timeout, when it cannot tell at all.
REFUSAL_KINDS: tuple[FaultKind, ...] = (
    "error_server",
    "error_system_busy",
    "error_rate_limit",
    "http_500",
    "http_502",
)
# Processed first (the effect happens), then the caller gets an error, a bare 502, a
# dropped connection or no answer at all: what a client must resolve without resending.
AFTER_EFFECT_KINDS: tuple[FaultKind, ...] = (
    "effect_then_error_server",
    "effect_then_http_502",
    "effect_then_disconnect",
    "effect_then_timeout",
)
ALL_FAULT_KINDS: tuple[FaultKind, ...] = (*REFUSAL_KINDS, "timeout", *AFTER_EFFECT_KINDS)


class FaultConfig(BaseModel):
    """Injected trouble. All randomness is drawn from generators seeded by ``SandboxConfig.seed``.

    ``error_rates`` maps an API to the probability that a request to it fails. Keys may be
    the path (``/api/v2/order/get_order_detail``), the dotted name (``order.get_order_detail``
    or ``v2.order.get_order_detail``), the bare name (``get_order_detail``) or ``*`` for every
    API; the most specific key wins. A failing request gets one of ``error_kinds`` uniformly:

    * refused before it is processed, so it has no side effect: an envelope (``error_server``,
      ``error_system_busy``, ``error_rate_limit``) or a bare transport error (``http_500``,
      ``http_502``: HTML body, no envelope). The default kinds are these five;
    * ``timeout``: never processed and never answered; the request is held ``hang_seconds``
      (or until the client gives up) and the connection is then closed without an answer;
    * ``effect_then_*``: processed first, its effect applied, and then the caller gets
      ``error_server`` (an envelope), a bare 502, a dropped connection (``disconnect``: the
      status line and headers, then the connection closes mid-body) or no answer within
      ``hang_seconds`` (``timeout``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    error_rates: dict[str, float] = Field(default_factory=dict)
    error_kinds: tuple[FaultKind, ...] = REFUSAL_KINDS
    # How long a ``timeout`` fault holds a request before closing the connection unanswered:
    # longer than a client waits (orderflow's ORDERFLOW_SHOPEE_TIMEOUT_SECONDS, 10 s by
    # default), so the client's own timeout is what ends it. Real seconds.
    hang_seconds: float = Field(default=30.0, gt=0)
    # Added to every /api/v2 response: latency_ms plus uniform jitter in [0, latency_jitter_ms].
    latency_ms: float = Field(default=0.0, ge=0)
    latency_jitter_ms: float = Field(default=0.0, ge=0)
    # Requests per second per shop (per partner for public APIs); None = unlimited.
    rate_limit_per_second: int | None = Field(default=None, ge=1)
    # Probability that a push is never delivered.
    push_drop_rate: float = Field(default=0.0, ge=0, le=1)
    # Whether a dropped push still shows up in get_lost_push_message (Shopee knows it failed)
    # or vanishes entirely (only order polling can recover the change).
    dropped_push_to_lost_store: bool = True
    # Probability that a push is delivered twice (same msg_id and body).
    push_duplicate_rate: float = Field(default=0.0, ge=0, le=1)
    # Each delivery's first attempt is delayed by a uniform [0, this] seconds, which reorders
    # pushes that were emitted close together. Sandbox-clock seconds, not scaled.
    push_reorder_max_delay_seconds: float = Field(default=0.0, ge=0)

    @field_validator("error_rates")
    @classmethod
    def _rates_are_probabilities(cls, rates: dict[str, float]) -> dict[str, float]:
        for api, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"error rate for {api!r} must be between 0 and 1, got {rate}")
        return rates

    @field_validator("error_kinds")
    @classmethod
    def _at_least_one_kind(cls, kinds: tuple[FaultKind, ...]) -> tuple[FaultKind, ...]:
        if not kinds:
            raise ValueError("error_kinds needs at least one kind")
        return kinds


InvalidTokenError = Literal["invalid_acceess_token", "error_auth", "random"]
EmptyCompletedScenario = Literal["empty", "null", "random"]


class SandboxConfig(BaseModel):
    """Everything a sandbox is started with. Immutable; runtime changes (callback URL, faults,
    subscribed push codes) live in :class:`~shopee.sandbox.state.SandboxState`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partner_id: int = Field(default=2001887, ge=0, le=4294967295)
    partner_key: str = Field(default="sandbox-partner-key", repr=False)
    # Shopee may sign pushes with a separate "Live Push Partner Key" (reference §3.1).
    push_key: str | None = Field(default=None, repr=False)
    # Where signed pushes are POSTed; None = no delivery (every push goes to the lost store).
    callback_url: str | None = None
    # Scales Shopee's durations that would make tests and demos wait: the push retry schedule
    # and the traffic generator's lifecycle steps. 0.001 turns the 3 h retry into 10.8 s.
    time_factor: float = Field(default=1.0, gt=0)
    seed: int = 1
    faults: FaultConfig = Field(default_factory=FaultConfig)

    access_token_ttl_seconds: int = Field(default=14400, gt=0)
    refresh_token_ttl_seconds: int = Field(default=30 * 86400, gt=0)
    auth_code_ttl_seconds: int = Field(default=600, gt=0)
    # "After a new access_token is generated, the old access_token is still valid for 5 minutes."
    old_access_token_grace_seconds: int = Field(default=300, ge=0)
    # Which error an invalid or expired access token gets: Shopee documents both.
    invalid_access_token_error: InvalidTokenError = "random"  # noqa: S105 - an error name

    # "Expires in 5 minutes"; whether a future timestamp is tolerated is undocumented.
    timestamp_tolerance_seconds: int = Field(default=300, ge=0)
    timestamp_future_tolerance_seconds: int = Field(default=300, ge=0)

    order_list_max_span_seconds: int = Field(default=15 * 86400, gt=0)
    # Whether time_to - time_from == 15 days exactly is accepted (undocumented).
    order_list_accept_exact_max_span: bool = True
    # "keyset": cursor remembers the last entry (stable paging while orders change);
    # "offset": cursor is a position, like the official sample's "20" (orders that change
    # between pages may then be skipped or repeated).
    order_list_cursor: Literal["keyset", "offset"] = "keyset"
    # get_order_detail with an order_sn the shop does not have: fail the whole call with
    # error_not_found, or leave it out and name it in "warning".
    unknown_order_sn: Literal["error", "skip"] = "error"

    # Whether cancel_order accepts UNPAID orders (undocumented; Seller Center does not offer it).
    seller_cancel_unpaid: bool = False
    # Third-party claim: an OUT_OF_STOCK seller cancel sets the named models' stock to 0
    # instead of restoring it.
    out_of_stock_cancel_zeroes_stock: bool = False
    # UNDELIVERABLE_AREA "Only apply for TW and MY".
    undeliverable_area_regions: frozenset[str] = frozenset({"TW", "MY"})
    # A buyer may cancel without seller approval this long after payment; later requests
    # become IN_CANCEL.
    buyer_free_cancel_window_seconds: int = Field(default=3600, ge=0)

    # Push codes the app subscribes to; codes 1/2 (shop (de)authorization) are partner-level.
    push_codes: frozenset[int] = frozenset({3, 4})
    push_timeout_seconds: float = Field(default=3.0, gt=0)
    # Pushes POSTed at the same time; 1 delivers one by one in due order.
    push_delivery_concurrency: int = Field(default=8, ge=1)
    # Delays after each failed attempt, before time_factor; after the last, the push is lost.
    push_retry_schedule_seconds: tuple[float, ...] = (300.0, 1800.0, 10800.0)
    lost_push_retention_seconds: int = Field(default=3 * 86400, gt=0)
    lost_push_page_size: int = Field(default=100, ge=1)
    # get_lost_push_message's "data" is typed string in the docs but an object in the sample.
    lost_push_data_as_string: bool = True
    # The official samples of the two lost-push endpoints answer "error": "-", "message": "-".
    push_api_placeholders: bool = True
    # Live pushes carry an undocumented top-level "msg_id" (32 hex).
    push_msg_id: bool = True
    # completed_scenario before COMPLETED: "" and null are both seen live.
    empty_completed_scenario: EmptyCompletedScenario = "random"

    @property
    def effective_push_key(self) -> str:
        """The key pushes are signed with: ``push_key``, or the partner key when unset."""
        return self.push_key if self.push_key is not None else self.partner_key

    @property
    def shopee_retry_delays(self) -> tuple[float, ...]:
        """The push retry schedule in sandbox-clock seconds (scaled by ``time_factor``)."""
        return tuple(delay * self.time_factor for delay in self.push_retry_schedule_seconds)
