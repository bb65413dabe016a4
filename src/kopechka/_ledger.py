"""The ``Ledger``: one client's purchases in flight, the orders it returned, its spend, its prices.

The one stateful piece of the money rules (``_money``): thread-safe, shared by every thread using
the client, and held by the client for its whole life. It owns bookkeeping only: it must not send
requests, and its only blocking call (``wait_settled``) is one a driver chooses to make.

``spent`` is what the client was charged (a purchase whose answer was lost counts, fail closed,
until its order is found) minus the refunds it got for its own orders; ``budget=`` caps it.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

from ._exceptions import SpendLimitError

if TYPE_CHECKING:
    from ._models import Domain, Order

__all__ = ["KEEP_RETURNED", "PRICE_TTL", "Ledger"]

PRICE_TTL = 60.0
"""Seconds the ``GET /domains`` price list is trusted by the spend guards."""
KEEP_RETURNED = 3600.0
"""Seconds a returned order id is remembered (far longer than any candidate window)."""


def _same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


@dataclass
class _Purchase:
    domain: str
    site: str
    reserved: Decimal


_LEDGERS: weakref.WeakSet[Ledger] = weakref.WeakSet()


class Ledger:
    """One client's purchases: in flight, returned to callers, spent against its budget, priced.

    Thread-safe; shared by every thread using the client. ``spent`` counts what this client was
    charged (an answer that was lost counts until its order is found) minus the refunds it got for
    its own orders.
    """

    def __init__(self, budget: Decimal | None, *, clock: Callable[[], float] = time.monotonic):
        self.budget = budget
        self._clock = clock
        self._anchor = (datetime.now(timezone.utc), clock())
        self._new_locks()
        self._tokens = itertools.count(1)
        self._flying: dict[int, _Purchase] = {}
        self._returned: dict[str, float] = {}  # order id -> when (insertion order = time order)
        self._held: dict[str, Decimal] = {}  # order id (or "?token") -> what it cost us
        self._spent = Decimal(0)
        self._prices: tuple[float, dict[str, Decimal]] | None = None
        _LEDGERS.add(self)

    def _new_locks(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def _forked(self) -> None:
        """In a forked child: fresh locks (another thread may have held one), and no purchase in
        flight (their threads were not copied). What was spent stays: a budget is per process."""
        self._new_locks()
        self._flying.clear()

    def wall(self) -> datetime:
        """Now, as an aware UTC time: the system's clock; for a client given another ``clock``
        (a sandbox's virtual time), the time when the client was made plus that clock's progress."""
        if self._clock is time.monotonic:
            return datetime.now(timezone.utc)
        made, at = self._anchor
        return made + timedelta(seconds=self._clock() - at)

    @property
    def spent(self) -> Decimal:
        """Charged minus refunded, including purchases whose answer was lost."""
        with self._lock:
            return self._spent

    # purchases

    def begin(self, domain: str, site: str, price: Decimal | None) -> int:
        """Record a purchase about to be sent, holding its listed price against the budget.

        Raises:
            SpendLimitError: The price would take the spend past the budget.
        """
        reserve = price if price is not None else Decimal(0)
        with self._lock:
            if self.budget is not None:
                left = self.budget - self._spent - self._reserved()
                if reserve > left:
                    raise SpendLimitError(
                        f"buying on {domain} for {reserve} would pass the client's budget of "
                        f"{self.budget} ({left} left)",
                        price=reserve,
                        cap=left,
                    )
            token = next(self._tokens)
            self._flying[token] = _Purchase(domain, site, reserve)
            return token

    def _reserved(self) -> Decimal:
        return sum((p.reserved for p in self._flying.values()), Decimal(0))

    def bought(self, token: int, order: Order) -> Decimal | None:
        """Record a purchase returned to its caller; return the budget it overran, else ``None``."""
        with self._changed:
            self._flying.pop(token, None)
            self._returned[order.order_id] = self._clock()
            self._prune()
            self._spent += order.price
            self._held[order.order_id] = order.price
            self._changed.notify_all()
            if self.budget is None or self._spent + self._reserved() <= self.budget:
                return None
            return self.budget - (self._spent - order.price) - self._reserved()

    def failed(self, token: int, *, unknown: bool) -> None:
        """Record a purchase that failed; an unknown outcome keeps its price spent (fail closed)."""
        with self._changed:
            purchase = self._flying.pop(token, None)
            if purchase is not None and unknown:
                self._spent += purchase.reserved
                self._held[f"?{token}"] = purchase.reserved
            self._changed.notify_all()

    def attribute(self, token: int, order_id: str) -> None:
        """A lost answer's order was found: its refund will give its price back."""
        with self._lock:
            amount = self._held.pop(f"?{token}", None)
            if amount is not None:
                self._held[order_id] = amount

    def not_bought(self, token: int) -> None:
        """A complete listing shows no order for a lost answer: it bought nothing."""
        with self._lock:
            self._spent -= self._held.pop(f"?{token}", Decimal(0))

    def refunded(self, order_id: str, amount: Decimal) -> None:
        """Give back a refund for an order this client was charged for (up to what it cost)."""
        with self._lock:
            held = self._held.pop(order_id, None)
            if held is not None:
                self._spent -= min(held, amount)

    def returned(self) -> frozenset[str]:
        """The orders returned to callers within ``KEEP_RETURNED`` seconds."""
        with self._lock:
            self._prune()
            return frozenset(self._returned)

    def _prune(self) -> None:
        horizon = self._clock() - KEEP_RETURNED
        while self._returned:
            oldest = next(iter(self._returned))
            if self._returned[oldest] >= horizon:
                return
            del self._returned[oldest]
            self._held.pop(oldest, None)

    def in_flight(self, domain: str, site: str) -> frozenset[int]:
        """The purchases of this client on that domain and site still waiting for their answer."""
        with self._lock:
            return frozenset(
                t
                for t, p in self._flying.items()
                if _same(p.domain, domain) and _same(p.site, site)
            )

    def settled(self, tokens: frozenset[int]) -> bool:
        """Whether all these purchases have ended (for drivers that poll)."""
        with self._lock:
            return not tokens & self._flying.keys()

    def wait_settled(self, tokens: frozenset[int], timeout: float) -> bool:
        """Block until these purchases have ended, or ``timeout`` s passed; ``True`` if they did."""
        with self._changed:
            return self._changed.wait_for(lambda: not tokens & self._flying.keys(), timeout)

    # prices

    def price(self, domain: str, now: float) -> tuple[bool, Decimal | None]:
        """(fresh, price): whether the cached list is fresh, and the domain's price in it."""
        with self._lock:
            if self._prices is None or now - self._prices[0] >= PRICE_TTL:
                return False, None
            return True, self._prices[1].get(domain.casefold())

    def store_prices(self, domains: Sequence[Domain], now: float) -> None:
        """Cache a price list read at ``now``."""
        with self._lock:
            self._prices = (now, {d.name.casefold(): d.price for d in domains})


def _after_fork_in_child() -> None:  # a lock held by another thread at fork would never be freed
    for ledger in list(_LEDGERS):
        ledger._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
