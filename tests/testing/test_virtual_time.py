"""Virtual time: the client's waits, the sandbox's expiry and its automatic mail on one clock.

A ``Sandbox(virtual_time=True)`` hands out clients whose ``sleep`` moves the sandbox's clock and whose
``clock`` reads it, so a two-minute wait runs in milliseconds. The real-time bound below is
generous (5 s for what takes tens of milliseconds, on a loaded machine too) and far from the
20 s to 30 minutes of virtual time each case spends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from kopechka import OrderClosedError, RateLimitError, WaitTimeoutError
from kopechka.testing import AutoMail, Sandbox

REAL_BOUND = 5.0


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(virtual_time=True) as sandbox:
        yield sandbox


def test_a_120_second_wait_times_out_in_under_a_second(sb: Sandbox) -> None:
    with sb.client() as client:
        order = client.create_order("example.com", "x.com")
        started, virtual = time.monotonic(), sb.clock()
        with pytest.raises(WaitTimeoutError):
            client.wait_for_code(order.order_id, timeout=120)
        real = time.monotonic() - started
    assert real < REAL_BOUND, f"took {real:.2f} s of real time"
    assert sb.clock() - virtual == pytest.approx(120.0)
    polls = [r for r in sb.requests if r.path.endswith("/messages")]
    assert 55 <= len(polls) <= 62  # one look every poll_interval (2 s) of virtual time


def test_an_order_expiring_mid_wait_ends_it_in_under_a_second(sb: Sandbox) -> None:
    with sb.client() as client:
        order = client.create_order("example.com", "x.com")
        started, virtual = time.monotonic(), sb.clock()
        with pytest.raises(OrderClosedError) as info:
            client.wait_for_code(order.order_id, timeout=1800, poll_interval=10)
        real = time.monotonic() - started
    assert info.value.status == "expired"
    assert real < REAL_BOUND, f"took {real:.2f} s of real time"
    assert 600.0 <= sb.clock() - virtual <= 610.0  # ended at 10 minutes, not at 30


def test_auto_mail_lands_on_the_same_clock() -> None:
    mail = AutoMail(delay=90, content="Your code is {code}")
    with Sandbox(virtual_time=True, auto_mail=mail, seed=1) as sb, sb.client() as client:
        order = client.create_order("example.com", "x.com")
        started = time.monotonic()
        message = client.wait_for_message(order.order_id, timeout=120)
        assert time.monotonic() - started < REAL_BOUND
        assert 90.0 <= sb.clock() <= 92.0
        assert message.received_at == order.created_at + timedelta(seconds=90)
        assert message.content == f"Your code is {message.extract_code()}"


def test_mail_scheduled_by_the_test_arrives_mid_wait(sb: Sandbox) -> None:
    with sb.client() as client:
        order = client.create_order("example.com", "x.com")
        sb.deliver(to=order.email, content="code 246810", after=45)
        assert client.wait_for_code(order.order_id, timeout=120) == "246810"
    assert 45.0 <= sb.clock() <= 47.0


def test_retry_waits_move_the_virtual_clock(sb: Sandbox) -> None:
    sb.fail(429, retry_after=30, times=2)
    with sb.client(max_retry_wait=60) as client:
        started = time.monotonic()
        assert client.get_balance() == 100
        assert time.monotonic() - started < REAL_BOUND
    assert sb.clock() == pytest.approx(60.0)
    sb.fail(429, retry_after=300)
    with sb.client(max_retry_wait=60) as client, pytest.raises(RateLimitError):
        client.get_balance()  # longer than max_retry_wait: no wait at all
    assert sb.clock() == pytest.approx(60.0)


def test_the_clock_stands_still_unless_moved(sb: Sandbox) -> None:
    before, now = sb.clock(), sb.now
    time.sleep(0.05)
    assert (sb.clock(), sb.now) == (before, now)
    sb.advance(minutes=1)
    assert sb.clock() == before + 60
    assert sb.now == now + timedelta(minutes=1)


def test_the_rate_limit_runs_on_the_virtual_clock() -> None:
    with Sandbox(virtual_time=True, rate_limit=(2, 10.0)) as sb, sb.client() as client:
        started = time.monotonic()
        for _ in range(6):  # every third call waits out a 10 s window, virtually
            client.get_balance()
        assert time.monotonic() - started < REAL_BOUND
        assert sb.clock() >= 20.0


def test_a_real_time_sandbox_leaves_the_client_on_real_time() -> None:
    with Sandbox() as sb, sb.client() as client:
        order = client.create_order("example.com", "x.com")
        started = time.monotonic()
        with pytest.raises(WaitTimeoutError):
            client.wait_for_message(order.order_id, timeout=0.3, poll_interval=0.1)
        assert time.monotonic() - started >= 0.3  # slept for real...
        assert sb.state.elapsed == 0.0  # ...without moving the sandbox's clock
