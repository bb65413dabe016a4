"""Long turns of the event loop, cut short: a crowd of calls shares the loop with other tasks.

A thousand calls started by one ``gather`` (or woken by timers due at the same instant) are made
ready in one turn of the loop and run one after another in it. Each call's first steps (building
the request, the purchase's bookkeeping, taking a slot of the limiter) cost a fraction of a
millisecond: the turn lasts as long as the crowd is large, and every other task on the loop, a
bot's handlers, waits that long. ``give_way`` lets a call go on while the loop's turn has run less
than ``TURN`` seconds of calls, and otherwise hands the loop back (``asyncio.sleep(0)``) until a
later turn has room: the crowd goes in turns of ``TURN`` seconds, with the loop's timers and I/O
in between. A call that is not in a crowd pays one clock read.

A turn is counted from the first ``give_way`` in it: a callback put on the loop then runs first
in the next turn and starts the count over (a loop runs the callbacks that were ready when its
turn began, in order; what is scheduled meanwhile waits for the next one).
"""

from __future__ import annotations

import asyncio
import time
import weakref

__all__ = ["TURN", "give_way"]

TURN = 0.02
"""Seconds of calls' steps per turn of the loop before a call gives way."""
_clock = time.perf_counter


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
    """Hand the loop back while its turn has run ``TURN`` seconds of calls (see the module)."""
    loop = asyncio.get_running_loop()
    while _late(loop):
        await asyncio.sleep(0)
