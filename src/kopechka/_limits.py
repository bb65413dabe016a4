"""The client's side of the server's rate limit: a shared cooldown and a paced, learned rate.

This module owns the limiter's arithmetic, as pure functions over a frozen ``LimitState`` with
the time passed in (``reserve``, ``admit``, ``feedback``); ``RateLimiter``, the thread-safe
object a client uses in one process; and the ``Limiter`` protocol that a shared limiter implements
(``kopechka.contrib.redis.RedisLimiter`` runs the same arithmetic in a Lua script). It reads no
clock and does no I/O: the drivers pass ``now`` (their own monotonic clock) and do the sleeping,
``_transport`` with ``time.sleep`` and the async driver with an awaited sleep; so its tests are
tables with fake time.

How a driver uses a limiter, around each attempt::

    slot = limiter.reserve(now, max_wait)     # take the next free slot (atomically)
    if not slot.granted: ...                  # it would start past max_wait: fail, send nothing
    wait = slot.wait
    while wait > 0:
        sleep(wait)
        wait = limiter.admit(slot, now)       # None: a 429 voided the slot, reserve again
    answer = send()
    limiter.feedback(now, answer.status_code, retry_after, slot)

The model: the server allows ``quota`` requests per ``window`` seconds. ``rate_limit=N`` says so
(N per second); ``rate_limit=None`` learns it from the first 429. The rules:

* **Shared cooldown.** A 429 stops every request of the client (every thread, every task) until
  its ``Retry-After`` has passed; slots handed out before it are void (``admit`` says so, and
  ``RateLimiter.valid`` at the last moment before sending: a request held after its slot, by the
  scheduler or in a queue for a connection, does not go in the middle of the cooldown). Threads
  released at the end of a cooldown leave one slot apart when the quota is known, else spread at
  random over a tenth of the cooldown: they never all fire at the same instant.
* **Pacing.** Requests leave one per ``window / (quota * SAFETY)`` seconds: GCRA's virtual
  scheduling without burst (each caller takes the next free slot, ``tat``, and waits for it), so a
  crowd of threads is served in turn, one reservation each, with no polling and no thundering herd.
* **Window guard.** A request also waits until fewer than ``quota`` of ours may still count in
  the server's window: those answered less than ``window`` seconds ago, and those in flight. An
  answer comes after the server counted its request, so however late a thread sends after its
  slot, or the server reads it, no window of the server's holds more than ``quota`` of ours:
  pacing alone (2% under the quota) loses that race to scheduling jitter, measurably.
* **Start window (``rate_limit=None``).** Before anything is known, at most ``START_WINDOW`` (4)
  requests are in flight at first, twice as many every ``START_DOUBLING`` (0.5) seconds without a
  429, until the window passes ``START_LIMIT`` (1024, after 4 s) and no longer applies: TCP's
  initial window, in time rather than round trips (a round trip on a fast link is too short to
  grow by). A crowd of threads then meets the server's limit with a handful of requests in flight,
  not one per thread: the first 429 costs at most that handful. A waiting request looks again
  every ``START_POLL`` seconds (a wait of the client's own: ``max_retry_wait`` does not apply to
  it, the caller's deadline does). A 429 that teaches the rate ends the window; one that teaches
  nothing (too few answers) starts it over, small.
* **Ready now.** A 429 with ``Retry-After: 0`` says the server is ready at once: it is not
  about our rate (a per-endpoint limit, a busy gateway, a WAF, a flaky proxy answer so) and
  changes nothing here; the call that got it retries after the policy's short floor. Learning
  from it drove a client to a request every few seconds under 20% of random 429s.
* **Learning (``rate_limit=None``).** Nothing is paced until the first 429. Then the server has
  said it all: it accepted ``S`` requests of ours from the start of the period until it asked for
  ``Retry-After`` seconds of silence, so ``quota = S`` per ``window = elapsed + Retry-After`` (late
  answers to requests of that period still count; a whole-second ``Retry-After``, rounded up by
  the server, gives a window of whole seconds: see ``_span``). A blind slow start would spend
  seconds of the budget, or a string of 429s, finding what the first 429 already says.
  After that, AIMD on the rate (additive increase, multiplicative decrease: Chiu and Jain's
  scheme, the one that converges for several independent senders sharing one limit, as TCP does),
  applied to the window so that the guard's count stays whole: while requests queue for slots the
  rate grows by ``INCREASE`` (0.3%) per second up to the rate known to hold (the learned one, or 1%
  under the last that met a 429), and past it only after ``PLATEAU`` seconds without a 429, ten
  times slower (a probe, as CUBIC plateaus at its last loss point); each new 429 event (one per
  cooldown, however many requests were in flight) cuts the rate to ``BETA`` of itself, or to what
  the period measured if that is lower, but never below ``FLOOR_SHARE`` (half) of the rate
  the server last served us (accepted answers per second over the last period of at least
  ``MIN_SAMPLE`` of them): 429s that the rate does not cause cannot drive it down without
  bound. With ``rate_limit=N`` the same rules apply below N per second.
* **Ownership of time.** ``now`` is the caller's monotonic clock. A limiter shared by processes or
  machines keeps its own clock (Redis' ``TIME``); what crosses the protocol are durations, but
  ``Slot.at``, which only goes back to the limiter that issued it.
* **Fork.** After ``os.fork()`` each ``RateLimiter`` renews its lock in the child (a lock held by
  another thread at the fork would stay held forever) and keeps what it learned; the child is a
  separate client from then on. Use the Redis limiter for one budget across processes.
"""

from __future__ import annotations

import math
import os
import random
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

__all__ = [
    "BETA",
    "DEFAULT_COOLDOWN",
    "FLOOR_SHARE",
    "INCREASE",
    "IN_PROCESS",
    "MAX_INTERVAL",
    "MIN_SAMPLE",
    "PLATEAU",
    "SAFETY",
    "START_DOUBLING",
    "START_LIMIT",
    "START_POLL",
    "START_WINDOW",
    "LimitState",
    "Limiter",
    "NoLimiter",
    "RateLimiter",
    "Slot",
    "admit",
    "check_rate",
    "feedback",
    "limit_state",
    "reserve",
]

SAFETY = 0.98
"""Pacing runs at this share of the quota; the window guard takes care of the rest."""
MIN_SAMPLE = 5
"""Fewer accepted requests than this before a 429 teach nothing (only the cooldown applies)."""
INCREASE = 0.003
"""Additive increase: the rate grows by this share per second while requests queue for slots."""
BETA = 0.9
"""Multiplicative decrease: each new 429 event multiplies the rate by this (at most)."""
FLOOR_SHARE = 0.5
"""A cut never takes the rate below this share of the rate the server last served us."""
PLATEAU = 60.0
"""Seconds without a 429 before the rate grows past the one known to hold (a probe)."""
_PROBE_SHARE = 0.1
"""Past the known rate, it grows at this share of ``INCREASE``."""
_PROBE_STEP = 0.01
"""After a 429, the rate known to hold is this much below the one that met it."""
MAX_INTERVAL = 60.0
"""The slowest pace ever kept: one request a minute."""
MAX_GUARD = 1000
"""Answer times kept for the window guard: a larger quota is paced only."""
DEFAULT_COOLDOWN = 0.375
"""The cooldown of a 429 without ``Retry-After`` (the shortest first backoff of ``_policy``)."""
_LOST = 300.0
"""A request in flight for longer than this is taken as lost (its driver died)."""
_JITTER_SHARE = 0.1
"""Threads released by an unpaced cooldown spread over this share of it."""
START_WINDOW = 4
"""Before anything is known: requests in flight at most, at first."""
START_DOUBLING = 0.5
"""The start window doubles every this many seconds."""
START_LIMIT = 1024
"""Past this many, the start window no longer applies (after ``START_SPAN`` seconds)."""
START_SPAN = START_DOUBLING * math.log2(START_LIMIT / START_WINDOW)
START_POLL = 0.01
"""A request held by the start window looks again after this many seconds."""


@dataclass(frozen=True, slots=True)
class LimitState:
    """Everything a limiter knows, as plain values (seconds on the limiter's clock)."""

    quota: float = 0.0
    """Requests the server allows per ``window``; 0 while nothing is known (no pacing)."""
    window: float = 0.0
    """Seconds of the server's window, as far as we know (AIMD moves it)."""
    min_window: float = 0.0
    """The shortest window allowed (``rate_limit=N``: N per second); 0 for none."""
    known: float = 0.0
    """The window known to hold: learned, or just slower than the last that met a 429."""
    tat: float = 0.0
    """GCRA's theoretical arrival time: when the next free slot starts."""
    cooldown_until: float = 0.0
    """No request leaves before this: the server's ``Retry-After``."""
    spread: float = 0.0
    """Unpaced threads released by the cooldown spread over this many seconds."""
    epoch: int = 0
    """The number of 429 events so far; a slot of an older epoch is void."""
    period_start: float = -1.0
    """When the first request of this 429-free period left; -1 before it did."""
    accepted: int = 0
    """Answers other than 429 to requests of this period."""
    learn_span: float = 0.0
    """While learning: seconds from the last period's start to the end of its cooldown."""
    learn_accepted: int = 0
    """While learning: answers accepted in the last period (late ones still count)."""
    recent: tuple[float, ...] = ()
    """The times of the latest answers, oldest first (at most the quota of them)."""
    inflight: tuple[float, ...] = ()
    """The slots (``Slot.at``) of requests sent and not answered yet."""
    start_window: float = 0.0
    """The start window's first size (``START_WINDOW``); 0: none."""
    first: float = -1.0
    """When the limiter's first request left; -1 before it did."""
    served: float = 0.0
    """Accepted answers per second over the last period that had ``MIN_SAMPLE`` of them; 0
    before one did. A cut keeps the rate at ``FLOOR_SHARE`` of it at least."""

    @property
    def interval(self) -> float:
        """Seconds between two slots; 0 when not pacing."""
        if self.quota <= 0:
            return 0.0
        return min(MAX_INTERVAL, self.window / (self.quota * SAFETY))


@dataclass(frozen=True, slots=True)
class Slot:
    """A reservation: wait ``wait`` seconds, then send (if ``granted``)."""

    wait: float
    """Seconds from ``now`` to the slot (what it would be, when not granted)."""
    epoch: int
    """The epoch the slot belongs to: a 429 event since voids it."""
    at: float
    """The slot's start on the limiter's own clock (only for ``admit``)."""
    granted: bool = True
    """False when the slot would start past ``max_wait``: nothing was taken."""


@runtime_checkable
class Limiter(Protocol):
    """What a client needs of a limiter: ``rate_limit=`` accepts any object with these methods.

    Around each attempt a client calls ``reserve``, sleeps ``slot.wait`` seconds, calls
    ``admit`` until it answers 0 (``None``: reserve again), sends, and tells ``feedback`` how
    it went (status 0: no answer, or the slot was not used after all). Each call must be atomic
    and safe from any thread; the async client calls a limiter other than its own from threads
    of its own, never on the event loop. ``now`` is the calling client's monotonic clock; a
    limiter shared across processes may ignore it and use a clock of its own.

    The client does not trust a limiter's waits: a wait that is not a number, or longer than
    ``max_retry_wait`` (or than the time left before the caller's deadline), is not waited:
    the slot is given back (``feedback`` with status 0) and the call raises ``RateLimitError``
    (or times out) without sending. The time spent in these calls counts against the attempt's
    timeout.

    Optionally, ``valid(slot) -> bool`` (a plain read: no I/O, it may be called on the event
    loop): asked at the last moment before sending; ``False`` (a 429 came since the slot was
    granted) gives the slot back and the call reserves again, to wait out the cooldown.
    """

    def reserve(self, now: float, max_wait: float) -> Slot:
        """Take the next free slot, unless it starts more than ``max_wait`` seconds from now."""
        ...

    def admit(self, slot: Slot, now: float) -> float | None:
        """After waiting for ``slot``: seconds more to wait (0: send now), or ``None`` when a
        429 voided it meanwhile (reserve again)."""
        ...

    def feedback(self, now: float, status: int, retry_after: float | None, slot: Slot) -> None:
        """Learn from the answer to the request sent in ``slot``."""
        ...


class NoLimiter:
    """``rate_limit=False``: no pace and no shared cooldown. Each call still waits out the
    ``Retry-After`` of its own 429s (``max_retries``, ``max_retry_wait``), alone."""

    def __repr__(self) -> str:
        return "NoLimiter()"

    def reserve(self, now: float, max_wait: float) -> Slot:
        """Always a slot at once (unless the caller's deadline has passed)."""
        return Slot(wait=0.0, epoch=0, at=now, granted=max_wait >= 0)

    def admit(self, slot: Slot, now: float) -> float | None:
        """Never more to wait."""
        return 0.0

    def feedback(self, now: float, status: int, retry_after: float | None, slot: Slot) -> None:
        """Nothing to learn."""


# --- the arithmetic ------------------------------------------------------------------------------


def check_rate(rate: object) -> float:
    """Return ``rate`` (requests per second) as a checked float.

    Raises:
        ValueError: Not a number from one a minute to a million a second.
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise ValueError(f"rate_limit must be a number of requests per second, got {rate!r}")
    if not (math.isfinite(rate) and 1.0 / MAX_INTERVAL <= rate <= 1e6):
        raise ValueError(f"rate_limit must be from {1 / MAX_INTERVAL:g} to 1e6, got {rate!r}")
    return float(rate)


def limit_state(rate: float | None, *, start_window: float = START_WINDOW) -> LimitState:
    """The starting state: N per second (or one per 1/N s below 1), or nothing known (with a
    start window of ``start_window`` requests in flight; 0 for none)."""
    if rate is None:
        return LimitState(start_window=float(start_window))
    quota, window = (rate, 1.0) if rate >= 1 else (1.0, 1.0 / rate)
    return LimitState(quota=quota, window=window, min_window=window)


def _window_open(state: LimitState, now: float) -> float:
    """When the window guard lets the next request go.

    A request the server may still count at ``now`` is one answered less than a window ago, or
    one not answered yet; at most ``quota - 1`` of them may stand when the next one leaves. While
    the requests in flight fill the quota, look again after an interval.
    """
    quota = min(int(state.quota), MAX_GUARD)
    n = quota - len(state.inflight)
    if quota < 1 or (n >= 1 and len(state.recent) < n):
        return -math.inf
    if n < 1:
        return now + state.interval
    return state.recent[-n] + state.window


def starting(state: LimitState, now: float) -> bool:
    """Whether the start window applies at ``now``: nothing known, in the first seconds."""
    return (
        state.start_window > 0
        and state.quota <= 0
        and (state.first < 0 or now - state.first < START_SPAN)
    )


def _start_full(state: LimitState, now: float) -> bool:
    """Whether the start window is full at ``now`` (while it applies)."""
    elapsed = max(0.0, now - state.first) if state.first >= 0 else 0.0
    size: float = state.start_window * 2.0 ** (elapsed / START_DOUBLING)
    return len(state.inflight) >= math.floor(size)


def reserve(
    state: LimitState, now: float, max_wait: float, rand: Callable[[], float] = random.random
) -> tuple[LimitState, Slot]:
    """Take the next free slot at ``now``: after the cooldown, ``tat``, the window guard and the
    start window."""
    start_window = starting(state, now)
    if state.inflight and state.quota <= 0 and not start_window:
        state = replace(state, inflight=())  # the start window is over: nothing counts them
    if (
        state.quota <= 0
        and now >= state.cooldown_until
        and state.period_start >= 0
        and not start_window
    ):
        return state, Slot(wait=0.0, epoch=state.epoch, at=now, granted=max_wait >= 0)  # unpaced
    cooling = now < state.cooldown_until
    start = max(now, state.cooldown_until)
    if state.quota > 0 or start_window:
        state = replace(state, inflight=tuple(t for t in state.inflight if t > now - _LOST))
    held = False  # by the start window: a wait of ours, not the server's (no max_wait for it)
    if state.quota > 0:
        at = max(state.tat, start, _window_open(state, now))
    else:
        at = start + (rand() * state.spread if cooling else 0.0)
        if start_window and at <= now and _start_full(state, now):
            at, held = now + START_POLL, True
    granted = at - now <= max_wait or (held and max_wait >= 0)
    slot = Slot(wait=at - now, epoch=state.epoch, at=at, granted=granted)
    if not slot.granted:
        return state, slot
    state = replace(
        state,
        tat=at + state.interval if state.quota > 0 else state.tat,
        period_start=state.period_start if state.period_start >= 0 else at,
        first=state.first if state.first >= 0 or slot.wait > 0 else at,
    )
    return (_went(state, slot, now) if slot.wait <= 0 else state), slot


def _went(state: LimitState, slot: Slot, now: float) -> LimitState:
    """The request of ``slot`` leaves now: the window guard (or the start window) counts it until
    its answer."""
    if state.quota <= 0 and not starting(state, now):
        return state
    return replace(
        state,
        inflight=(*state.inflight, slot.at),
        first=state.first if state.first >= 0 else now,
    )


def admit(state: LimitState, slot: Slot, now: float) -> tuple[LimitState, float | None]:
    """After waiting for a slot: more seconds to wait (window guard, start window), 0 to go,
    ``None`` if void."""
    if slot.epoch != state.epoch or slot.at < state.cooldown_until:
        return state, None
    if state.quota <= 0:
        wait = START_POLL if starting(state, now) and _start_full(state, now) else 0.0
    else:
        wait = max(0.0, _window_open(state, now) - now)
    return (_went(state, slot, now) if wait <= 0 else state), wait


def feedback(
    state: LimitState,
    now: float,
    status: int,
    retry_after: float | None,
    slot: Slot,
    rand: Callable[[], float] = random.random,
) -> LimitState:
    """The state after the answer ``status`` to the request sent in ``slot`` (0: no answer came,
    or the request was not sent after all)."""
    keep = min(int(state.quota), MAX_GUARD)
    if slot.at in state.inflight:
        inflight = list(state.inflight)
        inflight.remove(slot.at)
        state = replace(state, inflight=tuple(inflight))
    if keep >= 1:
        recent = (*state.recent[-(keep - 1) :], now) if keep > 1 else (now,)
        state = replace(state, recent=recent)
    if status == 0:
        return state
    if status == 429 and retry_after is not None and retry_after <= 0:
        return state  # "ready now": not about our rate (see the module)
    if status == 429:
        wait = DEFAULT_COOLDOWN if retry_after is None else retry_after
        if slot.epoch == state.epoch:
            return _new_event(state, now, wait, rand)
        return _extend(state, now + wait)  # in flight when the event began: the same event
    if slot.epoch == state.epoch:
        return _accepted(state, now)
    if slot.epoch == state.epoch - 1 and state.learn_span > 0:  # late answer of the last period
        return _learn(replace(state, learn_accepted=state.learn_accepted + 1))
    return state


def _new_event(state: LimitState, now: float, wait: float, rand: Callable[[], float]) -> LimitState:
    """A 429 to a request of the current period: a cooldown, and a smaller quota."""
    until = max(state.cooldown_until, now + wait)
    elapsed = now - state.period_start if state.period_start >= 0 else 0.0
    span = _span(elapsed, wait)
    learning = state.quota <= 0
    window, known, served = state.window, state.known, state.served
    if state.accepted >= MIN_SAMPLE and elapsed > 0:
        served = state.accepted / elapsed  # what the server just served us, per second
    if not learning:
        measured = state.quota * span / max(state.accepted, 1)  # the window this period showed
        if state.accepted < MIN_SAMPLE:
            measured = window
        known = max(state.min_window, window * (1.0 + _PROBE_STEP))
        window = min(MAX_INTERVAL * state.quota, max(window / BETA, measured))
        if served > 0:  # the floor: never below a share of what was just served
            floor = max(state.window, state.quota / (FLOOR_SHARE * served))  # no speed-up
            window = max(state.min_window, min(window, floor))
        known = min(known, window)  # a floored cut: what holds is no slower than the pace
        until += rand() * state.interval  # a random phase: separate clients do not align
    new = replace(
        state, window=window, known=known, tat=until, cooldown_until=until, served=served,
        spread=wait * _JITTER_SHARE, epoch=state.epoch + 1, period_start=-1.0, accepted=0,
        learn_span=span if learning else 0.0, learn_accepted=state.accepted if learning else 0,
    )  # fmt: skip
    learned = _learn(new)
    if learned.quota <= 0 and learned.first >= 0:  # taught nothing: the start window starts over
        learned = replace(learned, first=-1.0)
    return learned


def _span(elapsed: float, wait: float) -> float:
    """The server's window, from a 429 after ``elapsed`` seconds asking for ``wait`` more.

    It is at most ``elapsed + wait``. A whole-second ``Retry-After`` (RFC 9110's delay-seconds) is
    rounded up; a window of whole seconds (per second, per minute) is then at least that wait and
    a whole number itself: the largest whole number of seconds that fits is the window.
    """
    span = elapsed + wait
    if wait >= 1 and wait.is_integer():
        return max(wait, float(math.floor(span)))
    return span


def _extend(state: LimitState, until: float) -> LimitState:
    if until <= state.cooldown_until:
        return state
    return replace(state, cooldown_until=until, tat=max(state.tat, until))


def _learn(state: LimitState) -> LimitState:
    """While learning: the last period's count per its span (elapsed + Retry-After)."""
    if state.learn_span <= 0 or state.learn_accepted < MIN_SAMPLE:
        return state
    span = state.learn_span
    return replace(state, quota=float(state.learn_accepted), window=span, known=span)


def _accepted(state: LimitState, now: float) -> LimitState:
    """An answer of this period: count it; speed up while requests queue for slots, up to the
    window known to hold, and past it (probing) slowly, after a long quiet period."""
    window = state.window
    if state.quota > 0 and state.tat > now:
        probing = state.period_start >= 0 and now - state.period_start >= PLATEAU
        step = INCREASE * state.interval * (_PROBE_SHARE if window <= state.known else 1.0)
        window = window / (1.0 + step)
        if not probing:
            window = max(window, state.known)
        window = max(state.min_window, window)
    return replace(state, accepted=state.accepted + 1, window=window)


# --- the object a client uses --------------------------------------------------------------------


class RateLimiter:
    """The in-process limiter: the arithmetic above under a lock, shared by a client's threads.

    While nothing is paced (no rate known, no cooldown) a call only reads a few attributes: an
    answer is counted, not folded into a new ``LimitState``, until something reads or changes the
    state. In the start window likewise, the requests in flight are kept in a list of their own
    (a request that leaves is appended, an answer removes it) and folded into ``inflight`` only
    when something else happens. That keeps the limiter's cost on an unlimited server within
    noise, from the first request on.

    Args:
        rate: Requests per second never to exceed; ``None`` to learn the server's rate.
        rand: The random source of the jitter (for tests).

    Raises:
        ValueError: ``rate`` is not a positive finite number.
    """

    def __init__(
        self, rate: float | None = None, *, rand: Callable[[], float] = random.random
    ) -> None:
        self.rate = rate
        self._state = limit_state(None if rate is None else check_rate(rate))
        self._rand = rand
        self._lock = threading.Lock()
        self._accepted = 0  # answers counted but not yet in ``_state`` (the unpaced fast path)
        self._flying: list[float] = []  # slots in flight not yet in ``_state`` (start window)
        _LIMITERS.add(self)

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate!r})"

    @property
    def state(self) -> LimitState:
        """What the limiter knows now."""
        with self._lock:
            return self._folded()

    def reserve(self, now: float, max_wait: float) -> Slot:
        """Take the next free slot, unless it starts more than ``max_wait`` seconds from now."""
        with self._lock:
            size = self._start_size(now)
            if size < 0:
                self._state, slot = reserve(self._landed(), now, max_wait, self._rand)
                return slot
            epoch = self._state.epoch
            if len(self._flying) >= size:  # held: what ``reserve`` answers, nothing changes
                at = now + START_POLL
                return Slot(wait=at - now, epoch=epoch, at=at, granted=max_wait >= 0)
            slot = Slot(wait=0.0, epoch=epoch, at=now, granted=max_wait >= 0)
            if slot.granted:
                self._flying.append(now)
        return slot

    def admit(self, slot: Slot, now: float) -> float | None:
        """After waiting for ``slot``: seconds more to wait, or ``None`` when it was voided."""
        with self._lock:
            size = self._start_size(now)
            if (
                size < 0
                or slot.epoch != self._state.epoch
                or slot.at < self._state.cooldown_until
                or slot.at <= now - _LOST + START_SPAN  # see ``_start_size``
            ):
                self._state, wait = admit(self._landed(), slot, now)
                return wait
            if len(self._flying) >= size:
                return START_POLL
            self._flying.append(slot.at)
        return 0.0

    def valid(self, slot: Slot) -> bool:
        """Whether no 429 came since ``slot`` was granted (a plain read: no lock needed)."""
        return slot.epoch == self._state.epoch

    def feedback(self, now: float, status: int, retry_after: float | None, slot: Slot) -> None:
        """Learn from the answer to the request sent in ``slot``."""
        with self._lock:
            state = self._state
            if (
                state.quota <= 0
                and status != 429
                and slot.epoch == state.epoch
                and not state.inflight
            ):  # all that ``feedback`` would change: count it, build nothing
                if self._flying and slot.at in self._flying:
                    self._flying.remove(slot.at)
                if status:
                    self._accepted += 1
                return
            self._state = feedback(self._folded(), now, status, retry_after, slot, self._rand)

    def _start_size(self, now: float) -> int:
        """The start window's size at ``now`` when the fast path may take the call (nothing known,
        no cooldown, past the first request); else -1. The requests in flight move to ``_flying``
        (under the lock)."""
        state = self._state
        elapsed = now - state.first
        if (
            state.quota > 0
            or state.start_window <= 0
            or state.first < 0
            or state.period_start < 0
            or now < state.cooldown_until
            or not 0 <= elapsed < START_SPAN
        ):
            return -1
        if state.inflight:
            if min(state.inflight) <= now - _LOST + START_SPAN:
                return -1  # one may be lost before the window ends: ``reserve`` prunes it
            self._flying[:0] = state.inflight
            self._state = replace(state, inflight=())
        size: float = state.start_window * 2.0 ** (elapsed / START_DOUBLING)
        return math.floor(size)

    def _folded(self) -> LimitState:
        """The state with what the fast paths counted: answers, requests in flight (under the
        lock)."""
        if self._accepted:
            self._state = replace(self._state, accepted=self._state.accepted + self._accepted)
            self._accepted = 0
        return self._landed()

    def _landed(self) -> LimitState:
        """The state with the requests in flight kept by the start window's fast path (under the
        lock); ``reserve`` and ``admit`` do not read the answers counted."""
        if self._flying:
            self._state = replace(self._state, inflight=(*self._state.inflight, *self._flying))
            self._flying.clear()
        return self._state

    def _after_fork(self) -> None:
        self._lock = threading.Lock()


_LIMITERS: weakref.WeakSet[RateLimiter] = weakref.WeakSet()


def _renew_locks() -> None:
    for limiter in list(_LIMITERS):
        limiter._after_fork()


os.register_at_fork(after_in_child=_renew_locks)


IN_PROCESS = (RateLimiter, NoLimiter)
"""The limiters that only take a lock (or nothing): called in place, on the event loop too."""
