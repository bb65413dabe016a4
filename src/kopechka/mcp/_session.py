"""One agent's session: its quotes, the orders it bought, its lost answers, its shutdown refunds.

Owns what the MCP tools need beyond the client: the short-lived quotes (a ``confirmation_id`` bound
to a domain, a site and a price), the orders this session bought (the only ones its tools show or
touch), the lost purchase answers (no new purchase for that site without a new quote), the
allowlists and the open-order cap, and the refunds on shutdown (the Mailbox rule, ``_money``'s
``mailbox_exit``, for every order without mail, in parallel). Results are plain JSON-ready dicts;
a guard's "no" is a ``RefusalError`` of one sentence.

It must not enforce money by itself: the budget and the price caps are the client's ledger's
(``budget=`` and ``max_price=`` of ``create_order``), a lost answer counts as spent there. It must
not import the SDK, and nothing it returns carries the key or a header.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .. import _flow, _money
from .._client import KopechkaClient
from .._exceptions import (
    APIError,
    KopechkaError,
    OrderClosedError,
    OrderOutcomeUnknownError,
    SpendLimitError,
    WaitCancelledError,
    WaitTimeoutError,
)
from .._face import refunding
from .._format import inert
from .._models import Domain, Message, Order
from ._journal import Journal
from ._options import Guards

__all__ = ["MAX_WAIT", "RefusalError", "Session"]

MAX_WAIT = 55.0
"""The longest one wait tool call may last, in seconds (clients time calls out at about 60)."""
MIN_SWEEP_AGE = 300
"""The youngest order the ``sweep`` tool may cancel, in seconds: far beyond an agent's waits (55 s
steps), so that no sign-up still waiting for its mail is swept, here or in another process."""
POLL_INTERVAL = 2.0
PAGE_SIZE = 20
DONT_RETRY = "tell the user, and do not retry with other arguments"
LATE_REFUND = 2.0
"""Seconds a purchase whose answer comes back after shutdown began may take to refund itself."""
SWEEP_HINT = "run `kopechka sweep --commit` later to refund what it may have bought"

NEXT_STEP = {
    "code": "Enter this code on the site; the address is paid for and needs no cancel.",
    "message": "Use this message; call get_messages with include_body=true to read its body.",
    "no_mail_yet": (
        "No mail yet, which is not a failure and needs no new purchase: call this tool again "
        "with the same order_id."
    ),
    "order_closed": (
        "The order is closed (cancelled or expired) and will get no mail: tell the user, and "
        "quote a new address only if they still want one."
    ),
}


class RefusalError(Exception):
    """A guard said no, or a call failed: one sentence for the model (what to tell the user)."""


@dataclass
class Quote:
    """A quoted purchase: usable once, before ``expires``, for this domain, site and price."""

    id: str
    domain: str
    site: str
    price: Decimal
    expires: float
    seq: int


@dataclass
class Held:
    """An order this session bought, and what it knows of it."""

    order: Order
    got_mail: bool = False
    closed: bool = False
    refunded: Decimal | None = None


@dataclass
class Lost:
    """A purchase whose answer was lost: spent (fail closed) until ``sweep`` shows otherwise."""

    domain: str
    site: str
    price: Decimal
    candidates: list[str] = field(default_factory=list)


def _money_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def order_view(order: Order) -> dict[str, Any]:
    """An order as the models write it (snake_case, money as strings, ISO times)."""
    data = order.model_dump(
        mode="json",
        include={
            "order_id",
            "email",
            "domain",
            "site",
            "status",
            "price",
            "created_at",
            "end_time",
        },
    )
    return {k: data.get(k) for k in ORDER_FIELDS}


ORDER_FIELDS = ("order_id", "email", "domain", "site", "status", "price", "created_at", "end_time")


def message_view(message: Message, *, body: bool) -> dict[str, Any]:
    """A message: who, what, when; its content only when asked for."""
    return {
        "id": message.id,
        "sender": message.sender,
        "subject": message.subject,
        "received_at": message.received_at.isoformat(),
        "content": message.content if body else None,
    }


def _error_text(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, APIError) else str(exc)
    return inert(text).rstrip(". ")[:300]


class _Insides:
    """The session's only reach into the client beyond its public API: the ledger (the budget it
    enforces, what it counts as spent, the price list its guards judge by) and the bounded exit
    path that a mailbox leaves by."""

    def __init__(self, client: KopechkaClient) -> None:
        self._client = client
        self.budget = client._ledger.budget

    def spent(self) -> Decimal:
        return self._client._ledger.spent

    def store_prices(self, domains: list[Domain]) -> None:
        self._client._ledger.store_prices(domains, self._client._clock())

    def deadline(self, seconds: float) -> float:
        """``seconds`` from now, on the client's clock (what its requests' deadlines are on)."""
        return self._client._clock() + seconds

    def exit(self, order_id: str, deadline: float) -> _money.ExitOutcome:
        """The Mailbox's exit for an order without known mail, each request ending by
        ``deadline`` and sent even after the client began closing; a cancel learned from the
        order's status is credited to the budget as its own answer would have been."""
        with refunding():
            outcome = _flow.run(
                _money.mailbox_exit(order_id, got_mail=False, status=None),
                lambda op: self._client._exit_call(op, deadline),
            )
        if outcome.learned and outcome.cancellation is not None:
            self._client._ledger.refunded(order_id, outcome.cancellation.refund_amount)
        return outcome


class Session:
    """The state of one ``kopechka mcp`` server, shared by its tools (thread-safe).

    Args:
        client: The client the tools use; its ``budget=`` is the session budget.
        guards: The operator's guards.
        journal: Where purchases, refunds and lost answers are written.
        clock: Monotonic seconds (quotes expire on it).
        poll_interval: Seconds between looks at a mailbox during a wait.

    Raises:
        ValueError: The client's budget is not ``guards.budget``.
    """

    def __init__(
        self,
        client: KopechkaClient,
        guards: Guards,
        journal: Journal | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self._insides = _Insides(client)
        if self._insides.budget != guards.budget:
            raise ValueError(
                "make the client with budget=guards.budget: the client's ledger enforces it"
            )
        self.client, self.guards = client, guards
        self.journal = journal if journal is not None else Journal(None)
        self._clock, self._poll = clock, poll_interval
        self._lock = threading.Condition()
        self._quotes: dict[str, Quote] = {}
        self._orders: dict[str, Held] = {}
        self._lost: list[Lost] = []
        self._lost_at: dict[str, int] = {}  # site (case-folded) -> the quote number at the loss
        self._seq = itertools.count(1)
        self._flying: dict[str, Quote] = {}  # quote id -> its purchase, sent, answer not back yet
        self._settling = False  # shutdown took its list of orders to refund
        self.closing = False
        self.stop = threading.Event()
        """Set on shutdown: waits in progress end at once."""

    # --- reads ----------------------------------------------------------------------------

    def budget_left(self) -> Decimal | None:
        """What the session may still spend (the ledger's count), or ``None`` without a budget."""
        if self.guards.budget is None:
            return None
        return self.guards.budget - self._insides.spent()

    def balance(self) -> dict[str, Any]:
        """``{balance}``."""
        return {"balance": str(self._call(self.client.get_balance))}

    def domains(self) -> dict[str, Any]:
        """``{domains: [{name, price, allowed}]}``: allowed by the allowlist and the price cap."""
        listed = self._call(self.client.get_domains)
        cap = self.guards.max_price
        return {
            "domains": [
                {
                    "name": d.name,
                    "price": str(d.price),
                    "allowed": self.guards.domain_allowed(d.name)
                    and (cap is None or d.price <= cap),
                }
                for d in listed
            ]
        }

    def list_orders(self, status: str | None, page: int) -> dict[str, Any]:
        """This session's orders (newest first), refreshed from the server, a page of 20."""
        with self._lock:
            ids = list(reversed(self._orders))
        chosen = ids[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        orders = [self._refresh(i) for i in chosen]
        if status is not None:
            orders = [o for o in orders if str(o["status"]).casefold() == status.casefold()]
        pages = max(1, -(-len(ids) // PAGE_SIZE))
        return {"orders": orders, "page": page, "pages": pages, "total": len(ids)}

    def get_order(self, order_id: str) -> dict[str, Any]:
        """One of this session's orders, as the server has it now."""
        self._own(order_id)
        return self._refresh(order_id)

    def _refresh(self, order_id: str) -> dict[str, Any]:
        order = self._call(self.client.get_order, order_id)
        with self._lock:
            held = self._orders[order_id]
            if str(order.status) in _money.SETTLED:
                held.closed = True
        return order_view(order)

    def _own(self, order_id: str) -> Held:
        with self._lock:
            held = self._orders.get(order_id)
        if held is None:
            raise RefusalError(
                f"Order {inert(order_id)[:60]} was not bought by this session, so it cannot be "
                "used here; use an order_id that buy_address returned."
            )
        return held

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (KopechkaError, ValueError) as exc:
            raise RefusalError(
                f"The Kopechka call failed ({_error_text(exc)}); {DONT_RETRY}."
            ) from None

    # --- quote and buy --------------------------------------------------------------------

    def _listed(self, domain: str) -> Decimal | None:
        """The domain's price now (``None``: not on sale); the ledger's price list is refreshed
        with it, so that its ``max_price`` check judges the same prices as the quote."""
        domains = self._call(self.client.get_domains)
        self._insides.store_prices(domains)
        return {d.name.casefold(): d.price for d in domains}.get(domain.strip().casefold())

    def _verdict(
        self, domain: str, site: str, price: Decimal | None, *, preview: bool
    ) -> str | None:
        """Why the guards refuse this purchase now, or ``None`` when they allow it.

        The price cap and the budget are previewed for a quote only: at purchase time the
        client's ledger enforces them (``max_price=``, ``budget=``)."""
        g = self.guards
        if not g.site_allowed(site):
            return f"the operator does not allow purchases for {site}"
        if not g.domain_allowed(domain):
            return f"the operator does not allow purchases on {domain}"
        if price is None:
            return f"{domain} is not on sale (see list_domains)"
        if preview and g.max_price is not None and price > g.max_price:
            return f"{domain} costs {price}, above the operator's limit of {g.max_price} per order"
        left = self.budget_left()
        if preview and left is not None and price > left:
            return f"{domain} costs {price} and the session budget has {left} left"
        if self.open_count() >= g.max_open:
            return f"the session already holds {g.max_open} orders without mail (the limit)"
        if self.closing:
            return "the server is shutting down"
        return None

    def open_count(self) -> int:
        """Orders without mail this session holds, plus lost answers not yet accounted for."""
        with self._lock:
            held = sum(1 for h in self._orders.values() if not (h.got_mail or h.closed))
            return held + len(self._lost) + len(self._flying)

    def quote(self, domain: str, site: str) -> dict[str, Any]:
        """The dry run: price, the guards' verdict, budget left, and a ``confirmation_id``."""
        domain, site = domain.strip(), site.strip()
        if not domain or not site:
            raise RefusalError(
                "Both domain and site must be given; ask the user which site it is for."
            )
        price = self._listed(domain)
        reason = self._verdict(domain, site, price, preview=True)
        quote_id = None
        if reason is None and price is not None:
            quote_id = "q-" + secrets.token_urlsafe(12)
            with self._lock:
                self._prune()
                self._quotes[quote_id] = Quote(
                    quote_id, domain, site, price, self._clock() + self.guards.quote_ttl,
                    next(self._seq),
                )  # fmt: skip
        return {
            "confirmation_id": quote_id,
            "price": _money_text(price),
            "allowed": reason is None,
            "reason": reason,
            "budget_left": _money_text(self.budget_left()),
        }

    def _prune(self) -> None:
        now = self._clock()
        for key in [k for k, q in self._quotes.items() if q.expires <= now]:
            del self._quotes[key]

    def take_quote(self, confirmation_id: str, *, keep: bool = False) -> Quote:
        """Use a quote up (each is good for one purchase attempt), or only look at it (``keep``).

        Raises:
            RefusalError: Unknown, expired, or made before a lost answer for the same site.
        """
        with self._lock:
            self._prune()
            if keep:
                quote = self._quotes.get(confirmation_id)
            else:
                quote = self._quotes.pop(confirmation_id, None)
            lost_at = self._lost_at.get(quote.site.casefold(), 0) if quote else 0
        if quote is None:
            raise RefusalError(
                "This confirmation_id is unknown, used or expired; call quote_address again and "
                "show the user the new price."
            )
        if quote.seq <= lost_at:
            raise RefusalError(
                f"An earlier purchase for {quote.site} lost its answer and counts as spent, so "
                "this older quote cannot be used; tell the user, and call quote_address again "
                "only if they want another address."
            )
        return quote

    def buy(self, quote: Quote) -> dict[str, Any]:
        """Buy what was quoted, if the guards still allow it and the price has not moved up.

        Raises:
            RefusalError: A guard, a moved price, a lost answer or a failed purchase (one sentence).
        """
        price = self._listed(quote.domain)
        if price is not None and price > quote.price:
            raise RefusalError(
                f"The price of {quote.domain} moved from {quote.price} to {price} after the "
                f"quote, so nothing was bought; {DONT_RETRY} unless they accept the new price."
            )
        with self._lock:  # the open-order cap holds for purchases made at the same time
            reason = self._verdict(quote.domain, quote.site, quote.price, preview=False)
            if reason is None:
                self._flying[quote.id] = quote
        if reason is not None:
            raise RefusalError(f"Refused: {reason}; nothing was bought; {DONT_RETRY}.")
        try:
            order = self._purchase(quote)
        finally:
            with self._lock:
                self._flying.pop(quote.id, None)
                self._lock.notify_all()
        return {"order_id": order.order_id, "email": order.email, "price": str(order.price)}

    def _purchase(self, quote: Quote) -> Order:
        cap = (
            quote.price
            if self.guards.max_price is None
            else min(quote.price, self.guards.max_price)
        )
        try:
            order = self.client.create_order(quote.domain, quote.site, max_price=cap)
        except OrderOutcomeUnknownError as exc:
            # the ledger keeps it spent unless a complete listing showed nothing was bought
            self._lost_answer(quote, exc, counted=exc._counted)  # the ledger's verdict
            raise RefusalError(
                f"The purchase for {quote.site} may have gone through but its answer was lost, "
                "so it counts as spent until sweep finds it; tell the user, and do not buy "
                "again for this site without a new quote."
            ) from None
        except SpendLimitError as exc:
            raise RefusalError(
                f"Refused by the spend guards: {_error_text(exc)}; {DONT_RETRY}."
            ) from None
        except (KopechkaError, ValueError) as exc:
            raise RefusalError(
                f"The purchase failed and nothing was bought ({_error_text(exc)}); {DONT_RETRY}."
            ) from None
        with self._lock:
            self._orders[order.order_id] = Held(order)
            late = self._settling  # shutdown's refunds did not see it: it refunds itself
        self.journal.write(
            "purchase", order_id=order.order_id, domain=order.domain, site=order.site,
            price=order.price, email=order.email, confirmation_id=quote.id,
        )  # fmt: skip
        if late:
            self._refund_late(order)
        return order

    def _refund_late(self, order: Order) -> None:
        """A purchase answered after shutdown took its list: refund it now (the Mailbox rule)."""
        deadline = self._insides.deadline(LATE_REFUND)
        settled = self._settle(
            [order.order_id], {order.order_id: self._insides.exit(order.order_id, deadline)}
        )
        if settled["refunded"]:
            raise RefusalError(
                f"The server was shutting down when the address for {order.site} was bought, so "
                "it was cancelled and refunded at once; tell the user that nothing is left to use."
            )
        if settled["failed"]:
            raise RefusalError(
                f"The server was shutting down when the address for {order.site} was bought, and "
                "cancelling it failed; tell the user to run kopechka sweep to refund it."
            )

    def _lost_answer(self, quote: Quote, exc: OrderOutcomeUnknownError, *, counted: bool) -> None:
        """Block older quotes for the site; hold the loss as open and unknown while it is spent."""
        ids = [c.order_id for c in exc.candidates]
        with self._lock:
            if counted:
                self._lost.append(Lost(quote.domain, quote.site, quote.price, ids))
            self._lost_at[quote.site.casefold()] = next(self._seq)
        self.journal.write(
            "unknown", domain=quote.domain, site=quote.site, price=quote.price,
            candidates=ids, confirmation_id=quote.id, counted=counted,
        )  # fmt: skip

    # --- mail -----------------------------------------------------------------------------

    def wait(
        self, order_id: str, timeout: float, *, code: bool,
        subject: str | None = None, sender: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Wait up to ``timeout`` s: a code or message, "no mail yet" or "order closed", as data."""
        self._own(order_id)
        timeout = min(max(timeout, 0.1), MAX_WAIT)
        kind = "code" if code else "message"
        result: dict[str, Any] = {"status": kind, "code": None, "message": None}
        try:
            if code:
                result["code"] = self.client.wait_for_code(
                    order_id, timeout=timeout, poll_interval=self._poll, stop=self.stop,
                    subject=subject, sender=sender,
                )  # fmt: skip
                seen = len(self._call(self.client.get_messages, order_id).messages)
            else:
                message = self.client.wait_for_message(
                    order_id, timeout=timeout, poll_interval=self._poll, stop=self.stop,
                    subject=subject, sender=sender,
                )  # fmt: skip
                result["message"] = message_view(message, body=False)
                seen = len(self._call(self.client.get_messages, order_id).messages)
            self._mark(order_id, got_mail=True)
        except OrderClosedError as exc:
            self._mark(order_id, got_mail=bool(exc.messages), closed=True)
            result["status"], seen = "order_closed", len(exc.messages)
        except (WaitTimeoutError, WaitCancelledError) as exc:
            self._mark(order_id, got_mail=bool(exc.messages))
            result["status"], seen = "no_mail_yet", len(exc.messages)
        except (KopechkaError, ValueError) as exc:
            raise RefusalError(
                f"Looking for mail failed ({_error_text(exc)}); call this tool again with the "
                "same order_id, and do not buy another address for it."
            ) from None
        result["messages_seen"] = seen
        result["next_step"] = NEXT_STEP[result["status"]]
        return result

    def _mark(self, order_id: str, *, got_mail: bool, closed: bool = False) -> None:
        with self._lock:
            held = self._orders[order_id]
            held.got_mail = held.got_mail or got_mail
            held.closed = held.closed or closed

    def messages(self, order_id: str, include_body: bool) -> dict[str, Any]:
        """The mail an order received; bodies only when asked for."""
        self._own(order_id)
        listing = self._call(self.client.get_messages, order_id)
        closed = str(listing.order.status) in _money.SETTLED
        self._mark(order_id, got_mail=bool(listing.messages), closed=closed)
        return {
            "order_id": order_id,
            "status": str(listing.order.status),
            "messages": [message_view(m, body=include_body) for m in listing.messages],
        }

    # --- refunds --------------------------------------------------------------------------

    def cancel(self, order_id: str) -> dict[str, Any]:
        """Cancel one of this session's orders; again: the same answer (idempotent)."""
        held = self._own(order_id)
        with self._lock:
            if held.refunded is not None:
                return {"order_id": order_id, "refunded": str(held.refunded)}
        cancellation = self._call(self.client.cancel_order, order_id)
        with self._lock:
            held.closed, held.refunded = True, cancellation.refund_amount
        self.journal.write("refund", order_id=order_id, amount=cancellation.refund_amount)
        return {"order_id": order_id, "refunded": str(cancellation.refund_amount)}

    def sweep(self, dry_run: bool, older_than: float) -> dict[str, Any]:
        """The account's unused orders older than ``older_than`` s (``MIN_SWEEP_AGE`` at least),
        but none of this session's own: counted, or cancelled."""
        older_than = max(older_than, MIN_SWEEP_AGE)
        report = self._call(self.client.sweep, older_than=older_than, dry_run=True)
        with self._lock:
            mine = set(self._orders)  # its tools cancel them, and shutdown refunds them
        unused = [o for o in report.cancelled if o.order_id not in mine]
        kept = len(report.kept) + len(report.cancelled) - len(unused)
        failed = len(report.failed)
        cancelled: list[str] = []
        refunded = Decimal(0)
        for order in unused:
            if dry_run:
                cancelled.append(order.order_id)
                refunded += order.price
                continue
            try:
                cancellation = self.client.cancel_order(order.order_id)
            except KopechkaError:
                failed += 1
                continue
            cancelled.append(order.order_id)
            refunded += cancellation.refund_amount
        if not dry_run:
            self._swept(set(cancelled))
            if cancelled:
                self.journal.write("sweep", cancelled=sorted(cancelled), amount=refunded)
        return {
            "dry_run": dry_run,
            "cancelled": len(cancelled),
            "refunded": str(refunded),
            "kept": kept,
            "failed": failed,
        }

    def _swept(self, cancelled: set[str]) -> None:
        with self._lock:
            for order_id in cancelled & self._orders.keys():
                self._orders[order_id].closed = True
            self._lost = [x for x in self._lost if not cancelled & set(x.candidates)]

    # --- resources ------------------------------------------------------------------------

    def spend(self) -> dict[str, Any]:
        """``kopechka://spend``: bought, refunded, open, unknown, budget left."""
        with self._lock:
            held = list(self._orders.values())
            lost = list(self._lost)
        return {
            "bought": len(held),
            "charged": str(sum((h.order.price for h in held), Decimal(0))),
            "refunded": str(sum((h.refunded or Decimal(0) for h in held), Decimal(0))),
            "open": sum(1 for h in held if not (h.got_mail or h.closed)),
            "unknown": len(lost),
            "unknown_amount": str(sum((x.price for x in lost), Decimal(0))),
            "budget": _money_text(self.guards.budget),
            "budget_left": _money_text(self.budget_left()),
        }

    def active(self) -> dict[str, Any]:
        """``kopechka://orders/active``: this session's orders not known to be closed."""
        with self._lock:
            held = [h for h in self._orders.values() if not h.closed]
        return {"orders": [order_view(h.order) | {"got_mail": h.got_mail} for h in held]}

    # --- shutdown -------------------------------------------------------------------------

    def shutdown(self, limit: float = 1.8) -> dict[str, int]:
        """Refuse new purchases, end waits, and refund every order without mail, in parallel.

        Purchases in flight are waited for up to a third of ``limit``; one still in flight then
        is journalled as ``unknown`` (``kopechka sweep`` finds what it bought), and refunds itself
        if its answer comes back later. Each refund is the Mailbox's exit rule (look for mail once
        more, cancel if none), on the client's bounded exit path: every request ends by the
        deadline, ``limit`` seconds from now. What is not done by then is journalled as such.

        Returns:
            ``{"refunded", "kept", "failed", "unknown"}``: counts.
        """
        end = time.monotonic() + limit
        with self._lock:
            self.closing = True
            self.stop.set()
            self._lock.wait_for(lambda: not self._flying, timeout=limit / 3)
            self._settling = True
            stranded = list(self._flying.values())
            pending = [oid for oid, h in self._orders.items() if not (h.got_mail or h.closed)]
        for quote in stranded:
            self.journal.write(
                "unknown", domain=quote.domain, site=quote.site, price=quote.price,
                confirmation_id=quote.id, on="shutdown",
                hint=f"the purchase was still in flight at shutdown: {SWEEP_HINT}",
            )  # fmt: skip
        deadline = self._insides.deadline(max(0.2, end - time.monotonic()))
        outcomes: dict[str, _money.ExitOutcome] = {}

        def refund(order_id: str) -> None:
            outcomes[order_id] = self._insides.exit(order_id, deadline)

        threads = [threading.Thread(target=refund, args=(o,), daemon=True) for o in pending]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, end - time.monotonic()) + 0.5)  # each request ends by then
        counts = self._settle(pending, outcomes)
        counts["unknown"] = len(stranded)
        return counts

    def _settle(
        self, pending: list[str], outcomes: dict[str, _money.ExitOutcome]
    ) -> dict[str, int]:
        counts = {"refunded": 0, "kept": 0, "failed": 0}
        for order_id in pending:
            outcome = outcomes.get(order_id)
            if outcome is not None and outcome.cancellation is not None:
                amount = outcome.cancellation.refund_amount
                with self._lock:
                    held = self._orders[order_id]
                    held.closed, held.refunded = True, amount
                self.journal.write("refund", order_id=order_id, amount=amount, on="shutdown")
                counts["refunded"] += 1
            elif outcome is not None and outcome.error is None:
                counts["kept"] += 1
            else:
                failure = None if outcome is None else outcome.error
                error = "timed out" if failure is None else _error_text(failure)
                self.journal.write("refund_failed", order_id=order_id, error=error)
                counts["failed"] += 1
        return counts
