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
``os.fork()``: a child opens its own connections) and must not raise a Redis error into a call: if
Redis cannot be reached the limiter logs a warning and falls back to an in-process limiter until it
can, asking Redis again every few seconds (the server's 429s still pace the client). Give it a
``redis.Redis`` with short timeouts: redis-py retries a lost connection by itself first. The
async client calls it in the event loop's default executor, never on the loop itself.

Why a script of our own rather than a rate-limiting library: pyrate-limiter, limits and
throttled-py all answer "allowed, or retry in N seconds", so waiting callers poll and stampede,
and none of them can be told "the server said wait 30 s" (the shared cooldown) or learn the rate
from 429s. See the project's changelog for the comparison.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

from .._limits import RateLimiter, Slot, check_rate, limit_state

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
        rand: The random source of the jitter (for tests).

    Raises:
        ValueError: ``rate`` is not a positive finite number, or ``name`` is empty.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        name: str = "default",
        rate: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name must be a non-empty string, got {name!r}")
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

    def __repr__(self) -> str:
        return f"RedisLimiter(name={self.name!r}, rate={self.rate!r})"

    def reserve(self, now: float, max_wait: float) -> Slot:
        """Take the next free slot, unless it starts more than ``max_wait`` seconds from now."""
        reply = self._run(now, "reserve", repr(max_wait))
        if reply is None:
            return self._fallback.reserve(now, max_wait)
        granted, wait, epoch, at = reply
        return Slot(wait=float(wait), epoch=int(epoch), at=float(at), granted=bool(int(granted)))

    def admit(self, slot: Slot, now: float) -> float | None:
        """After waiting for ``slot``: seconds more to wait, or ``None`` when it was voided."""
        reply = self._run(now, "admit", str(slot.epoch), repr(slot.at))
        if reply is None:
            return self._fallback.admit(slot, now)
        return None if reply[0] in (b"void", "void") else float(reply[0])

    def feedback(self, now: float, status: int, retry_after: float | None, slot: Slot) -> None:
        """Learn from the answer to the request sent in ``slot`` (for every process)."""
        after = "" if retry_after is None else repr(float(retry_after))
        reply = self._run(now, "feedback", str(slot.epoch), repr(slot.at), str(status), after)
        if reply is None:
            self._fallback.feedback(now, status, retry_after, slot)

    def reset(self) -> None:
        """Forget everything learned (the keys are deleted).

        Raises:
            redis.RedisError: Redis could not be reached.
        """
        self._script.registered_client.delete(*self._keys)

    def _run(self, now: float, op: str, *args: str) -> list[Any] | None:
        if time.monotonic() < self._down_until:
            return None
        clock = repr(now) if self._now_from_caller else ""
        argv = [op, clock, *self._config, repr(self._rand()), *args]
        try:
            reply: list[Any] = self._script(keys=self._keys, args=argv)
        except redis.RedisError as exc:
            self._down(exc)
            return None
        return reply

    def _down(self, exc: Exception) -> None:
        moment = time.monotonic()
        self._down_until = moment + _DOWN_FOR
        if moment - self._warned >= _WARN_EVERY:
            self._warned = moment
            logger.warning(
                "Redis limiter %r unreachable (%s): pacing this process alone",
                self.name,
                type(exc).__name__,
            )
