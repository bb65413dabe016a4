"""The ``Mailbox``: a bought order used as a ``with`` block, refunded when it went unused.

The wait itself (filters, start-polling, deadlines, stopping) is ``_waitflow``'s, the rules of
leaving the block are ``_money.mailbox_exit``'s (the async mailbox drives the same flow), and what
a mailbox learns from its waits and logs on leaving is ``_face.BaseMailbox``'s, shared with the
async mailbox. This module owns the mailbox's life only (with the bound on its exit after an
interrupt, ``INTERRUPTED_EXIT``); it sends no request except through the client it is given.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from . import _flow
from ._face import BaseMailbox, RefundBook, refunding
from ._money import Ledger, Op

if TYPE_CHECKING:
    from ._models import Cancellation, Message, MessageList, Order
    from ._waitflow import TextFilter

__all__ = ["Mailbox"]

logger = logging.getLogger("kopechka")

INTERRUPTED_EXIT = 3.0
"""Seconds the refund on leaving a block ended by an interrupt (Ctrl-C, a signal) may take in all:
each request tried once, no backoff; a second interrupt abandons it at once."""


class _MailboxClient(Protocol):
    """What a ``Mailbox`` needs of the client (spelled as callables: their keywords differ)."""

    @property
    def get_messages(self) -> Callable[[str], MessageList]: ...
    @property
    def cancel_order(self) -> Callable[[str], Cancellation]: ...
    @property
    def wait_for_message(self) -> Callable[..., Message]: ...
    @property
    def wait_for_code(self) -> Callable[..., str]: ...

    _book: RefundBook
    _ledger: Ledger

    @property
    def _clock(self) -> Callable[[], float]: ...
    def _exit_call(self, op: Op, deadline: float | None) -> object: ...


class Mailbox(BaseMailbox):
    """A bought order used as a ``with`` block: leaving the block refunds it if no mail came.

    Whatever ends the block (an exception, ``KeyboardInterrupt``, ``SystemExit``, a stopped wait,
    a signal under ``exit_on_signals()``, a hostile answer during the exit itself), an order without
    mail is cancelled and the block's own exception is the one that propagates. An order that
    expired or was cancelled elsewhere is left alone, without a warning.

    Attributes:
        order: The order as bought.
        cancellation: The ``Cancellation`` once the order was cancelled, else ``None``.
        cancel_error: Why leaving the block could not refund the order (the cancel failed, or was
            interrupted), else ``None``. The order may still be charged: ``sweep`` will find it.
    """

    cancellation: Cancellation | None
    cancel_error: BaseException | None
    _client: _MailboxClient

    def __init__(self, client: _MailboxClient, order: Order) -> None:
        self._client = client
        self.order = order
        self._start()
        client._book.opened(self)  # close() refunds it if it is still open then

    def __repr__(self) -> str:
        return f"Mailbox(order_id={self.order_id!r}, email={self.email!r})"

    @property
    def email(self) -> str:
        """The address to sign up with."""
        return self.order.email

    @property
    def order_id(self) -> str:
        """The order's id (``API-...``)."""
        return self.order.order_id

    def messages(self) -> list[Message]:
        """Return the messages received so far.

        Returns:
            The visible messages, oldest first.

        Raises:
            APIError: The call failed.
        """
        found = self._client.get_messages(self.order_id).messages
        self._saw(found)
        return found

    def wait_for_message(
        self,
        *,
        timeout: float = 120.0,
        poll_interval: float = 2.0,
        subject: TextFilter | None = None,
        sender: TextFilter | None = None,
        pattern: str | re.Pattern[str] | None = None,
        skip_existing: bool = False,
        stop: threading.Event | None = None,
    ) -> Message:
        """``KopechkaClient.wait_for_message`` on this order.

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
            return self._client.wait_for_message(
                self.order_id, timeout=timeout, poll_interval=poll_interval, subject=subject,
                sender=sender, pattern=pattern, skip_existing=skip_existing, stop=stop,
            )  # fmt: skip

    def wait_for_code(
        self,
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
        """``KopechkaClient.wait_for_code`` on this order.

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
            return self._client.wait_for_code(
                self.order_id, timeout=timeout, poll_interval=poll_interval,
                code_pattern=code_pattern, subject=subject, sender=sender, pattern=pattern,
                skip_existing=skip_existing, stop=stop,
            )  # fmt: skip

    def cancel(self) -> Cancellation:
        """Cancel the order now (once; later calls return the same ``Cancellation``).

        Returns:
            The server's message and the amount refunded.

        Raises:
            APIError: The cancel failed.
        """
        if self.cancellation is None:
            self.cancellation = self._client.cancel_order(self.order_id)
        return self.cancellation

    def __enter__(self) -> Mailbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._claim():  # refunded already (or being refunded by close())
            return
        interrupted = exc is not None and not isinstance(exc, Exception)
        try:
            self._refund_if_unused(interrupted=interrupted)
        except BaseException as interrupt:  # e.g. a second Ctrl-C while refunding: abandon it
            self.cancel_error = interrupt
            line = (
                f"refunding order {self.order_id} was abandoned ({interrupt!r}): it may still be "
                "charged; run `kopechka sweep` to refund it"
            )
            logger.warning("%s", line)
            _note(exc if exc is not None else interrupt, line)  # printed with the traceback
            if exc is None:
                raise
        finally:
            self._client._book.done(self)
        # returning None: the block's own exception, if any, propagates unchanged

    def _refund_if_unused(
        self, *, interrupted: bool = False, deadline: float | None = None
    ) -> None:
        """Run the exit rules; after an interrupt, within ``INTERRUPTED_EXIT`` seconds in all (or
        by ``deadline``, on the client's clock)."""
        if interrupted:
            deadline = self._client._clock() + INTERRUPTED_EXIT
        with refunding():
            outcome = _flow.run(
                self._exit_flow(self.order_id), lambda op: self._client._exit_call(op, deadline)
            )
        self._left(self.order_id, outcome)

    def _refund_claimed(self, deadline: float | None = None) -> None:
        """``close()``'s refund of a mailbox still open (claimed for it), by ``deadline``."""
        try:
            self._refund_if_unused(deadline=deadline)
        finally:
            self._client._book.done(self)


def _note(error: BaseException, line: str) -> None:
    """Add ``line`` to what the traceback of ``error`` prints (Python 3.11+)."""
    add_note = getattr(error, "add_note", None)
    if add_note is not None:
        add_note(line)
