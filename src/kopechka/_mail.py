"""The ``Mailbox``: a bought order used as a ``with`` block, refunded when it went unused.

The wait itself (filters, start-polling, deadlines, stopping) is ``_waitflow``'s, the rules of
leaving the block are ``_money.mailbox_exit``'s (the async mailbox drives the same flow), and what
a mailbox learns from its waits and logs on leaving is ``_face.BaseMailbox``'s, shared with the
async mailbox. This module owns the mailbox's life only; it sends no request except through the
client it is given.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from ._face import BaseMailbox
from ._money import CancelOrder, GetMessages, Op, drive

if TYPE_CHECKING:
    from ._models import Cancellation, Message, MessageList, Order
    from ._waitflow import TextFilter

__all__ = ["Mailbox"]

logger = logging.getLogger("kopechka")


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

    def __init__(self, client: _MailboxClient, order: Order) -> None:
        self._client = client
        self.order = order
        self._start()

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
        if self.cancellation is not None:
            return
        try:
            self._refund_if_unused()
        except BaseException as interrupt:  # e.g. a second Ctrl-C while refunding
            self.cancel_error = interrupt
            if exc is None:
                raise
            logger.warning("refunding order %s was interrupted: %r", self.order_id, interrupt)
        # returning None: the block's own exception, if any, propagates unchanged

    def _refund_if_unused(self) -> None:
        self._left(self.order_id, drive(self._exit_flow(self.order_id), self._execute))

    def _execute(self, op: Op) -> object:
        if isinstance(op, GetMessages):
            return self._client.get_messages(op.order_id)
        if isinstance(op, CancelOrder):
            return self._client.cancel_order(op.order_id)
        raise TypeError(f"a mailbox's exit does not send {op!r}")  # pragma: no cover
