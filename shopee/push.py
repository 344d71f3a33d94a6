"""Shopee pushes (webhooks): signature verification and typed parsing.

``PushVerifier.verify`` checks the ``Authorization`` header: the lowercase hex
HMAC-SHA256, keyed with the push key, of ``<registered callback URL>|<raw body bytes>``. The
URL comes from configuration, never from the request (a proxy may rewrite scheme or host),
and the body is hashed exactly as received, never re-serialised.

``parse_push`` turns a body into one of the ``Push`` models, chosen by ``code``. Codes this
module does not know become ``UnknownPush`` (Shopee adds codes; an unknown one is not an
error). A body that is not JSON, or a known code without its required fields, raises
``MalformedPush`` saying why.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    TypeAdapter,
    ValidationError,
)

from orderflow.settings import Settings
from shopee.errors import MalformedPush
from shopee.models import OptionalInt, OptionalText, Text, empty_if_absent
from shopee.signing import verify_push

# Push codes this module gives their own model (Shopee's numbering).
VERIFICATION = 0
SHOP_AUTHORIZED = 1
SHOP_DEAUTHORIZED = 2
ORDER_STATUS = 3
TRACKING_NUMBER = 4
AUTHORIZATION_EXPIRY = 12
SHIPPING_DOCUMENT_STATUS = 15


class _PushModel(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class _PushBase(_PushModel):
    """Fields every push may carry. ``msg_id`` appears in live pushes though undocumented."""

    code: int
    timestamp: OptionalInt = None
    msg_id: OptionalText = None


class VerificationData(_PushModel):
    verify_info: Text = ""


class VerificationPush(_PushBase):
    """Code 0: the console checking the callback URL; answer 2xx with an empty body."""

    code: Literal[0]
    data: VerificationData = VerificationData()


class AuthorizationData(_PushModel):
    authorize_type: Text = ""
    success: OptionalInt = None
    extra: Text = ""
    # Code 2 sometimes spells it "shopid"; some deauthorisations carry no shop at all.
    shop_id: OptionalInt = Field(default=None, validation_alias=AliasChoices("shop_id", "shopid"))
    main_account_id: OptionalInt = None
    merchant_id: OptionalInt = None


class ShopAuthorizedPush(_PushBase):
    """Code 1, partner level (no top-level shop_id)."""

    code: Literal[1]
    partner_id: OptionalInt = None
    data: AuthorizationData


class ShopDeauthorizedPush(_PushBase):
    """Code 2, partner level: the seller cancelled or the authorisation expired."""

    code: Literal[2]
    partner_id: OptionalInt = None
    data: AuthorizationData


class OrderStatusData(_PushModel):
    # Pushes say "ordersn"; the API and the rest of orderflow say "order_sn".
    order_sn: str = Field(min_length=1, validation_alias=AliasChoices("ordersn", "order_sn"))
    status: str = Field(min_length=1)
    # "NORMAL" or "RRAOC" once COMPLETED; "" and null both mean "not applicable".
    completed_scenario: OptionalText = None
    update_time: int
    items: Annotated[list[Any], BeforeValidator(empty_if_absent)] = []


class OrderStatusPush(_PushBase):
    """Code 3: an order changed status. A trigger, not state: fetch the order to act."""

    code: Literal[3]
    shop_id: int
    data: OrderStatusData


class TrackingNumberData(_PushModel):
    order_sn: str = Field(min_length=1, validation_alias=AliasChoices("ordersn", "order_sn"))
    forder_id: Text = ""  # a 19-digit string; kept as text so it never loses digits
    package_number: Text = ""
    tracking_no: str = Field(min_length=1)


class TrackingNumberPush(_PushBase):
    """Code 4: a package got its tracking number."""

    code: Literal[4]
    shop_id: int
    data: TrackingNumberData


class AuthorizationExpiryData(_PushModel):
    merchant_expire_soon: Annotated[list[int], BeforeValidator(empty_if_absent)] = []
    shop_expire_soon: Annotated[list[int], BeforeValidator(empty_if_absent)] = []
    user_expire_soon: Annotated[list[int], BeforeValidator(empty_if_absent)] = []
    expire_before: OptionalInt = None
    page_no: OptionalInt = None
    total_page: OptionalInt = None


class AuthorizationExpiryPush(_PushBase):
    """Code 12, partner level: these shops' authorisations expire before ``expire_before``."""

    code: Literal[12]
    data: AuthorizationExpiryData


class ShippingDocumentData(_PushModel):
    order_sn: str = Field(min_length=1, validation_alias=AliasChoices("ordersn", "order_sn"))
    package_number: Text = ""
    status: str = Field(min_length=1)


class ShippingDocumentPush(_PushBase):
    """Code 15: a package's shipping document changed status (e.g. READY)."""

    code: Literal[15]
    shop_id: int
    data: ShippingDocumentData


class UnknownPush(_PushBase):
    """Any other code, kept whole so it can be logged or forwarded."""

    shop_id: OptionalInt = None
    partner_id: OptionalInt = None
    data: Any = None


_MODELLED_CODES = frozenset(
    {
        VERIFICATION,
        SHOP_AUTHORIZED,
        SHOP_DEAUTHORIZED,
        ORDER_STATUS,
        TRACKING_NUMBER,
        AUTHORIZATION_EXPIRY,
        SHIPPING_DOCUMENT_STATUS,
    }
)


def _push_tag(value: object) -> str:
    code = value.get("code") if isinstance(value, dict) else getattr(value, "code", None)
    if isinstance(code, int) and not isinstance(code, bool) and code in _MODELLED_CODES:
        return str(code)
    return "unknown"


Push = Annotated[
    Annotated[VerificationPush, Tag("0")]
    | Annotated[ShopAuthorizedPush, Tag("1")]
    | Annotated[ShopDeauthorizedPush, Tag("2")]
    | Annotated[OrderStatusPush, Tag("3")]
    | Annotated[TrackingNumberPush, Tag("4")]
    | Annotated[AuthorizationExpiryPush, Tag("12")]
    | Annotated[ShippingDocumentPush, Tag("15")]
    | Annotated[UnknownPush, Tag("unknown")],
    Discriminator(_push_tag),
]
"""Every push, discriminated by ``code``; match on the class."""

_PUSH_ADAPTER: TypeAdapter[Push] = TypeAdapter(Push)


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        # The first element of the location is the union tag; it only repeats the code.
        location = ".".join(str(part) for part in error["loc"][1:]) or "body"
        problems.append(f"{location}: {error['msg']}")
    return "; ".join(problems)


def parse_push_object(body: object) -> Push:
    """Validate an already-decoded push body (e.g. from get_lost_push_message)."""
    if not isinstance(body, dict):
        raise MalformedPush(f"push body must be a JSON object, got {type(body).__name__}")
    code = body.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        raise MalformedPush(f"push body has no integer 'code' (got {code!r})")
    try:
        return _PUSH_ADAPTER.validate_python(body)
    except ValidationError as exc:
        raise MalformedPush(f"push code {code} is malformed: {_describe(exc)}") from exc


def parse_push(raw_body: bytes) -> Push:
    """Parse a push body exactly as received; ``MalformedPush`` says what is wrong."""
    try:
        # Decode explicitly: json.loads would guess UTF-16/32 from the first bytes.
        decoded = json.loads(raw_body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MalformedPush(f"push body is not UTF-8 text: {exc.reason}") from exc
    except json.JSONDecodeError as exc:
        raise MalformedPush(f"push body is not JSON: {exc.msg} at position {exc.pos}") from exc
    return parse_push_object(decoded)


class PushVerifier:
    """Checks and parses pushes for one registered callback URL.

    ``callback_url`` must be the URL exactly as registered with Shopee (scheme, host, path,
    trailing slash); the signature covers it byte for byte.
    """

    def __init__(self, push_key: SecretStr | str | bytes, callback_url: str) -> None:
        if not callback_url:
            raise ValueError("callback_url must be the URL registered with Shopee")
        key = push_key.get_secret_value() if isinstance(push_key, SecretStr) else push_key
        self._key = key.encode() if isinstance(key, str) else key
        self.callback_url = callback_url

    @classmethod
    def from_settings(cls, settings: Settings) -> PushVerifier:
        """The push key (``ORDERFLOW_SHOPEE_PUSH_KEY``, else the partner key) and
        ``ORDERFLOW_WEBHOOK_PUBLIC_URL``; ``ConfigError`` if either is missing."""
        return cls(settings.push_key, settings.require_webhook_public_url())

    def verify(self, raw_body: bytes, authorization: str | None) -> bool:
        """True only when ``authorization`` is the signature of ``raw_body``."""
        if not authorization or not authorization.isascii():
            # compare_digest refuses non-ASCII text; such a header cannot be a hex digest.
            return False
        return verify_push(self._key, self.callback_url, raw_body, authorization)

    def parse(self, raw_body: bytes) -> Push:
        """The typed push; ``MalformedPush`` if the body is not a valid push."""
        return parse_push(raw_body)
