"""The limiter: its pure arithmetic as tables with fake time, then the client through the sandbox
(a shared cooldown, rate_limit=N on a virtual clock, refusal past max_retry_wait, fork)."""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopechka import KopechkaClient, RateLimitError
from kopechka._attempt import (
    MAX_ADMISSIONS,
    MAX_LOOKS,
    Admit,
    Call,
    Reserve,
    Sleep,
    admission,
    consult,
    unclaimed,
)
from kopechka._limits import (
    BETA,
    FLOOR_SHARE,
    INCREASE,
    MIN_SAMPLE,
    PLATEAU,
    SAFETY,
    START_DOUBLING,
    START_POLL,
    START_SPAN,
    START_WINDOW,
    LimitState,
    RateLimiter,
    Slot,
    admit,
    feedback,
    limit_state,
    reserve,
)
from kopechka._policy import Failure, RetryPolicy
from kopechka.testing import Sandbox

from .conftest import Sleeps
from .faces import Face


def half() -> float:
    return 0.5


def go(state: LimitState, now: float, max_wait: float = 1e9) -> tuple[LimitState, Slot]:
    return reserve(state, now, max_wait, half)


def answer(
    state: LimitState, now: float, slot: Slot, status: int = 200, retry_after: float | None = None
) -> LimitState:
    return feedback(state, now, status, retry_after, slot, half)


def learned(quota: int = 20, window: float = 1.0) -> LimitState:
    return LimitState(quota=float(quota), window=window, known=window)


# --- pacing and the cooldown -------------------------------------------------------------------


def test_a_given_rate_hands_out_slots_one_interval_apart() -> None:
    state = limit_state(10.0)
    waits = []
    for _ in range(5):
        state, slot = go(state, 100.0)
        waits.append(slot.wait)
    step = 1 / (10 * SAFETY)
    assert waits == pytest.approx([0, step, 2 * step, 3 * step, 4 * step])


def test_nothing_is_paced_before_anything_is_known() -> None:
    state = limit_state(None, start_window=0)
    for _ in range(100):
        state, slot = go(state, 5.0)
        assert slot.wait == 0.0


# --- the start window --------------------------------------------------------------------------


def test_the_start_window_holds_a_crowd_to_a_handful_in_flight() -> None:
    state, slots = burst(limit_state(None), 32, 0.0)
    assert [s.wait for s in slots] == [0.0] * START_WINDOW + [START_POLL] * (32 - START_WINDOW)
    held = slots[START_WINDOW]
    state, wait = admit(state, held, START_POLL)
    assert wait == START_POLL  # still four in flight: look again
    state = answer(state, 0.011, slots[0])
    state, wait = admit(state, held, 0.012)
    assert wait == 0.0  # an answer freed a place
    state, wait = admit(state, slots[START_WINDOW + 1], 0.012)
    assert wait == START_POLL


def test_the_start_window_doubles_in_time_and_then_ends() -> None:
    """With no answer at all (a slow server), the window still grows: 4, 8 after half a
    second, 16 after one, and after ``START_SPAN`` seconds nothing holds a request."""
    state = limit_state(None)
    before = 0
    for now, in_flight in ((0.0, 4), (0.3, 6), (START_DOUBLING, 8), (2 * START_DOUBLING, 16)):
        state, slots = burst(state, 20, now)
        assert len(state.inflight) == in_flight
        assert sum(1 for s in slots if s.wait == 0.0) == in_flight - before
        before = in_flight
    state, slots = burst(state, 100, START_SPAN)
    assert all(s.wait == 0.0 for s in slots)
    assert state.inflight == ()  # the window is over: nothing is counted any more


def test_a_429_that_teaches_nothing_starts_the_window_over() -> None:
    state, slots = burst(limit_state(None), 4, 0.0)
    state = answer(state, 0.1, slots[0], 429, retry_after=0.5)  # no answer before it: no rate
    assert (state.quota, state.first, len(state.inflight)) == (0.0, -1.0, 3)
    state, after = burst(state, 3, 0.6)  # the three from before still count against 4
    assert [s.wait for s in after] == pytest.approx([0.0, START_POLL, START_POLL])


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _admission(call: Call, limiter: Any, clock: FakeClock) -> Generator[float, None, Any]:
    """The admission flow with its limiter calls carried out in place (``consult``, as the sync
    transport does): it yields only the seconds of its sleeps, for ``_resume`` to step."""
    flow = admission(call, clock)
    answer: Any = None
    while True:
        try:
            op = flow.send(answer)
        except StopIteration as end:
            return end.value
        answer = (yield op.seconds) if isinstance(op, Sleep) else consult(limiter, op)


def _resume(flow: Any, first: bool) -> tuple[bool, Any]:
    """One step of an admission flow: (False, seconds to sleep) or (True, what it returned)."""
    try:
        return False, next(flow) if first else flow.send(None)
    except StopIteration as end:
        return True, end.value


def _call(max_retry_wait: float = 30.0, deadline: float | None = None) -> Call:
    policy = RetryPolicy(max_retries=2, max_retry_wait=max_retry_wait)
    return Call("GET", "/balance", None, None, True, deadline, policy, 1)


def test_the_start_window_holds_a_request_until_there_is_room_however_long() -> None:
    """Against a server that answers nothing for seconds, held requests leave as the window
    grows (5 at 0.16 s, 6 at 0.29 s ...), not all at once after a fixed number of looks."""
    clock, limiter = FakeClock(), RateLimiter()
    for _ in range(START_WINDOW):  # in flight, never answered
        assert limiter.reserve(0.0, 30.0).wait == 0.0
    held = [_admission(_call(), limiter, clock) for _ in range(6)]
    sent_at: list[float] = []
    pending = [(0.0, i, True) for i in range(len(held))]
    for _ in range(100_000):  # bounded: each flow ends within the start window's 4 s
        if not pending:
            break
        pending.sort()
        at, i, first = pending.pop(0)
        clock.now = max(clock.now, at)
        done, value = _resume(held[i], first)
        if done:
            assert isinstance(value, Slot)
            sent_at.append(clock.now)
            continue
        pending.append((clock.now + value, i, False))
    assert len(sent_at) == 6
    for n, at in enumerate(sorted(sent_at), start=START_WINDOW + 1):
        room = START_WINDOW * 2 ** (at / START_DOUBLING)
        assert room >= n - 1e-9, (n, at)  # never more in flight than the window holds


@pytest.mark.parametrize("max_retry_wait", [0.0, 0.005])
def test_a_start_window_wait_is_not_a_cooldown(max_retry_wait: float) -> None:
    """``max_retry_wait`` bounds the server's cooldowns; the start window's short holds are the
    client's own (``max_retry_wait=0`` must not turn them into RateLimitError)."""
    clock, limiter = FakeClock(), RateLimiter()
    for _ in range(START_WINDOW):
        limiter.reserve(0.0, 30.0)
    flow = _admission(_call(max_retry_wait=max_retry_wait), limiter, clock)
    done, value = _resume(flow, first=True)
    assert (done, value) == (False, START_POLL)
    for _ in range(1000):  # bounded
        clock.now += value
        done, value = _resume(flow, first=False)
        if done:
            break
    assert isinstance(value, Slot)


GRANTED = Slot(wait=0.0, epoch=0, at=0.0)
LATER = Slot(wait=0.0, epoch=1, at=0.0)


class Scripted:
    """A limiter whose every ``reserve`` grants ``LATER`` at once and every ``admit`` answers
    ``admit_wait``; it records the slots given back."""

    def __init__(self, admit_wait: float | None = 0.0) -> None:
        self.admit_wait = admit_wait
        self.given_back: list[Slot] = []

    def reserve(self, now: float, max_wait: float) -> Slot:
        return LATER

    def admit(self, slot: Slot, now: float) -> float | None:
        return self.admit_wait

    def feedback(self, now: float, status: int, retry_after: float | None, slot: Slot) -> None:
        self.given_back.append(slot)

    def valid(self, slot: Slot) -> bool:
        return True


LAST = MAX_LOOKS
UNCLAIMED = [
    # op, its answer, the call's deadline, what admit answers later,
    # the slot returned to give back, the slots the admission gave back by itself
    pytest.param(Reserve(0.0, 30.0), GRANTED, None, 0.0, GRANTED, [], id="reserved, goes"),
    pytest.param(Reserve(0.0, 30.0), Slot(1.0, 0, 1.0), None, 0.0, None, [], id="to wait for"),
    pytest.param(
        Reserve(0.0, 30.0), Slot(START_POLL, 0, START_POLL), None, 0.0, None, [], id="window hold"
    ),
    pytest.param(
        Reserve(0.0, START_POLL / 10),
        Slot(START_POLL, 0, START_POLL),
        START_POLL / 10,
        0.0,
        None,
        [Slot(START_POLL, 0, START_POLL)],
        id="window hold past the deadline",
    ),
    pytest.param(
        Reserve(0.0, 30.0),
        Slot(31.0, 0, 31.0),
        None,
        0.0,
        None,
        [Slot(31.0, 0, 31.0)],
        id="past max_wait",
    ),
    pytest.param(
        Reserve(0.0, 30.0),
        Slot(31.0, 0, 31.0, granted=False),
        None,
        0.0,
        None,
        [],
        id="not granted",
    ),
    pytest.param(Admit(GRANTED, 1.0), 0.0, None, 0.0, GRANTED, [], id="admitted, goes"),
    pytest.param(Admit(GRANTED, 1.0), 0.5, None, 0.0, None, [], id="admitted after a wait"),
    pytest.param(Admit(GRANTED, 1.0), 0.5, 1.2, 0.0, None, [GRANTED], id="admitted past deadline"),
    pytest.param(Admit(GRANTED, 1.0), 31.0, None, 0.0, None, [GRANTED], id="admitted too late"),
    pytest.param(Admit(GRANTED, 1.0), None, None, 0.0, LATER, [], id="voided, reserved again"),
    pytest.param(
        Admit(GRANTED, 1.0, MAX_ADMISSIONS - 1, MAX_ADMISSIONS),
        None,
        None,
        0.0,
        GRANTED,
        [],
        id="voided, the last reservation",
    ),
    pytest.param(Admit(GRANTED, 1.0, LAST), 0.5, None, 0.0, GRANTED, [], id="the last look"),
]


@pytest.mark.parametrize(
    ("op", "answer", "deadline", "admit_wait", "returned", "given_back"), UNCLAIMED
)
def test_the_slot_of_a_task_gone_before_the_limiter_answered(
    op: Any,
    answer: Any,
    deadline: float | None,
    admit_wait: float | None,
    returned: Slot | None,
    given_back: list[Slot],
) -> None:
    """A task cancelled while a limiter call runs in the limiter's thread: the admission goes
    on from the answer there, as if the task were still there, up to its next sleep; the slot
    it would have sent with comes back to be given back, a slot it refuses is given back by it,
    a slot still to wait for is left alone."""
    clock, limiter = FakeClock(), Scripted(admit_wait)
    clock.now = op.now
    call = _call(deadline=deadline)
    assert unclaimed(call, clock, limiter, op, (answer, 0.0)) == returned
    assert limiter.given_back == given_back


def test_a_held_request_ends_at_its_deadline() -> None:
    clock, limiter = FakeClock(), RateLimiter()
    for _ in range(START_WINDOW):
        limiter.reserve(0.0, 30.0)
    flow = _admission(_call(deadline=0.055), limiter, clock)
    done, value = _resume(flow, first=True)
    for _ in range(1000):  # bounded
        if done:
            break
        clock.now += value
        done, value = _resume(flow, first=False)
    assert isinstance(value, Failure)
    assert value.timed_out
    assert clock.now <= 0.055


def test_the_first_429_ends_the_start_window() -> None:
    state, slots = burst(limit_state(None), 4, 0.0)
    state = answer(state, 0.01, slots[0])
    state, more = burst(state, 1, 0.01)
    for slot in slots[1:] + more:
        state = answer(state, 0.02, slot)
    state, last = go(state, 0.02)
    state = answer(state, 0.03, last, 429, retry_after=1.0)
    assert (state.quota, state.inflight) == (5.0, ())  # learned: pacing from here on
    state, after = burst(state, 3, 1.5)
    assert [s.wait for s in after] == pytest.approx([0.0, state.interval, 2 * state.interval])


def test_a_429_stops_everyone_until_retry_after() -> None:
    state, first = go(limit_state(None), 10.0)
    state = answer(state, 10.0, first, 429, retry_after=2.0)
    waits = []
    for now in (10.5, 11.0, 11.9):
        state, slot = go(state, now)
        waits.append(now + slot.wait)
    # released after 12.0, spread over a tenth of the cooldown: not all at the same instant
    assert all(12.0 <= at <= 12.2 for at in waits)
    state, later = go(state, 12.5)
    assert later.wait == 0.0


def test_threads_released_by_a_cooldown_do_not_fire_at_once() -> None:
    import random

    rand = random.Random(4).random
    state, first = reserve(limit_state(None), 0.0, 1e9, rand)
    state = feedback(state, 0.0, 429, 1.0, first, rand)
    ends = []
    for _ in range(32):
        state, slot = reserve(state, 0.1, 1e9, rand)
        ends.append(0.1 + slot.wait)
    assert len(set(ends)) == 32
    assert min(ends) >= 1.0
    assert max(ends) - min(ends) > 0.05  # spread over ~0.1 s


def test_once_paced_released_threads_leave_one_interval_apart() -> None:
    state = learned(20, 1.0)
    state, slot = go(state, 0.0)
    state = answer(state, 0.0, slot, 429, retry_after=1.0)
    ends = []
    for _ in range(5):
        state, s = go(state, 0.2)
        ends.append(0.2 + s.wait)
    gaps = [b - a for a, b in itertools.pairwise(ends)]
    assert ends[0] >= 1.0
    assert all(gap >= state.interval - 1e-9 for gap in gaps)


def test_a_slot_taken_before_a_429_is_void() -> None:
    state = learned(20, 1.0)
    state, early = go(state, 0.0)
    state, waiting = go(state, 0.0)  # its slot is a little later
    state = answer(state, 0.01, early, 429, retry_after=1.0)
    state, wait = admit(state, waiting, 0.06)
    assert wait is None  # reserve again, after the cooldown
    state, again = go(state, 0.06)
    assert again.wait >= 0.94


def test_a_slot_past_max_wait_is_refused_and_nothing_is_taken() -> None:
    state, slot = go(limit_state(None), 0.0)
    state = answer(state, 0.0, slot, 429, retry_after=30.0)
    after, refused = go(state, 1.0, max_wait=10.0)
    assert not refused.granted
    assert refused.wait >= 29.0
    assert after == state


@pytest.mark.parametrize("started", [False, True])
def test_unpaced_a_passed_deadline_is_refused_too(started: bool) -> None:
    state = go(limit_state(None), 0.0)[0] if started else limit_state(None)
    after, slot = go(state, 1.0, max_wait=-0.5)
    assert (slot.granted, slot.wait, after) == (False, 0.0, state)
    after, slot = go(state, 1.0, max_wait=0.0)
    assert (slot.granted, slot.wait, slot.at) == (True, 0.0, 1.0)


# --- learning the rate -------------------------------------------------------------------------


def burst(state: LimitState, n: int, now: float) -> tuple[LimitState, list[Slot]]:
    slots = []
    for _ in range(n):
        state, slot = go(state, now)
        slots.append(slot)
    return state, slots


@pytest.mark.parametrize(
    ("elapsed", "retry_after", "window"),
    [
        (0.04, 1.0, 1.0),  # whole seconds: the window is the whole number that fits
        (0.9, 1.0, 1.0),
        (10.3, 50.0, 60.0),
        (0.04, 0.5, 0.54),  # a fractional Retry-After is exact: elapsed + wait
    ],
)
def test_the_first_429_teaches_quota_and_window(
    elapsed: float, retry_after: float, window: float
) -> None:
    state, slots = burst(limit_state(None), 32, 0.0)
    for slot in slots[:20]:
        state = answer(state, elapsed / 2, slot)
    state = answer(state, elapsed, slots[20], 429, retry_after=retry_after)
    assert state.quota == 20.0
    assert state.window == pytest.approx(window)
    assert state.interval == pytest.approx(window / (20 * SAFETY))


def test_late_answers_of_the_period_still_count() -> None:
    state, slots = burst(limit_state(None), 32, 0.0)
    state = answer(state, 0.01, slots[31], 429, retry_after=1.0)  # before any success is seen
    assert state.quota == 0.0
    for slot in slots[:20]:
        state = answer(state, 0.02, slot)
    for slot in slots[20:31]:
        state = answer(state, 0.02, slot, 429, retry_after=1.0)  # same event: no new decrease
    assert (state.quota, state.window, state.epoch) == (20.0, 1.0, 1)


def test_too_few_answers_teach_nothing() -> None:
    state, slots = burst(limit_state(None), MIN_SAMPLE, 0.0)
    for slot in slots[:-1]:
        state = answer(state, 0.0, slot)
    state = answer(state, 0.0, slots[-1], 429, retry_after=1.0)
    assert state.quota == 0.0
    assert state.cooldown_until == 1.0


def test_each_new_429_event_slows_down_once() -> None:
    state, slots = burst(learned(20, 1.0), 3, 0.0)
    state = answer(state, 0.1, slots[0], 429, retry_after=1.0)
    assert state.window == pytest.approx(1.0 / BETA)
    for slot in slots[1:]:  # in flight when it came: the same event
        state = answer(state, 0.1, slot, 429, retry_after=1.0)
    assert state.window == pytest.approx(1.0 / BETA)
    assert state.known == pytest.approx(1.01)


@pytest.mark.parametrize(
    "start",
    [limit_state(None, start_window=0), learned(20, 1.0), limit_state(1e6)],
    ids=["unknown", "learned", "rate_limit=1e6"],
)
def test_a_429_with_retry_after_0_is_ready_now(start: LimitState) -> None:
    """20% of 429s with ``Retry-After: 0``, not caused by the rate (a WAF, a busy gateway):
    they pause nobody and teach nothing. Learning from them drove the rate to one request in
    a few seconds."""
    state, now = start, 0.0
    for n in range(500):
        state, slot = go(state, now)
        now = max(now, slot.at) + 0.002
        state = (
            answer(state, now, slot, 429, retry_after=0.0)
            if n % 5 == 0
            else answer(state, now, slot)
        )
    assert (state.epoch, state.cooldown_until) == (0, 0.0)
    assert (state.quota, state.window) == (start.quota, start.window)


def test_a_cut_keeps_a_floor_of_what_the_server_just_served() -> None:
    """429s that keep coming after a handful of answers each (not caused by the rate) cut the
    rate once each, but never below half of what the server served in the last period that
    counted: 20 per second here, so never below 10."""
    state = learned(20, 1.0)
    now = 0.0
    for _ in range(25):  # a full period: 25 accepted in 1.25 s
        state, slot = go(state, now)
        now = max(now, slot.at)
        state = answer(state, now, slot)
    state, slot = go(state, now)
    state = answer(state, now, slot, 429, retry_after=0.5)
    assert state.served == pytest.approx(20.0, rel=0.05)
    for _ in range(60):  # 60 events, each after two answers: too short to measure
        for status in (200, 200, 429):
            state, slot = go(state, now)
            now = max(now, slot.at)
            state = answer(state, now, slot, status, retry_after=0.5)
    rate = state.quota / state.window
    assert FLOOR_SHARE * 20.0 * 0.95 <= rate < 20.0  # unfloored: 20 * 0.9**60 = 0.04 per second


def test_the_rate_grows_while_requests_queue_up_to_what_is_known() -> None:
    state = LimitState(quota=20.0, window=1.05, known=1.0)
    now, grown = 0.0, 1.05
    for _ in range(500):  # 50 s of two callers, one always queued: inside the plateau
        state, slot = go(state, now)
        state, _ = go(state, now)
        now = max(now, slot.at)
        grown /= 1 + INCREASE * state.interval
        state = answer(state, now, slot)
    assert now < PLATEAU
    assert grown < 0.99  # unclamped, it would have passed the known window
    assert state.window == pytest.approx(1.0)


def test_past_the_plateau_the_rate_probes_slowly() -> None:
    state = LimitState(quota=20.0, window=1.0, known=1.0, period_start=0.0)
    state, slot = go(state, PLATEAU + 1)
    state, _ = go(state, PLATEAU + 1)
    state = answer(state, PLATEAU + 1, slot)
    assert 0.999 < state.window < 1.0


def test_an_idle_client_does_not_grow_its_rate() -> None:
    state = LimitState(quota=20.0, window=1.2, known=1.0)
    state, slot = go(state, 0.0)
    state = answer(state, 5.0, slot)  # nobody queued
    assert state.window == 1.2


# --- the window guard --------------------------------------------------------------------------


def test_the_guard_waits_for_the_quota_th_latest_answer_to_age() -> None:
    state = learned(3, 1.0)
    for t in (0.0, 0.4, 0.8):
        state, slot = go(state, t)
        state = answer(state, t + 0.3, slot)  # answers at 0.3, 0.7, 1.1
    state, slot = go(state, 1.2)
    assert 1.2 + slot.wait == pytest.approx(1.3)  # the 3rd latest answer (0.3) + 1 s


def test_requests_in_flight_count_against_the_quota() -> None:
    state = learned(2, 1.0)
    state, a = go(state, 0.0)
    state, b = go(state, 0.6)  # both in flight, no answer yet
    state, c = go(state, 1.2)
    state, wait = admit(state, c, 1.2 + c.wait)
    assert wait is not None
    assert wait > 0  # two in flight fill the quota of 2
    state = answer(state, 1.3, a)
    state = answer(state, 1.3, b)
    state, wait = admit(state, c, 2.3)
    assert wait == pytest.approx(0.0)


@given(
    st.lists(st.floats(min_value=0.0, max_value=0.2), min_size=1, max_size=120),
    st.lists(st.floats(min_value=0.0, max_value=0.05), min_size=120, max_size=120),
    st.integers(min_value=1, max_value=12),
)
def test_a_given_rate_never_puts_more_than_n_in_one_second(
    gaps: list[float], delays: list[float], rate: int
) -> None:
    """Callers arrive at random; each sends up to 50 ms after its slot (scheduling jitter) and the
    answer comes at once: no one-second window holds more than ``rate`` sends."""
    state, now, sends = limit_state(float(rate)), 0.0, []
    for gap, delay in zip(gaps, delays, strict=False):
        now += gap
        state, slot = go(state, now)
        sent = slot.at
        extra: float | None = slot.wait
        for _ in range(100):  # as the driver: sleep, then ask again until it says go
            if not extra:
                break
            state, extra = admit(state, slot, sent)
            sent += extra or 0.0
        assert extra == 0
        sent += delay
        sends.append(sent)
        state = answer(state, sent, slot)
    sends.sort()
    for i, start in enumerate(sends):
        assert sum(1 for t in sends[i:] if t < start + 1.0) <= rate


STEPS = st.tuples(
    st.floats(min_value=0.0, max_value=0.3),
    st.sampled_from(["reserve", "admit", 200, 404, 429, 0]),
    st.integers(min_value=0, max_value=40),
)


@given(st.lists(STEPS, max_size=150), st.sampled_from([None, 5.0]))
def test_the_limiter_object_agrees_with_the_arithmetic(
    steps: list[tuple[float, object, int]], rate: float | None
) -> None:
    """``RateLimiter`` counts unpaced answers without rebuilding its state (a fast path): step for
    step, what it hands out and what it knows equal the pure functions'."""
    agree(steps, rate)


START_STEPS = st.tuples(
    st.floats(min_value=0.0, max_value=0.05),
    st.sampled_from(["reserve", "reserve", "admit", 200, 0, 429]),
    st.integers(min_value=0, max_value=40),
)


@given(st.lists(START_STEPS, max_size=200))
def test_the_start_window_fast_path_agrees_with_the_arithmetic(
    steps: list[tuple[float, object, int]],
) -> None:
    """The start window's fast path (requests in flight kept in a list) too, with crowds held,
    answers, and 429s that teach nothing and start the window over."""
    agree(steps, None)


def agree(steps: list[tuple[float, object, int]], rate: float | None) -> None:
    limiter, state = RateLimiter(rate, rand=half), limit_state(rate)
    slots: list[Slot] = []
    now = 0.0
    for gap, op, pick in steps:
        now += gap
        if op == "reserve":
            slot = limiter.reserve(now, 30.0)
            state, expected = go(state, now, 30.0)
            assert slot == expected
            slots.append(slot)
        elif slots and op == "admit":
            slot = slots[pick % len(slots)]
            state, wait = admit(state, slot, now)
            assert limiter.admit(slot, now) == wait
        elif slots and isinstance(op, int):
            slot = slots.pop(pick % len(slots))
            retry_after = 1.0 if op == 429 else None
            limiter.feedback(now, op, retry_after, slot)
            state = answer(state, now, slot, op, retry_after)
    assert limiter.state == state  # read once: reading folds the counted answers in


def test_the_start_window_builds_no_state_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client's first seconds cost what its later ones do: past the first request, taking a
    slot, being held, being admitted and the answer build no new ``LimitState``."""
    import kopechka._limits as limits

    limiter = RateLimiter()
    limiter.feedback(0.0, 200, None, limiter.reserve(0.0, 30.0))
    first = limiter.reserve(0.001, 30.0)  # in flight across the count below
    built: list[object] = []

    def counted(state: LimitState, **changes: Any) -> LimitState:
        built.append(changes)
        return replace(state, **changes)

    monkeypatch.setattr(limits, "replace", counted)
    now = 0.002
    for _ in range(50):  # one at a time, as a single caller sends
        now += 0.001
        limiter.feedback(now, 200, None, limiter.reserve(now, 30.0))
    crowd = [limiter.reserve(now, 30.0) for _ in range(6)]  # 4 in flight, 3 held
    assert [slot.wait > 0 for slot in crowd] == [False] * 3 + [True] * 3
    assert limiter.admit(crowd[3], now + START_POLL) == START_POLL  # still full: look again
    limiter.feedback(now + START_POLL, 200, None, crowd[0])
    assert limiter.admit(crowd[3], now + START_POLL) == 0.0  # an answer freed a place
    limiter.feedback(now + 0.02, 0, None, crowd[1])  # no answer came
    assert built == []
    state = limiter.state
    assert state.accepted == 52
    assert state.first == 0.0
    assert sorted(state.inflight) == sorted([first.at, crowd[2].at, crowd[3].at])


def test_the_start_window_fast_path_ends_with_the_window() -> None:
    limiter = RateLimiter()
    crowd = [limiter.reserve(t / 100, 30.0) for t in range(6)]  # 4 go, 2 held
    assert [slot.wait > 0 for slot in crowd] == [False] * 4 + [True] * 2
    late = limiter.reserve(START_SPAN, 30.0)  # the window is over: nothing holds, nothing counts
    assert late.wait == 0.0
    assert limiter.state.inflight == ()


def test_a_slot_older_than_an_extended_cooldown_is_void_in_the_start_window() -> None:
    """A late 429 of the last period extends its cooldown past a slot taken meanwhile: that slot
    is void, as the arithmetic says, on the start window's fast path too."""
    limiter = RateLimiter(rand=half)
    first, second = limiter.reserve(0.0, 30.0), limiter.reserve(0.001, 30.0)
    limiter.feedback(0.002, 429, 0.5, first)  # teaches nothing: the window starts over at 0.6
    taken = limiter.reserve(0.6, 30.0)
    limiter.feedback(0.61, 429, 1.0, second)  # in flight when the event began: it extends it
    assert limiter.state.cooldown_until == pytest.approx(1.61)
    assert limiter.admit(taken, 1.7) is None


def test_answers_counted_on_the_fast_path_are_in_the_state() -> None:
    limiter = RateLimiter()
    for now in (1.0, 2.0, 3.0):
        limiter.feedback(now, 200, None, limiter.reserve(now, 30.0))
    assert limiter.state.accepted == 3
    assert limiter.state.period_start == 1.0


# --- the client --------------------------------------------------------------------------------


def sent(sandbox: Sandbox) -> int:
    return len([r for r in sandbox.requests if r.path.endswith("/balance")])


def test_a_429_pauses_the_next_call_of_the_client_too(sandbox: Sandbox, sleeps: Sleeps) -> None:
    sandbox.fail(429, retry_after=1, times=1)
    with sandbox.client(sleep=sleeps) as client:
        client.get_balance()  # 429, then the retry after 1 s
        assert sleeps == [1.0]
        client.get_balance()  # no real time passed: the cooldown still runs
    assert len(sleeps) == 2
    assert 0.9 < sleeps[1] <= 1.1
    assert sent(sandbox) == 3


def test_another_thread_waits_out_the_cooldown(sandbox: Sandbox) -> None:
    sandbox.fail(429, retry_after=1, times=1)
    other_slept: list[float] = []

    def sleep(seconds: float) -> None:
        if threading.current_thread().name == "other":
            other_slept.append(seconds)

    with sandbox.client(sleep=sleep) as client:
        client.get_balance()
        other = threading.Thread(target=client.get_balance, name="other")
        other.start()
        other.join(10)
    assert len(other_slept) == 1
    assert other_slept[0] > 0.5


def test_a_cooldown_past_max_retry_wait_fails_at_once_without_sending(sandbox: Sandbox) -> None:
    sandbox.fail(429, retry_after=3600, times=1)
    with sandbox.client(max_retry_wait=60) as client:
        with pytest.raises(RateLimitError):
            client.get_balance()
        with pytest.raises(RateLimitError, match="not sent") as info:
            client.get_balance()
    assert info.value.retry_after is not None
    assert info.value.retry_after > 3000
    assert sent(sandbox) == 1


class VirtualTime:
    """A clock that a recorded sleep moves forward."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_rate_limit_n_never_sends_more_than_n_per_second(sandbox: Sandbox) -> None:
    vt = VirtualTime()
    sends: list[float] = []
    hooks: dict[str, list[Callable[..., object]]] = {"request": [lambda e: sends.append(vt.now)]}
    with sandbox.client(rate_limit=5, clock=vt.clock, sleep=vt.sleep, event_hooks=hooks) as client:
        for _ in range(40):
            client.get_balance()
    assert len(sends) == 40
    for i, start in enumerate(sends):
        assert sum(1 for t in sends[i:] if t < start + 1.0) <= 5
    assert sends[-1] - sends[0] == pytest.approx(39 / (5 * SAFETY), rel=0.2)


@pytest.mark.parametrize("bad", [True, 0, -1, float("inf"), float("nan"), "20", object()])
def test_rate_limit_is_checked(bad: object) -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        KopechkaClient("k", base_url="http://127.0.0.1:1/api/v1", rate_limit=bad)  # type: ignore[arg-type]


def test_a_limiter_object_is_used_as_given(sandbox: Sandbox) -> None:
    shared = RateLimiter(50)
    with sandbox.client(rate_limit=shared) as a, sandbox.client(rate_limit=shared) as b:
        a.get_balance()
        b.get_balance()
        assert a._transport.limiter is b._transport.limiter is shared


def test_the_limiter_lock_is_renewed_after_fork() -> None:
    limiter = RateLimiter(1000)
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with limiter._lock:
            taken.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    taken.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: the lock held by the parent's thread must not block it
        try:
            limiter.reserve(time.monotonic(), 1.0)
        finally:
            os._exit(0)
    release.set()
    holder.join()
    for _ in range(100):  # bounded: 10 s at most
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the child deadlocked on a lock held at fork")


# --- a limiter's waits are not trusted ----------------------------------------------------------


class Lying:
    """A limiter (a user's, or a broken store) that asks for ``wait`` on reserve or on admit."""

    def __init__(self, reserve_wait: object = 0.0, admit_wait: object = 0.0) -> None:
        self.reserve_wait, self.admit_wait = reserve_wait, admit_wait
        self.told: list[int] = []

    def reserve(self, now: float, max_wait: float) -> Slot:
        return Slot(wait=self.reserve_wait, epoch=0, at=now, granted=True)  # type: ignore[arg-type]

    def admit(self, slot: Slot, now: float) -> float | None:
        return self.admit_wait  # type: ignore[return-value]

    def feedback(self, now: float, status: int, retry_after: float | None, slot: Slot) -> None:
        self.told.append(status)


BAD_WAITS = [math.nan, math.inf, 1e9, -math.inf, "soon", None]


@pytest.mark.parametrize("where", ["reserve", "admit"])
@pytest.mark.parametrize("bad", BAD_WAITS, ids=repr)
@pytest.mark.parametrize("deadline", [None, 5.0])
def test_no_limiter_makes_a_call_sleep_past_its_bounds(
    where: str, bad: object, deadline: float | None
) -> None:
    """NaN, inf, 1e9 or garbage from a limiter: never slept (``asyncio.sleep(nan)`` never
    returns); the call is refused (RateLimitError, or the deadline's failure), the slot given
    back."""
    limiter = Lying(reserve_wait=bad if where == "reserve" else 1.0, admit_wait=bad)
    if where == "reserve" and bad is None:
        bad = math.nan  # a Slot's wait, not admit's "void"
        limiter.reserve_wait = bad
    clock = FakeClock()
    flow = _admission(_call(max_retry_wait=30.0, deadline=deadline), limiter, clock)
    slept: list[float] = []
    value: Any = None
    try:
        done, value = _resume(flow, True)
        for _ in range(100):
            if done:
                break
            slept.append(value)
            clock.now += value
            done, value = _resume(flow, False)
        assert done
    except RateLimitError:
        value = "refused"
    assert all(0 <= s <= 30.0 for s in slept), slept
    if where == "admit" and bad is None:  # None from admit: void, reserve again
        return
    if bad == -math.inf:  # negative: no wait at all
        assert isinstance(value, Slot)
        assert limiter.told == []
        return
    assert value == "refused" or isinstance(value, Failure), value
    assert limiter.told == [0]  # the slot went back


# --- the client: the off switch, and 429s that the rate does not cause ---------------------------


@pytest.mark.parametrize("how", ["constructor", "with_options"])
def test_rate_limit_false_turns_the_limiter_off(face: Face, how: str) -> None:
    """No shared cooldown: another call goes at once after a 429 asking for 5 s (with the
    limiter, it would be refused: 5 s is past max_retry_wait)."""
    with Sandbox() as sb:
        made = face.sandbox_client(
            sb,
            max_retries=0,
            max_retry_wait=1.0,
            **({"rate_limit": False} if how == "constructor" else {}),
        )
        try:
            client = made if how == "constructor" else made.with_options(rate_limit=False)

            def balance() -> Any:
                if face.is_async and client is not made:  # a derived client: on made's loop
                    return made.run(client.get_balance())
                return client.get_balance()

            sb.fail(429, retry_after=5, times=1)
            with pytest.raises(RateLimitError):
                balance()
            started = time.monotonic()
            assert balance() == 100
            assert time.monotonic() - started < 4.0
            if how == "with_options":  # the original client keeps its limiter
                sb.fail(429, retry_after=5, times=1)
                with pytest.raises(RateLimitError):
                    made.get_balance()
                with pytest.raises(RateLimitError, match="not sent"):
                    made.get_balance()
        finally:
            made.close()


def _successes(client: Any, seconds: float, threads: int = 8) -> int:
    """Calls that succeeded in ``seconds`` from ``threads`` threads (each stops at the end)."""
    ends = time.monotonic() + seconds
    counts = [0] * threads

    def work(n: int) -> None:
        while time.monotonic() < ends:
            with contextlib.suppress(RateLimitError):
                client.get_balance()
                counts[n] += 1

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=seconds + 30)
    return sum(counts)


def test_random_429s_asking_for_no_wait_do_not_slow_the_client_down(face: Face) -> None:
    """20% of answers are 429 with Retry-After 0, at random (a WAF, a busy gateway): the
    adaptive limiter keeps most of the pace of no limiter at all, in the same process, and is
    back to it once they stop. Before, it learned a rate of a request every few seconds."""
    with Sandbox(seed=7) as sb:
        sb.fail(429, retry_after=0, times=None, probability=0.2)
        off = face.sandbox_client(sb, rate_limit=False)
        adaptive = face.sandbox_client(sb)
        try:  # in turns, so that the machine's load weighs on both alike
            baseline = crowded = after = clean = 0
            for _ in range(3):
                baseline += _successes(off, 0.7)
                crowded += _successes(adaptive, 0.7)
            sb.reset()
            for _ in range(2):
                after += _successes(adaptive, 0.5)
                clean += _successes(off, 0.5)
        finally:
            off.close()
            adaptive.close()
    assert crowded >= 0.5 * baseline, (crowded, baseline)  # generous: a shared, loaded machine
    assert after >= 0.5 * clean, (after, clean)
