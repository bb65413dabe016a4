"""What the sync and async faces share: everything about a client and a mailbox that sends nothing.

``BaseClient`` is generic over the transport (``Transport`` on requests, ``AsyncTransport`` on
httpx): it checks the constructor's arguments and keeps the key, the budget and the base URL, hands
the face the checked transport settings, derives ``with_options`` clients, prints the repr and
prepares the purchase flow. ``BaseMailbox`` keeps what a mailbox learns from its waits and reports
how leaving it went. ``RefundBook`` is a client's record of its mailboxes still open and of the
refunds and purchases in flight, which ``close()`` waits for (``close_timeout``) before a closed
client refuses to send (``CLOSED``, the same ``RuntimeError`` on both faces; a refund, and a
purchase begun before ``close()``, still go out). Each face
(``_client``/``_async_client``, ``_mail``/``_async_mail``) keeps its public methods and their
docstrings, and only what differs: plain calls there, awaited calls here.

This module must not send a request, sleep, or import httpx (``import kopechka`` works without it).
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypedDict, TypeVar

from . import _money, _scrub, _wire
from ._exceptions import OrderClosedError
from ._hooks import ENV_LOG, Hook, check_hooks, configure_logging
from ._limits import Limiter
from ._policy import RetryPolicy, Timeout, check_timeout
from ._settings import (
    check_base_url,
    check_key,
    check_limiter,
    check_max_body,
    check_retries,
    check_wait,
    checked_seconds,
)

if TYPE_CHECKING:
    from ._models import Cancellation, Message, Order

__all__ = [
    "CLOSED",
    "DEFAULT_CLOSE_TIMEOUT",
    "BaseClient",
    "BaseMailbox",
    "RefundBook",
    "TransportOptions",
    "refunding",
]

logger = logging.getLogger("kopechka")

DEFAULT_CLOSE_TIMEOUT = 10.0
"""Seconds ``close()`` waits for the refunds of mailboxes in flight."""
CLOSED = "the client is closed: create another one"
"""What a closed client says when asked to send (``RuntimeError``), on both faces."""
_REFUNDING: ContextVar[bool] = ContextVar("kopechka_refunding", default=False)


@contextmanager
def refunding() -> Iterator[None]:
    """Mark the requests made inside as a mailbox's refund (or a purchase's, begun before
    ``close()``): they go out after ``close()`` began."""
    token = _REFUNDING.set(True)
    try:
        yield
    finally:
        _REFUNDING.reset(token)


class RefundBook:
    """A client's mailboxes still open and the refunds and purchases in flight; shared with
    ``with_options`` clients, thread-safe. ``closed`` is set once, by the client that created it.

    Each mailbox is refunded once: by its own exit, or by ``close()`` when it is still open then
    (``claim`` decides who). ``tasks`` keeps the async refunds' tasks alive (the event loop holds
    tasks weakly) until they end.
    """

    def __init__(self) -> None:
        self.closed = False
        self._changed = threading.Condition(threading.Lock())
        self._open: dict[int, BaseMailbox] = {}
        self._claimed: set[int] = set()
        self._flying = 0
        self._buying = 0
        self.tasks: set[Any] = set()

    def opened(self, box: BaseMailbox) -> None:
        """A mailbox was bought: ``close()`` refunds it if it is still open then."""
        with self._changed:
            self._open[id(box)] = box

    def claim(self, box: BaseMailbox) -> bool:
        """Whether the caller is the one to refund ``box`` (the first to ask is)."""
        with self._changed:
            self._open.pop(id(box), None)
            if id(box) in self._claimed:
                return False
            self._claimed.add(id(box))
            self._flying += 1
            return True

    def done(self, box: BaseMailbox) -> None:
        """A refund claimed with ``claim`` ended (well or not)."""
        with self._changed:
            self._claimed.discard(id(box))
            self._flying -= 1
            self._changed.notify_all()

    def close(self) -> list[BaseMailbox]:
        """Mark the client closed; claim and return the mailboxes still open, to refund."""
        with self._changed:
            self.closed = True
            boxes = list(self._open.values())
        return [box for box in boxes if self.claim(box)]

    @contextmanager
    def purchasing(self) -> Iterator[None]:
        """Around one purchase, its lost-answer search and its spend guards' cancel included: a
        purchase begun before ``close()`` ends as it would have (its requests go out, and
        ``close()`` waits for it); one begun after is refused before any request.

        Raises:
            RuntimeError: The client is closed.
        """
        with self._changed:
            if self.closed:
                raise RuntimeError(CLOSED)
            self._buying += 1
        try:
            with refunding():
                yield
        finally:
            with self._changed:
                self._buying -= 1
                self._changed.notify_all()

    def busy(self) -> bool:
        """Whether a refund or a purchase is in flight."""
        with self._changed:
            return self._flying > 0 or self._buying > 0

    def wait(self, timeout: float) -> bool:
        """Block until no refund or purchase is in flight, or ``timeout`` s passed; ``True`` if
        none is."""
        with self._changed:
            return self._changed.wait_for(lambda: self._flying == 0 and self._buying == 0, timeout)

    def refused(self) -> bool:
        """Whether a request must be refused now: closed, and neither a mailbox's refund nor part
        of a purchase begun before ``close()``."""
        return self.closed and not _REFUNDING.get()


def check_close_timeout(value: object) -> float:
    """Return ``close_timeout`` as seconds.

    Raises:
        ValueError: Not a finite number >= 0.
    """
    return checked_seconds("close_timeout", value)


T = TypeVar("T", bound="_Transport")
C = TypeVar("C", bound="BaseClient[Any]")


class _Transport(Protocol):
    """What ``BaseClient`` reads of a transport (``Transport`` and ``AsyncTransport`` alike)."""

    timeout: Timeout
    policy: RetryPolicy

    def derive(
        self: T, *, timeout: Timeout, policy: RetryPolicy, limiter: Limiter | None = None
    ) -> T: ...


class TransportOptions(TypedDict):
    """The checked settings both transports take; a face adds its session and its sleep."""

    base_url: str
    api_key: str
    timeout: Timeout
    policy: RetryPolicy
    clock: Callable[[], float]
    max_body: int
    limiter: Limiter
    hooks: dict[str, tuple[Hook, ...]]


class BaseClient(Generic[T]):
    """The configuration of a client, its settings and its repr; no I/O (see the module)."""

    _public_name: ClassVar[str]
    _awaits_hooks: ClassVar[bool] = False
    """Whether the face awaits a coroutine function's hook (the async face)."""
    _transport: T

    def _configure(
        self,
        api_key: str | None,
        *,
        base_url: str | None,
        timeout: float | tuple[float, float],
        max_retries: int,
        max_retry_wait: float,
        clock: Callable[[], float],
        max_body: int,
        rate_limit: float | Limiter | None,
        event_hooks: Mapping[str, Sequence[Hook]] | None,
        budget: Decimal | int | str | None,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> TransportOptions:
        """Check the constructor's arguments (the key first), keep the key, budget and base URL,
        and return the settings of the transport the face creates.

        Raises:
            KopechkaError: No usable API key.
            ValueError: Any other argument is out of range or unsafe (see the faces).
        """
        configure_logging(os.environ.get(ENV_LOG))
        self._api_key = _scrub.Secret(check_key(api_key))
        _scrub.remember(self._api_key)  # scrubbed from every message and log record from now on
        self._ledger = _money.Ledger(_money.check_cap("budget", budget), clock=clock)
        self.base_url = check_base_url(base_url)
        self._clock = clock
        self.close_timeout = check_close_timeout(close_timeout)
        self._book = RefundBook()
        self._owns_book = True
        policy = RetryPolicy(
            max_retries=check_retries(max_retries), max_retry_wait=check_wait(max_retry_wait)
        )
        return TransportOptions(
            base_url=self.base_url, api_key=self._api_key.reveal(), timeout=check_timeout(timeout),
            policy=policy, clock=clock, max_body=check_max_body(max_body),
            limiter=check_limiter(rate_limit),
            hooks=check_hooks(event_hooks, awaited=self._awaits_hooks),
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"{self._public_name}(base_url={self.base_url!r}, api_key='***')"

    __str__ = __repr__

    def _derive(
        self: C,
        timeout: float | tuple[float, float] | None,
        max_retries: int | None,
        max_retry_wait: float | None,
        rate_limit: object = None,
    ) -> C:
        """``with_options``: a shallow copy on a derived transport (same pool and hooks; the same
        limiter unless ``rate_limit`` is given).

        Raises:
            ValueError: An argument is out of range.
        """
        policy = self._transport.policy
        retries = policy.max_retries if max_retries is None else check_retries(max_retries)
        longest = policy.max_retry_wait if max_retry_wait is None else check_wait(max_retry_wait)
        derived = copy.copy(self)
        derived._owns_book = False  # closing it leaves the client it came from open
        derived._transport = self._transport.derive(
            timeout=self._transport.timeout if timeout is None else check_timeout(timeout),
            policy=RetryPolicy(max_retries=retries, max_retry_wait=longest),
            limiter=None if rate_limit is None else check_limiter(rate_limit),
        )
        return derived

    def _purchase(
        self, domain: str, site: str, max_price: object, *, for_mailbox: bool
    ) -> _money.Flow[Order]:
        """The flow of one purchase (``_money.purchase``), its arguments checked first.

        Raises:
            ValueError: ``domain`` or ``site`` is empty, or ``max_price`` is not an amount >= 0.
        """
        _wire.create_order(domain, site)  # the arguments are checked before any request
        connect, read = self._transport.timeout
        retries = self._transport.policy.max_retries
        longest = (connect + read) * (retries + 1) + 1.0  # another purchase's attempts
        return _money.purchase(
            self._ledger, domain, site,
            max_price=_money.check_cap("max_price", max_price),
            wall=self._ledger.wall, now=self._clock(), settle_timeout=longest,
            for_mailbox=for_mailbox,
        )  # fmt: skip

    def _sweep(self, older_than: float, dry_run: bool) -> _money.Flow[_money.SweepReport]:
        return _money.sweep(older_than=older_than, dry_run=dry_run, wall=self._ledger.wall)


class _Owner(Protocol):
    """What ``BaseMailbox`` reads of its client."""

    _book: RefundBook
    _ledger: _money.Ledger


class BaseMailbox:
    """What a mailbox learns from its waits, and the report of leaving it; no I/O."""

    _client: _Owner

    def _start(self) -> None:
        """Set the state every mailbox starts with."""
        self.cancellation: Cancellation | None = None
        self.cancel_error: BaseException | None = None
        self._got_mail = False
        self._status: str | None = None  # known closed (expired, cancelled) from a wait

    def _claim(self) -> bool:
        """Whether this exit is the one to refund the order (``RefundBook.claim``); a claimed
        refund must end with ``RefundBook.done``."""
        book: RefundBook = self._client._book
        if not book.claim(self):
            return False
        if self.cancellation is not None:  # cancelled by the caller: nothing to do
            book.done(self)
            return False
        return True

    def _saw(self, found: list[Message]) -> None:
        """Note the messages a look at the mailbox returned."""
        self._got_mail = self._got_mail or bool(found)

    @contextmanager
    def _waiting(self) -> Iterator[None]:
        """Around a wait: a closed order is remembered (not cancelled on exit), a result is mail."""
        try:
            yield
        except OrderClosedError as exc:
            self._status = exc.status
            raise
        self._got_mail = True

    def _exit_flow(self, order_id: str) -> _money.Flow[_money.ExitOutcome]:
        return _money.mailbox_exit(order_id, got_mail=self._got_mail, status=self._status)

    def _left(self, order_id: str, outcome: _money.ExitOutcome) -> None:
        """Keep and log what leaving the block did (``_money.mailbox_exit``'s outcome)."""
        if outcome.check_error is not None:
            logger.warning("could not check order %s for mail: %s", order_id, outcome.check_error)
        if outcome.cancellation is not None:
            self.cancellation = outcome.cancellation
            if outcome.learned:  # the cancel's own answer, which credits the budget, was lost
                self._client._ledger.refunded(order_id, outcome.cancellation.refund_amount)
            logger.info(
                "cancelled unused order %s, refunded %s",
                order_id, outcome.cancellation.refund_amount,
            )  # fmt: skip
        elif outcome.error is not None:
            self.cancel_error = outcome.error
            logger.warning(
                "could not cancel unused order %s (%s): it may still be charged; "
                "run `kopechka sweep` to refund it",
                order_id, outcome.error,
            )  # fmt: skip
        else:
            logger.debug("order %s not cancelled: %s", order_id, outcome.reason)
