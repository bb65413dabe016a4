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
    fetch, start_polling = fetchers
    deadline = clock() + float(timeout)
    seen: dict[str, Message] = {}
    skip: set[str] | None = None
    polling = False
    last_error: APIError | None = None
    while clock() < deadline:
        try:
            listing = fetch(deadline)
        except _TRANSIENT as exc:
            last_error = exc
            pause = exc.retry_after if isinstance(exc, RateLimitError) else None
            sleep(max(0.0, min(pause or poll_interval, deadline - clock())))
            continue
        if skip is None:
            skip = {m.id for m in listing.messages} if skip_existing else set()
        for message in listing.messages:
            seen.setdefault(message.id, message)
            if message.id in skip or not matches(
                message, subject=subject, sender=sender, pattern=pattern
            ):
                continue
            code = extract_code(message.content, code_pattern, subject=message.subject)
            if code is not None or not need_code:
                return Found(message, code)
        status = str(listing.order.status)
        if status in CLOSED:
            raise OrderClosedError(
                f"order {order_id} is {status}: no mail will come", status=status,
                messages=list(seen.values()),
            )  # fmt: skip
        if listing.messages and not polling:
            polling = _start(start_polling, deadline)
            if polling:
                continue  # look again at once: polling may have made newer mail visible
        sleep(max(0.0, min(poll_interval, deadline - clock())))
    what = "message with a code" if need_code else "matching message"
    error = WaitTimeoutError(
        f"no {what} on order {order_id} within {timeout:g} s ({len(seen)} seen)",
        messages=list(seen.values()),
    )
    raise error from last_error


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
        message = self._client.wait_for_message(self.order_id, **kwargs)
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
        code = self._client.wait_for_code(self.order_id, **kwargs)
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
