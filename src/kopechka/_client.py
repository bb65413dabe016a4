"""``KopechkaClient``: the session, thin endpoint methods and ONE request funnel.

Every endpoint method builds its call with ``_wire``, hands it to ``_request`` (which sends it
through ``_transport`` and decodes the answer with ``_wire``) and returns a model. Nothing else
touches the session. The constructor's arguments and the environment (``KOPECHKA_API_KEY``,
``KOPECHKA_BASE_URL``, ``KOPECHKA_LOG``) are checked once, in the constructor, by ``_face``'s
``BaseClient`` (shared with the async face), which also holds the settings and the repr.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from . import _flow, _money, _wire
from ._config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_TIMEOUT,
)
from ._face import CLOSED, DEFAULT_CLOSE_TIMEOUT, BaseClient
from ._hooks import Hook
from ._limits import Limiter
from ._mail import Mailbox
from ._money import SweepReport
from ._policy import (
    DEFAULT_MAX_BODY,
    OrderWalk,
    Timeout,
)
from ._transport import Transport

if TYPE_CHECKING:
    import requests

    from ._models import (
        Cancellation,
        Domain,
        Message,
        MessageList,
        Order,
        OrderPage,
        OrderStatus,
        PollingStatus,
        Profile,
    )
    from ._waitflow import Command, Found, TextFilter, Wanted

__all__ = ["KopechkaClient"]

logger = logging.getLogger("kopechka")

R = TypeVar("R")


class KopechkaClient(BaseClient[Transport]):
    """A client for the Kopechka temporary-email API.

    One client may be shared by many threads. Use it as a context manager, or call ``close()``,
    to release the connections of the session it created.

    Args:
        api_key: Your API key; ``None`` reads the environment variable ``KOPECHKA_API_KEY``.
        base_url: The API root; ``None`` reads ``KOPECHKA_BASE_URL``, else the vendor's URL. Plain
            ``http://`` is accepted only for loopback hosts.
        timeout: Seconds, as in requests: one number for connect and read, or a
            (connect, read) pair.
        max_retries: Extra attempts after the first; 0 disables retrying.
        max_retry_wait: A ``Retry-After`` longer than this many seconds fails at once.
        session: A ``requests.Session`` of yours (proxies, adapters, certificates); never closed
            by the client.
        sleep: How the client waits between attempts and between looks at a mailbox (for
            tests); ``time.sleep`` by default.
        clock: The monotonic clock that deadlines are measured on (for tests, with ``sleep``:
            the sandbox's virtual time); ``time.monotonic`` by default.
        max_body: The largest answer read, in bytes after decompression (10 MiB); a larger one
            raises ``APIResponseValidationError`` without being read whole.
        rate_limit: Requests per second never to exceed from this client (all its threads);
            ``None`` (the default) learns the server's rate from its 429s; or a limiter object
            (``kopechka.Limiter``), such as one shared with other clients, processes and
            machines (``kopechka.contrib.redis.RedisLimiter``). Either way, a 429 pauses every
            thread of the client for the server's ``Retry-After`` (a shared cooldown).
            ``False`` turns the limiter off: no pace, no shared cooldown; each call waits out
            its own 429s alone.
        event_hooks: ``{"request": [...], "response": [...]}``: callables given an
            ``AttemptEvent`` before each attempt is sent and after its answer (method, path
            template, status, attempt, will-retry, elapsed; never the key, a body, a code or an
            e-mail). A hook that raises is logged and skipped. An ``async def`` hook is refused
            (``ValueError``): this client would never run it (``AsyncKopechkaClient`` awaits it).
        budget: A cap on what this client may spend over its life (all threads): a purchase
            that would pass it raises ``SpendLimitError`` before buying; a refund of one of its
            orders gives the amount back. ``None``: no cap.
        close_timeout: Seconds ``close()`` (or leaving ``with``) waits for the refunds of
            mailboxes and the purchases in flight (10 by default).

    The environment variable ``KOPECHKA_LOG`` (``debug``, ``info`` or ``warning``), read here,
    sets the level of the logger ``kopechka`` and prints its records on stderr.

    Raises:
        KopechkaError: No API key was given or found in the environment, or it is not printable
            ASCII.
        ValueError: An argument is out of range, the base URL is unsafe or malformed, a CA
            bundle variable (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, ``SSL_CERT_FILE``)
            names a file that is missing or not a bundle ``ssl`` can load, an ``async def``
            event hook is given, or ``KOPECHKA_LOG`` is not a level name.
    """

    _public_name = "KopechkaClient"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_body: int = DEFAULT_MAX_BODY,
        rate_limit: float | Limiter | None = None,
        event_hooks: Mapping[str, Sequence[Hook]] | None = None,
        budget: Decimal | int | str | None = None,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        options = self._configure(
            api_key, base_url=base_url, timeout=timeout, max_retries=max_retries,
            max_retry_wait=max_retry_wait, clock=clock, max_body=max_body, rate_limit=rate_limit,
            event_hooks=event_hooks, budget=budget, close_timeout=close_timeout,
        )  # fmt: skip
        self._transport = Transport(**options, session=session, sleep=sleep)
        self._sleep = sleep

    def __enter__(self) -> KopechkaClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the client: refund its mailboxes, then release the session's connections.

        A closed client refuses to send (``RuntimeError``), except the refunds of its mailboxes
        and the purchases begun before: those in flight (another thread leaving a
        ``with client.mailbox()`` block, or in ``create_order``, its search for a lost answer's
        order included) are waited for, up to ``close_timeout`` seconds, and a mailbox still open
        is refunded here (if it has no mail). The session the client created is closed; a
        caller's is left open. Closing a ``with_options`` client leaves the client it came from
        open.
        """
        if self._owns_book and not self._book.closed:
            deadline = self._clock() + self.close_timeout  # close()'s own refunds, too
            for box in self._book.close():
                if isinstance(box, Mailbox):
                    box._refund_claimed(deadline)
            if not self._book.wait(self.close_timeout):
                logger.warning(
                    "closed with mailbox refunds or purchases still in flight after %g s: "
                    "run `kopechka sweep` to refund what they leave",
                    self.close_timeout,
                )  # fmt: skip
        self._transport.close()

    def with_options(
        self,
        *,
        timeout: float | tuple[float, float] | None = None,
        max_retries: int | None = None,
        max_retry_wait: float | None = None,
        rate_limit: float | Limiter | None = None,
    ) -> KopechkaClient:
        """A client with other settings over the same key, connection pool, limiter and hooks.

        ``fast = client.with_options(timeout=5.0, max_retries=0)`` costs no new connection;
        closing ``fast`` leaves the pool open (the client that created it closes it).

        Args:
            timeout: As for the constructor; ``None`` keeps this client's.
            max_retries: As for the constructor; ``None`` keeps this client's.
            max_retry_wait: As for the constructor; ``None`` keeps this client's.
            rate_limit: As for the constructor (``False``: no limiter for the new client,
                ``N``: its own rate, or a limiter); ``None`` keeps this client's limiter.

        Returns:
            A new client sharing this one's session, limiter (the shared cooldown and rate) and
            hooks.

        Raises:
            ValueError: An argument is out of range.
        """
        return self._derive(timeout, max_retries, max_retry_wait, rate_limit)

    @property
    def timeout(self) -> Timeout:
        """The timeout applied to each request."""
        return self._transport.timeout

    @property
    def max_retries(self) -> int:
        """Extra attempts after the first."""
        return self._transport.policy.max_retries

    def _request(
        self, call: _wire.Call[R], *, deadline: float | None = None, max_retries: int | None = None
    ) -> R:
        """The funnel: send one call (retries inside) and decode its answer."""
        return _wire.decode(call, self._answer(call, deadline, max_retries), self._api_key)

    def _answer(
        self, call: _wire.Call[R], deadline: float | None = None, max_retries: int | None = None
    ) -> _wire.Answer:
        """The funnel's sending half: the final answer to one call, undecoded.

        Raises:
            RuntimeError: The client is closed (a mailbox's refund still goes out).
        """
        if self._book.refused():
            raise RuntimeError(CLOSED)
        return self._transport.send(
            call.method, call.path, params=call.params, json=call.json,
            idempotent=call.idempotent, deadline=deadline, max_retries=max_retries,
        )  # fmt: skip

    # --- account -------------------------------------------------------------------------------

    def get_profile(self) -> Profile:
        """Return the account behind the key (``GET /profile``).

        Returns:
            The profile, its balance a ``Decimal``.

        Raises:
            AuthenticationError: The key is invalid.
            APIError: Any other failure (see the error tree).
        """
        return self._request(_wire.get_profile())

    def get_balance(self) -> Decimal:
        """Return the account's balance (``GET /balance``).

        Returns:
            The balance, exact: ``Decimal("150.75")``.

        Raises:
            APIError: The call failed (see the error tree).
        """
        return self._request(_wire.get_balance())

    def get_domains(self) -> list[Domain]:
        """Return the domains on sale, with their prices (``GET /domains``).

        Returns:
            The domains, in the order the service lists them.

        Raises:
            APIError: The call failed (see the error tree).
        """
        return self._request(_wire.get_domains())

    # --- orders --------------------------------------------------------------------------------

    def list_orders(
        self,
        *,
        page: int = 1,
        limit: int = 10,
        status: OrderStatus | str | None = None,
        domain: str | None = None,
    ) -> OrderPage:
        """Return one page of your orders (``GET /orders``).

        Args:
            page: The page number, from 1.
            limit: Orders per page, at least 1.
            status: Only orders with this status: pending, active, cancelled or expired.
            domain: Only orders on this domain.

        Returns:
            The orders and the pagination beside them.

        Raises:
            ValueError: ``page`` or ``limit`` below 1, a ``status`` not among those four, or
                an empty ``domain``.
            APIError: The call failed (see the error tree).
        """
        return self._request(_wire.list_orders(page, limit, status, domain))

    def iter_orders(
        self,
        *,
        status: OrderStatus | str | None = None,
        domain: str | None = None,
        page_size: int = 100,
    ) -> Iterator[Order]:
        """Yield every order, fetching page after page only as they are consumed.

        The listing may change while you iterate: every order present for the whole iteration is
        yielded exactly once, whether you cancel orders as they come (with a status filter, the
        rest moves up a page) or new orders arrive. Memory holds one page and the ids yielded.

        Args:
            status: Only orders with this status: pending, active, cancelled or expired.
            domain: Only orders on this domain.
            page_size: Orders fetched per request, at least 1.

        Returns:
            An iterator over the orders; nothing is fetched until it is first advanced.

        Raises:
            ValueError: ``page_size`` below 1, a ``status`` not among those four, or an empty
                ``domain``.
            APIError: A page could not be fetched (see the error tree).
        """
        _wire.list_orders(1, page_size, status, domain)  # check the arguments before iterating
        return self._iter_orders(status, domain, page_size)

    def _iter_orders(
        self, status: OrderStatus | str | None, domain: str | None, page_size: int
    ) -> Iterator[Order]:
        walk = OrderWalk(page_size)
        while walk.page is not None:
            result = self._request(_wire.list_orders(walk.page, page_size, status, domain))
            ids = [order.order_id for order in result.orders]
            for position in walk.take(ids, result.pagination.total, result.pagination.pages):
                yield result.orders[position]

    def get_order(self, order_id: str) -> Order:
        """Return one order, with its ``duration`` and ``end_time`` (``GET /orders/{orderId}``).

        Args:
            order_id: The order's id, such as ``"API-1234567890"``.

        Returns:
            The order.

        Raises:
            ValueError: ``order_id`` is empty or not a single path segment.
            NotFoundError: No such order.
            APIError: Any other failure (see the error tree).
        """
        return self._request(_wire.get_order(order_id))

    def create_order(
        self, domain: str, site: str, *, max_price: Decimal | int | str | None = None
    ) -> Order:
        """Buy an address on ``domain`` for mail from ``site`` (``POST /orders``).

        This spends money, so it is never retried after the request may have reached the server.
        When its answer is lost, ``OrderOutcomeUnknownError`` names the orders it may have bought;
        none of them is adopted or cancelled (in a farm, one may be another worker's).

        Args:
            domain: A domain from ``get_domains()``, such as ``"example.com"``.
            site: The site whose mail you expect, such as ``"instagram.com"``.
            max_price: Refuse, before buying, a domain listed above this price (``GET /domains``,
                cached for a minute); if the server charges more anyway, the order is cancelled
                (full refund) and ``SpendLimitError`` raised. ``None``: no cap.

        Returns:
            The new order; its ``id`` is ``None`` (the answer carries only ``order_id``).

        Raises:
            ValueError: ``domain`` or ``site`` is empty, or ``max_price`` is not an amount >= 0.
            SpendLimitError: The price is above ``max_price`` or would pass the client's budget.
            OrderOutcomeUnknownError: The request may have bought an order, but no usable answer
                came back; ``candidates`` names what it may have bought.
            BadRequestError: Unknown domain, or insufficient balance.
            APIError: Any other failure (see the error tree).
        """
        return self._buy(domain, site, max_price, for_mailbox=False)

    def _buy(self, domain: str, site: str, max_price: object, *, for_mailbox: bool) -> Order:
        flow = self._purchase(domain, site, max_price, for_mailbox=for_mailbox)
        with self._book.purchasing():  # close() waits for it; refused if begun after
            return _flow.run(flow, self._execute)

    def _execute(self, op: _money.Op) -> object:
        """Carry out one request of a money flow (run by ``_flow.run``)."""
        if isinstance(op, _money.PostOrder):
            return self._request(_wire.create_order(op.domain, op.site))
        if isinstance(op, _money.ListOrders):
            call = _wire.list_orders(op.page, _money.PAGE_SIZE, op.status, op.domain)
            answer = self._answer(call)
            page = _wire.decode(call, answer, self._api_key)
            return (page, _money.server_date(answer.headers)) if op.dated else page
        if isinstance(op, _money.GetMessages):
            return self.get_messages(op.order_id)
        if isinstance(op, _money.CancelOrder):
            return self.cancel_order(op.order_id)
        if isinstance(op, _money.GetDomains):
            return self.get_domains()
        if isinstance(op, _money.GetOrder):
            return self.get_order(op.order_id)
        return self._ledger.wait_settled(op.tokens, op.timeout)

    def _exit_call(self, op: _money.Op, deadline: float | None) -> object:
        """Carry out one request of a mailbox's exit; with a ``deadline`` (after an interrupt),
        each one is tried once and must end by it."""
        retries = None if deadline is None else 0
        if isinstance(op, _money.GetMessages):
            return self._request(
                _wire.get_messages(op.order_id), deadline=deadline, max_retries=retries
            )
        if isinstance(op, _money.GetOrder):
            return self._request(
                _wire.get_order(op.order_id), deadline=deadline, max_retries=retries
            )
        if isinstance(op, _money.CancelOrder):
            call = _wire.cancel_order(op.order_id)
            cancellation = self._request(call, deadline=deadline, max_retries=retries)
            self._ledger.refunded(op.order_id, cancellation.refund_amount)
            return cancellation
        raise TypeError(f"a mailbox's exit does not send {op!r}")  # pragma: no cover

    def cancel_order(self, order_id: str) -> Cancellation:
        """Cancel an order; its price is refunded if no mail was received (``DELETE``).

        Args:
            order_id: The order's id.

        Returns:
            The server's message and the amount refunded (0 when mail had come).

        Raises:
            ValueError: ``order_id`` is empty or not a single path segment.
            NotFoundError: No such order.
            BadRequestError: The order can no longer be cancelled.
            APIError: Any other failure (see the error tree).
        """
        cancellation = self._request(_wire.cancel_order(order_id))
        self._ledger.refunded(str(order_id), cancellation.refund_amount)  # budget= gets it back
        return cancellation

    def get_messages(self, order_id: str) -> MessageList:
        """Return the mail received by an order so far, and the order's state.

        Mail after the first is visible only once ``start_polling`` was called (vendor rule).

        Args:
            order_id: The order's id.

        Returns:
            The messages and a summary of the order (with its status).

        Raises:
            ValueError: ``order_id`` is empty or not a single path segment.
            NotFoundError: No such order.
            APIError: Any other failure (see the error tree).
        """
        return self._request(_wire.get_messages(order_id))

    def start_polling(self, order_id: str) -> PollingStatus:
        """Ask the service to fetch new mail for an active order that already has mail.

        Args:
            order_id: The order's id.

        Returns:
            The order id and its polling status.

        Raises:
            ValueError: ``order_id`` is empty or not a single path segment.
            BadRequestError: The order is not active or has no mail yet.
            APIError: Any other failure (see the error tree).
        """
        return self._request(_wire.start_polling(order_id))

    # --- waiting for mail ----------------------------------------------------------------------

    def wait_for_message(
        self,
        order_id: str,
        *,
        timeout: float = 120.0,
        poll_interval: float = 2.0,
        subject: TextFilter | None = None,
        sender: TextFilter | None = None,
        pattern: str | re.Pattern[str] | None = None,
        skip_existing: bool = False,
        stop: threading.Event | None = None,
    ) -> Message:
        """Wait until a message matching every given filter arrives, and return it.

        Args:
            order_id: The order to watch.
            timeout: Wall-clock seconds for the whole wait, requests included.
            poll_interval: Seconds between two looks at the mailbox (at most one look per
                interval, whatever the server answers).
            subject: Case-insensitive substring of the subject, or a compiled regex.
            sender: Case-insensitive substring of the sender, or a compiled regex.
            pattern: A regex searched in the content.
            skip_existing: Ignore messages already there when the wait starts.
            stop: A ``threading.Event``; setting it (from any thread, a signal handler...) ends
                the wait within 100 ms plus one request.

        Returns:
            The first matching message.

        Raises:
            ValueError: A bad argument.
            WaitTimeoutError: Nothing matched in time (it carries the messages seen).
            OrderClosedError: The order was cancelled or expired while waiting.
            WaitCancelledError: ``stop`` was set (it carries the messages seen).
            APIError: A failure that waiting cannot outlast (401, 404, ...).
        """
        from ._waitflow import Wanted  # noqa: PLC0415 - loaded on first use

        wanted = Wanted.of(
            order_id, timeout=timeout, poll_interval=poll_interval, subject=subject,
            sender=sender, pattern=pattern, skip_existing=skip_existing,
        )  # fmt: skip
        return self._wait(wanted, stop).message

    def wait_for_code(
        self,
        order_id: str,
        *,
        timeout: float = 120.0,
        poll_interval: float = 2.0,
        code_pattern: str | re.Pattern[str] | None = None,
        subject: TextFilter | None = None,
        sender: TextFilter | None = None,
        pattern: str | re.Pattern[str] | None = None,
        skip_existing: bool = False,
        stop: threading.Event | None = None,
    ) -> str:
        """Wait for a matching message that holds a one-time code, and return the code.

        Args:
            order_id: The order to watch.
            timeout: Wall-clock seconds for the whole wait, requests included.
            poll_interval: Seconds between two looks at the mailbox.
            code_pattern: A regex overriding the code heuristic (its first group, else the match).
            subject: Case-insensitive substring of the subject, or a compiled regex.
            sender: Case-insensitive substring of the sender, or a compiled regex.
            pattern: A regex searched in the content.
            skip_existing: Ignore messages already there when the wait starts.
            stop: A ``threading.Event`` that ends the wait when set, as for
                ``wait_for_message``.

        Returns:
            The code.

        Raises:
            ValueError: A bad argument.
            WaitTimeoutError: No message with a code arrived in time.
            OrderClosedError: The order was cancelled or expired while waiting.
            WaitCancelledError: ``stop`` was set (it carries the messages seen).
            APIError: A failure that waiting cannot outlast (401, 404, ...).
        """
        from ._waitflow import Wanted  # noqa: PLC0415 - loaded on first use

        wanted = Wanted.of(
            order_id, timeout=timeout, poll_interval=poll_interval, subject=subject,
            sender=sender, pattern=pattern, skip_existing=skip_existing,
            code_pattern=code_pattern, need_code=True,
        )  # fmt: skip
        found = self._wait(wanted, stop)
        assert found.code is not None
        return found.code

    def _wait(self, wanted: Wanted, stop: threading.Event | None) -> Found:
        """Drive the wait flow: each look a single attempt (the flow outlasts failures)."""
        from ._waitflow import Fetch, StartPolling, wait_flow  # noqa: PLC0415 - loaded on first use

        messages = _wire.get_messages(wanted.order_id)
        polling = _wire.start_polling(wanted.order_id)
        sleep = stop.wait if stop is not None and self._sleep is time.sleep else self._sleep

        def execute(command: Command) -> object:
            if isinstance(command, Fetch):
                return self._request(messages, deadline=command.deadline, max_retries=0)
            if isinstance(command, StartPolling):
                return bool(self._request(polling, deadline=command.deadline, max_retries=0))
            sleep(command.seconds)
            return None

        if stop is None:
            return _flow.run(wait_flow(wanted, self._clock), execute)
        return _flow.run(wait_flow(wanted, self._clock, stop.is_set), execute)

    def mailbox(
        self, domain: str, site: str, *, max_price: Decimal | int | str | None = None
    ) -> Mailbox:
        """Buy an order and return a ``Mailbox`` for it, to use in a ``with`` block.

        Leaving the block cancels the order if it received no mail, so its price is refunded,
        whatever ended the block. When the purchase's answer is lost, ``OrderOutcomeUnknownError``
        names the candidates and none is cancelled, not even a lone one: in a farm (one key, many
        processes) it may be another worker's live order. ``sweep`` refunds it once old enough.

        Args:
            domain: A domain from ``get_domains()``.
            site: The site whose mail you expect.
            max_price: As for ``create_order``.

        Returns:
            The mailbox of the new order.

        Raises:
            ValueError: ``domain`` or ``site`` is empty, or ``max_price`` is not an amount >= 0.
            SpendLimitError: The price is above ``max_price`` or would pass the client's budget.
            OrderOutcomeUnknownError: The answer to the purchase was lost (see ``create_order``).
            APIError: The order could not be bought (see ``create_order``).
        """
        return Mailbox(self, self._buy(domain, site, max_price, for_mailbox=True))

    def sweep(self, *, older_than: float = 300.0, dry_run: bool = True) -> SweepReport:
        """Cancel the account's unused orders: the remedy for crashes and lost answers.

        Lists the pending and active orders and cancels (unless ``dry_run``) each one created more
        than ``older_than`` seconds ago that has received no mail, so its price is refunded before
        it expires. Never buys. A failed check or cancel is reported in ``failed``, not raised.

        Args:
            older_than: Seconds an order must have lived (by its ``created_at``) to be swept;
                choose more than your longest wait for mail.
            dry_run: Only report what would be cancelled (the default).

        Returns:
            What was (or would be) cancelled and refunded, what was kept, and what failed.

        Raises:
            ValueError: ``older_than`` is not a finite number >= 0.
            APIError: The orders could not be listed (then nothing was cancelled).
        """
        return _flow.run(self._sweep(older_than, dry_run), self._execute)
