"""RedisLimiter against a real redis-server: the Lua script agrees with the pure arithmetic step for
step, a cooldown reaches another process, and a lost Redis falls back instead of failing calls.

The server comes from ``KOPECHKA_TEST_REDIS_URL`` (``.ci/services.sh`` starts one in CI). Without it
these tests skip saying so; under ``CI=true`` they must run (see the last test)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from kopechka import _limits
from kopechka._limits import LimitState, Slot, limit_state
from kopechka.testing import Sandbox

from .faces import Face

REDIS_URL = os.environ.get("KOPECHKA_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(
    not REDIS_URL, reason="Redis is absent: set KOPECHKA_TEST_REDIS_URL (.ci/services.sh does)"
)


def test_ci_never_skips_the_redis_tests() -> None:
    if os.environ.get("CI") == "true":
        assert REDIS_URL, "CI must start redis-server (.ci/services.sh) and export its URL"


@pytest.fixture
def redis_client() -> Iterator[Any]:
    if not REDIS_URL:
        pytest.skip("Redis is absent: set KOPECHKA_TEST_REDIS_URL (.ci/services.sh does)")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def limiter(redis_client: Any, rate: float | None = None, **kwargs: Any) -> Any:
    from kopechka.contrib.redis import RedisLimiter

    return RedisLimiter(redis_client, name=f"test-{uuid.uuid4().hex}", rate=rate, **kwargs)


# One table of events, replayed through the pure functions and through the script with the same
# clock and random numbers: (time, operation, argument). "reserve" takes max_wait; "admit",
# "answer" and "429" refer to the slot taken by the n-th reserve.
EVENTS: list[tuple[float, str, Any]] = [
    *[(0.0, "reserve", 100.0) for _ in range(24)],  # unpaced: the start window holds 20
    (0.005, "admit", 4),  # still full: look again
    *[(0.01, "answer", n) for n in range(3, 20)],
    (0.015, "admit", 5),  # the answer to slot 3 made room
    (0.02, "429", (20, 1.0)),  # learns quota and window; the rest of the burst is late
    *[(0.03, "answer", n) for n in range(3)],
    *[(0.03, "429", (n, 1.0)) for n in range(21, 24)],
    *[(0.5, "reserve", 100.0) for _ in range(5)],  # during the cooldown
    (1.2, "admit", 24),
    (1.2, "answer", 24),
    (1.25, "admit", 25),
    (1.3, "admit", 26),
    (1.3, "answer", 25),
    (1.31, "answer", 26),
    (1.4, "reserve", 0.01),  # refused: past max_wait
    (2.0, "reserve", 100.0),
    (2.0, "429", (29, 2.0)),  # a new event: slower, known rate kept
    (2.1, "reserve", 100.0),
    (2.1, "admit", 27),  # voided by the event
]


# The start window's own paths: holds and admits, a 429 that teaches nothing (the window starts
# over, the requests in flight still count), and the window's end after 4 s.
START_EVENTS: list[tuple[float, str, Any]] = [
    *[(0.0, "reserve", 100.0) for _ in range(6)],  # 4 go, 2 held
    (0.005, "admit", 4),  # still full
    (0.008, "answer", 0),
    (0.01, "admit", 4),  # room: it goes
    (0.02, "429", (1, 0.1)),  # two answers so far: teaches nothing
    *[(0.2, "reserve", 100.0) for _ in range(3)],  # slots 2, 3 and 4 still in flight
    (0.3, "answer", 2),
    (0.31, "admit", 7),
    (0.4, "answer", 3),
    (0.4, "answer", 4),
    (4.5, "reserve", 0.0),  # the window is over: unpaced, nothing counted
    (4.5, "answer", 6),
]


# "Ready now" and the floor: 429s with Retry-After 0 teach nothing; after a measured period,
# 429s in quick succession (two answers each) cut the rate down to half of what was served.
FLOOR_EVENTS: list[tuple[float, str, Any]] = [
    *[(0.0, "reserve", 100.0) for _ in range(30)],
    *[(0.06 * n, "answer", n) for n in range(25)],
    (1.5, "429", (25, 0.0)),  # ready now
    (1.55, "429", (26, 0.5)),  # an event: served = 25 answers / 1.5 s
    *[
        event
        for k in range(12)
        for event in (
            (2.1 + k, "reserve", 100.0),
            (2.1 + k, "reserve", 100.0),
            (2.1 + k, "reserve", 100.0),
            (2.2 + k, "answer", 30 + 3 * k),
            (2.3 + k, "answer", 31 + 3 * k),
            (2.4 + k, "429", (32 + 3 * k, 0.5)),
        )
    ],
]


def replay_pure(
    rate: float | None, events: list[tuple[float, str, Any]] = EVENTS
) -> tuple[LimitState, list[Any]]:
    state, slots = limit_state(rate), []
    seen: list[Any] = []
    for now, op, arg in events:
        if op == "reserve":
            state, slot = _limits.reserve(state, now, arg, lambda: 0.25)
            slots.append(slot)
            seen.append(("reserve", round(slot.wait, 9), slot.granted, slot.epoch))
        elif op == "admit":
            state, wait = _limits.admit(state, slots[arg], now)
            seen.append(("admit", None if wait is None else round(wait, 9)))
        else:
            n, after = (arg, None) if op == "answer" else arg
            status = 200 if op == "answer" else 429
            state = _limits.feedback(state, now, status, after, slots[n], lambda: 0.25)
    return state, seen


def replay_redis(
    made: Any, events: list[tuple[float, str, Any]] = EVENTS
) -> tuple[dict[str, float], list[Any]]:
    made._now_from_caller = True
    made._rand = lambda: 0.25
    slots: list[Slot] = []
    seen: list[Any] = []
    for now, op, arg in events:
        if op == "reserve":
            slot = made.reserve(now, arg)
            slots.append(slot)
            seen.append(("reserve", round(slot.wait, 9), slot.granted, slot.epoch))
        elif op == "admit":
            wait = made.admit(slots[arg], now)
            seen.append(("admit", None if wait is None else round(wait, 9)))
        else:
            n, after = (arg, None) if op == "answer" else arg
            made.feedback(now, 200 if op == "answer" else 429, after, slots[n])
    raw = made._script.registered_client.hgetall(made._keys[0])
    return {k.decode(): float(v) for k, v in raw.items()}, seen


@needs_redis
@pytest.mark.parametrize("rate", [None, 20.0, 0.5])
def test_the_script_and_the_pure_arithmetic_agree(redis_client: Any, rate: float | None) -> None:
    state, pure = replay_pure(rate)
    stored, scripted = replay_redis(limiter(redis_client, rate))
    assert scripted == pure
    for name in ("quota", "window", "known", "tat", "cooldown_until", "epoch", "accepted"):
        assert stored[name] == pytest.approx(getattr(state, name)), name


@needs_redis
def test_the_script_and_the_pure_arithmetic_agree_on_ready_now_and_the_floor(
    redis_client: Any,
) -> None:
    state, pure = replay_pure(20.0, FLOOR_EVENTS)
    stored, scripted = replay_redis(limiter(redis_client, 20.0), FLOOR_EVENTS)
    assert scripted == pure
    assert state.served > 0
    assert state.epoch == 13  # the Retry-After 0 was no event
    assert state.quota / state.window >= _limits.FLOOR_SHARE * state.served * 0.999
    for name in ("window", "known", "served", "epoch", "cooldown_until", "accepted"):
        assert stored[name] == pytest.approx(getattr(state, name)), name


@needs_redis
def test_the_script_and_the_pure_arithmetic_agree_on_the_start_window(redis_client: Any) -> None:
    state, pure = replay_pure(None, START_EVENTS)
    made = limiter(redis_client)
    stored, scripted = replay_redis(made, START_EVENTS)
    assert scripted == pure
    assert ("admit", 0.01) in pure  # held ...
    assert ("admit", 0.0) in pure  # ... then let through
    for name in ("quota", "epoch", "accepted", "first", "start_window"):
        assert stored[name] == pytest.approx(getattr(state, name)), name
    assert redis_client.zcard(made._keys[2]) == len(state.inflight)


@needs_redis
def test_a_cooldown_reaches_another_process(redis_client: Any) -> None:
    name = f"test-{uuid.uuid4().hex}"
    from kopechka.contrib.redis import RedisLimiter

    here = RedisLimiter(redis_client, name=name)
    slot = here.reserve(0.0, 10.0)
    here.feedback(0.0, 429, 30.0, slot)
    code = (
        "import json, sys, redis\n"
        "from kopechka.contrib.redis import RedisLimiter\n"
        f"lim = RedisLimiter(redis.Redis.from_url({REDIS_URL!r}), name={name!r})\n"
        "slot = lim.reserve(0.0, 60.0)\n"
        "print(json.dumps([slot.wait, slot.granted]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    wait, granted = json.loads(out.stdout)
    assert granted
    assert 20.0 < wait <= 30.0 * 1.1  # the other process waits out this one's Retry-After


@needs_redis
def test_clients_sharing_a_redis_limiter_share_the_cooldown(redis_client: Any) -> None:
    made = limiter(redis_client)
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # real: the script reads Redis' clock
        slept.append(seconds)
        time.sleep(seconds)

    with Sandbox() as sb:
        sb.fail(429, retry_after="0.3", times=1)
        with sb.client(rate_limit=made, sleep=sleep) as two:

            def on_answer(event: Any) -> None:
                if event.status == 429:  # the cooldown is in Redis now: another client's call
                    two.get_balance()

            hooks = {"response": [on_answer]}
            with sb.client(rate_limit=made, event_hooks=hooks) as one:
                one.get_balance()
    assert len(slept) == 1
    assert 0.05 < slept[0] <= 0.35  # the 0.3 s cooldown, less the time since (load: generous)


@needs_redis
def test_the_async_client_goes_through_a_redis_limiter(redis_client: Any) -> None:
    """The async client calls RedisLimiter from the loop's executor: the 429 it met and the
    answer that followed are in Redis, for every process on the key."""
    made = limiter(redis_client)

    async def main() -> Decimal:
        async with sb.async_client(rate_limit=made) as client:
            return await client.get_balance()

    with Sandbox() as sb:
        sb.fail(429, retry_after="0.2", times=1)
        assert asyncio.run(main()) == Decimal("100")
        assert len([r for r in sb.requests if r.path.endswith("/balance")]) == 2
    stored = {k.decode(): float(v) for k, v in redis_client.hgetall(made._keys[0]).items()}
    assert (stored["epoch"], stored["accepted"]) == (1.0, 1.0)


def test_an_unreachable_redis_falls_back_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    redis = pytest.importorskip("redis")
    from kopechka.contrib.redis import RedisLimiter

    no_retry = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=no_retry)
    made = RedisLimiter(dead, name="nowhere")
    with Sandbox() as sb, sb.client(rate_limit=made) as client:
        assert client.get_balance() == 100
        assert client.get_balance() == 100
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1  # once a minute, not once a call
    assert made._down_until > 0  # and Redis is not asked again for a while


@pytest.mark.parametrize(
    "bad",
    [{"name": ""}, {"rate": 0}, {"rate": True}, {"timeout": 0}, {"timeout": float("nan")},
     {"timeout": True}],
)  # fmt: skip
def test_bad_arguments_are_refused(bad: dict[str, Any]) -> None:
    redis = pytest.importorskip("redis")
    from kopechka.contrib.redis import RedisLimiter

    with pytest.raises(ValueError, match=r"name|rate_limit|timeout"):
        RedisLimiter(redis.Redis(), **bad)


# --- a store that misbehaves: stalled, or answering garbage -------------------------------------


class FakeRedis:
    """A raw socket that speaks just enough RESP: ``+OK`` to the handshake, ``reply`` (raw
    bytes, or None: never a word) to every script call."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.closed = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        data = b""
        with conn:
            for _ in range(2000):  # bounded: 400 s at most, ended by close() much sooner
                if self.closed.is_set():
                    return
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                data += chunk
                while b"\r\n" in data and data.startswith(b"*"):
                    command, data = _one_command(data)
                    if command is None:
                        break
                    if command and command[0].upper() == b"HELLO":
                        conn.sendall(b"%1\r\n$5\r\nproto\r\n:3\r\n")
                    elif command and command[0].upper() in (b"EVALSHA", b"EVAL"):
                        if self.reply is not None:
                            conn.sendall(self.reply)
                    else:
                        conn.sendall(b"+OK\r\n")

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
        self.thread.join(timeout=5)


def _one_command(data: bytes) -> tuple[list[bytes] | None, bytes]:
    """One RESP array of bulk strings from the front of ``data`` (None: not whole yet)."""
    head, _, rest = data.partition(b"\r\n")
    parts: list[bytes] = []
    for _ in range(int(head[1:])):
        size_line, found, rest = rest.partition(b"\r\n")
        if not found or len(rest) < int(size_line[1:]) + 2:
            return None, data
        size = int(size_line[1:])
        parts.append(rest[:size])
        rest = rest[size + 2 :]
    return parts, rest


def _bulk(*values: bytes) -> bytes:
    return b"*%d\r\n" % len(values) + b"".join(b"$%d\r\n%s\r\n" % (len(v), v) for v in values)


GARBAGE = {
    "wrong-shape": b"*1\r\n:1\r\n",
    "not-a-list": b":7\r\n",
    "nan-wait": b"*4\r\n:1\r\n$3\r\nnan\r\n:0\r\n$1\r\n0\r\n",
    "inf-wait": b"*4\r\n:1\r\n$3\r\ninf\r\n:0\r\n$1\r\n0\r\n",
    "1e9-wait": b"*4\r\n:1\r\n$3\r\n1e9\r\n:0\r\n$1\r\n0\r\n",
    "text-wait": _bulk(b"1", b"soon", b"0", b"0"),
}


def _timed(face: Face, made: Any, code: Callable[[Any], object]) -> tuple[object, float]:
    with Sandbox() as sb:
        client = face.sandbox_client(sb, rate_limit=made, timeout=(1, 1), max_retries=0)
        try:
            started = time.monotonic()
            result = code(client)
            return result, time.monotonic() - started
        finally:
            client.close()


@pytest.mark.parametrize("garbage", list(GARBAGE))
def test_garbage_from_redis_is_a_store_down(
    face: Face, garbage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A reply of the wrong shape, or a wait of NaN, inf or 1e9 seconds: the call goes on the
    local pace (no TypeError, no endless sleep), and one WARNING says so."""
    redis = pytest.importorskip("redis")
    from kopechka.contrib.redis import RedisLimiter

    fake = FakeRedis(GARBAGE[garbage])
    try:
        made = RedisLimiter(redis.Redis(port=fake.port, socket_timeout=5), name="garbage")
        result, took = _timed(face, made, lambda c: (c.get_balance(), c.get_balance()))
    finally:
        fake.close()
    assert result == (100, 100)
    assert took < 5.0  # generous: a loaded machine; a NaN sleep never ended
    warnings = [r for r in caplog.records if "down" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


@pytest.mark.parametrize("what", ["call", "wait"])
def test_a_stalled_redis_falls_back_within_the_calls_own_timeout(
    face: Face, what: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis that accepts connections and never answers: a call with timeout=(1, 1) is done
    within its 2 s, a wait with timeout=1 within about 1 s, not after redis-py's own socket
    timeout (5 s here) each time."""
    redis = pytest.importorskip("redis")
    from kopechka import WaitTimeoutError
    from kopechka.contrib.redis import RedisLimiter

    fake = FakeRedis(None)

    def call(client: Any) -> object:
        if what == "call":
            return client.get_balance()
        order = client.create_order("example.com", "instagram.com")
        with pytest.raises(WaitTimeoutError):
            client.wait_for_message(order.order_id, timeout=1)
        return "waited"

    try:
        made = RedisLimiter(redis.Redis(port=fake.port, socket_timeout=5), name="stalled")
        result, took = _timed(face, made, call)
    finally:
        fake.close()
    assert result == (100 if what == "call" else "waited")
    assert took < (2.0 if what == "call" else 1.9), took
    assert any("no reply within" in r.getMessage() for r in caplog.records)


def test_the_limiters_round_trip_counts_against_the_attempts_time(face: Face) -> None:
    """timeout=(1, 1): an attempt lasts 2 s in all. A stalled Redis took 0.8 s of it before the
    request left: an answer that drips for 1.8 s is then past the attempt's time (it was read
    whole, the call lasting 2.6 s)."""
    redis = pytest.importorskip("redis")
    from kopechka import APITimeoutError
    from kopechka.contrib.redis import RedisLimiter

    from .hostile.conftest import Conn, RawServer

    body = b'{"success": true, "data": {"balance": 1}}'

    def drip(conn: Conn, _: bytes) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        conn.send(head % len(body))
        conn.drip(body, every=1.8 / len(body), limit=5.0)

    fake, server = FakeRedis(None), RawServer(drip)
    try:
        made = RedisLimiter(redis.Redis(port=fake.port, socket_timeout=5), timeout=0.8)
        client = face.client(
            api_key="k", base_url=server.url, rate_limit=made, timeout=(1, 1), max_retries=0
        )
        try:
            started = time.monotonic()
            with pytest.raises(APITimeoutError):
                client.get_balance()
            took = time.monotonic() - started
        finally:
            client.close()
    finally:
        server.close()
        fake.close()
    assert took < 2.6, took
