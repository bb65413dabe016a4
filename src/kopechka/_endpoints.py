"""The one table of endpoints: for both clients, and for every test that loops over endpoints.

Each row names a client method, its HTTP method and path (``{id}`` stands for an order id), the
``_wire`` builder of its request, example arguments, and what it returns. The methods themselves
are written out by hand on each client (typed, documented, one line over the funnel); the suite
checks that each row is a method of both ``KopechkaClient`` and ``AsyncKopechkaClient`` with the
same parameters, that every public method of either client is a row or one of ``HELPERS``, and
runs every row against both through the fault matrix and the vendor's example answers. A new
endpoint added to one client and not the other, or to neither table, fails the suite.

Data only: nothing here sends a request or imports an HTTP library.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from . import _wire
from ._models import Cancellation, MessageList, Order, OrderPage, PollingStatus, Profile

__all__ = ["ENDPOINTS", "HELPERS", "Endpoint"]


@dataclass(frozen=True)
class Endpoint:
    """One documented endpoint and the client method that calls it."""

    name: str
    method: str
    path: str
    build: Callable[..., _wire.Call[Any]]
    args: tuple[str, ...] = ()
    kwargs: Mapping[str, object] = field(default_factory=dict)
    returns: type = object

    @property
    def idempotent(self) -> bool:
        """Whether the policy may retry it after it may have reached the server."""
        return self.method == "GET"

    def arguments(self, order_id: str) -> tuple[str, ...]:
        """The example arguments, ``{id}`` filled in."""
        return tuple(arg.format(id=order_id) for arg in self.args)

    def url_path(self, order_id: str) -> str:
        """The path below the base URL, ``{id}`` filled in."""
        return self.path.format(id=order_id)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("get_profile", "GET", "/profile", _wire.get_profile, returns=Profile),
    Endpoint("get_balance", "GET", "/balance", _wire.get_balance, returns=Decimal),
    Endpoint("get_domains", "GET", "/domains", _wire.get_domains, returns=list),
    Endpoint("list_orders", "GET", "/orders", _wire.list_orders, kwargs={"page": 1, "limit": 10},
             returns=OrderPage),
    Endpoint("get_order", "GET", "/orders/{id}", _wire.get_order, ("{id}",), returns=Order),
    Endpoint("create_order", "POST", "/orders", _wire.create_order, ("example.com", "x.com"),
             returns=Order),
    Endpoint("cancel_order", "DELETE", "/orders/{id}", _wire.cancel_order, ("{id}",),
             returns=Cancellation),
    Endpoint("get_messages", "GET", "/orders/{id}/messages", _wire.get_messages, ("{id}",),
             returns=MessageList),
    Endpoint("start_polling", "POST", "/orders/{id}/start-polling", _wire.start_polling,
             ("{id}",), returns=PollingStatus),
)  # fmt: skip
"""Every documented endpoint, in the vendor documentation's order."""

HELPERS: frozenset[str] = frozenset(
    {
        "iter_orders",
        "wait_for_message",
        "wait_for_code",
        "mailbox",
        "sweep",
        "with_options",
        "close",
    }
)
"""The public methods that are not one endpoint (several requests, or none)."""
