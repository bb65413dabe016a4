"""Waiting for mail, and the ``Mailbox`` that refunds an order which went unused.

The wait loop is given two functions, "fetch the messages" and "start polling", each taking the
wall-clock deadline; it knows nothing of HTTP or of the client. Rules it keeps:

* no request starts after the deadline, and each request's timeout shrinks to the time left;
* mail after an order's first message is fetched by the service only after start-polling (vendor
  docs), so the wait calls it once as soon as the order has mail;
* a cancelled or expired order ends the wait at once (``OrderClosedError``);
* transient failures (429, 5xx, network) are outlasted until the deadline; 401/404/400 are raised.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from ._exceptions import (
    APIConnectionError,
    APIError,
    BadRequestError,
    InternalServerError,
    OrderClosedError,
    RateLimitError,
    WaitTimeoutError,
)
from ._extract import extract_code, html_to_text, looks_like_html
from ._models import Cancellation, Message, MessageList, Order
from ._money import CancelOrder, GetMessages, Op, drive, mailbox_exit

__all__ = ["Found", "Mailbox", "TextFilter", "matches", "wait_for"]

logger = logging.getLogger("kopechka")

TextFilter = str | re.Pattern[str]
CLOSED = frozenset({"cancelled", "canceled", "expired"})
_TRANSIENT = (RateLimitError, InternalServerError, APIConnectionError)


@dataclass(frozen=True)
class Found:
    """The message a wait returned, and its code when one was asked for."""

    message: Message
    code: str | None = None


def _text_matches(wanted: TextFilter | None, value: str) -> bool:
    if wanted is None:
        return True
    if isinstance(wanted, re.Pattern):
        return wanted.search(value) is not None
    return wanted.casefold() in value.casefold()


def matches(
    message: Message,
    *,
    subject: TextFilter | None = None,
    sender: TextFilter | None = None,
    pattern: str | re.Pattern[str] | None = None,
) -> bool:
    """Return whether a message passes every given filter (HTML is also searched as text)."""
    if not (_text_matches(subject, message.subject) and _text_matches(sender, message.sender)):
        return False
    if pattern is None:
        return True
    if re.search(pattern, message.content):
        return True
    return looks_like_html(message.content) and bool(
        re.search(pattern, html_to_text(message.content))
    )


def _check(timeout: object, poll_interval: object, filters: dict[str, Any]) -> None:
    for name, value in (("timeout", timeout), ("poll_interval", poll_interval)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    for name in ("subject", "sender"):
        value = filters.get(name)
        if value is not None and not isinstance(value, (str, re.Pattern)):
            raise ValueError(f"{name} must be a str or a compiled regex, got {value!r}")
    pattern = filters.get("pattern")
    if pattern is not None and not isinstance(pattern, (str, re.Pattern)):
        raise ValueError(f"pattern must be a str or a compiled regex, got {pattern!r}")


def wait_for(
    fetchers: tuple[Callable[[float], MessageList], Callable[[float], object]],
    order_id: str,
    *,
    timeout: float,
    poll_interval: float,
    subject: TextFilter | None = None,
    sender: TextFilter | None = None,
    pattern: str | re.Pattern[str] | None = None,
    skip_existing: bool = False,
    code_pattern: str | re.Pattern[str] | None = None,
    need_code: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Found:
    """Poll an order until a message passes the filters (and holds a code, if ``need_code``).

    Raises:
        ValueError: A bad argument.
        WaitTimeoutError: Nothing matched before the deadline.
        OrderClosedError: The order was cancelled or expired.
        APIError: A failure that waiting cannot outlast.
    """
    _check(timeout, poll_interval, {"subject": subject, "sender": sender, "pattern": pattern})
    wait = _Wait(
        fetchers, order_id, float(timeout), float(poll_interval), clock, sleep,
        accept=lambda m: matches(m, subject=subject, sender=sender, pattern=pattern),
        code_pattern=code_pattern, need_code=need_code, skip_existing=skip_existing,
    )  # fmt: skip
    return wait.run()


class _Wait:
    """One wait: what was seen, what was rejected, whether polling was started."""

    def __init__(
        self,
        fetchers: tuple[Callable[[float], MessageList], Callable[[float], object]],
        order_id: str,
        timeout: float,
        poll_interval: float,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        *,
        accept: Callable[[Message], bool],
        code_pattern: str | re.Pattern[str] | None,
        need_code: bool,
        skip_existing: bool,
    ) -> None:
        self.fetch, self.start_polling = fetchers
        self.order_id, self.timeout, self.poll_interval = order_id, timeout, poll_interval
        self.clock, self.sleep = clock, sleep
        self.accept, self.code_pattern, self.need_code = accept, code_pattern, need_code
        self.skip_existing = skip_existing
        self.deadline = clock() + timeout
        self.seen: dict[str, Message] = {}
        self.done: set[str] | None = None  # ids never to look at again: skipped or rejected
        self.polling = False
        self.last_error: APIError | None = None

    def run(self) -> Found:
        while self.clock() < self.deadline:
            listing = self._look()
            if listing is None:
                continue
            found = self._first_match(listing)
            if found is not None:
                return found
            status = str(listing.order.status)
            if status in CLOSED:
                raise OrderClosedError(
                    f"order {self.order_id} is {status}: no mail will come",
                    status=status, messages=list(self.seen.values()),
                )  # fmt: skip
            if listing.messages and not self.polling:
                self.polling = _start(self.start_polling, self.deadline)
                if self.polling:
                    continue  # look again at once: polling may have made newer mail visible
            self._pause(self.poll_interval)
        what = "message with a code" if self.need_code else "matching message"
        error = WaitTimeoutError(
            f"no {what} on order {self.order_id} within {self.timeout:g} s ({len(self.seen)} seen)",
            messages=list(self.seen.values()),
        )
        raise error from self.last_error

    def _look(self) -> MessageList | None:
        """Fetch the messages; a transient failure pauses (a 429 for its Retry-After)."""
        try:
            return self.fetch(self.deadline)
        except _TRANSIENT as exc:
            self.last_error = exc
            asked = exc.retry_after if isinstance(exc, RateLimitError) else None
            self._pause(self.poll_interval if asked is None else asked)
            return None

    def _first_match(self, listing: MessageList) -> Found | None:
        if self.done is None:  # the first look decides what "existing" means
            self.done = {m.id for m in listing.messages} if self.skip_existing else set()
        for message in listing.messages:
            self.seen.setdefault(message.id, message)
            if message.id in self.done:
                continue
            self.done.add(message.id)  # messages never change: one look decides
            if self.accept(message):
                code = extract_code(message.content, self.code_pattern, subject=message.subject)
                if code is not None or not self.need_code:
                    return Found(message, code)
        return None

    def _pause(self, seconds: float) -> None:
        self.sleep(max(0.0, min(seconds, self.deadline - self.clock())))


def _start(start_polling: Callable[[float], object], deadline: float) -> bool:
    try:
        start_polling(deadline)
    except (BadRequestError, *_TRANSIENT) as exc:  # e.g. not active yet: try again next round
        logger.debug("start-polling failed, will try again: %s", exc)
        return False
    return True


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

    def __init__(self, client: _MailboxClient, order: Order) -> None:
        self._client = client
        self.order = order
        self.cancellation: Cancellation | None = None
        self.cancel_error: BaseException | None = None
        self._got_mail = False
        self._status: str | None = None  # known closed (expired, cancelled) from a wait

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

    def wait_for_message(self, **kwargs: Any) -> Message:
        """``KopechkaClient.wait_for_message`` on this order.

        Args:
            **kwargs: The keyword arguments of ``KopechkaClient.wait_for_message``.

        Returns:
            The first matching message.

        Raises:
            WaitTimeoutError: Nothing matched in time.
            APIError: A failure that waiting cannot outlast.
        """
        try:
            message = self._client.wait_for_message(self.order_id, **kwargs)
        except OrderClosedError as exc:
            self._status = exc.status
            raise
        self._got_mail = True
        return message

    def wait_for_code(self, **kwargs: Any) -> str:
        """``KopechkaClient.wait_for_code`` on this order.

        Args:
            **kwargs: The keyword arguments of ``KopechkaClient.wait_for_code``.

        Returns:
            The code.

        Raises:
            WaitTimeoutError: No code arrived in time.
            APIError: A failure that waiting cannot outlast.
        """
        try:
            code = self._client.wait_for_code(self.order_id, **kwargs)
        except OrderClosedError as exc:
            self._status = exc.status
            raise
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
        flow = mailbox_exit(self.order_id, got_mail=self._got_mail, status=self._status)
        outcome = drive(flow, self._execute)
        if outcome.check_error is not None:
            logger.warning(
                "could not check order %s for mail: %s", self.order_id, outcome.check_error
            )
        if outcome.cancellation is not None:
            self.cancellation = outcome.cancellation
            logger.info(
                "cancelled unused order %s, refunded %s",
                self.order_id, outcome.cancellation.refund_amount,
            )  # fmt: skip
        elif outcome.error is not None:
            self.cancel_error = outcome.error
            logger.warning("could not cancel unused order %s: %s", self.order_id, outcome.error)
        else:
            logger.debug("order %s not cancelled: %s", self.order_id, outcome.reason)

    def _execute(self, op: Op) -> object:
        if isinstance(op, GetMessages):
            return self._client.get_messages(op.order_id)
        if isinstance(op, CancelOrder):
            return self._client.cancel_order(op.order_id)
        raise TypeError(f"a mailbox's exit does not send {op!r}")  # pragma: no cover
