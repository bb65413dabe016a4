"""Event hooks, KOPECHKA_LOG and with_options, through the sandbox."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest

from kopechka import APIError, KopechkaClient, RateLimitError
from kopechka._hooks import AttemptEvent, check_hooks, path_template
from kopechka._limits import RateLimiter, Slot
from kopechka.testing import Sandbox

from .conftest import Sleeps
from .faces import Face


def recorder() -> tuple[list[AttemptEvent], dict[str, list[Any]]]:
    events: list[AttemptEvent] = []
    return events, {"request": [events.append], "response": [events.append]}


def test_hooks_see_each_attempt_and_its_fate(sandbox: Sandbox, sleeps: Sleeps) -> None:
    events, hooks = recorder()
    with sandbox.client(sleep=sleeps, event_hooks=hooks) as client:
        order = client.create_order("example.com", "x.com")
        sandbox.fail(429, retry_after=1, times=1)
        client.get_messages(order.order_id)
    messages = [e for e in events if e.operation == "get_messages"]
    assert [(e.attempt, e.status, e.will_retry) for e in messages] == [
        (1, None, None),
        (1, 429, True),
        (2, None, None),
        (2, 200, False),
    ]
    assert {e.path for e in messages} == {"/orders/{orderId}/messages"}
    assert len({e.call_id for e in messages}) == 1
    assert all(e.elapsed is not None and e.elapsed >= 0 for e in messages if e.status)
    text = repr(events)
    for secret in (sandbox.api_key, order.order_id, order.email):
        assert secret not in text


class _Heard(RateLimiter):
    """The in-process limiter, or (``blocking``) a subclass the async client treats as one that
    may do I/O and calls from an executor; each feedback noted in ``order``."""

    def __init__(self, order: list[str]) -> None:
        super().__init__()
        self.order = order

    def feedback(self, now: float, status: int, retry_after: float | None, slot: Slot) -> None:
        self.order.append(f"limiter {status}")
        super().feedback(now, status, retry_after, slot)


class _Blocking:
    """Not a ``RateLimiter``: the async client calls it from an executor."""

    def __init__(self, inner: _Heard) -> None:
        self.inner = inner

    def reserve(self, now: float, max_wait: float) -> Slot:
        return self.inner.reserve(now, max_wait)

    def admit(self, slot: Slot, now: float) -> float | None:
        return self.inner.admit(slot, now)

    def feedback(self, now: float, status: int, retry_after: float | None, slot: Slot) -> None:
        self.inner.feedback(now, status, retry_after, slot)


@pytest.mark.parametrize("blocking", [False, True], ids=["in-process", "may-block"])
def test_the_limiter_hears_of_an_answer_before_the_hooks(
    face: Face, sandbox: Sandbox, blocking: bool
) -> None:
    """Both faces, whatever the limiter: a hook that reads the limiter sees the answer counted."""
    order: list[str] = []
    heard = _Heard(order)
    hooks = {"response": [lambda e: order.append(f"hook {e.status}")]}
    limiter = _Blocking(heard) if blocking else heard
    with face.sandbox_client(sandbox, rate_limit=limiter, event_hooks=hooks) as client:
        client.get_balance()
        assert getattr(client._transport, "_offload", False) is (blocking and face.is_async)
    assert order == ["limiter 200", "hook 200"]


def test_a_network_failure_reaches_the_hooks(sleeps: Sleeps) -> None:
    events, hooks = recorder()
    client = KopechkaClient(
        "k", base_url="http://127.0.0.1:1/api/v1", sleep=sleeps, max_retries=1, event_hooks=hooks
    )
    with client, pytest.raises(Exception, match="could not connect"):
        client.get_balance()
    answers = [e for e in events if e.will_retry is not None]
    assert [(e.status, e.will_retry) for e in answers] == [(None, True), (None, False)]
    assert all(e.error for e in answers)


def test_a_call_ended_by_an_exception_gets_a_last_response_event(sandbox: Sandbox) -> None:
    """The answer is too large to read: no answer, yet the hooks hear how the call ended."""
    events, hooks = recorder()
    with sandbox.client(max_body=10, event_hooks=hooks) as client, pytest.raises(APIError):
        client.get_balance()
    assert [(e.attempt, e.status, e.error, e.will_retry) for e in events] == [
        (1, None, None, None),
        (1, None, "APIResponseValidationError", False),
    ]


def test_a_raising_hook_never_breaks_a_call(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: AttemptEvent) -> None:
        raise RuntimeError("hook bug")

    hooks = {"request": [broken], "response": [broken]}
    with sandbox.client(event_hooks=hooks) as client:
        assert client.get_balance() == 100
    assert any("RuntimeError" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("bad", [{"sent": []}, {"request": [1]}, [print], {"response": print}])
def test_event_hooks_are_checked(bad: Any) -> None:
    with pytest.raises(ValueError, match="event_hooks"):
        check_hooks(bad)


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/orders", "/orders"),
        ("/orders/API-1", "/orders/{orderId}"),
        ("/orders/API-1/start-polling", "/orders/{orderId}/start-polling"),
        ("/balance", "/balance"),
    ],
)
def test_paths_become_templates(path: str, template: str) -> None:
    assert path_template(path) == template


def run_with_log(level: str, code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KOPECHKA_LOG": level}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


TWO_CLIENTS = (
    "from kopechka.testing import Sandbox\n"
    "with Sandbox() as sb:\n"
    "    a, b = sb.client(), sb.client()\n"
    "    a.get_balance()\n"
)


def test_kopechka_log_prints_one_line_per_attempt_on_stderr() -> None:
    out = run_with_log("debug", TWO_CLIENTS)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("GET /balance -> 200") == 1  # one handler, however many clients
    assert "test-key" not in out.stderr
    quiet = run_with_log("warning", TWO_CLIENTS)
    assert "GET /balance" not in quiet.stderr


def test_a_bad_kopechka_log_is_refused() -> None:
    out = run_with_log("loud", TWO_CLIENTS)
    assert out.returncode != 0
    assert "KOPECHKA_LOG must be debug, info or warning" in out.stderr


# --- with_options ------------------------------------------------------------------------------


def test_with_options_shares_key_pool_limiter_and_hooks(sandbox: Sandbox) -> None:
    events, hooks = recorder()
    with sandbox.client(event_hooks=hooks, max_retries=3) as client:
        fast = client.with_options(timeout=5.0, max_retries=0, max_retry_wait=7.0)
        assert (fast.timeout, fast.max_retries) == ((5.0, 5.0), 0)
        assert client.max_retries == 3
        assert fast._transport.session is client._transport.session
        assert fast._transport.limiter is client._transport.limiter
        assert fast.get_balance() == 100
        assert events  # the hooks came along
        sandbox.fail(429, retry_after=1, times=1)
        with pytest.raises(RateLimitError):
            fast.get_balance()  # max_retries=0: the 429 is final
        fast.close()  # the pool is the original's: still open
        assert client.with_options().get_balance() == 100
        adapter = client._transport.session.get_adapter(sandbox.url)
        assert adapter.poolmanager.pools  # type: ignore[attr-defined]


def test_with_options_checks_its_arguments(client: KopechkaClient) -> None:
    with pytest.raises(ValueError, match="max_retries"):
        client.with_options(max_retries=-1)
    with pytest.raises(ValueError, match="timeout"):
        client.with_options(timeout=0)
    with pytest.raises(ValueError, match="max_retry_wait"):
        client.with_options(max_retry_wait=-2)


class _AsyncCall:
    async def __call__(self, event: AttemptEvent) -> None:
        pass


def test_an_async_hook_is_awaited_or_refused(
    face: Face, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """The async face awaits an ``async def`` hook, in order; the sync face would call it and
    never run its body, so it refuses it at construction."""
    seen: list[tuple[str, int | None]] = []

    async def hook(event: AttemptEvent) -> None:
        await asyncio.sleep(0)
        seen.append((event.operation, event.status))

    async def broken(event: AttemptEvent) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("async hook bug")

    hooks = {"request": [hook], "response": [broken, hook]}
    if not face.is_async:
        for given in (hooks, {"response": [_AsyncCall()]}):
            with pytest.raises(ValueError, match="async def"):
                face.sandbox_client(sandbox, event_hooks=given)
        return
    with face.sandbox_client(sandbox, event_hooks=hooks) as client:
        assert client.get_balance() == 100
    assert seen == [("get_balance", None), ("get_balance", 200)]
    assert any("RuntimeError" in r.getMessage() for r in caplog.records)  # logged, skipped


def test_a_sync_hook_handing_back_a_coroutine_is_closed_and_said_once(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """A lambda around an ``async def`` passes the sync face's check (it is a plain function):
    what it hands back is closed (no "never awaited" warning, which the suite turns into an
    error) and one WARNING per hook says its body never ran; the calls still succeed."""
    ran: list[int] = []

    async def body(event: AttemptEvent) -> None:
        ran.append(1)

    hook = lambda event: body(event)  # noqa: E731, PLW0108 - a plain function handing back a coroutine
    with sandbox.client(event_hooks={"request": [hook]}) as client:
        assert client.get_balance() == 100
        assert client.get_balance() == 100
    said = [r for r in caplog.records if "does not await hooks" in r.getMessage()]
    assert len(said) == 1
    assert "GET /balance" in said[0].getMessage()
    assert ran == []
