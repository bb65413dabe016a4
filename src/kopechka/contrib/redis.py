"""``RedisLimiter``: one rate limit and one shared cooldown for every process and machine on a key.

``pip install "kopechka[redis]"``, then::

    import redis
    from kopechka import KopechkaClient
    from kopechka.contrib.redis import RedisLimiter

    limiter = RedisLimiter(redis.Redis.from_url("redis://localhost:6379/0"), name="my-key")
    client = KopechkaClient(rate_limit=limiter)     # in every worker, with the same name

This module owns the Redis side of the ``Limiter`` protocol of ``kopechka._limits``: the same
arithmetic (pacing, window guard, shared cooldown, learned rate), run by Redis as one Lua script
(``_gcra.lua``) per call, so every step is atomic across processes, and timed by Redis' own clock
(``TIME``) so that machines whose clocks disagree still share one schedule. One round trip per
request, plus one per answer. It must not hold a lock of its own (redis-py's pool survives
``os.fork()``: a child opens its own connections) and must not raise a Redis error into a call, nor
make one wait on Redis for long. The store may fail three ways, and each is "down": a Redis error
(unreachable, refused), a round trip longer than ``timeout`` (a server that accepts and never
answers: the round trip runs in a thread of the limiter's own, and the caller stops waiting for it),
or a reply that is not what the script returns (a wrong shape, a wait that is NaN, infinite or past
a day). Down, the limiter logs one warning (at most one a minute) and paces this process alone, with
an in-process limiter, for ``_DOWN_FOR`` seconds, then asks Redis again (the server's 429s still
pace the client meanwhile). The async client calls it from threads of its own, never on the loop.

Why a script of our own rather than a rate-limiting library: pyrate-limiter, limits and
throttled-py all answer "allowed, or retry in N seconds", so waiting callers poll and stampede,
and none of them can be told "the server said wait 30 s" (the shared cooldown) or learn the rate
from 429s. See the project's changelog for the comparison.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import os
import random
import time
from collections.abc import Callable
from importlib import resources
from typing import Any, TypeVar

from .._limits import RateLimiter, Slot, check_rate, limit_state
from .._policy import MAX_TIMEOUT
from .._settings import checked_seconds

try:
    import redis
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError(
        'kopechka.contrib.redis needs the redis package: pip install ".[redis]" from a checkout, '
        'pip install "kopechka[redis]" from PyPI'
    ) from exc

__all__ = ["RedisLimiter"]

logger = logging.getLogger("kopechka")

_SCRIPT = resources.files(__package__).joinpath("_gcra.lua").read_text(encoding="utf-8")
_WARN_EVERY = 60.0
_DOWN_FOR = 5.0
"""After a Redis error, the fallback alone paces this process for this many seconds."""
DEFAULT_TIMEOUT = 0.5
"""The longest a round trip to Redis may take before the limiter gives up on it (falls back)."""
_THREADS = 8
"""Threads that carry the round trips; a stalled one ends with redis-py's own socket timeout."""


class _BadReplyError(Exception):
    """A reply that is not what the script returns: the store is taken as down."""


class RedisLimiter:
    """A limiter kept in Redis, shared by every client that uses the same ``name``.

    Give it to each client (``KopechkaClient(rate_limit=limiter)``) in every process and on every
    machine that uses one API key, with the same ``name``: they then share one pace, one window
    guard, one learned rate and one cooldown (a 429 seen by any of them pauses all of them).

    Args:
        client: A ``redis.Redis`` client (its connection pool is used from every thread).
        name: The name of this limit in Redis: one per API key. The keys live under
            ``kopechka:{name}:`` and expire a day after their last use.
        rate: Requests per second never to exceed, all processes together; ``None`` learns the
            server's rate from its 429s. The first process to use ``name`` sets it.
        timeout: The longest a round trip to Redis may take, in seconds (0.5 by default): past
            it, this process paces itself alone for a few seconds (a stalled store costs a call
            at most this much, every few seconds while it lasts).
        rand: The random source of the jitter (for tests).

    Raises:
        ValueError: ``rate`` is not a positive finite number, ``timeout`` is not a positive
            number of seconds, or ``name`` is empty.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        name: str = "default",
        rate: float | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        self.timeout = checked_seconds("timeout", timeout, positive=True, most=MAX_TIMEOUT)
        checked = None if rate is None else check_rate(rate)
        start = limit_state(checked)
        self.name, self.rate = name, checked
        self._config = (repr(start.quota), repr(start.window))
        self._keys = [f"kopechka:{{{name}}}:{part}" for part in ("state", "recent", "inflight")]
        self._script = client.register_script(_SCRIPT)
        self._rand = rand
        self._fallback = RateLimiter(checked)
        self._warned = -_WARN_EVERY
        self._down_until = 0.0
        self._now_from_caller = False  # tests replay a table with their own clock
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pid = -1

    def __repr__(self) -> str:
        return f"RedisLimiter(name={self.name!r}, rate={self.rate!r})"

    def reserve(self, now: float, max_wait: float) -> Slot:
        """Take the next free slot, unless it starts more than ``max_wait`` seconds from now."""
        slot = self._run(now, _slot, "reserve", repr(max_wait))
        return self._fallback.reserve(now, max_wait) if slot is None else slot

    def admit(self, slot: Slot, now: float) -> float | None:
        """After waiting for ``slot``: seconds more to wait, or ``None`` when it was voided."""
        wait = self._run(now, _admitted, "admit", str(slot.epoch), repr(slot.at))
        if wait is None:
            return self._fallback.admit(slot, now)
        return None if isinstance(wait, str) else wait  # "void"

    def feedback(self, now: float, status: int, retry_after: float | None, slot: Slot) -> None:
        """Learn from the answer to the request sent in ``slot`` (for every process)."""
        after = "" if retry_after is None else repr(float(retry_after))
        args = (str(slot.epoch), repr(slot.at), str(status), after)
        if self._run(now, _told, "feedback", *args) is None:
            self._fallback.feedback(now, status, retry_after, slot)

    def reset(self) -> None:
        """Forget everything learned (the keys are deleted).

        Raises:
            redis.RedisError: Redis could not be reached.
        """
        self._script.registered_client.delete(*self._keys)

    def _run(self, now: float, read: Callable[[Any], R], op: str, *args: str) -> R | None:
        """One round trip, its reply read by ``read``; ``None`` when the store is down (an
        error, no reply within ``timeout``, a reply ``read`` refuses)."""
        if time.monotonic() < self._down_until:
            return None
        clock = repr(now) if self._now_from_caller else ""
        argv = [op, clock, *self._config, repr(self._rand()), *args]
        future = self._threads().submit(self._script, keys=self._keys, args=argv)
        try:
            return read(future.result(timeout=self.timeout))
        except concurrent.futures.TimeoutError:
            future.cancel()  # still queued: never sent; running: ends with its socket timeout
            self._down(f"no reply within {self.timeout:g} s")
        except redis.RedisError as exc:
            self._down(f"unreachable ({type(exc).__name__})")
        except Exception as exc:  # a reply read() refuses, or redis-py choking on garbage
            self._down(f"a reply that is not the script's ({type(exc).__name__}: {exc!s:.80})")
        return None

    def _threads(self) -> concurrent.futures.ThreadPoolExecutor:
        """The threads of the round trips (new ones in a fork's child: the parent's are gone)."""
        if self._pool is None or self._pid != os.getpid():
            self._pool = concurrent.futures.ThreadPoolExecutor(_THREADS, "kopechka-redis")
            self._pid = os.getpid()
        return self._pool

    def _down(self, why: str) -> None:
        moment = time.monotonic()
        self._down_until = moment + _DOWN_FOR
        if moment - self._warned >= _WARN_EVERY:
            self._warned = moment
            logger.warning("Redis limiter %r down: %s; pacing this process alone", self.name, why)


R = TypeVar("R")
_LONGEST = MAX_TIMEOUT
"""The longest wait a reply may carry (a day): past it, or NaN, the reply is garbage."""


def _seconds(value: Any) -> float:
    """A number of seconds from the script (a finite float within a day either way).

    Raises:
        _BadReplyError: Anything else.
    """
    seconds = float(value.decode() if isinstance(value, bytes) else value)
    if not (math.isfinite(seconds) and abs(seconds) <= _LONGEST):
        raise _BadReplyError(f"{seconds!r} seconds")
    return seconds


def _shaped(reply: Any, size: int) -> list[Any]:
    if not isinstance(reply, list) or len(reply) != size:
        raise _BadReplyError(f"expected {size} values, got {type(reply).__name__}")
    return reply


def _slot(reply: Any) -> Slot:
    granted, wait, epoch, at = _shaped(reply, 4)
    if granted not in (0, 1) or not isinstance(epoch, int) or epoch < 0:
        raise _BadReplyError("granted or epoch out of range")
    at_seconds = float(at.decode() if isinstance(at, bytes) else at)
    if not math.isfinite(at_seconds):
        raise _BadReplyError("a slot at no time")
    return Slot(wait=_seconds(wait), epoch=epoch, at=at_seconds, granted=bool(granted))


def _admitted(reply: Any) -> float | str:
    (wait,) = _shaped(reply, 1)
    if wait in (b"void", "void"):
        return "void"
    seconds = _seconds(wait)
    if seconds < 0:
        raise _BadReplyError("a negative wait")
    return seconds


def _told(reply: Any) -> bool:
    _shaped(reply, 0)
    return True
