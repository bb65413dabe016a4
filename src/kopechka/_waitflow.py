"""Waiting for mail as a pure flow, and the rules of leaving a mailbox: decisions only.

This module owns what a wait does next and when it ends, for both clients. A wait is a generator
(as httpx's ``Auth.auth_flow``): it yields a command, ``Fetch`` (the messages), ``StartPolling``
or ``Sleep``, and is sent what came of it: a ``MessageList``, ``True`` for polling started, the
``APIError`` the call raised, ``None`` after a sleep, or ``STOPPED`` when the caller's ``stop``
event is set. It returns the ``Found`` message or raises the wait's typed error. The drivers at
the bottom (about fifteen lines each, one sync and one async) carry the commands out. (The exit of
a mailbox is ``_money.mailbox_exit``, a flow of the same kind.)

It must not do I/O: it sends nothing, sleeps never and reads the time only through the clock it
is given, so its tests are tables with fake time. The rules it keeps:

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
* ``STOPPED`` ends the wait at once with ``WaitCancelledError``, carrying the messages seen.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import re
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from ._config import CLOSED
from ._exceptions import (
    APIConnectionError,
    APIError,
    BadRequestError,
    InternalServerError,
    OrderClosedError,
    RateLimitError,
    WaitCancelledError,
    WaitTimeoutError,
)
from ._lazy import lazy

if TYPE_CHECKING:
    from . import _extract, _models
    from ._models import Message, MessageList
else:  # loaded on first use: importing a client declares no model (see _lazy)
    _extract = lazy("kopechka._extract", __name__)
    _models = lazy("kopechka._models", __name__)

__all__ = [
    "CLOSED",
    "STOPPED",
    "Calls",
    "Fetch",
    "Found",
    "Sleep",
    "StartPolling",
    "TextFilter",
    "Wanted",
    "drive",
    "drive_async",
    "matches",
    "wait_flow",
]

logger = logging.getLogger("kopechka")

TextFilter = str | re.Pattern[str]
"""A case-insensitive substring, or a compiled regex searched in the text."""
_TRANSIENT = (RateLimitError, InternalServerError, APIConnectionError)


class Stopped(enum.Enum):
    """What a driver sends when the caller's ``stop`` event is set."""

    STOPPED = "stopped"


STOPPED = Stopped.STOPPED


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
Reply: TypeAlias = "MessageList | bool | APIError | Stopped | None"  # models load on first use
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
            ValueError: A timeout or interval that is not a positive number, or a filter that is
                neither a ``str`` nor a compiled regex.
        """
        for name in ("timeout", "poll_interval"):
            value = arguments[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
            arguments[name] = float(value)
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


def wait_flow(wanted: Wanted, clock: Callable[[], float]) -> WaitFlow:
    """The wait for ``wanted``, as commands to carry out; returns what was found.

    Raises:
        WaitTimeoutError: Nothing matched before the deadline (``__cause__``: the last failure).
        OrderClosedError: The order was cancelled or expired.
        WaitCancelledError: The driver sent ``STOPPED``.
        APIError: A failure that waiting cannot outlast (401, 404, ...).
    """
    deadline = clock() + wanted.timeout
    seen: dict[str, Message] = {}
    judged: set[str] | None = None  # ids never to look at again: skipped or rejected
    polling, last_error = False, None
    while clock() < deadline:
        reply = yield Fetch(deadline)
        pause = wanted.poll_interval
        if isinstance(reply, _models.MessageList):
            if judged is None:  # the first look decides what "existing" means
                judged = {m.id for m in reply.messages} if wanted.skip_existing else set()
            found = _judge(wanted, reply, seen, judged)
            if found is not None:
                return found
            _raise_if_closed(wanted, reply, seen)
            if reply.messages and not polling:
                polling = yield from _start_polling(deadline, seen, wanted)
                if polling:
                    continue  # look again at once: polling may have made newer mail visible
        else:
            last_error = _outlast(reply, seen, wanted)
            asked = last_error.retry_after if isinstance(last_error, RateLimitError) else None
            pause = max(pause, asked or 0.0)
        left = deadline - clock()
        if left > 0 and (yield Sleep(min(pause, left))) is STOPPED:
            raise _cancelled(wanted, seen)
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


def _outlast(reply: Reply, seen: dict[str, Message], wanted: Wanted) -> APIError:
    """The failure of a look, when waiting may outlast it; else raise what ends the wait."""
    if reply is STOPPED:
        raise _cancelled(wanted, seen)
    if isinstance(reply, _TRANSIENT):
        return reply
    if isinstance(reply, APIError):
        raise reply
    raise TypeError(f"a messages look was answered with {reply!r}")


def _start_polling(
    deadline: float, seen: dict[str, Message], wanted: Wanted
) -> Generator[Command, Reply, bool]:
    reply = yield StartPolling(deadline)
    if reply is True:
        return True
    if reply is STOPPED:
        raise _cancelled(wanted, seen)
    if isinstance(reply, (BadRequestError, *_TRANSIENT)):  # e.g. not active yet: next round
        logger.debug("start-polling failed, will try again: %s", reply)
        return False
    if isinstance(reply, APIError):
        raise reply
    raise TypeError(f"start-polling was answered with {reply!r}")


def _cancelled(wanted: Wanted, seen: dict[str, Message]) -> WaitCancelledError:
    return WaitCancelledError(
        f"the wait on order {wanted.order_id} was stopped ({len(seen)} seen)",
        messages=list(seen.values()),
    )


# --- the two drivers -------------------------------------------------------------------------

T = TypeVar("T")
Calls = Mapping[type, Callable[[Any], object]]
"""What carries out each command but ``Sleep``, by the command's class; called with its
``deadline`` (``None`` for commands without one)."""
AsyncCalls = Mapping[type, Callable[[Any], Awaitable[object]]]


def drive(
    flow: Generator[Any, Any, T],
    calls: Calls,
    sleep: Callable[[float], object],
    stopped: Callable[[], bool] = lambda: False,
) -> T:
    """Carry a flow's commands out in this thread and return its result.

    A call's ``APIError`` is sent to the flow as the reply; ``stopped()`` is checked before
    each command and after each sleep, and ``STOPPED`` sent when it is true.
    """
    command = next(flow)
    while True:
        reply: object = None
        if stopped():
            reply = STOPPED
        elif isinstance(command, Sleep):
            sleep(command.seconds)
            reply = STOPPED if stopped() else None
        else:
            try:
                reply = calls[type(command)](getattr(command, "deadline", None))
            except APIError as exc:
                reply = exc
        try:
            command = flow.send(reply)
        except StopIteration as end:
            return end.value  # type: ignore[no-any-return]


async def drive_async(
    flow: Generator[Any, Any, T],
    calls: AsyncCalls,
    sleep: Callable[[float], Awaitable[object]],
    stopped: Callable[[], bool] = lambda: False,
) -> T:
    """``drive``, awaited. Cancelling the task ends the flow at once, where it awaits."""
    command = next(flow)
    with contextlib.closing(flow):
        while True:
            reply: object = None
            if stopped():
                reply = STOPPED
            elif isinstance(command, Sleep):
                await sleep(command.seconds)
                reply = STOPPED if stopped() else None
            else:
                try:
                    reply = await calls[type(command)](getattr(command, "deadline", None))
                except APIError as exc:
                    reply = exc
            try:
                command = flow.send(reply)
            except StopIteration as end:
                return end.value  # type: ignore[no-any-return]
