"""``AsyncKopechkaClient`` and ``AsyncMailbox``: the asyncio face, on the core of the sync one.

Every endpoint method builds its call with ``_wire`` and awaits ONE funnel, ``_request``, which
sends it through ``_async_transport`` (httpx2, or httpx) and decodes the answer with ``_wire``.
Waits are ``_waitflow``'s flow run by ``_flow.arun``; leaving a mailbox is its exit flow. Nothing
here decides what to retry, what an answer means or when a wait ends: the settings, the policy, the
wire format and the flows are the ones ``KopechkaClient`` uses, and so is ``_face``'s ``BaseClient``
(the constructor's checks, the settings, ``with_options``, the repr). Only sending and sleeping
differ.

This module needs httpx2 or httpx (the ``async`` extra, see ``_httpx``); importing it without
either raises ``ImportError`` naming the extra. No method blocks the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from . import _flow, _money, _wire
from ._async_mail import AsyncMailbox
from ._async_transport import AsyncTransport
from ._config import DEFAULT_MAX_RETRIES, DEFAULT_MAX_RETRY_WAIT, DEFAULT_TIMEOUT
from ._face import CLOSED, DEFAULT_CLOSE_TIMEOUT, BaseClient
from ._hooks import Hook
from ._limits import Limiter
from ._money import SweepReport
from ._policy import DEFAULT_MAX_BODY, OrderWalk, Timeout
from ._turns import give_way, start_loading

if TYPE_CHECKING:
    from ._httpx import httpx
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

__all__ = ["AsyncKopechkaClient", "AsyncMailbox"]

logger = logging.getLogger("kopechka")

R = TypeVar("R")
STOP_CHECK = 0.05
"""Seconds between two looks at a wait's ``stop`` event while it sleeps."""
BUSY_CHECK = 0.01
"""Seconds between two looks, in ``close()``, at the purchases still in flight."""


class AsyncKopechkaClient(BaseClient[AsyncTransport]):
    """An asyncio client for the Kopechka temporary-email API.

    The same methods, arguments, models, errors, retry rules and wait semantics as
    ``KopechkaClient``, each a coroutine (``iter_orders`` an async iterator). One client may be
    shared by any number of tasks. Use it as ``async with``, or ``await client.close()``.

    Args:
        api_key: Your API key; ``None`` reads the environment variable ``KOPECHKA_API_KEY``.
        base_url: The API root; ``None`` reads ``KOPECHKA_BASE_URL``, else the vendor's URL. Plain
            ``http://`` is accepted only for loopback hosts.
        timeout: Seconds: one number for connect and read, or a (connect, read) pair.
        max_retries: Extra attempts after the first; 0 disables retrying.
        max_retry_wait: A ``Retry-After`` longer than this many seconds fails at once.
        http_client: An ``httpx2.AsyncClient`` or ``httpx.AsyncClient`` of yours (proxies,
            certificates, transports), used as you configured it and never closed by this
            client. Redirects are never followed. One that would send a loopback ``base_url``
            through a proxy is refused.
        sleep: How the client waits between attempts and looks (a coroutine function, for
            tests); ``asyncio.sleep`` by default.
        clock: The monotonic clock that deadlines are measured on; ``time.monotonic`` by default.
        max_body: The largest answer read, in bytes after decompression (10 MiB).
        rate_limit: As for ``KopechkaClient``: requests per second for this client (all its
            tasks), ``None`` to learn the server's rate from its 429s, ``False`` for no limiter,
            or a limiter object (``kopechka.Limiter``). A 429 pauses every task of the client
            for the server's ``Retry-After`` (but with ``False``).
        event_hooks: As for ``KopechkaClient``: ``{"request": [...], "response": [...]}``,
            callables given an ``AttemptEvent``; an ``async def`` hook is awaited, in order,
            before the attempt goes on.
        budget: As for ``KopechkaClient``: a cap on what this client may spend over its life.
        close_timeout: Seconds ``close()`` (or leaving ``async with``) waits for the refunds of
            mailboxes and the purchases in flight (10 by default).

    Raises:
        KopechkaError: No API key was given or found in the environment, or it is not printable
            ASCII.
        ValueError: An argument is out of range, the base URL is unsafe or malformed, a CA
            bundle variable names a file that is missing or not a bundle ``ssl`` can load, an
            ``event_hooks`` entry is not callable, or ``http_client`` would send a loopback
            ``base_url`` through a proxy.
    """

    _public_name = "AsyncKopechkaClient"
    _awaits_hooks = True

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        http_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
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
        self._transport = AsyncTransport(**options, http_client=http_client, sleep=sleep)
        self._sleep = sleep
        start_loading()  # the modules a first call needs, in a thread: not in the loop's turn

    async def __aenter__(self) -> AsyncKopechkaClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the client: refund its mailboxes, then close the httpx client's connections.

        A closed client refuses to send (``RuntimeError``), except the refunds of its mailboxes
        and the purchases begun before: those in flight (tasks leaving
        ``async with client.mailbox()``, cancelled ones included, or in ``create_order``, its
        search for a lost answer's order included) are waited for, up to ``close_timeout``
        seconds, and a mailbox still open (a task still waiting in it) is refunded here, if it
        has no mail. The refunds run in tasks the client keeps, which finish even while
        ``asyncio.run`` cancels what is left at its end. The httpx client this client created is
        closed; a caller's is left open. Closing a ``with_options`` client leaves the client it
        came from open.
        """
        if self._owns_book and not self._book.closed:
            for box in self._book.close():
                if isinstance(box, AsyncMailbox):
                    box._refund_in_task()
            await self._refunds_ended()
        await self._transport.aclose()

    async def _refunds_ended(self) -> None:
        """Wait up to ``close_timeout`` for the refund tasks and the purchases in flight (a
        cancellation meanwhile ends the wait, not them)."""
        ends = time.monotonic() + self.close_timeout
        tasks = set(self._book.tasks)
        pending: set[asyncio.Task[None]] = set()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.close_timeout)
        while self._book.busy() and time.monotonic() < ends:  # purchases: other tasks or threads
            await asyncio.sleep(BUSY_CHECK)
        if pending or self._book.busy():
            logger.warning(
                "closed with mailbox refunds or purchases still in flight after %g s: "
                "run `kopechka sweep` to refund what they leave",
                self.close_timeout,
            )  # fmt: skip

    aclose = close

    def with_options(
        self,
        *,
        timeout: float | tuple[float, float] | None = None,
        max_retries: int | None = None,
        max_retry_wait: float | None = None,
        rate_limit: float | Limiter | None = None,
    ) -> AsyncKopechkaClient:
        """A client with other settings over the same key, connections, limiter and hooks.

        Args:
            timeout: As for the constructor; ``None`` keeps this client's.
            max_retries: As for the constructor; ``None`` keeps this client's.
            max_retry_wait: As for the constructor; ``None`` keeps this client's.
            rate_limit: As for the constructor (``False``: no limiter for the new client,
                ``N``: its own rate, or a limiter); ``None`` keeps this client's limiter.

        Returns:
            A new client sharing this one's httpx client, limiter and hooks; closing it leaves
            the connections open (the client that created them closes them).

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

    async def _request(
        self, call: _wire.Call[R], *, deadline: float | None = None, max_retries: int | None = None
    ) -> R:
        """The funnel: send one call (retries inside) and decode its answer."""
        await give_way()  # a crowd of calls in one turn of the loop goes in several
        answer = await self._answer(call, deadline, max_retries)
        return _wire.decode(call, answer, self._api_key)

    async def _answer(
        self, call: _wire.Call[R], deadline: float | None = None, max_retries: int | None = None
    ) -> _wire.Answer:
        """The funnel's sending half: the final answer to one call, undecoded.

        Raises:
            RuntimeError: The client is closed (a mailbox's refund still goes out).
        """
        if self._book.refused():
            raise RuntimeError(CLOSED)
        return await self._transport.send(
            call.method, call.path, params=call.params, json=call.json,
            idempotent=call.idempotent, deadline=deadline, max_retries=max_retries,
        )  # fmt: skip

    # --- account -------------------------------------------------------------------------------

    async def get_profile(self) -> Profile:
        """Return the account behind the key (``GET /profile``).

        Returns:
            The profile, its balance a ``Decimal``.

        Raises:
            AuthenticationError: The key is invalid.
            APIError: Any other failure (see the error tree).
        """
        return await self._request(_wire.get_profile())

    async def get_balance(self) -> Decimal:
        """Return the account's balance (``GET /balance``).

        Returns:
            The balance, exact: ``Decimal("150.75")``.

        Raises:
            APIError: The call failed (see the error tree).
        """
        return await self._request(_wire.get_balance())

    async def get_domains(self) -> list[Domain]:
        """Return the domains on sale, with their prices (``GET /domains``).

        Returns:
            The domains, in the order the service lists them.

        Raises:
            APIError: The call failed (see the error tree).
        """
        return await self._request(_wire.get_domains())

    # --- orders --------------------------------------------------------------------------------

    async def list_orders(
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
        return await self._request(_wire.list_orders(page, limit, status, domain))

    def iter_orders(
        self,
        *,
        status: OrderStatus | str | None = None,
        domain: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Order]:
        """Yield every order (``async for``), fetching page after page only as they are consumed.

        Args:
            status: Only orders with this status: pending, active, cancelled or expired.
            domain: Only orders on this domain.
            page_size: Orders fetched per request, at least 1.

        Returns:
            An async iterator over the orders; nothing is fetched until it is first advanced.

        Raises:
            ValueError: ``page_size`` below 1, a ``status`` not among those four, or an empty
                ``domain`` (at once).
            APIError: A page could not be fetched (see the error tree).
        """
        _wire.list_orders(1, page_size, status, domain)  # check the arguments before iterating
        return self._iter_orders(status, domain, page_size)

    async def _iter_orders(
        self, status: OrderStatus | str | None, domain: str | None, page_size: int
    ) -> AsyncIterator[Order]:
        walk = OrderWalk(page_size)
        while walk.page is not None:
            result = await self._request(_wire.list_orders(walk.page, page_size, status, domain))
            ids = [order.order_id for order in result.orders]
            for position in walk.take(ids, result.pagination.total, result.pagination.pages):
                yield result.orders[position]

    async def get_order(self, order_id: str) -> Order:
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
        return await self._request(_wire.get_order(order_id))

    async def create_order(
        self, domain: str, site: str, *, max_price: Decimal | int | str | None = None
    ) -> Order:
        """Buy an address on ``domain`` for mail from ``site`` (``POST /orders``).

        This spends money, so it is never retried after the request may have reached the server.
        When its answer is lost, ``OrderOutcomeUnknownError`` names the orders it may have bought
        (the same rules as ``KopechkaClient.create_order``, the same flow).

        Args:
            domain: A domain from ``get_domains()``, such as ``"example.com"``.
            site: The site whose mail you expect, such as ``"instagram.com"``.
            max_price: Refuse, before buying, a domain listed above this price; ``None``: no cap.

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
        return await self._buy(domain, site, max_price, for_mailbox=False)

    async def _buy(self, domain: str, site: str, max_price: object, *, for_mailbox: bool) -> Order:
        await give_way()
        flow = self._purchase(domain, site, max_price, for_mailbox=for_mailbox)
        with self._book.purchasing():  # close() waits for it; refused if begun after
            return await _flow.arun(flow, self._execute)

    async def _execute(self, op: _money.Op) -> object:
        """Carry out one request of a money flow (run by ``_flow.arun``)."""
        if isinstance(op, _money.PostOrder):
            return await self._request(_wire.create_order(op.domain, op.site))
        if isinstance(op, _money.ListOrders):
            call = _wire.list_orders(op.page, _money.PAGE_SIZE, op.status, op.domain)
            answer = await self._answer(call)
            page = _wire.decode(call, answer, self._api_key)
            return (page, _money.server_date(answer.headers)) if op.dated else page
        if isinstance(op, _money.GetMessages):
            return await self.get_messages(op.order_id)
        if isinstance(op, _money.CancelOrder):
            return await self.cancel_order(op.order_id)
        if isinstance(op, _money.GetDomains):
            return await self.get_domains()
        if isinstance(op, _money.GetOrder):
            return await self.get_order(op.order_id)
        # another task's purchase in flight: wait for it in a thread, not on the loop
        return await asyncio.to_thread(self._ledger.wait_settled, op.tokens, op.timeout)

    async def _exit_call(self, op: _money.Op, deadline: float | None) -> object:
        """Carry out one request of a mailbox's exit (``KopechkaClient._exit_call``)."""
        retries = None if deadline is None else 0
        if isinstance(op, _money.GetMessages):
            call = _wire.get_messages(op.order_id)
            return await self._request(call, deadline=deadline, max_retries=retries)
        if isinstance(op, _money.GetOrder):
            call2 = _wire.get_order(op.order_id)
            return await self._request(call2, deadline=deadline, max_retries=retries)
        if isinstance(op, _money.CancelOrder):
            call3 = _wire.cancel_order(op.order_id)
            cancellation = await self._request(call3, deadline=deadline, max_retries=retries)
            self._ledger.refunded(op.order_id, cancellation.refund_amount)
            return cancellation
        raise TypeError(f"a mailbox's exit does not send {op!r}")  # pragma: no cover

    async def cancel_order(self, order_id: str) -> Cancellation:
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
        cancellation = await self._request(_wire.cancel_order(order_id))
        self._ledger.refunded(str(order_id), cancellation.refund_amount)  # budget= gets it back
        return cancellation

    async def get_messages(self, order_id: str) -> MessageList:
        """Return the mail received by an order so far, and the order's state.

        Args:
            order_id: The order's id.

        Returns:
            The messages and a summary of the order (with its status).

        Raises:
            ValueError: ``order_id`` is empty or not a single path segment.
            NotFoundError: No such order.
            APIError: Any other failure (see the error tree).
        """
        return await self._request(_wire.get_messages(order_id))

    async def start_polling(self, order_id: str) -> PollingStatus:
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
        return await self._request(_wire.start_polling(order_id))

    # --- waiting for mail ----------------------------------------------------------------------

    async def wait_for_message(
        self,
        order_id: str,
        *,
        timeout: float = 120.0,
        poll_interval: float = 2.0,
        subject: TextFilter | None = None,
        sender: TextFilter | None = None,
        pattern: str | re.Pattern[str] | None = None,
        skip_existing: bool = False,
        stop: threading.Event | asyncio.Event | None = None,
    ) -> Message:
        """Wait until a message matching every given filter arrives, and return it.

        Cancelling the task ends the wait at once (``asyncio.CancelledError``, as asyncio
        expects).

        Args:
            order_id: The order to watch.
            timeout: Wall-clock seconds for the whole wait, requests included.
            poll_interval: Seconds between two looks at the mailbox (at most one look per
                interval, whatever the server answers).
            subject: Case-insensitive substring of the subject, or a compiled regex.
            sender: Case-insensitive substring of the sender, or a compiled regex.
            pattern: A regex searched in the content.
            skip_existing: Ignore messages already there when the wait starts.
            stop: An event (``threading.Event`` or ``asyncio.Event``); setting it ends the wait
                within 100 ms plus one request.

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
        return (await self._wait(wanted, stop)).message

    async def wait_for_code(
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
        stop: threading.Event | asyncio.Event | None = None,
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
            stop: An event that ends the wait when set, as for ``wait_for_message``.

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
        found = await self._wait(wanted, stop)
        assert found.code is not None
        return found.code

    async def _wait(self, wanted: Wanted, stop: threading.Event | asyncio.Event | None) -> Found:
        """Drive the wait flow: each look a single attempt (the flow outlasts failures)."""
        from ._waitflow import Fetch, StartPolling, wait_flow  # noqa: PLC0415 - loaded on first use

        messages = _wire.get_messages(wanted.order_id)
        polling = _wire.start_polling(wanted.order_id)

        stoppable = stop is not None and self._sleep is asyncio.sleep
        sleep = _stoppable_sleep(stop) if stop is not None and stoppable else self._sleep

        async def execute(command: Command) -> object:
            if isinstance(command, Fetch):
                return await self._request(messages, deadline=command.deadline, max_retries=0)
            if isinstance(command, StartPolling):
                await self._request(polling, deadline=command.deadline, max_retries=0)
                return True
            await sleep(command.seconds)
            return None

        if stop is None:
            return await _flow.arun(wait_flow(wanted, self._clock), execute)
        return await _flow.arun(wait_flow(wanted, self._clock, stop.is_set), execute)

    def mailbox(
        self, domain: str, site: str, *, max_price: Decimal | int | str | None = None
    ) -> AsyncMailbox:
        """An order to buy on entering ``async with``, refunded on leaving if no mail came.

        ``async with client.mailbox(domain, site) as box:`` buys the order (``POST /orders``);
        leaving the block, whatever ends it (an exception, the task's cancellation), cancels the
        order if it received no mail, so its price is refunded. The purchase follows the rules of
        ``KopechkaClient.mailbox`` (a lost answer's candidates are named, never cancelled).

        Args:
            domain: A domain from ``get_domains()``.
            site: The site whose mail you expect.
            max_price: As for ``create_order``.

        Returns:
            The mailbox, not bought yet.

        Raises:
            ValueError: ``domain`` or ``site`` is empty, or ``max_price`` is not an amount >= 0
                (at once, before any request).
        """
        _wire.create_order(domain, site)  # check the arguments now
        _money.check_cap("max_price", max_price)
        return AsyncMailbox(self, domain, site, max_price)

    async def sweep(self, *, older_than: float = 300.0, dry_run: bool = True) -> SweepReport:
        """Cancel the account's unused orders: ``KopechkaClient.sweep``, awaited.

        Args:
            older_than: Seconds an order must have lived (by its ``created_at``) to be swept.
            dry_run: Only report what would be cancelled (the default).

        Returns:
            What was (or would be) cancelled and refunded, what was kept, and what failed.

        Raises:
            ValueError: ``older_than`` is not a finite number >= 0.
            APIError: The orders could not be listed (then nothing was cancelled).
        """
        return await _flow.arun(self._sweep(older_than, dry_run), self._execute)


def _stoppable_sleep(stop: threading.Event | asyncio.Event) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        end = time.monotonic() + seconds
        while not stop.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, STOP_CHECK))

    return sleep
