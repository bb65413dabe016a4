"""The one convention of every multi-step rule, and the one pair of drivers that runs them all.

A *flow* is a generator, as httpx's ``Auth.auth_flow``: it yields an *operation*, a plain value
saying what it needs done (a request, a sleep, a look at the limiter), and is sent the operation's
result, or has the exception the operation raised thrown in (an interrupt or a cancellation
included), and decides: catch it, or let it end the flow. What the flow returns is the driver's
result; what it raises, the driver raises. The waits (``_waitflow``), the purchases, sweeps and
mailbox exits (``_money``) and the wait for the limiter's slot (``_attempt.admission``) are flows.

``run`` drives a flow in this thread and ``arun`` awaits it, each with an *executor*: a function
of the face that owns the flow, mapping one operation to its I/O (and nothing else). A new flow is
a generator and a table test, never a new driver. This module does no I/O by itself and knows no
operation: it only hands them over.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

__all__ = ["Flow", "arun", "run"]

R = TypeVar("R")
Flow = Generator[Any, Any, R]
"""A flow returning ``R`` (each module names its operations: ``_money.Op``, ...)."""


def run(flow: Generator[Any, Any, R], execute: Callable[[Any], Any]) -> R:
    """Run ``flow`` to its end, carrying out each operation it yields with ``execute``.

    Whatever ``execute`` raises (interrupts included) is thrown into the flow, which decides.

    Raises:
        BaseException: Whatever the flow raises.
    """
    reply: Any = None
    failure: BaseException | None = None
    try:
        while True:
            try:
                op = flow.send(reply) if failure is None else flow.throw(failure)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            reply, failure = None, None
            try:
                reply = execute(op)
            except BaseException as exc:
                failure = exc
    finally:
        flow.close()


async def arun(flow: Generator[Any, Any, R], execute: Callable[[Any], Awaitable[Any]]) -> R:
    """``run``, awaited: whatever an operation raises, a cancellation of the task included, is
    thrown into the flow, which decides.

    Raises:
        BaseException: Whatever the flow raises.
    """
    reply: Any = None
    failure: BaseException | None = None
    try:
        while True:
            try:
                op = flow.send(reply) if failure is None else flow.throw(failure)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            reply, failure = None, None
            try:
                reply = await execute(op)
            except BaseException as exc:
                failure = exc
    finally:
        flow.close()
