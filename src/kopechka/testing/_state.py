"""The sandbox's model of the Kopechka service: a pure state machine on a clock it is given.

Rule 1: no I/O and no threads here. Every operation is a method that takes plain values, changes
the state, and returns plain values (JSON-ready dicts in the documented spellings, money as the
``Decimal`` it is) or raises ``SandboxError(status, message)``. Rule 2: the HTTP server
(``_server``) and the routing (``_app``) never touch the state except through these methods, under
the app's lock.

Time: ``now()`` is the clock it was given plus everything ``advance`` added. The sandbox gives it
the real clock, or a frozen one for virtual time (then only ``advance`` moves it).

Lifecycle of an order: bought ``pending`` (the create answer), ``active`` from then on, ``expired``
once ``duration`` minutes have passed on the clock, or ``cancelled``. The balance is charged on
create and refunded on cancel only when no mail came. An order's first message is visible at
once; the ones after it only once start-polling has been called for the order (the vendor's rule).
Mail may be scheduled for later (``deliver(..., after=s)``): it lands when the clock reaches it, if
the order is still open then; every read of an order first brings it up to the clock.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["DEFAULT_DOMAINS", "SandboxDomain", "SandboxError", "SandboxState", "amount"]

#: Money the sandbox holds is below this and has at most 8 decimals: sums stay exact.
MAX_MONEY = Decimal("1e15")
#: The clock never moves further than this (100 years) in total.
MAX_ADVANCE = 100 * 365.25 * 86400.0
MAX_DURATION_MINUTES = 525_600  # a year
OPEN = frozenset({"pending", "active"})


class SandboxError(Exception):
    """A refusal of the emulated service: an HTTP status and the ``message`` of its body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def amount(value: object, name: str) -> Decimal:
    """An amount of money, exactly as written: ``"5.00"`` -> ``Decimal("5.00")``.

    Raises:
        ValueError: Not a number, negative, not finite, 1e15 or more, or finer than 8 decimals.
    """
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str, float)):
        raise ValueError(f"{name} must be an amount such as 5.00, got {value!r}")
    try:
        # a float goes through its shortest repr (0.1 -> "0.1"), never its binary expansion
        money = Decimal(repr(value) if isinstance(value, float) else value)
    except InvalidOperation:
        raise ValueError(f"{name} must be an amount such as 5.00, got {value!r}") from None
    exponent = money.as_tuple().exponent
    if not money.is_finite() or not isinstance(exponent, int):
        raise ValueError(f"{name} must be a finite amount, got {value!r}")
    if money < 0 or money >= MAX_MONEY or exponent < -8:
        raise ValueError(f"{name} must be >= 0, below 1e15, with at most 8 decimals: {value!r}")
    return money


@dataclass(frozen=True)
class SandboxDomain:
    """A domain on sale in the sandbox.

    Attributes:
        name: The domain, e.g. ``example.com``.
        price: What an order on it costs, served as written (``Decimal("5.00")`` -> ``5.00``).
        category: Shown by ``GET /domains``.
        description: Shown by ``GET /domains``.
        listed: Shown by ``GET /domains`` (``False``: on sale all the same, as a domain the
            service sells but has not listed yet).
    """

    name: str
    price: Decimal
    category: str = "popular"
    description: str = "Popular domain for general use"
    listed: bool = True


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
    scheduled: list[_Message] = field(default_factory=list)

    @property
    def end_time(self) -> datetime:
        return self.created_at + timedelta(minutes=self.duration)

    def visible(self) -> list[_Message]:
        return list(self.mail) if self.polling else self.mail[:1]

    def catch_up(self, now: datetime) -> None:
        """Land the scheduled mail that is due, then expire the order if its time is up."""
        if self.status not in OPEN:
            return
        due = [m for m in self.scheduled if m.received_at <= now and m.received_at < self.end_time]
        if due:
            self.mail.extend(sorted(due, key=lambda m: m.received_at))
            self.scheduled = [m for m in self.scheduled if m not in due]
        if now >= self.end_time:
            self.status, self.scheduled = "expired", []
        elif self.status == "pending":
            self.status = "active"

    def to_json(self, *, with_id: bool = True, details: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id} if with_id else {}
        body.update(
            orderId=self.order_id, email=self.email, domain=self.domain, site=self.site,
            status=self.status, price=self.price,
        )  # fmt: skip
        if details:
            body["duration"] = self.duration
        body["createdAt"] = iso(self.created_at)
        if details:
            body["endTime"] = iso(self.end_time)
        return body


class SandboxState:
    """One account (key, balance, profile), the domains on sale, orders and their mail.

    Args:
        api_key: The key the account accepts.
        balance: The starting balance.
        domains: The domains on sale.
        order_duration: Minutes an order lives.
        clock: The wall clock (``datetime.now(utc)`` by default; a constant one for virtual time).
        ticker: The monotonic clock in seconds (``time.monotonic`` by default; ``lambda: 0.0`` for
            virtual time).

    Raises:
        ValueError: An argument is out of range.
    """

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        balance: Decimal | int | str = Decimal("100.00"),
        domains: tuple[SandboxDomain, ...] = DEFAULT_DOMAINS,
        order_duration: int = 10,
        clock: Callable[[], datetime] | None = None,
        ticker: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("api_key must be a non-empty string")
        self.api_key = api_key
        self.initial_balance = amount(balance, "balance")
        self.domains = {d.name: _checked_domain(d) for d in domains}
        if isinstance(order_duration, bool) or not isinstance(order_duration, int):
            raise ValueError(f"order_duration must be whole minutes, got {order_duration!r}")
        if not 1 <= order_duration <= MAX_DURATION_MINUTES:
            raise ValueError(f"order_duration must be 1 to {MAX_DURATION_MINUTES} minutes")
        self.order_duration = order_duration
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._ticker = ticker
        self.elapsed = 0.0
        """Seconds ``advance`` added to the clock in total."""
        self.reset()

    def reset(self) -> None:
        """Back to the starting balance with no orders; the clock keeps its time."""
        self.balance = self.initial_balance
        self._orders: dict[str, _Order] = {}
        self._numbers = itertools.count(FIRST_ORDER_NUMBER)
        self._message_ids = itertools.count(1)
        self.started_at = self.now()

    # --- clock and keys ---

    def now(self) -> datetime:
        """The sandbox's time: the clock plus everything ``advance`` added."""
        return self._clock() + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        """Seconds on a monotonic clock that ``advance`` moves too (rate limits, client waits)."""
        return self._ticker() + self.elapsed

    def advance(self, seconds: float) -> None:
        """Move the clock forward: orders expire and scheduled mail lands on it.

        Raises:
            SandboxError: 400, not a finite number of seconds from 0 to 100 years in total.
        """
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise SandboxError(400, "advance takes a number of seconds")
        if not (math.isfinite(seconds) and 0 <= seconds <= MAX_ADVANCE - self.elapsed):
            raise SandboxError(400, "advance takes 0 to 100 years in seconds, in total")
        self.elapsed += float(seconds)

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
            "balance": self.balance,
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
                "id": "dom_" + "".join(c if c.isalnum() else "_" for c in name),
                "name": name,
                "price": d.price,
                "category": d.category,
                "description": d.description,
            }
            for name, d in self.domains.items()
            if d.listed
        ]

    # --- orders ---

    def _order(self, order_id: str) -> _Order:
        order = self._orders.get(order_id)
        if order is None:
            raise SandboxError(404, "Order not found")
        order.catch_up(self.now())
        return order

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
            id=f"ord_{number:x}", order_id=f"API-{number}", email=f"kp{number}@{domain}",
            domain=domain, site=site, price=offer.price, created_at=self.now(),
            duration=self.order_duration,
        )  # fmt: skip
        self._orders[order.order_id] = order
        return order.to_json(with_id=False)

    def list_orders(
        self, page: int, limit: int, status: str | None, domain: str | None
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """``GET /orders``: newest first, filtered, one page, and the pagination."""
        if page < 1 or limit < 1:
            raise SandboxError(400, "page and limit must be positive integers")
        now = self.now()
        for order in self._orders.values():
            order.catch_up(now)
        chosen = [
            o
            for o in reversed(self._orders.values())
            if (status is None or o.status == status) and (domain is None or o.domain == domain)
        ]
        window = chosen[(page - 1) * limit : page * limit]
        pages = -(-len(chosen) // limit)
        pagination = {"page": page, "limit": limit, "total": len(chosen), "pages": pages}
        return [o.to_json() for o in window], pagination

    def get_order(self, order_id: str) -> dict[str, Any]:
        """``GET /orders/{orderId}``'s data, with ``duration`` and ``endTime``."""
        return self._order(order_id).to_json(details=True)

    def cancel_order(self, order_id: str) -> tuple[Decimal, str]:
        """``DELETE /orders/{orderId}``: the refund (0 once mail came) and the message."""
        order = self._order(order_id)
        if order.status not in OPEN:
            raise SandboxError(400, f"Order cannot be cancelled: it is {order.status}")
        order.status, order.scheduled = "cancelled", []
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

    def deliver(
        self, order_id: str, sender: str, subject: str, content: str, *, after: float = 0.0
    ) -> dict[str, Any]:
        """Put a mail in an order's mailbox now, or ``after`` seconds from now on the clock."""
        order = self._order(order_id)
        if order.status not in OPEN:
            raise SandboxError(400, f"Order {order_id} is {order.status}: it receives no mail")
        if not (math.isfinite(after) and 0 <= after <= MAX_ADVANCE):
            raise SandboxError(400, "after takes a finite number of seconds >= 0")
        when = self.now() + timedelta(seconds=after)
        message = _Message(f"msg_{next(self._message_ids)}", sender, subject, content, when)
        (order.scheduled if after > 0 else order.mail).append(message)
        return message.to_json()

    def order_by_email(self, address: str) -> str:
        """The id of the order that owns ``address`` (case-insensitive).

        Raises:
            SandboxError: 404, no order has that address.
        """
        wanted = address.strip().lower()
        for order in self._orders.values():
            if order.email.lower() == wanted:
                return order.order_id
        raise SandboxError(404, f"No order has the address {address!r}")

    def order_count(self) -> int:
        """How many orders were ever bought."""
        return len(self._orders)

    def spent(self) -> Decimal:
        """The money held by orders that were not refunded."""
        now = self.now()
        for order in self._orders.values():
            order.catch_up(now)
        return sum(
            (o.price for o in self._orders.values() if o.status != "cancelled" or o.mail),
            Decimal("0"),
        )


def _checked_domain(domain: SandboxDomain) -> SandboxDomain:
    if not isinstance(domain, SandboxDomain) or not domain.name or len(domain.name) > 253:
        raise ValueError(f"a domain on sale needs a name of 1 to 253 characters: {domain!r}")
    price = amount(domain.price, f"the price of {domain.name}")
    return SandboxDomain(domain.name, price, domain.category, domain.description, domain.listed)
