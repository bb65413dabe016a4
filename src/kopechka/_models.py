"""The typed shapes of the Kopechka API: immutable pydantic models, snake_case attributes.

Each model validates from the vendor's JSON spelling (camelCase, ``from``, the snake_case
``created_at`` of the messages' order) and from its own attribute names alike; unknown fields are
ignored so a server that adds fields breaks nothing. Money is ``Decimal``, times are aware
``datetime`` (a naive time from the server is taken as UTC).

This module owns shapes only: it must not know URLs, envelopes or HTTP.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Annotated

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ._extract import extract_code, extract_links

__all__ = [
    "Cancellation",
    "Domain",
    "Message",
    "MessageList",
    "Order",
    "OrderPage",
    "OrderStatus",
    "OrderSummary",
    "Pagination",
    "PollingStatus",
    "Profile",
]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


Timestamp = Annotated[datetime, AfterValidator(_aware)]


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


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=False,
        defer_build=True,
    )


class Profile(_Model):
    """The account behind the API key (``GET /profile``)."""

    id: str
    email: str
    username: str
    balance: Decimal
    role: str
    email_verified: bool
    is_active: bool
    created_at: Timestamp
    updated_at: Timestamp


class Domain(_Model):
    """A domain addresses can be bought on, with its price (``GET /domains``)."""

    id: str
    name: str
    price: Decimal
    category: str | None = None
    description: str | None = None


class Order(_Model):
    """A bought address. ``id`` is absent in the create answer; ``duration`` and ``end_time`` are
    sent only by ``GET /orders/{orderId}``."""

    id: str | None = None
    order_id: str
    email: str
    domain: str
    site: str
    status: Status
    price: Decimal
    created_at: Timestamp
    duration: int | None = None
    end_time: Timestamp | None = None


class Pagination(_Model):
    """Where a page of orders stands in the whole list."""

    page: int
    limit: int
    total: int
    pages: int


class OrderPage(_Model):
    """One page of ``GET /orders``: the orders (the JSON ``data``) and the pagination beside it."""

    orders: list[Order] = Field(validation_alias=AliasChoices("orders", "data"))
    pagination: Pagination


class Message(_Model):
    """A received e-mail. ``sender`` is the JSON ``from`` field."""

    id: str
    sender: str = Field(validation_alias=AliasChoices("from", "sender"))
    subject: str = ""
    content: str = ""
    received_at: Timestamp

    def extract_code(self, pattern: str | re.Pattern[str] | None = None) -> str | None:
        """Find the one-time code in this message.

        Args:
            pattern: A regex that overrides the heuristic: its first group, else the whole match.

        Returns:
            The likeliest code (digits only, groups joined), or ``None`` when there is none.
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
    email: str
    domain: str
    status: Status
    created_at: Timestamp = Field(validation_alias=AliasChoices("created_at", "createdAt"))


class MessageList(_Model):
    """The answer of ``GET /orders/{orderId}/messages``."""

    messages: list[Message]
    order: OrderSummary


class Cancellation(_Model):
    """The answer of ``DELETE /orders/{orderId}``: ``refund_amount`` is 0 when mail had come."""

    message: str = ""
    refund_amount: Decimal


class PollingStatus(_Model):
    """The answer of ``POST /orders/{orderId}/start-polling``."""

    order_id: str
    polling_status: str
