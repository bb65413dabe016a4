"""Time is bounded: an attempt lasts at most connect + read seconds however slowly a server drips,
and a server that asks for no wait at all never makes the client spin.

The bounds asserted are generous (several times the expected figure); the hostile servers stop by
themselves after 30 s, so a regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from kopechka import (
    APITimeoutError,
    KopechkaClient,
    OrderOutcomeUnknownError,
    RateLimitError,
    WaitTimeoutError,
)

from .conftest import SECRET, Conn, RawServer, Script, answer

Make = Callable[[Script], RawServer]

BALANCE = b'{"success": true, "data": {"balance": 1}}'


def drip_body(conn: Conn, _: bytes) -> None:
    conn.send(f"HTTP/1.1 200 OK\r\nContent-Length: {len(BALANCE)}\r\n\r\n".encode())
    conn.drip(BALANCE * 100, every=0.25)


def drip_head(conn: Conn, _: bytes) -> None:
    conn.drip(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 500 + b"\r\n\r\n", every=0.25)


def drip_chunked(conn: Conn, _: bytes) -> None:
    conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    conn.drip(b"1\r\n \r\n" * 1000, every=0.1)


@pytest.mark.parametrize(
    "script", [drip_body, drip_head, drip_chunked], ids=["body", "head", "chunked"]
)
def test_a_dripping_answer_times_out_on_the_wall_clock(raw_server: Make, script: Script) -> None:
    server = raw_server(script)
    client = KopechkaClient(SECRET, base_url=server.url, timeout=(1.0, 1.5), max_retries=0)
    started = time.monotonic()
    with client, pytest.raises(APITimeoutError) as info:
        client.get_balance()
    elapsed = time.monotonic() - started
    # a bound of 2.5 s; a drip runs for minutes: generous for a loaded machine
    assert elapsed < 15.0, f"one attempt took {elapsed:.1f} s against a bound of 2.5 s"
    assert info.value.may_have_reached_server


def test_a_dripped_post_is_never_sent_again(raw_server: Make) -> None:
    server = raw_server(drip_body)
    client = KopechkaClient(
        SECRET, base_url=server.url, timeout=(1.0, 1.0), max_retries=1, sleep=lambda s: None
    )
    with client, pytest.raises(OrderOutcomeUnknownError) as info:
        client.create_order("example.com", "site.com")
    assert isinstance(info.value.__cause__, APITimeoutError)
    posts = [r for r in server.requests if r.startswith(b"POST ")]
    assert len(posts) == 1  # the purchase may have happened: no retry (then its candidates are
    # looked for with GET /orders, which drips too: "could not be listed")
    assert "could not be listed" in str(info.value)


def test_a_wait_ends_on_time_against_a_dripping_server(raw_server: Make) -> None:
    server = raw_server(drip_body)
    client = KopechkaClient(SECRET, base_url=server.url, timeout=(5.0, 30.0))
    started = time.monotonic()
    with client, pytest.raises(WaitTimeoutError):
        client.wait_for_message("API-1", timeout=2.0, poll_interval=0.5)
    elapsed = time.monotonic() - started
    # the 30 s read timeout would let it drip on: generous for a loaded machine
    assert elapsed < 15.0, f"a 2 s wait took {elapsed:.1f} s"


def test_retry_after_zero_never_spins(raw_server: Make) -> None:
    body = b'{"success": false, "message": "slow down"}'

    def refuse(conn: Conn, _: bytes) -> None:
        conn.send(answer(429, body, {"Retry-After": "0"}))

    server = raw_server(refuse)
    slept: list[float] = []
    client = KopechkaClient(SECRET, base_url=server.url, max_retries=3, sleep=slept.append)
    with client, pytest.raises(RateLimitError):
        client.get_balance()
    assert len(server.requests) == 4
    assert len(slept) == 3
    assert min(slept) >= 0.1
