"""Pure decisions over plain values, shared by the sync and the async client.

This module owns: whether a call is tried again and after how long, each attempt's timeout under a
caller's deadline, whether an answer may be read further (the body cap), and whether the wall-clock
budget of an attempt is spent. Its inputs are plain values (a status and headers, a classified
network failure, numbers of seconds); it reads no clock, sleeps never and imports no HTTP library,
so its tests are tables with fake time. The drivers (``_transport`` for requests,
``_async_transport`` for httpx) ask it and do what it says.

The rules (the docs explain the why):

* 429 is retried for every method, after ``Retry-After`` when given (a wait beyond
  ``max_retry_wait`` is not waited: the 429 is final at once), else after jittered exponential
  backoff. A ``Retry-After`` of 0 still waits ``MIN_RETRY_DELAY``: the client never spins.
* GET is also retried after network failures and 500/502/503/504.
* POST and DELETE spend or return money: besides 429 they are retried only when the request surely
  never reached the server (connection refused, connect timeout). Never after a read timeout, a
  dropped connection or a 5xx: no order is ever bought twice by a retry.
* No retry starts if its wait would end past the caller's deadline; each attempt's timeouts shrink
  to the time left.
* ``iter_orders`` walks a listing that may change under it (``OrderWalk``).
* Redirects are never followed: the vendor documents none, and a ``Location`` is a place where a
  hostile server could hide another host.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ._wire import Answer, header, parse_retry_after

__all__ = [
    "DEFAULT_MAX_BODY",
    "INITIAL_RETRY_DELAY",
    "MAX_RETRY_DELAY",
    "MAX_TIMEOUT",
    "MIN_RETRY_DELAY",
    "Answer",
    "Failure",
    "OrderWalk",
    "Outcome",
    "RetryPolicy",
    "attempt_budget",
    "attempt_timeout",
    "backoff_delay",
    "body_too_large",
    "check_timeout",
]

INITIAL_RETRY_DELAY = 0.5
"""The first backoff wait, doubled after each retry."""
MAX_RETRY_DELAY = 8.0
"""The longest backoff wait (a ``Retry-After`` may ask for more, up to ``max_retry_wait``)."""
MIN_RETRY_DELAY = 0.1
"""The shortest wait before any retry, whatever the server asks: the client never spins."""
MAX_TIMEOUT = 86_400.0
"""The largest timeout accepted, in seconds: beyond it sockets overflow, and nobody means it."""
DEFAULT_MAX_BODY = 10 * 1024 * 1024
"""The largest answer read, after decompression (10 MiB; the biggest documented one is ~100 KB)."""

_GET_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_UNSAFE_RETRY_STATUSES = frozenset({429})

Timeout = tuple[float, float]
"""``(connect, read)`` seconds."""


@dataclass(frozen=True, slots=True)
class Failure:
    """A network failure, classified: whether the request may have reached the server."""

    timed_out: bool
    reached_server: bool
    detail: str = ""


Outcome = Answer | Failure


def backoff_delay(retries_done: int, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... capped at 8 s, each cut by up to 25%."""
    delay = min(INITIAL_RETRY_DELAY * 2.0 ** min(retries_done, 16), MAX_RETRY_DELAY)
    return delay * (1.0 - 0.25 * rand())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """What is retried, how many times and how long a server may ask us to wait."""

    max_retries: int
    max_retry_wait: float

    def wait(
        self,
        outcome: Outcome,
        *,
        idempotent: bool,
        retries_done: int,
        now: float = 0.0,
        deadline: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to stop with this outcome."""
        if retries_done >= self.max_retries:
            return None
        wait = self._wanted(outcome, idempotent, retries_done, rand)
        if wait is None:
            return None
        wait = max(wait, MIN_RETRY_DELAY)
        if deadline is not None and now + wait >= deadline:
            return None
        return wait

    def _wanted(
        self, outcome: Outcome, idempotent: bool, retries_done: int, rand: Callable[[], float]
    ) -> float | None:
        if isinstance(outcome, Failure):
            retry = idempotent or not outcome.reached_server
            return backoff_delay(retries_done, rand) if retry else None
        allowed = _GET_RETRY_STATUSES if idempotent else _UNSAFE_RETRY_STATUSES
        if outcome.status_code not in allowed:
            return None
        asked = parse_retry_after(outcome.headers) if outcome.status_code == 429 else None
        if asked is None:
            return backoff_delay(retries_done, rand)
        return asked if asked <= self.max_retry_wait else None


def check_timeout(timeout: object) -> Timeout:
    """Return a caller's timeout as a ``(connect, read)`` pair of finite positive seconds.

    Raises:
        ValueError: Not a positive number or pair of them, or beyond ``MAX_TIMEOUT`` (inf, 1e300).
    """
    pair = timeout if isinstance(timeout, tuple) and len(timeout) == 2 else (timeout, timeout)
    checked = [_seconds(value) for value in pair]
    if None in checked:
        raise ValueError(
            "timeout must be a positive number of seconds (at most "
            f"{MAX_TIMEOUT:g}) or a (connect, read) pair of them, got {timeout!r}"
        )
    return (float(pair[0]), float(pair[1]))  # type: ignore[arg-type]


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT):
        return None
    return float(value)


def attempt_timeout(timeout: Timeout, *, now: float, deadline: float | None) -> Timeout | None:
    """The timeouts of the next attempt, shrunk to a caller's deadline; ``None`` when it passed."""
    if deadline is None:
        return timeout
    left = deadline - now
    if left <= 0:
        return None
    return (min(timeout[0], left), min(timeout[1], left))


def attempt_budget(timeout: Timeout, *, now: float, deadline: float | None) -> float:
    """The wall-clock seconds one attempt may last: its connect + read timeout, and never past
    the caller's deadline (a wait's ``timeout`` is a hard bound, however slowly a body drips)."""
    budget = timeout[0] + timeout[1]
    return budget if deadline is None else max(0.0, min(budget, deadline - now))


def body_too_large(headers: Mapping[str, str], read_so_far: int, max_body: int) -> bool:
    """Whether an answer may not be read further: its ``Content-Length`` or what was read
    (after decompression) is past ``max_body`` bytes."""
    if read_so_far > max_body:
        return True
    declared = header(headers, "content-length")
    if declared is None:
        return False
    declared = declared.strip()
    return (
        declared.isascii()
        and declared.isdigit()
        and (len(declared) > 18 or int(declared) > max_body)
    )


class OrderWalk:
    """Which page of ``GET /orders`` to fetch next while iterating, and which orders are new.

    The listing may change under the iteration: the caller cancels what it was given (and, with a
    status filter, the rest moves up a page), or new orders arrive (and the rest moves down). Every
    order present for the whole iteration is yielded exactly once: a pass over the pages that saw
    the listing change, or stopped early, is followed by another from page 1, and the walk ends
    with a pass that brings nothing new. A page that brings nothing new ends a pass unless the
    listing grew enough since the pass began to have pushed a whole page down, so a server that
    repeats one page forever costs three requests, not endless ones.
    """

    MAX_STALE_PAGES = 100
    """Pages in a row that bring nothing new before a pass ends, however much the listing grew."""

    def __init__(self, page_size: int) -> None:
        self._size = page_size
        self._seen: set[str] = set()
        self.page: int | None = 1
        self._start_pass()

    def _start_pass(self) -> None:
        self.page = 1
        self._total: int | None = None
        self._changed = False
        self._new = 0
        self._stale = 0

    def take(self, order_ids: Sequence[str], total: int, pages: int) -> list[int]:
        """Record one fetched page; return the positions of its orders not yielded before."""
        fresh: list[int] = []
        for position, order_id in enumerate(order_ids):
            if order_id not in self._seen:
                self._seen.add(order_id)
                fresh.append(position)
        self._new += len(fresh)
        first = total if self._total is None else self._total
        self._total, self._changed = first, self._changed or total != first
        self._stale = 0 if fresh else self._stale + 1
        shifted = -(-max(0, total - first) // self._size)  # whole pages pushed down since
        assert self.page is not None
        if order_ids and self.page < pages and self._stale <= min(shifted, self.MAX_STALE_PAGES):
            self.page += 1
        elif self._new and (self._changed or (order_ids and self.page < pages)):
            self._start_pass()  # the listing moved, or the pass stopped early: look again
        else:
            self.page = None
        return fresh
