"""The typed shapes of the Kopechka API: immutable pydantic models, snake_case attributes.

Each model validates from the vendor's JSON spelling (camelCase, ``from``, the snake_case
``created_at`` of the messages' order) and from its own attribute names alike; unknown fields are
ignored so a server that adds fields breaks nothing. Money is ``Decimal``, times are aware
``datetime`` (a naive time from the server is taken as UTC).

Money is lossless: pydantic reads a JSON number as a float before it becomes a ``Decimal``
(``12345678901234567.89`` would turn into ``...568`` and ``5.00`` into ``5``), so
``model_validate_json`` here parses the raw bytes with every number kept as written
(``json.loads(..., parse_float=Decimal)``, or jiter, which parses the same bytes to the same
values, faster) and validates the result; an amount that ``Decimal``
arithmetic could not carry exactly (more than 28 digits written out in full) is refused, never
rounded. A model with no number anywhere in its schema, only strings, booleans, times and the
like (the messages, for one: the body polled by every wait) is read by pydantic's own JSON parser;
when that parser refuses a body (a lone surrogate in a mail, say), the exact path reads it, so
the result or the error is the exact path's. Schemas are built when a class is declared, not on
first use: a lazily built schema raced on first concurrent use with some pydantic releases.

Nothing imports this module with the client: the client's modules import it (and the envelopes)
where they first need a model, the first decode or status filter. Declaring the models is most of
what importing kopechka would otherwise cost. Importing the module declares every model, complete,
under Python's import lock: a thread that needs it meanwhile waits for the finished module.

This module owns shapes only: it must not know URLs, envelopes or HTTP.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, TypeVar

import jiter
from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails

from . import _publish
from ._config import CLOSED
from ._extract import extract_code, extract_links

__all__ = [
    "CLOSED",
    "Cancellation",
    "Charge",
    "Domain",
    "ExactJSONModel",
    "Message",
    "MessageList",
    "Money",
    "Order",
    "OrderPage",
    "OrderStatus",
    "OrderSummary",
    "Pagination",
    "PollingStatus",
    "Profile",
    "loads_exact",
]

M = TypeVar("M", bound=BaseModel)

#: Digits an amount may have written out in full (no exponent): what ``Decimal`` arithmetic in its
#: default context carries exactly. An amount with more would be rounded by the first sum.
MONEY_DIGITS = 28


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _exact(value: Decimal) -> Decimal:
    # the common case first, as text (``as_tuple`` costs six times more): a finite amount that
    # ``str`` writes without an exponent has all its digits in the text, point and sign aside
    # (the exponent is "e" under a context with ``capitals=0``)
    if value.is_finite():
        text = str(value)
        if len(text) <= MONEY_DIGITS and "E" not in text and "e" not in text:
            return value
    exponent = value.as_tuple().exponent  # a str for NaN and infinities
    if (
        isinstance(exponent, int)
        and max(value.adjusted() + 1, 1) + max(-exponent, 0) <= MONEY_DIGITS
    ):
        return value
    raise ValueError(
        f"an amount must be finite and at most {MONEY_DIGITS} digits long written out in full, "
        "to be kept exactly"
    )


Timestamp = Annotated[datetime, AfterValidator(_aware)]
Money = Annotated[Decimal, AfterValidator(_exact)]
"""An exact amount: the server's digits, never through a float, never rounded."""


def _not_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("a price, a charge or a refund cannot be negative")
    return value


def _charge(value: Decimal) -> Decimal:
    """``_exact`` then ``_not_negative`` in one call (a page of orders makes a hundred of them):
    the common case first, a finite amount written without exponent or sign in few digits."""
    if value.is_finite():
        text = str(value)
        if len(text) <= MONEY_DIGITS and text[0] != "-" and "E" not in text and "e" not in text:
            return value
    return _not_negative(_exact(value))


Charge = Annotated[Decimal, AfterValidator(_charge)]
"""An exact amount the API cannot mean negative (a price, a charge, a refund): a negative one is
refused, so it can never lift a spend guard."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads_exact(data: str | bytes | bytearray) -> Any:
    """Parse JSON with every number kept exactly: fractions as ``Decimal``, integers as ``int``.

    Bytes are read by jiter (``float_mode="decimal"``), a third faster than ``json.loads`` with
    ``parse_float=Decimal``; what jiter refuses (UTF-16 or 32, a byte-order mark, a lone
    surrogate, nesting past its 200 levels, anything not JSON) is read by ``json.loads`` as
    before, so the result and the error are always ``json.loads``'s.

    Raises:
        ValueError: Not JSON (``NaN`` and ``Infinity`` included), or nested too deep.
    """
    if type(data) is bytes:  # jiter reads bytes, and only bytes
        try:
            # cache_mode="keys": field names are cached, never a value a server sent (a code, an
            # address): nothing of an answer outlives the call in jiter's process-wide cache
            return jiter.from_json(
                data, float_mode="decimal", allow_inf_nan=False, cache_mode="keys"
            )
        except ValueError:
            pass  # json.loads decides: it reads what jiter refuses and words the errors
    try:
        return json.loads(data, parse_float=Decimal, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise ValueError("nested too deep") from exc


_NATIVE_SAFE = frozenset({
    "model", "model-fields", "model-field", "str", "bool", "datetime", "enum", "literal", "list",
    "nullable", "default", "union", "function-after", "no-info", "definitions", "definition-ref",
})  # fmt: skip
"""The schema nodes pydantic's JSON parser reads exactly as ``loads_exact`` does: no number at all
(an ``int`` field, a ``decimal``, a ``float``, ``any`` or a ``dict`` could hold one it rounds)."""
_NATIVE: dict[type, bool] = {}
"""Per model class: True when every node of its validation schema is in ``_NATIVE_SAFE``."""


def _native_safe(schema: object) -> bool:
    """Whether every typed node of a pydantic core schema (its definitions and nested models
    included; serialization aside) is one pydantic's own JSON parser reads exactly."""
    if isinstance(schema, dict):
        kind = schema.get("type")
        if isinstance(kind, str) and kind not in _NATIVE_SAFE:
            return False
        return all(
            _native_safe(value)
            for key, value in schema.items()
            if key not in ("serialization", "metadata")
        )
    if isinstance(schema, (list, tuple)):
        return all(_native_safe(value) for value in schema)
    return True


def _native(cls: type[BaseModel]) -> bool:
    native = _NATIVE.get(cls)
    if native is None:
        native = _NATIVE[cls] = _native_safe(cls.__pydantic_core_schema__)
    return native


class ExactJSONModel(BaseModel):
    """A model whose ``model_validate_json`` keeps every JSON number exactly (see the module)."""

    @classmethod
    def model_validate_json(
        cls: type[M],
        json_data: str | bytes | bytearray,
        *,
        strict: bool | None = None,
        context: Any | None = None,
        **options: Any,
    ) -> M:
        """Validate JSON text, numbers kept as written (``5.00`` stays ``Decimal("5.00")``).

        Raises:
            pydantic.ValidationError: Not JSON, or not this model's shape.
        """
        if _native(cls):  # nothing to round: pydantic's parser, unless it refuses the body
            try:
                return super().model_validate_json(
                    json_data, strict=strict, context=context, **options
                )
            except ValidationError:
                pass  # the exact path decides, and words the error, as for any other model
        try:
            data = loads_exact(json_data)
        except (ValueError, TypeError) as exc:
            error = InitErrorDetails(
                type="json_invalid", loc=(), input=json_data, ctx={"error": str(exc)[:200]}
            )
            raise ValidationError.from_exception_data(cls.__name__, [error]) from None
        return cls.model_validate(data, strict=strict, context=context, **options)


class OrderStatus(str, Enum):
    """The documented and plausible order statuses.

    A status the server sends that is not listed here is kept as a plain ``str``.
    """

    PENDING = "pending"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    def __str__(self) -> str:
        return self.value


Status = Annotated[OrderStatus | str, Field(union_mode="left_to_right")]


class _Model(ExactJSONModel):
    # populate_by_name, not validate_by_name/validate_by_alias: those exist from pydantic 2.11 only,
    # and this works on every 2.x
    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


class Profile(_Model):
    """The account behind the API key (``GET /profile``)."""

    id: str
    """The account's id."""
    email: str
    """The account's e-mail address."""
    username: str
    """The account's user name."""
    balance: Money
    """What is left to spend, exact."""
    role: str
    """The account's role (``user`` ...)."""
    email_verified: bool
    """Whether the account's e-mail address is verified."""
    is_active: bool
    """Whether the account may use the API."""
    created_at: Timestamp
    """When the account was created (aware)."""
    updated_at: Timestamp
    """When the account last changed (aware)."""


class Domain(_Model):
    """A domain addresses can be bought on, with its price (``GET /domains``)."""

    id: str
    """The domain's id."""
    name: str
    """The domain name to pass to ``create_order`` (``example.com``)."""
    price: Charge
    """What one address on it costs, exact (never negative)."""
    category: str | None = None
    """The vendor's category (``popular``, ``premium`` ...), when given."""
    description: str | None = None
    """The vendor's description, when given."""


class Order(_Model):
    """A bought address. ``id`` is absent in the create answer; ``duration`` and ``end_time`` are
    sent only by ``GET /orders/{orderId}``."""

    id: str | None = None
    """The server's internal id (``None`` in the answer to ``create_order``)."""
    order_id: str
    """The id every order method takes (``API-1234567890``)."""
    email: str
    """The bought address: give it to the site."""
    domain: str
    """The domain it was bought on."""
    site: str
    """The site it was bought for."""
    status: Status
    """An ``OrderStatus``, or the server's own string when it is not a known one."""
    price: Charge
    """What it cost, exact (never negative)."""
    created_at: Timestamp
    """When it was bought (aware)."""
    duration: int | None = None
    """Its lifetime in minutes (``GET /orders/{orderId}`` only)."""
    end_time: Timestamp | None = None
    """When it expires (``GET /orders/{orderId}`` only)."""


class Pagination(_Model):
    """Where a page of orders stands in the whole list."""

    page: int
    """This page's number, from 1."""
    limit: int
    """Orders per page."""
    total: int
    """Orders in the whole list."""
    pages: int
    """Pages in the whole list."""


class OrderPage(_Model):
    """One page of ``GET /orders``: the orders (the JSON ``data``) and the pagination beside it."""

    orders: list[Order] = Field(validation_alias=AliasChoices("orders", "data"))
    """The orders on this page (the JSON ``data``)."""
    pagination: Pagination
    """Where this page stands."""


class Message(_Model):
    """A received e-mail. ``sender`` is the JSON ``from`` field."""

    id: str
    """The message's id."""
    sender: str = Field(validation_alias=AliasChoices("from", "sender"))
    """Who sent it (the JSON ``from``)."""
    subject: str = ""
    """Its subject line."""
    content: str = ""
    """Its body, text or HTML."""
    received_at: Timestamp
    """When it arrived (aware)."""

    def extract_code(self, pattern: str | re.Pattern[str] | None = None) -> str | None:
        """Find the one-time code in this message.

        Args:
            pattern: A regex that overrides the heuristic: its first group, else the whole match.

        Returns:
            The likeliest code (digits with groups joined, or capitals and digits as the mail
            spells them), or ``None`` when there is none.
        """
        return extract_code(self.content, pattern, subject=self.subject)

    def extract_links(self) -> list[str]:
        """Return the http(s) links of the content.

        Returns:
            The links in order of appearance, without duplicates, HTML entities decoded.
        """
        return extract_links(self.content)


class OrderSummary(_Model):
    """The order as the messages endpoint describes it (its ``created_at`` is snake_case)."""

    id: str
    """The order's id (``API-1234567890``)."""
    email: str
    """The order's address."""
    domain: str
    """The order's domain."""
    status: Status
    """An ``OrderStatus``, or the server's own string."""
    created_at: Timestamp = Field(validation_alias=AliasChoices("created_at", "createdAt"))
    """When the order was bought (aware)."""


class MessageList(_Model):
    """The answer of ``GET /orders/{orderId}/messages``."""

    messages: list[Message]
    """The mail received so far, oldest first."""
    order: OrderSummary
    """The order they came to."""


class Cancellation(_Model):
    """The answer of ``DELETE /orders/{orderId}``: ``refund_amount`` is 0 when mail had come."""

    message: str = ""
    """The server's words about it."""
    refund_amount: Charge
    """What came back to the balance, exact (0 when mail had come; never negative)."""


class PollingStatus(_Model):
    """The answer of ``POST /orders/{orderId}/start-polling``."""

    order_id: str
    """The order polled for."""
    polling_status: str
    """The polling state the server reports (``active`` ...)."""


_publish()  # loaded on first use, after the package: the public classes say kopechka all the same
