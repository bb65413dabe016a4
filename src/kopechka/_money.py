"""Every kopeck accounted for: lost purchase answers, ``sweep``, spend guards, the Mailbox's exit.

Owns the money rules, as decisions over plain values. Each multi-step rule is a *flow*: a generator
that yields the requests it needs (``GetDomains``, ``PostOrder``, ``ListOrders``, ``GetMessages``,
``CancelOrder``, ``Settle``) and is sent their results, or has their exceptions thrown in
(``_flow``'s convention). A client runs a flow with ``_flow.run`` and a function that carries out
one request; an async client runs the very same flows with ``_flow.arun``. The one
stateful piece is the ``Ledger``: a thread-safe record of one client's purchases in flight, the
orders it returned to callers, its spend against ``budget=`` and the prices it last listed (in
``_ledger``).

This module must not send requests, sleep or read a clock by itself: clocks are passed in, and the
only blocking call (``Ledger.wait_settled``) is one a driver chooses to make. It imports no HTTP
library.

Clock-skew assumption: "created since just before the request" compares the server's ``createdAt``
with the client's wall clock at sending, less ``CLOCK_MARGIN`` (60 s). Clocks kept by NTP agree to
well under a second; a server clock more than a minute behind the client's would hide the lost order
from the candidates (``sweep`` still finds it). ``sweep`` measures an order's age on the server's
clock: the listing's ``Date`` header minus the order's ``createdAt``; only when the server sends no
``Date`` does it fall back to the client's clock, with a WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

from . import _wire
from ._config import CLOSED
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    KopechkaError,
    OrderOutcomeUnknownError,
    SpendLimitError,
)
from ._lazy import lazy
from ._ledger import Ledger
from ._policy import OrderWalk
from ._settings import checked_seconds

if TYPE_CHECKING:
    from . import _models
    from ._models import Cancellation, Domain, MessageList, Order, OrderPage
else:  # loaded on first use: importing a client declares no model (see _lazy)
    _models = lazy("kopechka._models", __name__)

__all__ = [
    "CLOCK_MARGIN",
    "CancelOrder",
    "ExitOutcome",
    "GetDomains",
    "GetMessages",
    "GetOrder",
    "Ledger",
    "ListOrders",
    "Op",
    "PostOrder",
    "Settle",
    "SweepReport",
    "candidates",
    "check_cap",
    "exit_decision",
    "mailbox_exit",
    "outcome_unknown",
    "purchase",
    "server_date",
    "split_by_age",
    "sweep",
    "unaddressable",
]

R = TypeVar("R")
logger = logging.getLogger("kopechka")

CLOCK_MARGIN = 60.0
"""Seconds before ``sent_at`` that a candidate may have been created (clock skew, whole seconds)."""
PAGE_SIZE = 100
MAX_PAGES = 100
"""Pages of live orders read per status (passes included): 10,000 orders at most."""
LIVE = frozenset({"pending", "active"})
SETTLED = CLOSED | {"completed"}
"""Order statuses with nothing to refund: closed, or mail came."""
CANCELLED = (CLOSED - {"expired"}) | {"refunded"}
"""Order statuses that say a cancel went through."""
CANCEL_TRIES = 3
"""Times a mailbox's exit sends its cancel (safe to repeat) before it gives the order up."""

# --- the requests a flow may ask for ----------------------------------------------------------


@dataclass(frozen=True)
class GetDomains:
    """``GET /domains``; the result is a ``list[Domain]``."""


@dataclass(frozen=True)
class PostOrder:
    """``POST /orders``, sent once and never retried once it may have arrived; an ``Order``."""

    domain: str
    site: str


@dataclass(frozen=True)
class ListOrders:
    """One page of ``GET /orders`` (``PAGE_SIZE`` per page); an ``OrderPage``."""

    page: int
    status: str
    domain: str | None = None
    dated: bool = False
    """Ask for ``(OrderPage, date)`` instead: the answer's ``Date`` header as an aware time, or
    ``None`` when absent or unreadable (``server_date``)."""


@dataclass(frozen=True)
class GetMessages:
    """``GET /orders/{id}/messages``; a ``MessageList``."""

    order_id: str


@dataclass(frozen=True)
class GetOrder:
    """``GET /orders/{id}``; an ``Order`` (its status tells whether a cancel went through)."""

    order_id: str


@dataclass(frozen=True)
class CancelOrder:
    """``DELETE /orders/{id}``; a ``Cancellation`` (the client credits the refund to the ledger)."""

    order_id: str


@dataclass(frozen=True)
class Settle:
    """Wait up to ``timeout`` s for these purchases of this client to end; ``True`` if they did."""

    tokens: frozenset[int]
    timeout: float


Op = GetDomains | PostOrder | ListOrders | GetMessages | GetOrder | CancelOrder | Settle
Flow = Generator[Op, Any, R]


FARM_NOTE = (
    "none cancelled (another process on the same key could own it): "
    "`kopechka sweep` refunds it once it is old enough"
)
"""What a lost mailbox purchase adds to its error: why its candidates were left alone."""

# --- pure decisions -----------------------------------------------------------------------------


def check_cap(name: str, value: object) -> Decimal | None:
    """Return a money cap as a ``Decimal`` (``None`` stays ``None``).

    Raises:
        ValueError: Not a ``Decimal``, ``int`` or numeric ``str``, or negative, or not finite.
    """
    if value is None:
        return None
    if isinstance(value, (bool, float)) or not isinstance(value, (Decimal, int, str)):
        raise ValueError(f"{name} must be a Decimal, an int or a numeric str, got {value!r}")
    try:
        cap = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not cap.is_finite() or cap < 0:
        raise ValueError(f"{name} must be a finite amount >= 0, got {value!r}")
    return cap


def outcome_unknown(error: BaseException) -> bool:
    """Whether a failed ``POST /orders`` may have bought an order all the same.

    Unknown: the request may have reached the server and no usable answer came back (a read
    timeout, a dropped connection, a 5xx, a 1xx (an interim answer is never the outcome), a 2xx
    that is not the documented JSON, an interrupt while waiting for the answer). Known: any other
    status (a 4xx, a redirect, ``success: false``) is the server's answer, and a request that
    surely never reached the server bought nothing.
    """
    if isinstance(error, APIConnectionError):
        return error.may_have_reached_server
    if isinstance(error, APIStatusError):  # an interim (1xx) answer taken as final is no answer
        return error.status_code >= 500 or error.status_code < 200
    if isinstance(error, APIResponseValidationError):
        return True
    return not isinstance(error, KopechkaError)  # an interrupt, or a failure of our own


def _same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


def candidates(
    orders: Iterable[Order],
    *,
    domain: str,
    site: str,
    sent_at: datetime,
    returned: frozenset[str] | set[str],
    margin: float = CLOCK_MARGIN,
) -> list[Order]:
    """The orders a lost ``POST /orders`` may have bought.

    Pending or active, on that domain and site, created (by the server's clock) no earlier than
    ``margin`` seconds before ``sent_at``, and never returned by this client to a caller.
    """
    since = sent_at - timedelta(seconds=margin)
    return [
        o
        for o in orders
        if str(o.status) in LIVE
        and _same(o.domain, domain)
        and _same(o.site, site)
        and o.created_at >= since
        and o.order_id not in returned
    ]


def split_by_age(
    orders: Iterable[Order], *, now: datetime, older_than: float
) -> tuple[list[Order], list[Order]]:
    """Split live orders into (young, old): old ones are ``older_than`` s old or more at ``now``."""
    young: list[Order] = []
    old: list[Order] = []
    for order in orders:
        age = (now - order.created_at).total_seconds()
        (old if age >= older_than else young).append(order)
    return young, old


def unaddressable(order_id: str) -> KopechkaError | None:
    """Why an order id from the server cannot be put in a URL (``..``, a space, a control
    character...), as the error ``sweep`` reports; ``None`` when it can."""
    try:
        _wire.order_path(order_id)
    except ValueError as exc:
        return KopechkaError(
            f"order {order_id!r} cannot be addressed in a URL ({exc}): cancel it by hand"
        )
    return None


def exit_decision(*, got_mail: bool, status: str | None) -> str:
    """What leaving a mailbox does: ``"keep"`` (mail came: it is paid for), ``"nothing"`` (the
    order is already closed: nothing to refund) or ``"cancel"`` (also when the state is unknown:
    the server refunds only an order without mail)."""
    if got_mail:
        return "keep"
    if status is not None and status in SETTLED:
        return "nothing"
    return "cancel"


# --- the ledger ---------------------------------------------------------------------------------


# --- flows ----------------------------------------------------------------------------------------


def server_date(headers: Mapping[str, str]) -> datetime | None:
    """The ``Date`` header of an answer as an aware UTC time, or ``None`` when absent or
    unreadable: the server's clock, which its ``createdAt`` values are written with."""
    text = next((value for name, value in headers.items() if name.lower() == "date"), None)
    if text is None:
        return None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def live_orders(
    domain: str | None, *, dates: list[datetime] | None = None
) -> Flow[tuple[list[Order], bool]]:
    """Every pending and active order (on ``domain``), and whether the listing was complete.

    Pages are walked as ``iter_orders`` walks them (``OrderWalk``), so orders that other threads
    buy or cancel meanwhile do not hide one from the listing. Given ``dates``, the server's time
    of each page read (its ``Date``) is added to it.
    """
    seen: dict[str, Order] = {}
    complete = True
    for status in ("pending", "active"):
        walk = OrderWalk(PAGE_SIZE)
        for _ in range(MAX_PAGES):
            if walk.page is None:
                break
            reply = yield ListOrders(walk.page, status, domain, dated=dates is not None)
            result: OrderPage = reply[0] if dates is not None else reply
            if dates is not None and reply[1] is not None:
                dates.append(reply[1])
            ids = [order.order_id for order in result.orders]
            for position in walk.take(ids, result.pagination.total, result.pagination.pages):
                seen.setdefault(ids[position], result.orders[position])
        complete = complete and walk.page is None
    return list(seen.values()), complete


def _listed_price(ledger: Ledger, domain: str, now: float) -> Flow[Decimal | None]:
    fresh, price = ledger.price(domain, now)
    if not fresh:
        domains: list[Domain] = yield GetDomains()
        ledger.store_prices(domains, now)
        _, price = ledger.price(domain, now)
    return price


def purchase(
    ledger: Ledger,
    domain: str,
    site: str,
    *,
    max_price: Decimal | None,
    wall: Callable[[], datetime],
    now: float,
    settle_timeout: float,
    for_mailbox: bool,
) -> Flow[Order]:
    """Buy one order under the spend guards; on a lost answer, find what it may have bought.

    Under a budget, a domain the price list does not show is refused before buying (fail closed:
    a crowd of purchases at an unknown price could pass any budget). With ``max_price`` alone it is
    left to the server (it refuses unknown domains), and what it charges is checked after the fact.

    Raises:
        SpendLimitError: The listed price is above ``max_price`` or the budget, or the domain is
            not listed under a budget (nothing bought), or the charged price was above a cap (the
            order was then cancelled).
        OrderOutcomeUnknownError: The answer was lost. No candidate is cancelled, not even a lone
            one for a mailbox: in a farm (one key, many processes) it may be another worker's live
            order, and the API echoes nothing this client could recognise as its own. The sweep
            refunds it once it is old enough.
        KopechkaError: The purchase failed (nothing bought), or ``GET /domains`` did.
    """
    guarded = max_price is not None or ledger.budget is not None
    price = (yield from _listed_price(ledger, domain, now)) if guarded else None
    if price is None and ledger.budget is not None:
        raise SpendLimitError(
            f"{domain} is not in the price list (GET /domains): its price is unknown, so the "
            f"budget of {ledger.budget} cannot hold: not bought",
            price=None,
            cap=ledger.budget,
        )
    if max_price is not None and price is not None and price > max_price:
        raise SpendLimitError(
            f"{domain} is listed at {price}, above max_price {max_price}: not bought",
            price=price,
            cap=max_price,
        )
    token = ledger.begin(domain, site, price)
    sent_at = wall()
    try:
        order: Order = yield PostOrder(domain, site)
    except BaseException as exc:
        unknown = outcome_unknown(exc)
        ledger.failed(token, unknown=unknown)
        if not unknown:
            raise
        lost = Lost(ledger, token, domain, site, sent_at, settle_timeout)
        if not isinstance(exc, Exception):  # an interrupt goes on at once: the sweep finds it
            logger.warning(
                "the purchase on %s for %s was interrupted before its answer (%r): it may have "
                "bought an order; run `kopechka sweep` to refund it",
                domain, site, exc,
            )  # fmt: skip
            raise exc
        error = yield from lost.resolve(exc, for_mailbox=for_mailbox)
        raise error from exc
    overrun = ledger.bought(token, order)
    yield from _enforce_caps(order, max_price, overrun)
    return order


def _enforce_caps(order: Order, max_price: Decimal | None, overrun: Decimal | None) -> Flow[None]:
    if max_price is not None and order.price > max_price:
        cap, name = max_price, "max_price"
    elif overrun is not None:
        cap, name = overrun, "what is left of the budget"
    else:
        return
    what = f"order {order.order_id} was charged {order.price}, above {name} {cap}"
    try:
        cancellation: Cancellation = yield CancelOrder(order.order_id)
    except KopechkaError as exc:
        raise SpendLimitError(
            f"{what}; cancelling it failed ({exc}): cancel it or run sweep",
            price=order.price, cap=cap, order=order,
        ) from exc  # fmt: skip
    raise SpendLimitError(
        f"{what}: cancelled, {cancellation.refund_amount} refunded",
        price=order.price, cap=cap, order=order,
    )  # fmt: skip


@dataclass
class Lost:
    """A ``POST /orders`` whose answer was lost, and the search for what it bought."""

    ledger: Ledger
    token: int
    domain: str
    site: str
    sent_at: datetime
    settle_timeout: float
    found: list[Order] = field(default_factory=list)

    def resolve(self, cause: BaseException, *, for_mailbox: bool) -> Flow[OrderOutcomeUnknownError]:
        """List the candidates (never cancelling one); return the error to raise."""
        try:
            live, complete = yield from live_orders(self.domain)
        except Exception as exc:  # refused (a closed client) or failed: never a bare error
            return self._error(
                cause,
                f"the candidates could not be listed ({type(exc).__name__}: {exc}): run "
                "`kopechka sweep` to find and refund what it bought",
            )
        waiting = self.ledger.in_flight(self.domain, self.site)
        settled = True
        if waiting:  # another thread's purchase may be in the listing: let it return first
            settled = yield Settle(waiting, self.settle_timeout)
        self.found = candidates(
            live, domain=self.domain, site=self.site, sent_at=self.sent_at,
            returned=self.ledger.returned(),
        )  # fmt: skip
        if len(self.found) == 1:
            self.ledger.attribute(self.token, self.found[0].order_id)
        elif not self.found and complete and settled:
            self.ledger.not_bought(self.token)
            error = self._error(cause, "")
            error._counted = False
            return error
        return self._error(cause, FARM_NOTE if for_mailbox and self.found else "")

    def _error(self, cause: BaseException, note: str) -> OrderOutcomeUnknownError:
        named = ", ".join(o.order_id for o in self.found) or "none found"
        text = (
            f"POST /orders may have bought an order on {self.domain} for {self.site}, but its "
            f"answer was lost ({type(cause).__name__}: {cause}); do not simply retry. "
            f"Candidates: {named}"
        )
        return OrderOutcomeUnknownError(
            text + (f"; {note}" if note else ""),
            domain=self.domain, site=self.site, sent_at=self.sent_at, candidates=self.found,
        )  # fmt: skip


# --- sweep ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepReport:
    """What ``sweep`` cancelled (or, in a dry run, would cancel), kept, and failed to do.

    Attributes:
        cancelled: The unused orders cancelled; in a dry run, the ones that would be.
        refunded: The money refunded; in a dry run, the sum of the prices of ``cancelled``.
        kept: Live orders left alone: with mail (paid for), or younger than ``older_than``.
        failed: Orders that could not be checked or cancelled, each with its error.
        dry_run: ``True`` when nothing was cancelled, only listed.
    """

    cancelled: list[Order]
    refunded: Decimal
    kept: list[Order]
    failed: list[tuple[Order, KopechkaError]]
    dry_run: bool


def sweep(*, older_than: float, dry_run: bool, wall: Callable[[], datetime]) -> Flow[SweepReport]:
    """List live orders; cancel each one older than ``older_than`` s that has no mail.

    Never buys. A failed check or cancel is reported in ``failed``, not raised halfway.

    Raises:
        ValueError: ``older_than`` is not a finite number >= 0.
        APIError: The orders could not be listed (nothing was cancelled).
    """
    older_than = checked_seconds("older_than", older_than)
    dates: list[datetime] = []
    live, _ = yield from live_orders(None, dates=dates)
    kept, old = split_by_age(live, now=_server_now(dates, wall), older_than=older_than)
    unused: list[Order] = []
    failed: list[tuple[Order, KopechkaError]] = []
    for order in old:
        refused = unaddressable(order.order_id)
        if refused is not None:  # reported; the rest goes on
            failed.append((order, refused))
            continue
        try:
            listing: MessageList = yield GetMessages(order.order_id)
        except KopechkaError as exc:
            failed.append((order, exc))
            continue
        verdict = exit_decision(got_mail=bool(listing.messages), status=str(listing.order.status))
        if verdict == "keep":
            kept.append(order)
        elif verdict == "cancel":
            unused.append(order)
    if dry_run:
        planned = sum((o.price for o in unused), Decimal(0))
        return SweepReport(unused, planned, kept, failed, dry_run=True)
    cancelled, refunded = yield from _cancel_each(unused, failed)
    return SweepReport(cancelled, refunded, kept, failed, dry_run=False)


def _server_now(dates: list[datetime], wall: Callable[[], datetime]) -> datetime:
    """Now on the server's clock: the latest ``Date`` of the listing; without one, this machine's
    clock, with a WARNING (a skewed clock then sweeps too much or too little)."""
    if dates:
        return max(dates)
    logger.warning(
        "the order listing carried no Date header: order ages are measured on this machine's "
        "clock, which may differ from the server's"
    )
    return wall()


def _cancel_each(
    orders: Sequence[Order], failed: list[tuple[Order, KopechkaError]]
) -> Flow[tuple[list[Order], Decimal]]:
    cancelled: list[Order] = []
    refunded = Decimal(0)
    for order in orders:
        try:
            cancellation: Cancellation = yield CancelOrder(order.order_id)
        except KopechkaError as exc:
            failed.append((order, exc))
            continue
        cancelled.append(order)
        refunded += cancellation.refund_amount
    return cancelled, refunded


# --- the Mailbox's exit ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExitOutcome:
    """What leaving a mailbox did: the refund, or why there was none, and what failed."""

    cancellation: Cancellation | None = None
    error: Exception | None = None
    """The refund failed with this error."""
    check_error: Exception | None = None
    """Looking for mail failed with this error (the order was cancelled all the same)."""
    reason: str = ""
    """Why nothing was cancelled, when nothing was."""
    learned: bool = False
    """The cancel's answer was lost; the order's status showed it went through."""


def mailbox_exit(order_id: str, *, got_mail: bool, status: str | None) -> Flow[ExitOutcome]:
    """Refund an unused order on leaving its mailbox; never raises an ``Exception``.

    ``got_mail`` and ``status`` are what the mailbox already knows. An order with mail is kept (it
    is paid for); a closed one (expired, cancelled) is left alone, with no request and no warning;
    otherwise the mail is looked at once more and an order without mail is cancelled.

    A cancel is safe to repeat: one that fails is sent again, ``CANCEL_TRIES`` times in all, and
    after each failure the order's status (``GET /orders/{id}``) says whether it went through all
    the same (its answer lost) or the order closed meanwhile: the outcome is learned, not guessed.
    """
    verdict = exit_decision(got_mail=got_mail, status=status)
    if verdict != "cancel":
        return ExitOutcome(reason="it received mail" if got_mail else f"it is {status}")
    check_error: Exception | None = None
    try:
        listing: MessageList = yield GetMessages(order_id)
        verdict = exit_decision(got_mail=bool(listing.messages), status=str(listing.order.status))
        status = str(listing.order.status)
    except Exception as exc:
        check_error = exc
    if verdict != "cancel":
        return ExitOutcome(reason="it received mail" if verdict == "keep" else f"it is {status}")
    outcome = yield from _cancel_unused(order_id)
    return replace(outcome, check_error=check_error)


def _cancel_unused(order_id: str) -> Flow[ExitOutcome]:
    error: Exception | None = None
    for _ in range(CANCEL_TRIES):
        try:
            cancellation: Cancellation = yield CancelOrder(order_id)
        except Exception as exc:
            error = exc
        else:
            return ExitOutcome(cancellation=cancellation)
        order = yield from _order_now(order_id)
        if order is not None and str(order.status) in CANCELLED:  # it went through: answer lost
            refund = _models.Cancellation(
                message=f"cancelled (learned from its status: {order.status})",
                refund_amount=order.price,
            )
            return ExitOutcome(cancellation=refund, learned=True)
        if order is not None and str(order.status) in SETTLED:
            return ExitOutcome(reason=f"it is {order.status}")
        if not _worth_repeating(error):
            break
    return ExitOutcome(error=error)


def _worth_repeating(error: Exception) -> bool:
    """Whether sending a failed cancel again may help: a lost or garbled answer, a 5xx, a 429."""
    if isinstance(error, APIConnectionError | APIResponseValidationError):
        return True
    return isinstance(error, APIStatusError) and (
        error.status_code >= 500 or error.status_code == 429
    )


def _order_now(order_id: str) -> Flow[Order | None]:
    try:
        order: Order = yield GetOrder(order_id)
    except Exception:
        return None
    return order
