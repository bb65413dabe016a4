"""The sandbox's model of the Kopechka service: a pure state machine on a virtual clock.

Rule 1: no I/O and no threads here. Every operation is a method that takes plain values, changes the
state, and returns plain values (JSON-ready dicts in the documented spellings) or raises
``SandboxError(status, message)``. Rule 2: the HTTP server (``_server``) and the routing (``_app``)
never touch the state except through these methods, under the app's lock.

Lifecycle of an order: bought ``pending`` (the create answer), ``active`` from then on, ``expired``
once ``duration`` minutes have passed on the clock, or ``cancelled``. The balance is charged on
create and refunded on cancel only when no mail came. An order's first message is visible at
once; the ones after it only once start-polling has been called for the order (the vendor's rule).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

__all__ = ["DEFAULT_DOMAINS", "SandboxDomain", "SandboxError", "SandboxState"]


class SandboxError(Exception):
    """A refusal of the emulated service: an HTTP status and the ``message`` of its body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class SandboxDomain:
    """A domain on sale in the sandbox."""

    name: str
    price: Decimal
    category: str = "popular"
    description: str = "Popular domain for general use"


DEFAULT_DOMAINS: tuple[SandboxDomain, ...] = (
    SandboxDomain("example.com", Decimal("5.00")),
    SandboxDomain(
        "mail-sandbox.net", Decimal("3.50"), "standard", "Cheap domain for bulk sign-ups"
    ),
    SandboxDomain("inbox.test", Decimal("1.25"), "budget", "Lowest price, for testing"),
    SandboxDomain("premium.example", Decimal("12.00"), "premium", "Aged domain, high trust"),
)


#: The first order is ``API-1234567890``, the id of the documentation's examples, so its curl
#: commands run unchanged against a fresh sandbox.
FIRST_ORDER_NUMBER = 1_234_567_890


def iso(moment: datetime) -> str:
    """Render a time the way the documentation does: ``2024-01-01T00:00:00Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(value: Decimal) -> float:
    """A JSON number for an amount (the documentation sends numbers, not strings)."""
    return float(value)


@dataclass
class _Message:
    id: str
    sender: str
    subject: str
    content: str
    received_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "from": self.sender,
            "subject": self.subject,
            "content": self.content,
            "receivedAt": iso(self.received_at),
        }


@dataclass
class _Order:
    id: str
    order_id: str
    email: str
    domain: str
    site: str
    price: Decimal
    created_at: datetime
    duration: int
    status: str = "pending"
    polling: bool = False
    mail: list[_Message] = field(default_factory=list)

    @property
    def end_time(self) -> datetime:
        return self.created_at + timedelta(minutes=self.duration)

    def visible(self) -> list[_Message]:
        return list(self.mail) if self.polling else self.mail[:1]

    def to_json(self, *, with_id: bool = True, details: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id} if with_id else {}
        body.update(
            orderId=self.order_id,
            email=self.email,
            domain=self.domain,
            site=self.site,
            status=self.status,
            price=money(self.price),
        )
        if details:
            body["duration"] = self.duration
        body["createdAt"] = iso(self.created_at)
        if details:
            body["endTime"] = iso(self.end_time)
        return body


class SandboxState:
    """One account (key, balance, profile), the domains on sale, orders and their mail."""

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        balance: Decimal = Decimal("100"),
        domains: tuple[SandboxDomain, ...] = DEFAULT_DOMAINS,
        order_duration: int = 10,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.api_key = api_key
        self.balance = Decimal(balance)
        self.domains = {d.name: d for d in domains}
        self.order_duration = order_duration
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._offset = timedelta()
        self._orders: dict[str, _Order] = {}
        self._numbers = itertools.count(FIRST_ORDER_NUMBER)
        self._message_ids = itertools.count(1)
        self.started_at = self.now()

    # --- clock and keys ---

    def now(self) -> datetime:
        """The virtual time: the real clock plus everything ``advance`` added."""
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the virtual clock forward (orders expire on it)."""
        if not seconds >= 0 or not math.isfinite(seconds):
            raise SandboxError(400, "advance takes a finite number of seconds >= 0")
        self._offset += timedelta(seconds=seconds)

    def authenticate(self, key: str | None) -> None:
        """Raise 401 unless ``key`` is the account's key."""
        if not key:
            raise SandboxError(401, "API key is required")
        if key != self.api_key:
            raise SandboxError(401, "Invalid API key")

    # --- account ---

    def profile(self) -> dict[str, Any]:
        """``GET /profile``'s data."""
        return {
            "id": "user_sandbox",
            "email": "sandbox@kopechka.test",
            "username": "sandbox",
            "balance": money(self.balance),
            "role": "user",
            "emailVerified": True,
            "isActive": True,
            "createdAt": iso(self.started_at),
            "updatedAt": iso(self.now()),
        }

    def domain_list(self) -> list[dict[str, Any]]:
        """``GET /domains``'s data."""
        return [
            {
                "id": f"dom_{name.replace('.', '_').replace('-', '_')}",
                "name": name,
                "price": money(d.price),
                "category": d.category,
                "description": d.description,
            }
            for name, d in self.domains.items()
        ]

    # --- orders ---

    def _order(self, order_id: str) -> _Order:
        order = self._orders.get(order_id)
        if order is None:
            raise SandboxError(404, "Order not found")
        self._refresh(order)
        return order

    def _refresh(self, order: _Order) -> None:
        if order.status in {"pending", "active"} and self.now() >= order.end_time:
            order.status = "expired"
        elif order.status == "pending":
            order.status = "active"

    def create_order(self, domain: object, site: object) -> dict[str, Any]:
        """``POST /orders``: charge the price, return the documented answer (no ``id``)."""
        if not isinstance(domain, str) or not domain or not isinstance(site, str) or not site:
            raise SandboxError(400, "Fields 'domain' and 'site' are required")
        offer = self.domains.get(domain)
        if offer is None:
            raise SandboxError(400, f"Domain '{domain}' is not available")
        if self.balance < offer.price:
            raise SandboxError(400, "Insufficient balance")
        self.balance -= offer.price
        number = next(self._numbers)
        order = _Order(
            id=f"ord_{number:x}",
            order_id=f"API-{number}",
            email=f"kp{number}@{domain}",
            domain=domain,
            site=site,
            price=offer.price,
            created_at=self.now(),
            duration=self.order_duration,
        )
        self._orders[order.order_id] = order
        return order.to_json(with_id=False)

    def list_orders(
        self, page: int, limit: int, status: str | None, domain: str | None
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """``GET /orders``: newest first, filtered, one page, and the pagination."""
        if page < 1 or limit < 1:
            raise SandboxError(400, "page and limit must be positive integers")
        for order in self._orders.values():
            self._refresh(order)
        chosen = [
            o
            for o in reversed(self._orders.values())
            if (status is None or o.status == status) and (domain is None or o.domain == domain)
        ]
        window = chosen[(page - 1) * limit : page * limit]
        pages = math.ceil(len(chosen) / limit)
        pagination = {"page": page, "limit": limit, "total": len(chosen), "pages": pages}
        return [o.to_json() for o in window], pagination

    def get_order(self, order_id: str) -> dict[str, Any]:
        """``GET /orders/{orderId}``'s data, with ``duration`` and ``endTime``."""
        return self._order(order_id).to_json(details=True)

    def cancel_order(self, order_id: str) -> tuple[Decimal, str]:
        """``DELETE /orders/{orderId}``: the refund (0 once mail came) and the message."""
        order = self._order(order_id)
        if order.status not in {"pending", "active"}:
            raise SandboxError(400, f"Order cannot be cancelled: it is {order.status}")
        order.status = "cancelled"
        if order.mail:
            return Decimal("0"), "Order cancelled; no refund, mail was received"
        self.balance += order.price
        return order.price, "Order cancelled and refund processed"

    def messages(self, order_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """``GET /orders/{orderId}/messages``: the visible mail and the order (snake_case date)."""
        order = self._order(order_id)
        summary = {
            "id": order.id,
            "email": order.email,
            "domain": order.domain,
            "status": order.status,
            "created_at": iso(order.created_at),
        }
        return [m.to_json() for m in order.visible()], summary

    def start_polling(self, order_id: str) -> dict[str, Any]:
        """``POST /orders/{orderId}/start-polling``: only for active orders that have mail."""
        order = self._order(order_id)
        if order.status != "active":
            raise SandboxError(400, f"Polling is only available for active orders ({order.status})")
        if not order.mail:
            raise SandboxError(400, "Polling requires at least one received email")
        order.polling = True
        return {"orderId": order.order_id, "pollingStatus": "active"}

    def deliver(self, order_id: str, sender: str, subject: str, content: str) -> dict[str, Any]:
        """Put a mail in an order's mailbox (the sandbox's own operation)."""
        order = self._order(order_id)
        if order.status not in {"pending", "active"}:
            raise SandboxError(400, f"Order {order_id} is {order.status}: it receives no mail")
        message = _Message(f"msg_{next(self._message_ids)}", sender, subject, content, self.now())
        order.mail.append(message)
        return message.to_json()

    def order_count(self) -> int:
        """How many orders were ever bought."""
        return len(self._orders)

    def spent(self) -> Decimal:
        """The money held by orders that were not refunded."""
        return sum(
            (o.price for o in self._orders.values() if o.status != "cancelled" or o.mail),
            Decimal("0"),
        )
