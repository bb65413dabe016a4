"""Waiting for mail as a pure flow, and the rules of leaving a mailbox: decisions only.

This module owns what a wait does next and when it ends, for both clients. A wait is a flow
(``_flow``'s convention, run by ``_flow.run`` or ``_flow.arun``): it yields a command, ``Fetch``
(the messages), ``StartPolling`` or ``Sleep``, and is sent what came of it (a ``MessageList``,
``True`` for polling started, ``None`` after a sleep) or has the error the call raised thrown in.
It returns the ``Found`` message or raises the wait's typed error. (The exit of a mailbox is
``_money.mailbox_exit``, a flow of the same kind.)

It must not do I/O: it sends nothing, sleeps never, and reads the time and the caller's ``stop``
event only through the functions it is given (``clock``, ``stopped``), so its tests are tables
with fake time. The rules it keeps:

* every filter given must match; each message is judged once (messages never change);
* ``skip_existing`` ignores what the first look saw; mail after an order's first message is
  fetched by the service only after start-polling (vendor docs), so the wait starts it once the
  order has mail, and looks again at once when it did;
* a cancelled or expired order ends the wait (``OrderClosedError``);
* 429, 5xx and network failures are outlasted until the deadline; any other error is raised;
* never spin: at most one messages request per ``poll_interval`` whatever the server answers (a
  429 waits for the longer of its ``Retry-After`` and the interval);
* ``timeout`` is a wall-clock deadline: no request starts after it, each one must end by it
  (``Fetch.deadline``), no sleep runs past it;
* ``stopped()``, looked at before each command and after each sleep, ends the wait at once with
  ``WaitCancelledError``, carrying the messages seen.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from ._config import CLOSED
from ._exceptions import (
    APIConnectionError,
    BadRequestError,
    InternalServerError,
    OrderClosedError,
    RateLimitError,
    WaitCancelledError,
    WaitTimeoutError,
)
from ._lazy import lazy
from ._policy import MAX_TIMEOUT
from ._settings import checked_seconds

if TYPE_CHECKING:
    from . import _extract, _models
    from ._models import Message, MessageList
else:  # loaded on first use: importing a client declares no model (see _lazy)
    _extract = lazy("kopechka._extract", __name__)
    _models = lazy("kopechka._models", __name__)

__all__ = [
    "CLOSED",
    "Fetch",
    "Found",
    "Sleep",
    "StartPolling",
    "TextFilter",
    "Wanted",
    "matches",
    "wait_flow",
]

logger = logging.getLogger("kopechka")

TextFilter = str | re.Pattern[str]
"""A case-insensitive substring, or a compiled regex searched in the text."""
_TRANSIENT = (RateLimitError, InternalServerError, APIConnectionError)
_POLL_LATER = (BadRequestError, *_TRANSIENT)


@dataclass(frozen=True, slots=True)
class Fetch:
    """Get the order's messages; the request must end by ``deadline`` (on the wait's clock)."""

    deadline: float


@dataclass(frozen=True, slots=True)
class StartPolling:
    """Ask the service to fetch new mail for the order, ending by ``deadline``."""

    deadline: float


@dataclass(frozen=True, slots=True)
class Sleep:
    """Pause this many seconds (never past the deadline)."""

    seconds: float


Command = Fetch | StartPolling | Sleep
Reply: TypeAlias = "MessageList | bool | None"  # models load on first use
WaitFlow = Generator[Command, Reply, "Found"]


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
    return _extract.looks_like_html(message.content) and bool(
        re.search(pattern, _extract.html_to_text(message.content))
    )


@dataclass(frozen=True)
class Wanted:
    """What one wait looks for, its arguments checked (``Wanted.of``)."""

    order_id: str
    timeout: float
    poll_interval: float
    subject: TextFilter | None = None
    sender: TextFilter | None = None
    pattern: str | re.Pattern[str] | None = None
    skip_existing: bool = False
    code_pattern: str | re.Pattern[str] | None = None
    need_code: bool = False

    @classmethod
    def of(cls, order_id: str, **arguments: Any) -> Wanted:
        """Check a wait's arguments and return them.

        Raises:
            ValueError: A timeout or interval that is not a finite number of seconds > 0 and at
                most a day, or a filter that is neither a ``str`` nor a compiled regex.
        """
        for name in ("timeout", "poll_interval"):
            arguments[name] = checked_seconds(
                name, arguments[name], positive=True, most=MAX_TIMEOUT
            )
        for name in ("subject", "sender", "pattern", "code_pattern"):
            value = arguments.get(name)
            if value is not None and not isinstance(value, (str, re.Pattern)):
                raise ValueError(f"{name} must be a str or a compiled regex, got {value!r}")
        return cls(order_id, **arguments)

    def accepts(self, message: Message) -> Found | None:
        """The message as found, or ``None`` when it fails a filter or lacks a wanted code."""
        if not matches(message, subject=self.subject, sender=self.sender, pattern=self.pattern):
            return None
        code = _extract.extract_code(message.content, self.code_pattern, subject=message.subject)
        return Found(message, code) if code is not None or not self.need_code else None


def wait_flow(
    wanted: Wanted, clock: Callable[[], float], stopped: Callable[[], bool] = lambda: False
) -> WaitFlow:
    """The wait for ``wanted``, as commands to carry out; returns what was found.

    Raises:
        WaitTimeoutError: Nothing matched before the deadline (``__cause__``: the last failure).
        OrderClosedError: The order was cancelled or expired.
        WaitCancelledError: ``stopped()`` was true before a command or after a sleep.
        APIError: A failure that waiting cannot outlast (401, 404, ...).
    """
    deadline = clock() + wanted.timeout
    seen: dict[str, Message] = {}
    judged: set[str] | None = None  # ids never to look at again: skipped or rejected
    polling, last_error = False, None
    while clock() < deadline:
        pause = wanted.poll_interval
        try:
            reply = yield from _unless_stopped(Fetch(deadline), stopped, wanted, seen)
        except _TRANSIENT as exc:  # outlasted until the deadline; any other error ends the wait
            last_error = exc
            asked = exc.retry_after if isinstance(exc, RateLimitError) else None
            pause = max(pause, asked or 0.0)
        else:
            if not isinstance(reply, _models.MessageList):
                raise TypeError(f"a messages look was answered with {reply!r}")
            if judged is None:  # the first look decides what "existing" means
                judged = {m.id for m in reply.messages} if wanted.skip_existing else set()
            found = _judge(wanted, reply, seen, judged)
            if found is not None:
                return found
            _raise_if_closed(wanted, reply, seen)
            if reply.messages and not polling:
                polling = yield from _start_polling(deadline, stopped, wanted, seen)
                if polling:
                    continue  # look again at once: polling may have made newer mail visible
        left = deadline - clock()
        if left > 0:
            yield from _unless_stopped(Sleep(min(pause, left)), stopped, wanted, seen)
    what = "message with a code" if wanted.need_code else "matching message"
    raise WaitTimeoutError(
        f"no {what} on order {wanted.order_id} within {wanted.timeout:g} s ({len(seen)} seen)",
        messages=list(seen.values()),
    ) from last_error


def _judge(
    wanted: Wanted, listing: MessageList, seen: dict[str, Message], judged: set[str]
) -> Found | None:
    for message in listing.messages:
        seen.setdefault(message.id, message)
        if message.id in judged:
            continue
        judged.add(message.id)  # messages never change: one look decides
        found = wanted.accepts(message)
        if found is not None:
            return found
    return None


def _raise_if_closed(wanted: Wanted, listing: MessageList, seen: dict[str, Message]) -> None:
    status = str(listing.order.status)
    if status in CLOSED:
        raise OrderClosedError(
            f"order {wanted.order_id} is {status}: no mail will come",
            status=status, messages=list(seen.values()),
        )  # fmt: skip


def _unless_stopped(
    command: Command, stopped: Callable[[], bool], wanted: Wanted, seen: dict[str, Message]
) -> Generator[Command, Reply, Reply]:
    """Carry ``command`` out, unless the wait is stopped: before it, or by the end of a sleep."""
    if stopped():
        raise _cancelled(wanted, seen)
    reply = yield command
    if isinstance(command, Sleep) and stopped():
        raise _cancelled(wanted, seen)
    return reply


def _start_polling(
    deadline: float, stopped: Callable[[], bool], wanted: Wanted, seen: dict[str, Message]
) -> Generator[Command, Reply, bool]:
    try:
        reply = yield from _unless_stopped(StartPolling(deadline), stopped, wanted, seen)
    except _POLL_LATER as exc:  # e.g. not active yet: next round
        logger.debug("start-polling failed, will try again: %s", exc)
        return False
    if reply is True:
        return True
    raise TypeError(f"start-polling was answered with {reply!r}")


def _cancelled(wanted: Wanted, seen: dict[str, Message]) -> WaitCancelledError:
    return WaitCancelledError(
        f"the wait on order {wanted.order_id} was stopped ({len(seen)} seen)",
        messages=list(seen.values()),
    )
