"""Waiting for mail on the sandbox: filters, skip_existing and start-polling, the deadline, early end,
429 and transient failures during a wait, stopping, and what a timeout carries. Every test runs
against both faces (``KopechkaClient`` and ``AsyncKopechkaClient``); the rules themselves are
table-tested with fake time in test_waitflow.py."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kopechka import (
    AuthenticationError,
    KopechkaClient,
    NotFoundError,
    OrderClosedError,
    WaitCancelledError,
    WaitTimeoutError,
)
from kopechka.testing import Sandbox

from .conftest import Sleeps
from .faces import Face


def later(seconds: float, action: Callable[[], object]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


@pytest.fixture
def client(face: Face, sandbox: Sandbox, sleeps: Sleeps) -> Iterator[KopechkaClient]:
    with face.sandbox_client(sandbox, sleep=sleeps, timeout=(2.0, 5.0)) as c:
        yield c


@pytest.fixture
def order_id(client: KopechkaClient) -> str:
    return client.create_order("example.com", "instagram.com").order_id


def test_returns_first_message(sandbox: Sandbox, client: KopechkaClient, order_id: str) -> None:
    later(0.2, lambda: sandbox.deliver(order_id, sender="a@x.com", subject="Hello", content="Hi"))
    message = client.wait_for_message(order_id, timeout=5, poll_interval=0.05)
    assert message.subject == "Hello"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"subject": "CODE"}, "m2"),
        ({"subject": re.compile(r"^Your")}, "m3"),
        ({"sender": "instagram"}, "m2"),
        ({"sender": re.compile(r"@mail\.fb")}, "m3"),
        ({"pattern": r"\b\d{6}\b"}, "m3"),
        ({"pattern": re.compile("welcome", re.I)}, "m1"),
        ({"subject": "code", "sender": "fb"}, None),
        ({"subject": "code", "pattern": "999"}, "m2"),
    ],
)
def test_filters_all_must_match(
    sandbox: Sandbox,
    client: KopechkaClient,
    order_id: str,
    filters: dict[str, Any],
    expected: str | None,
) -> None:
    sandbox.deliver(order_id, sender="news@shop.com", subject="Welcome", content="Welcome!")
    sandbox.deliver(
        order_id, sender="no-reply@instagram.com", subject="Login code", content="code 9999"
    )
    sandbox.deliver(
        order_id, sender="security@mail.fb.com", subject="Your access", content="use 123456"
    )
    subjects = {"m1": "Welcome", "m2": "Login code", "m3": "Your access"}
    if expected is None:
        with pytest.raises(WaitTimeoutError) as info:
            client.wait_for_message(order_id, timeout=0.5, **filters, poll_interval=0.05)
        assert len(info.value.messages) == 3
    else:
        assert (
            client.wait_for_message(order_id, timeout=5, **filters, poll_interval=0.05).subject
            == subjects[expected]
        )


def test_start_polling_is_called_once_mail_exists(
    sandbox: Sandbox, client: KopechkaClient, order_id: str
) -> None:
    sandbox.deliver(order_id, subject="Welcome", content="hello")
    sandbox.deliver(order_id, subject="Your code", content="code 4242")  # invisible until polling
    message = client.wait_for_message(order_id, subject="code", timeout=5, poll_interval=0.05)
    assert message.extract_code() == "4242"
    polls = [r for r in sandbox.requests if r.path.endswith("/start-polling")]
    assert len(polls) == 1


def test_skip_existing_ignores_old_mail_and_sees_new(
    sandbox: Sandbox, client: KopechkaClient, order_id: str
) -> None:
    sandbox.deliver(order_id, subject="Code", content="old code 1111")
    later(0.3, lambda: sandbox.deliver(order_id, subject="Code", content="new code 2222"))
    message = client.wait_for_message(order_id, skip_existing=True, timeout=5, poll_interval=0.05)
    assert "2222" in message.content
    assert any(r.path.endswith("/start-polling") for r in sandbox.requests)


def test_skip_existing_without_new_mail_times_out_with_seen(
    sandbox: Sandbox, client: KopechkaClient, order_id: str
) -> None:
    sandbox.deliver(order_id, subject="Code", content="old code 1111")
    with pytest.raises(WaitTimeoutError) as info:
        client.wait_for_code(order_id, skip_existing=True, timeout=0.4, poll_interval=0.05)
    assert [m.content for m in info.value.messages] == ["old code 1111"]
    assert isinstance(info.value, TimeoutError)


def test_no_request_starts_after_the_deadline(sandbox: Sandbox, order_id: str) -> None:
    """On a clock of the test's own (moved by the sleeps, and by 1 ms at each reading, as time
    passes while code runs), each look is stamped as it is sent: none at or past the deadline.
    No wall time, so no load can blur it."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def clock() -> float:
        now[0] += 0.001
        return now[0]

    sent: list[float] = []
    hooks = {"request": [lambda e: sent.append(now[0]) if e.path.endswith("/messages") else None]}
    client = sandbox.client(sleep=sleep, clock=clock, event_hooks=hooks)
    with client, pytest.raises(WaitTimeoutError, match=r"within 0\.5 s"):
        client.wait_for_message(order_id, timeout=0.5, poll_interval=0.1)
    assert len(sent) >= 3
    deadline = 0.001 + 0.5  # the wait's first reading, plus its timeout
    assert all(at < deadline for at in sent), sent
    assert now[0] < deadline + 0.05  # and no sleep ran past it


def test_read_timeout_shrinks_to_time_left(
    sandbox: Sandbox, client: KopechkaClient, order_id: str
) -> None:
    sandbox.fail(delay=3.0, path=f"/orders/{order_id}/messages", times=5)
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError):
        client.wait_for_message(order_id, timeout=0.6, poll_interval=0.05)
    # not the 3 s the server takes (a read timeout of 5 s would wait for it): generous for a
    # loaded machine, still below 3 s
    assert time.monotonic() - started < 2.5


def test_cancelled_order_ends_the_wait(
    sandbox: Sandbox, client: KopechkaClient, order_id: str
) -> None:
    later(0.2, lambda: client.cancel_order(order_id))
    with pytest.raises(OrderClosedError) as info:
        client.wait_for_message(order_id, timeout=10, poll_interval=0.05)
    assert info.value.status == "cancelled"
    assert isinstance(info.value, WaitTimeoutError)


def test_expired_order_ends_the_wait(
    sandbox: Sandbox, client: KopechkaClient, order_id: str
) -> None:
    sandbox.deliver(order_id, subject="Welcome", content="no code here")
    later(0.2, lambda: sandbox.advance(minutes=11))
    started = time.monotonic()
    with pytest.raises(OrderClosedError, match="expired") as info:
        client.wait_for_code(order_id, timeout=30, poll_interval=0.05)
    assert time.monotonic() - started < 15  # not the 30 s timeout (generous: a loaded machine)
    assert [m.subject for m in info.value.messages] == ["Welcome"]


def test_429_during_wait_is_honoured(
    face: Face, sandbox: Sandbox, order_id: str, sleeps: Sleeps
) -> None:
    sandbox.deliver(order_id, content="code 5151")
    sandbox.fail(429, retry_after=0.2, times=2, path=f"/orders/{order_id}/messages")

    def clock() -> float:  # the sleeps are recorded, and the clock moves on as if slept
        return time.monotonic() + sum(sleeps)

    with face.sandbox_client(sandbox, sleep=sleeps, clock=clock) as client:
        assert client.wait_for_code(order_id, timeout=5, poll_interval=0.05) == "5151"
    assert sleeps == [0.2, 0.2]  # the wait slept through the Retry-After: no cooldown left


def test_429_longer_than_the_deadline_does_not_overrun(
    face: Face, sandbox: Sandbox, order_id: str
) -> None:
    sandbox.fail(429, retry_after=30, times=50, path=f"/orders/{order_id}/messages")
    with face.sandbox_client(sandbox) as client:
        started = time.monotonic()
        with pytest.raises(WaitTimeoutError) as info:
            client.wait_for_message(order_id, timeout=0.5, poll_interval=0.05)
    assert time.monotonic() - started < 10.0  # not the 30 s Retry-After (generous: load)
    assert info.value.__cause__ is not None


def test_transient_failures_are_outlasted(
    sandbox: Sandbox, client: KopechkaClient, order_id: str
) -> None:
    sandbox.deliver(order_id, content="code 6161")
    sandbox.fail(503, times=6, path=f"/orders/{order_id}/messages")  # more than one call's retries
    assert client.wait_for_code(order_id, timeout=5, poll_interval=0.05) == "6161"


def test_permanent_failures_are_raised(
    face: Face, sandbox: Sandbox, client: KopechkaClient
) -> None:
    with pytest.raises(NotFoundError):
        client.wait_for_message("API-0", timeout=5, poll_interval=0.05)
    with face.sandbox_client(sandbox, api_key="bad") as bad, pytest.raises(AuthenticationError):
        bad.wait_for_message("API-0", timeout=5, poll_interval=0.05)


def test_wait_for_code_skips_mail_without_a_code(
    sandbox: Sandbox, client: KopechkaClient, order_id: str
) -> None:
    sandbox.deliver(order_id, subject="Welcome", content="Glad you joined")
    later(0.2, lambda: sandbox.deliver(order_id, subject="Code", content="Your code: 880011"))
    assert client.wait_for_code(order_id, timeout=5, poll_interval=0.05) == "880011"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ("Your code: 123456 12.03.2024\nRef 1234\n", "123456"),
        ("<p>Your login code</p><p><b>71-44-02</b></p><p>Ref 30571942</p>", "714402"),
        ("<h2>One-time password</h2><table><tr><td>X7B2K9</td></tr></table>", "X7B2K9"),
    ],
)
def test_wait_for_code_reads_codes_as_senders_write_them(
    sandbox: Sandbox, client: KopechkaClient, order_id: str, content: str, code: str
) -> None:
    sandbox.deliver(order_id, subject="Sign in", content=content)
    assert client.wait_for_code(order_id, timeout=5, poll_interval=0.05) == code


def test_wait_for_code_with_pattern_and_filters(
    sandbox: Sandbox, client: KopechkaClient, order_id: str
) -> None:
    sandbox.deliver(order_id, sender="a@x.com", content="token ABC-123 and 555666")
    assert (
        client.wait_for_code(
            order_id, code_pattern=r"token (\S+)", sender="x.com", timeout=5, poll_interval=0.05
        )
        == "ABC-123"
    )


def test_start_polling_refused_is_retried_later(
    sandbox: Sandbox, client: KopechkaClient, order_id: str
) -> None:
    sandbox.deliver(order_id, subject="Welcome", content="hello")
    sandbox.deliver(order_id, subject="Code", content="code 7777")
    sandbox.fail(400, path=f"/orders/{order_id}/start-polling", times=1)
    assert client.wait_for_code(order_id, subject="code", timeout=5, poll_interval=0.05) == "7777"
    polls = [r for r in sandbox.requests if r.path.endswith("/start-polling")]
    assert len(polls) == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": 0},
        {"timeout": True},
        {"poll_interval": 0},
        {"subject": 5},
        {"sender": b"x"},
        {"pattern": 1},
    ],
)
def test_wait_arguments_checked(
    sandbox: Sandbox, client: KopechkaClient, order_id: str, kwargs: dict[str, Any]
) -> None:
    sandbox.clear_requests()
    with pytest.raises(ValueError):
        client.wait_for_message(order_id, **kwargs)
    assert sandbox.requests == []


def test_retry_after_zero_forever_never_spins(face: Face, sandbox: Sandbox, order_id: str) -> None:
    sandbox.fail(429, retry_after=0, times=100_000, path=f"/orders/{order_id}/messages")
    with face.sandbox_client(sandbox) as client, pytest.raises(WaitTimeoutError):
        client.wait_for_message(order_id, timeout=2, poll_interval=0.5)
    looks = [r for r in sandbox.requests if r.path.endswith("/messages")]
    assert 2 <= len(looks) <= 5  # one per poll interval (before: 2,648 in these 2 seconds)


def test_stop_ends_the_wait_with_the_messages_seen(
    face: Face, sandbox: Sandbox, order_id: str
) -> None:
    sandbox.deliver(order_id, subject="Welcome", content="no code here")
    stop = threading.Event()

    def stop_once_looked() -> None:  # the wait has seen the mail: it is asleep, or about to be
        for _ in range(3000):
            if any(r.path.endswith("/messages") for r in sandbox.requests):
                break
            time.sleep(0.01)
        stop.set()

    sandbox.clear_requests()
    threading.Thread(target=stop_once_looked, daemon=True).start()
    started = time.monotonic()
    with face.sandbox_client(sandbox) as client, pytest.raises(WaitCancelledError) as info:
        client.wait_for_code(order_id, timeout=120, poll_interval=60, stop=stop)
    assert time.monotonic() - started < 30  # not the 60-second interval: stop.wait wakes at once
    assert [m.subject for m in info.value.messages] == ["Welcome"]


def test_stop_already_set_sends_nothing(
    sandbox: Sandbox, client: KopechkaClient, order_id: str
) -> None:
    stop = threading.Event()
    stop.set()
    sandbox.clear_requests()
    with pytest.raises(WaitCancelledError):
        client.wait_for_message(order_id, timeout=5, stop=stop)
    assert sandbox.requests == []


def test_public_waits_refuse_unknown_keywords(client: KopechkaClient, order_id: str) -> None:
    with pytest.raises(TypeError, match="timout"):
        client.wait_for_code(order_id, timout=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="need_code"):
        client.wait_for_message(order_id, need_code=True)  # type: ignore[call-arg]


DRIP_WAIT = """
import asyncio, sys, time
from kopechka import AsyncKopechkaClient, KopechkaClient, WaitTimeoutError
face, url = sys.argv[1:]
started = time.monotonic()
try:
    if face == "sync":
        KopechkaClient("k", base_url=url, timeout=20.0).wait_for_message("API-1", timeout=2.0)
    else:
        client = AsyncKopechkaClient("k", base_url=url, timeout=20.0)
        asyncio.run(client.wait_for_message("API-1", timeout=2.0))
except WaitTimeoutError:
    print(time.monotonic() - started)
"""


@pytest.mark.timing
def test_wait_timeout_is_a_hard_bound_against_a_dripping_server(face: Face) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def drip() -> None:  # headers, then one byte of body every 50 ms, for at most 10 s
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
                for _ in range(200):
                    try:
                        conn.sendall(b" ")
                    except OSError:
                        return
                    time.sleep(0.05)

    threading.Thread(target=drip, daemon=True).start()
    url = f"http://127.0.0.1:{port}/api/v1"
    out = subprocess.run(
        [sys.executable, "-c", DRIP_WAIT, face.name, url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # 2 s asked; the attempt's own budget (20 s) would let it drip on to the drip's end, 10 s. The
    # bound is generous for a loaded machine, and still far from that
    assert float(out.stdout) < 6.0, out.stdout + out.stderr
