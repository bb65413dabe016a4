"""The response envelopes exactly as the vendor documentation shows them, as pydantic models.

Each endpoint's answer is one model validated from the raw bytes, then asked for its ``result()``:
``data`` unwrapped for most endpoints, ``pagination`` beside ``data`` for the order list,
top-level ``messages``/``order`` for messages and a top-level ``refundAmount`` for a cancel. Pure
shapes: no I/O, no HTTP statuses (``_wire`` decides what a status means). The models are plain,
not generic: declaring a generic pydantic model costs ~30 ms of import time.

Every body is an ``ExactJSONModel``: its ``model_validate_json`` keeps the server's numbers exactly
(money as the server wrote it), and its schema is built at import, not on first use (a lazily built
schema raced on first concurrent use with pydantic 2.11.0).
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from pydantic import ConfigDict

from ._models import (
    Cancellation,
    Charge,
    Domain,
    ExactJSONModel,
    Message,
    MessageList,
    Money,
    Order,
    OrderPage,
    OrderSummary,
    Pagination,
    PollingStatus,
    Profile,
)

__all__ = [
    "BalanceBody",
    "BodyShape",
    "CancelBody",
    "DomainsBody",
    "MessagesBody",
    "MissingFieldError",
    "OrderBody",
    "PageBody",
    "PollingBody",
    "ProfileBody",
]

R_co = TypeVar("R_co", covariant=True)
T = TypeVar("T")


class MissingFieldError(Exception):
    """A documented field is absent from an otherwise well-formed body."""


class Body(ExactJSONModel):
    """What every answer carries: ``success`` and, sometimes, ``message``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    success: bool = True
    message: str | None = None


class BodyShape(Protocol[R_co]):
    """A body model: validated from the raw bytes, then asked for the call's result."""

    @classmethod
    def model_validate_json(cls, json_data: bytes) -> _Result[R_co]: ...


class _Result(Protocol[R_co]):
    @property
    def success(self) -> bool: ...
    def result(self) -> R_co: ...


def _present(value: T | None, name: str) -> T:
    if value is None:
        raise MissingFieldError(name)
    return value


class ProfileBody(Body):
    data: Profile | None = None

    def result(self) -> Profile:
        return _present(self.data, "data")


class DomainsBody(Body):
    data: list[Domain] | None = None

    def result(self) -> list[Domain]:
        return _present(self.data, "data")


class OrderBody(Body):
    data: Order | None = None

    def result(self) -> Order:
        return _present(self.data, "data")


class PollingBody(Body):
    data: PollingStatus | None = None

    def result(self) -> PollingStatus:
        return _present(self.data, "data")


class BalanceData(ExactJSONModel):
    balance: Money


class BalanceBody(Body):
    data: BalanceData | None = None

    def result(self) -> Money:
        return _present(self.data, "data").balance


class PageBody(Body):
    """``pagination`` sits beside ``data``, at the top level."""

    data: list[Order] | None = None
    pagination: Pagination | None = None

    def result(self) -> OrderPage:
        orders = _present(self.data, "data")
        pagination = _present(self.pagination, "pagination")
        # both validated already: a page is put together, not validated again (100 orders)
        return OrderPage.model_construct(orders=orders, pagination=pagination)


class MessagesBody(Body):
    """``messages`` and ``order`` sit at the top level, beside ``success``: no ``data``."""

    messages: list[Message] | None = None
    order: OrderSummary | None = None

    def result(self) -> MessageList:
        messages = _present(self.messages, "messages")
        return MessageList(messages=messages, order=_present(self.order, "order"))


class CancelBody(Body):
    """``refundAmount`` and ``message`` sit at the top level: there is no ``data``."""

    refundAmount: Charge | None = None  # noqa: N815 - the wire spelling

    def result(self) -> Cancellation:
        refund = _present(self.refundAmount, "refundAmount")
        return Cancellation(message=self.message or "", refund_amount=refund)
