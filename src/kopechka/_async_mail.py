"""``AsyncMailbox``: an order bought on entering ``async with`` and refunded on leaving if unused.

The rules of leaving are ``_money.mailbox_exit``'s (the sync ``Mailbox`` drives the same flow);
what a mailbox learns from its waits and logs on leaving is ``_face.BaseMailbox``'s, shared with
the sync one; ``_flow.arun`` runs the flow with awaited requests. This module owns
the async mailbox's life and its shielding from cancellation (a refund is never cut short: it runs
in a task the client keeps, and a request of it cancelled meanwhile, as ``asyncio.run`` cancels
what is left, is sent again; a task of it cancelled before it ran is started again). It sends
no request except through the client it is given.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from . import _flow, _money
from ._face import BaseMailbox, RefundBook, refunding

if TYPE_CHECKING:
    from ._models import Cancellation, Message, MessageList, Order
    from ._waitflow import TextFilter

__all__ = ["AsyncMailbox"]

logger = logging.getLogger("kopechka")
PERSIST = 3
"""Times a refund's request is sent again when its task is cancelled meanwhile (``asyncio.run``
cancels every task left when ``main`` returns): a refund is never cut short by a cancellation."""


class _AsyncMailboxClient(Protocol):
    """What an ``AsyncMailbox`` needs of ``AsyncKopechkaClient`` (spelled as callables: their
    keywords differ), so that this module does not import the client that imports it."""

    @property
    def get_messages(self) -> Callable[[str], Awaitable[MessageList]]: ...
    @property
    def cancel_order(self) -> Callable[[str], Awaitable[Cancellation]]: ...
    @property
    def wait_for_message(self) -> Callable[..., Awaitable[Message]]: ...
    @property
    def wait_for_code(self) -> Callable[..., Awaitable[str]]: ...

    _book: RefundBook
    _ledger: _money.Ledger

    async def _buy(
        self, domain: str, site: str, max_price: object, *, for_mailbox: bool
    ) -> Order: ...
    async def _exit_call(self, op: _money.Op, deadline: float | None) -> object: ...


async def _settle(task: asyncio.Future[Any]) -> bool:
    """Wait for ``task`` to end even if this task is cancelled meanwhile (a refund must not be
    cut short); return whether it was."""
    interrupted = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            interrupted = True  # even when the task ended meanwhile: the cancel is not lost
    return interrupted


class AsyncMailbox(BaseMailbox):
    """An order bought on entering ``async with``: leaving the block refunds it if no mail came.

    Made by ``AsyncKopechkaClient.mailbox()``. The block's own exception is the one that
    propagates; a task cancelled inside the block (or while buying) still refunds the order
    before the cancellation goes on.

    Attributes:
        cancellation: The ``Cancellation`` once the order was cancelled, else ``None``.
        cancel_error: Why leaving the block could not refund the order (the cancel failed, or was
            interrupted), else ``None``. The order may still be charged: ``sweep`` will find it.
    """

    cancellation: Cancellation | None
    cancel_error: BaseException | None
    _client: _AsyncMailboxClient

    def __init__(
        self, client: _AsyncMailboxClient, domain: str, site: str, max_price: object = None
    ) -> None:
        self._client, self._domain, self._site = client, domain, site
        self._max_price = max_price
        self._order: Order | None = None
        self._start()

    def __repr__(self) -> str:
        if self._order is None:
            return f"AsyncMailbox(domain={self._domain!r}, site={self._site!r}, not bought)"
        return f"AsyncMailbox(order_id={self.order_id!r}, email={self.email!r})"

    @property
    def order(self) -> Order:
        """The order as bought.

        Raises:
            RuntimeError: Not bought yet: enter the mailbox with ``async with`` first.
        """
        if self._order is None:
            raise RuntimeError("the mailbox is not bought yet: use it in `async with`")
        return self._order

    @property
    def email(self) -> str:
        """The address to sign up with."""
        return self.order.email

    @property
    def order_id(self) -> str:
        """The order's id (``API-...``)."""
        return self.order.order_id

    async def messages(self) -> list[Message]:
        """Return the messages received so far.

        Returns:
            The visible messages, oldest first.

        Raises:
            APIError: The call failed.
        """
        found = (await self._client.get_messages(self.order_id)).messages
        self._saw(found)
        return found

    async def wait_for_message(
        self,
        *,
        timeout: float = 120.0,
        poll_interval: float = 2.0,
        subject: TextFilter | None = None,
        sender: TextFilter | None = None,
        pattern: str | re.Pattern[str] | None = None,
        skip_existing: bool = False,
        stop: threading.Event | asyncio.Event | None = None,
    ) -> Message:
        """``AsyncKopechkaClient.wait_for_message`` on this order.

        Args:
            timeout: Wall-clock seconds for the whole wait, requests included.
            poll_interval: Seconds between two looks at the mailbox.
            subject: Case-insensitive substring of the subject, or a compiled regex.
            sender: Case-insensitive substring of the sender, or a compiled regex.
            pattern: A regex searched in the content.
            skip_existing: Ignore messages already there when the wait starts.
            stop: An event that ends the wait (``WaitCancelledError``) when set.

        Returns:
            The first matching message.

        Raises:
            WaitTimeoutError: Nothing matched in time.
            WaitCancelledError: ``stop`` was set.
            APIError: A failure that waiting cannot outlast.
        """
        with self._waiting():
            return await self._client.wait_for_message(
                self.order_id, timeout=timeout, poll_interval=poll_interval, subject=subject,
                sender=sender, pattern=pattern, skip_existing=skip_existing, stop=stop,
            )  # fmt: skip

    async def wait_for_code(
        self,
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
        """``AsyncKopechkaClient.wait_for_code`` on this order.

        Args:
            timeout: Wall-clock seconds for the whole wait, requests included.
            poll_interval: Seconds between two looks at the mailbox.
            code_pattern: A regex overriding the code heuristic (its first group, else the match).
            subject: Case-insensitive substring of the subject, or a compiled regex.
            sender: Case-insensitive substring of the sender, or a compiled regex.
            pattern: A regex searched in the content.
            skip_existing: Ignore messages already there when the wait starts.
            stop: An event that ends the wait (``WaitCancelledError``) when set.

        Returns:
            The code.

        Raises:
            WaitTimeoutError: No code arrived in time.
            WaitCancelledError: ``stop`` was set.
            APIError: A failure that waiting cannot outlast.
        """
        with self._waiting():
            return await self._client.wait_for_code(
                self.order_id, timeout=timeout, poll_interval=poll_interval,
                code_pattern=code_pattern, subject=subject, sender=sender, pattern=pattern,
                skip_existing=skip_existing, stop=stop,
            )  # fmt: skip

    async def cancel(self) -> Cancellation:
        """Cancel the order now (once; later calls return the same ``Cancellation``).

        Returns:
            The server's message and the amount refunded.

        Raises:
            APIError: The cancel failed.
        """
        if self.cancellation is None:
            self.cancellation = await self._client.cancel_order(self.order_id)
        return self.cancellation

    async def __aenter__(self) -> AsyncMailbox:
        if self._order is not None:
            return self
        buy = self._client._buy(self._domain, self._site, self._max_price, for_mailbox=True)
        buying = asyncio.ensure_future(buy)
        interrupted = await _settle(buying)
        self._order = buying.result()
        self._client._book.opened(self)  # close() refunds it if it is still open then
        if interrupted:  # cancelled while buying: the block never runs, the money comes back
            if self._claim():
                await _settle(self._refund_in_task())
            raise asyncio.CancelledError
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._order is None:
            return
        leaving = self._refund_in_task() if self._claim() else self._refunding
        if leaving is None:  # refunded already
            return
        interrupted = await _settle(leaving)
        try:
            leaving.result()
        except BaseException as error:  # never an API error (the flow keeps those): a bug
            self.cancel_error = error
            if exc is None:
                raise
            logger.warning("refunding order %s failed: %r", self.order_id, error)
        if interrupted and exc is None:  # cancelled while refunding a block that ended well
            raise asyncio.CancelledError

    _refunding: asyncio.Future[None] | None = None

    def _refund_in_task(self) -> asyncio.Future[None]:
        """Start the refund (claimed) in a task the client keeps until it ends; return a future
        that ends with the refund."""
        refunded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._client._book.tasks.add(refunded)  # what close() waits for
        self._refunding = refunded
        self._run_refund(refunded, PERSIST)
        return refunded

    def _run_refund(self, refunded: asyncio.Future[None], restarts: int) -> None:
        """Run the refund in a new task; one cancelled before it ran (``asyncio.run`` cancels
        every task left, new ones too, and a task cancelled before its first step never runs)
        is started again, ``restarts`` times."""
        book, started = self._client._book, [False]
        task = asyncio.get_running_loop().create_task(self._leave(started))
        book.tasks.add(task)  # the loop keeps tasks weakly: the client keeps its refunds

        def ended(done: asyncio.Task[None]) -> None:
            book.tasks.discard(done)
            if done.cancelled() and not started[0] and restarts > 0:
                self._run_refund(refunded, restarts - 1)
                return
            book.tasks.discard(refunded)
            book.done(self)
            if done.cancelled():
                refunded.cancel()
            elif done.exception() is not None:
                refunded.set_exception(done.exception())  # type: ignore[arg-type]
            else:
                refunded.set_result(None)

        task.add_done_callback(ended)

    async def _leave(self, started: list[bool]) -> None:
        """The exit rules, ``_money.mailbox_exit`` (the sync ``Mailbox``'s flow), awaited."""
        started[0] = True
        order_id = self.order_id
        with refunding():
            outcome = await _flow.arun(self._exit_flow(order_id), self._persist)
        self._left(order_id, outcome)

    async def _persist(self, op: _money.Op) -> object:
        """One request of the exit, sent again if this task is cancelled meanwhile (safe: a
        look, or a cancel, which the flow checks by the order's status)."""
        task = asyncio.current_task()
        for _ in range(PERSIST):
            try:
                return await self._client._exit_call(op, None)
            except asyncio.CancelledError:
                _uncancel(task)
                logger.debug("the refund of %s was cancelled: sending again", self.order_id)
        return await self._client._exit_call(op, None)


def _uncancel(task: asyncio.Task[Any] | None) -> None:
    """Withdraw the cancellation requests of ``task`` (3.11+; before, nothing counts them)."""
    uncancel = getattr(task, "uncancel", None)
    while uncancel is not None and getattr(task, "cancelling", lambda: 0)():
        uncancel()
