"""The two ways a sandbox operation fails.

:class:`ShopeeApiError` is an answer Shopee itself would give (it becomes an error envelope);
:class:`SandboxError` is misuse of the sandbox's own helpers (unknown shop, a lifecycle step
the order's status does not allow) and never reaches a Shopee route as such.
"""

from __future__ import annotations

# HTTP statuses Shopee does not document; chosen to be plausible. Clients must decide by the
# envelope's ``error`` field, so nothing depends on these beyond "not 2xx".
_STATUS_BY_ERROR: dict[str, int] = {
    "error_param": 400,
    "error_sign": 403,
    "error_auth": 403,
    "invalid_acceess_token": 403,
    "invalid_partner_id": 403,
    "shop_no_linked": 403,
    "refresh_token_expired": 403,
    "error_shop_refresh_token": 403,
    "error_permission": 403,
    "error_not_found": 404,
    "error_rate_limit": 429,
    "error_server": 500,
    "error_system_busy": 503,
}


def http_status_for(error: str) -> int:
    """The HTTP status the sandbox sends with an error envelope carrying ``error``."""
    if not error:
        return 200
    if error in _STATUS_BY_ERROR:
        return _STATUS_BY_ERROR[error]
    # Module-prefixed names ("product.error_param") share the status of the bare name.
    bare = error.rsplit(".", 1)[-1].strip()
    return _STATUS_BY_ERROR.get(bare, 400)


class ShopeeApiError(Exception):
    """An error envelope: ``{"request_id", "error", "message"}`` with a non-empty ``error``."""

    def __init__(self, error: str, message: str, *, response: object | None = None) -> None:
        super().__init__(f"{error}: {message}")
        self.error = error
        self.message = message
        # A few errors (update_stock's error_busi_update_stock_failed) still carry a response.
        self.response = response

    @property
    def http_status(self) -> int:
        return http_status_for(self.error)


def param_error(detail: str) -> ShopeeApiError:
    """Shopee's generic ``error_param`` with its "Wrong parameters, detail: ..." wording."""
    return ShopeeApiError("error_param", f"Wrong parameters, detail: {detail}")


class SandboxError(Exception):
    """The sandbox's own helpers were used in a way the simulated world does not allow."""


class UnknownEntity(SandboxError):
    """A shop, item, model or order the sandbox does not know."""


class InvalidTransition(SandboxError):
    """The order's current status does not allow the requested lifecycle step."""


class InsufficientStock(SandboxError):
    """An order asked for more than a model's Shopee-side stock (and overselling was off)."""
