"""The ``Mailbox``: a bought order used as a ``with`` block, refunded when it went unused.

The wait itself (filters, start-polling, deadlines, stopping) is ``_waitflow``'s; this module owns
the mailbox's life only. It must not send requests except through the client it is given.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from ._exceptions import APIError
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


class Mailbox:
    """A bought order used as a ``with`` block: leaving the block refunds it if no mail came.

    Attributes:
        order: The order as bought.
        cancellation: The ``Cancellation`` once the order was cancelled, else ``None``.
    """

    def __init__(self, client: _MailboxClient, order: Order) -> None:
        self._client = client
        self.order = order
        self.cancellation: Cancellation | None = None
        self._got_mail = False

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
        self._got_mail = self._got_mail or bool(found)
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
        message = self._client.wait_for_message(
            self.order_id, timeout=timeout, poll_interval=poll_interval, subject=subject,
            sender=sender, pattern=pattern, skip_existing=skip_existing, stop=stop,
        )  # fmt: skip
        self._got_mail = True
        return message

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
        code = self._client.wait_for_code(
            self.order_id, timeout=timeout, poll_interval=poll_interval,
            code_pattern=code_pattern, subject=subject, sender=sender, pattern=pattern,
            skip_existing=skip_existing, stop=stop,
        )  # fmt: skip
        self._got_mail = True
        return code

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
        if self.cancellation is not None or self._got_mail:
            return
        try:
            if self.messages():
                return
        except APIError as error:  # cannot tell: cancel anyway, the server refunds only if unused
            logger.warning("could not check order %s for mail: %s", self.order_id, error)
        try:
            refund = self.cancel().refund_amount
            logger.info("cancelled unused order %s, refunded %s", self.order_id, refund)
        except APIError as error:
            logger.warning("could not cancel unused order %s: %s", self.order_id, error)
