"""The async client and a limiter that may block (``RedisLimiter``, or a user's): its calls run on
the client's own threads, never on the loop's thread nor behind the default executor's work; a
slot it grants to a task cancelled meanwhile is given back, also once the client is closed or the
loop is gone; an answer is told to it even after the client closed, and to the hooks even when the
task is cancelled meanwhile; the in-process limiter is called in place. A real Redis case is in
tests/test_redis_limiter.py."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable

import pytest

from kopechka._limits import RateLimiter, Slot
from kopechka.testing import Sandbox


class Recording:
    """A limiter that does I/O, as far as the client can tell: an in-process one underneath,
    every call recorded with the thread it ran on; ``reserve`` and ``feedback`` can be held by a
    test."""

    def __init__(self) -> None:
        self.inner = RateLimiter()
        self.calls: list[tuple[str, str, object]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.hold_feedback = threading.Event()
        self.hold_feedback.set()
        self.lock = threading.Lock()

    def _note(self, name: str, arg: object) -> None:
        with self.lock:
            self.calls.append((name, threading.current_thread().name, arg))

    def reserve(self, now: float, max_wait: float) -> Slot:
        self.hold.wait(10)
        slot = self.inner.reserve(now, max_wait)
        self._note("reserve", slot)
        return slot

    def admit(self, slot: Slot, now: float) -> float | None:
        self._note("admit", slot)
        return self.inner.admit(slot, now)

    def feedback(self, now: float, status: int, retry_after: float | None, slot: Slot) -> None:
        self.hold_feedback.wait(10)
        self._note("feedback", (status, slot))
        self.inner.feedback(now, status, retry_after, slot)


def _wait_until(done: Callable[[], bool], limit: float = 10.0) -> None:
    ends = time.monotonic() + limit
    while not done() and time.monotonic() < ends:
        time.sleep(0.01)


def test_a_limiter_that_may_block_is_never_called_on_the_loop() -> None:
    limiter = Recording()

    async def main() -> str:
        async with sb.async_client(rate_limit=limiter) as client:
            await asyncio.gather(*(client.get_balance() for _ in range(8)))
        return threading.current_thread().name

    with Sandbox() as sb:
        loop_thread = asyncio.run(main())
    names = [name for name, _, _ in limiter.calls]
    assert names.count("reserve") == 8
    assert names.count("feedback") == 8
    assert all(thread != loop_thread for _, thread, _ in limiter.calls)
    assert all(thread.startswith("kopechka-limiter") for _, thread, _ in limiter.calls)
    statuses = [arg[0] for name, _, arg in limiter.calls if name == "feedback"]  # type: ignore[index]
    assert statuses == [200] * 8


def test_the_in_process_limiter_is_called_in_place() -> None:
    """No executor hop for the default limiter: it only takes a lock."""

    async def main() -> object:
        async with sb.async_client() as client:
            await client.get_balance()
            return client._transport._offload

    with Sandbox() as sb:
        assert asyncio.run(main()) is False


@pytest.mark.parametrize("then", ["client open", "client closed", "loop ended"])
def test_a_slot_granted_to_a_cancelled_task_is_given_back(then: str) -> None:
    """Whether the client is still open, closed meanwhile (its limiter threads told to end), or
    the event loop is gone (Ctrl-C, ``asyncio.run`` returning) when the limiter grants it."""
    limiter = Recording()
    limiter.hold.clear()  # reserve blocks (a slow Redis) until the task is cancelled

    def told() -> bool:
        return any(name == "feedback" for name, _, _ in limiter.calls)

    async def main() -> None:
        client = sb.async_client(rate_limit=limiter)
        task = asyncio.create_task(client.get_balance())
        await asyncio.sleep(0.2)  # the task waits on the limiter's thread, inside reserve
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if then == "client closed":
            await client.close()
        if then != "loop ended":
            limiter.hold.set()  # the reserve ends now, for a task that is gone
            await asyncio.to_thread(_wait_until, told)
            await client.close()

    with Sandbox() as sb:
        asyncio.run(main())
        limiter.hold.set()
        _wait_until(told)
        assert sb.requests == []  # nothing was sent for it
    (granted,) = [arg for name, _, arg in limiter.calls if name == "reserve"]
    assert ("feedback", (0, granted)) in [(name, arg) for name, _, arg in limiter.calls]
    assert limiter.inner.state.inflight == ()  # nothing of it counts as in flight any more


class Voiding:
    """A limiter that grants a slot to wait for, then, asked to admit it, answers only once the
    test lets it, with ``None`` (a 429 voided it); every later reservation is granted at once."""

    def __init__(self) -> None:
        self.admitting = threading.Event()
        self.answer = threading.Event()
        self.reserved: list[Slot] = []
        self.given_back: list[tuple[int, Slot]] = []

    def reserve(self, now: float, max_wait: float) -> Slot:
        slot = Slot(wait=0.05 if not self.reserved else 0.0, epoch=len(self.reserved), at=now)
        self.reserved.append(slot)
        return slot

    def admit(self, slot: Slot, now: float) -> float | None:
        self.admitting.set()
        self.answer.wait(10)
        return None

    def feedback(self, now: float, status: int, retry_after: float | None, slot: Slot) -> None:
        self.given_back.append((status, slot))


def test_a_task_cancelled_while_its_slot_is_voided_gives_back_the_slot_reserved_again() -> None:
    """The admission of a task cancelled during a limiter call goes on in the limiter's thread
    up to its next sleep, as if the task were still there: a voided slot is reserved again, and
    that slot, granted at once, is given back (nothing of it is left in flight)."""
    limiter = Voiding()

    async def main() -> None:
        client = sb.async_client(rate_limit=limiter)
        task = asyncio.create_task(client.get_balance())
        await asyncio.to_thread(limiter.admitting.wait, 10)  # inside admit, in the thread
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        limiter.answer.set()  # admit answers now, for a task that is gone
        await asyncio.to_thread(_wait_until, lambda: bool(limiter.given_back))
        await client.close()

    with Sandbox() as sb:
        asyncio.run(main())
        assert sb.requests == []  # nothing was sent for it
    assert len(limiter.reserved) == 2
    assert limiter.given_back == [(0, limiter.reserved[1])]


def test_a_busy_default_executor_does_not_hold_a_request_back() -> None:
    """The program's blocking work fills the loop's default executor; the limiter's calls run on
    the client's own threads, so a request still goes at once."""
    limiter = Recording()
    release = threading.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        busy = [loop.run_in_executor(None, release.wait, 20) for _ in range(40)]  # > its threads
        try:
            async with sb.async_client(rate_limit=limiter) as client:
                await asyncio.wait_for(client.get_balance(), 5)
        finally:
            release.set()
            await asyncio.gather(*busy)

    with Sandbox() as sb:
        asyncio.run(main())
    assert [name for name, _, _ in limiter.calls] == ["reserve", "feedback"]


def test_closing_a_derived_client_leaves_the_limiter_threads_to_their_owner() -> None:
    limiter = Recording()

    async def main() -> None:
        async with sb.async_client(rate_limit=limiter) as client:
            await client.with_options(max_retries=0).close()
            assert await client.get_balance() == 100

    with Sandbox() as sb:
        asyncio.run(main())
    assert [name for name, _, _ in limiter.calls] == ["reserve", "feedback"]


def test_a_call_in_flight_when_the_client_closes_still_tells_the_limiter() -> None:
    """Closing ends the limiter's threads; an answer (or failure) that comes after is still told
    to the limiter, from a thread of its own, and the call ends with the client's error."""
    limiter = Recording()

    async def main() -> BaseException | None:
        client = sb.async_client(rate_limit=limiter, max_retries=0)
        sb.fail(delay=0.5, path="/balance")  # the answer comes after the close
        task = asyncio.create_task(client.get_balance())
        await asyncio.sleep(0.2)
        await client.close()
        done, _ = await asyncio.wait({task}, timeout=10)
        assert task in done
        return task.exception()

    with Sandbox() as sb:
        error = asyncio.run(main())
    assert error is not None
    assert "cannot schedule" not in str(error)
    (granted,) = [arg for name, _, arg in limiter.calls if name == "reserve"]
    (told,) = [arg for name, _, arg in limiter.calls if name == "feedback"]
    assert told[1] == granted  # type: ignore[index]
    assert limiter.inner.state.inflight == ()


def test_a_task_cancelled_while_the_limiter_hears_of_its_answer_still_tells_the_hooks() -> None:
    limiter = Recording()
    limiter.hold_feedback.clear()
    statuses: list[int | None] = []
    hooks = {"response": [lambda event: statuses.append(event.status)]}

    async def main() -> None:
        async with sb.async_client(rate_limit=limiter, event_hooks=hooks) as client:
            task = asyncio.create_task(client.get_balance())
            await asyncio.to_thread(_wait_until, lambda: len(sb.requests) == 1)
            await asyncio.sleep(0.2)  # the answer came: the limiter is being told of it
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            limiter.hold_feedback.set()

    with Sandbox() as sb:
        asyncio.run(main())
    assert statuses[0] == 200  # then the call's end, cancelled
    assert [arg[0] for name, _, arg in limiter.calls if name == "feedback"] == [200]  # type: ignore[index]


def test_a_closed_client_refuses_to_send_before_asking_the_limiter() -> None:
    limiter = Recording()

    async def main() -> None:
        client = sb.async_client(rate_limit=limiter)
        await client.close()
        with pytest.raises(RuntimeError, match="client is closed"):
            await client.get_balance()

    with Sandbox() as sb:
        asyncio.run(main())
        assert sb.requests == []
    assert limiter.calls == []


# --- one 429 pauses every task, whatever the scheduling ------------------------------------------


def _arrivals_in_the_cooldown(sb: Sandbox) -> list[float]:
    """Seconds after the 429 at which later requests reached the server, inside its 1 s."""
    first, *rest = sb.requests
    return [round(r.at - first.at, 3) for r in rest if r.at - first.at < 0.9]


def test_tasks_queued_for_a_connection_wait_out_a_429_with_the_others() -> None:
    """16 tasks on one client whose pool has one connection: the start window lets four take a
    slot, the first gets a 429 (Retry-After 1), three wait for the connection. They had their
    slots before the 429, and went in the middle of the cooldown as soon as the connection was
    free; now each is stopped before its request is written, and waits with the others."""
    from kopechka import AsyncKopechkaClient
    from kopechka._httpx import httpx

    async def main(url: str, key: str) -> None:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1)) as http:
            client = AsyncKopechkaClient(key, base_url=url, http_client=http)
            async with client:
                await asyncio.gather(*(client.get_balance() for _ in range(16)))

    with Sandbox() as sb:
        sb.fail(429, retry_after=1, times=1)
        asyncio.run(main(sb.url, sb.api_key))
        assert sb.requests[0].at  # the 429
        assert _arrivals_in_the_cooldown(sb) == []
        assert len(sb.requests) == 17


def test_threads_held_after_their_slot_wait_out_a_429_with_the_others() -> None:
    """The sync face: threads that took a slot before the 429 and were held before sending (a
    request hook here; a descheduled thread, a slow connect in life) wait out the cooldown."""
    from kopechka import KopechkaClient

    answered = threading.Event()
    first = threading.Lock()

    def hold(event: object) -> None:
        if not first.acquire(blocking=False):  # every request but the first waits for the 429
            answered.wait(5.0)

    def heard(event: object) -> None:
        if getattr(event, "status", None) == 429:
            answered.set()

    with Sandbox() as sb:
        sb.fail(429, retry_after=1, times=1)
        hooks = {"request": [hold], "response": [heard]}
        with KopechkaClient(sb.api_key, base_url=sb.url, event_hooks=hooks) as client:
            threads = [threading.Thread(target=client.get_balance) for _ in range(16)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
        assert _arrivals_in_the_cooldown(sb) == []
        assert len(sb.requests) == 17
