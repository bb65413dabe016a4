"""Long turns of the event loop, cut short: a crowd of calls shares the loop with other tasks.

A thousand calls started by one ``gather`` (or woken by timers due at the same instant) are made
ready in one turn of the loop and run one after another in it. Each call's first steps (building
the request, the purchase's bookkeeping, taking a slot of the limiter) cost a fraction of a
millisecond: the turn lasts as long as the crowd is large, and every other task on the loop, a
bot's handlers, waits that long. ``give_way`` lets a call go on while the loop's turn has run less
than ``TURN`` seconds of calls, and otherwise hands the loop back (``asyncio.sleep(0)``) until a
later turn has room: the crowd goes in turns of ``TURN`` seconds, with the loop's timers and I/O
in between. A call that is not in a crowd pays one clock read.

A process's first call has more to do: it loads the models, the envelopes, the endpoint table,
the wait flow and code extraction (about 100-200 ms of imports, which a crowd's first turn would
hold). ``give_way`` has them loaded once per process in a thread of their own, and the calls wait
for it without holding the loop (the thread releases the GIL every few milliseconds).

A turn is counted from the first ``give_way`` in it: a callback put on the loop then runs first
in the next turn and starts the count over (a loop runs the callbacks that were ready when its
turn began, in order; what is scheduled meanwhile waits for the next one).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import os
import sys
import threading
import time
import weakref

__all__ = ["FIRST_USE", "TURN", "first_use", "give_way", "start_loading"]

TURN = 0.02
"""Seconds of calls' steps per turn of the loop before a call gives way."""
_clock = time.perf_counter

FIRST_USE = (
    "kopechka._endpoints",
    "kopechka._models",
    "kopechka._envelopes",
    "kopechka._waitflow",
    "kopechka._extract",
)
"""The modules a client loads on first use (``_lazy``), loaded before a process's first call."""


class _Loading:
    """The loading of ``FIRST_USE``: once per process, in a thread."""

    __slots__ = ("done", "future", "lock")

    def __init__(self) -> None:
        self.done = False
        self.future: concurrent.futures.Future[None] | None = None
        self.lock = threading.Lock()


_LOADING = _Loading()
FORK_WAIT = 5.0
"""Seconds ``os.fork()`` waits for a loading under way (a child has no thread to finish it)."""


def _before_fork() -> None:
    future = _LOADING.future
    if future is not None and threading.current_thread().name != "kopechka-load":
        concurrent.futures.wait([future], timeout=FORK_WAIT)


def _after_fork_in_child() -> None:
    if not _LOADING.done:  # a loading the child would wait for forever: it starts its own
        _LOADING.future = None
        _LOADING.lock = threading.Lock()


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def _load(future: concurrent.futures.Future[None]) -> None:
    try:
        for name in FIRST_USE:
            importlib.import_module(name)
    except BaseException as exc:  # the calls waiting raise it, as their own import would
        future.set_exception(exc)
    else:
        future.set_result(None)


def start_loading() -> None:
    """Start loading ``FIRST_USE`` in a thread, once per process, unless it is loaded (an async
    client does at construction, so that a bot's first call finds the work done or under way)."""
    with _LOADING.lock:
        if _LOADING.future is not None or _LOADING.done:
            return
        if all(name in sys.modules for name in FIRST_USE):
            _LOADING.done = True
            return
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        _LOADING.future = future
        future.set_running_or_notify_cancel()  # a waiting call cancelled cannot cancel it
        threading.Thread(target=_load, args=(future,), name="kopechka-load", daemon=True).start()


async def first_use() -> None:
    """Wait, without holding the loop, until ``FIRST_USE`` is loaded (``give_way`` does, before
    a call's answer is decoded: building a call loads nothing, ``_wire.Call.body``)."""
    if _LOADING.done:
        return
    start_loading()
    future = _LOADING.future
    if future is not None:
        await asyncio.wrap_future(future)
    _LOADING.done = True


class _Turn:
    """The count of one loop's current turn."""

    __slots__ = ("counting", "start")

    def __init__(self) -> None:
        self.start = 0.0
        self.counting = False

    def over(self) -> None:
        self.counting = False


_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turn] = weakref.WeakKeyDictionary()


def _late(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether this turn of ``loop`` has run ``TURN`` seconds of calls already."""
    turn = _TURNS.get(loop)
    if turn is None:
        turn = _TURNS[loop] = _Turn()
    now = _clock()
    if not turn.counting:  # the first call of this turn: count from now, until the next turn
        turn.start, turn.counting = now, True
        loop.call_soon(turn.over)
        return False
    return now - turn.start > TURN


async def give_way() -> None:
    """Hand the loop back while its turn has run ``TURN`` seconds of calls, and wait for the
    modules a process's first call loads (see the module)."""
    if not _LOADING.done:
        await first_use()
    loop = asyncio.get_running_loop()
    while _late(loop):
        await asyncio.sleep(0)
