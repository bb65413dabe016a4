"""Closing a client with refunds in flight, as asyncio programs are really written: a timeout around
``gather``, ``asyncio.timeout`` then ``close()``, fire-and-forget tasks, ``main`` returning under
``asyncio.run``, SIGTERM under ``exit_on_signals()`` and Ctrl-C. Each ends with no unused order
charged, read from the sandbox's own state. And a closed client refuses to send, on both faces
alike, while refunds started before still complete."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal

import pytest

from kopechka import AsyncKopechkaClient, KopechkaClient
from kopechka.testing import Sandbox

from . import children
from .faces import Face

CROWD = 20
SLOW_REFUND = 0.3  # each DELETE answered this late (real time): closing races the refunds


def unused_charged(sandbox: Sandbox) -> list[str]:
    """The orders the account paid for that got no mail and were not refunded."""
    with sandbox.app.lock:
        orders = list(sandbox.state._orders.values())
    return [o.order_id for o in orders if o.status != "cancelled" and not o.mail]


@pytest.fixture
def slow_refunds() -> Iterator[Sandbox]:
    with Sandbox(balance="1000.00") as sandbox:
        sandbox.fail(method="DELETE", delay=SLOW_REFUND, times=None)
        yield sandbox


async def sign_up(client: AsyncKopechkaClient) -> str:
    async with client.mailbox("example.com", "x.com") as box:
        return await box.wait_for_code(timeout=30, poll_interval=0.2)


async def all_bought(sandbox: Sandbox, count: int) -> None:
    """Wait until each of ``count`` mailboxes was bought and is waiting for its mail."""
    for _ in range(3000):  # bounded: 30 s
        waiting = {r.path for r in sandbox.requests if r.path.endswith("/messages")}
        if len(waiting) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the crowd did not buy in time")


def client_of(sandbox: Sandbox) -> AsyncKopechkaClient:
    return AsyncKopechkaClient(api_key=sandbox.api_key, base_url=sandbox.url)


async def wait_for_gather(sandbox: Sandbox) -> None:
    async with client_of(sandbox) as client:
        crowd = asyncio.gather(*(sign_up(client) for _ in range(CROWD)))
        await asyncio.sleep(0)
        await all_bought(sandbox, CROWD)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(crowd, 0.05)


async def timeout_then_close(sandbox: Sandbox) -> None:
    client = client_of(sandbox)
    crowd = asyncio.gather(*(sign_up(client) for _ in range(CROWD)))
    await asyncio.sleep(0)
    await all_bought(sandbox, CROWD)
    with pytest.raises(asyncio.TimeoutError):
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(0.05):
                await crowd
        else:  # pragma: no cover - before asyncio.timeout
            await asyncio.wait_for(crowd, 0.05)
    await client.close()


async def fire_and_forget(sandbox: Sandbox) -> None:
    async with client_of(sandbox) as client:
        for _ in range(CROWD):
            asyncio.get_running_loop().create_task(sign_up(client))
        await all_bought(sandbox, CROWD)
    # leaving the block: the mailboxes still open are refunded by close()


VARIANTS: dict[str, Callable[[Sandbox], Awaitable[None]]] = {
    "wait_for around gather": wait_for_gather,
    "asyncio.timeout then close()": timeout_then_close,
    "fire-and-forget tasks": fire_and_forget,
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_unused_order_stays_charged(slow_refunds: Sandbox, variant: str) -> None:
    asyncio.run(VARIANTS[variant](slow_refunds))  # type: ignore[arg-type]
    assert slow_refunds.state.order_count() == CROWD
    assert unused_charged(slow_refunds) == []
    assert slow_refunds.balance == Decimal("1000.00")


MAIN_RETURNS = """
    import asyncio, kopechka

    async def sign_up(client):
        async with client.mailbox("example.com", "x.com") as box:
            await box.wait_for_code(timeout=60, poll_interval=0.2)

    async def main():
        client = kopechka.AsyncKopechkaClient()  # never closed: asyncio.run cancels what is left
        crowd = asyncio.gather(*(sign_up(client) for _ in range(5)))
        while len([o async for o in client.iter_orders()]) < 5:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # every task waits in its mailbox
        crowd.cancel()  # the refunds start, and main returns before they end
        await asyncio.sleep(0)

    asyncio.run(main())
    print("done", flush=True)
"""


def test_main_returning_under_asyncio_run_loses_no_refund(slow_refunds: Sandbox) -> None:
    bot = children.python(slow_refunds, MAIN_RETURNS)
    assert bot.line() == "done"
    bot.finish()
    assert slow_refunds.state.order_count() == 5
    assert unused_charged(slow_refunds) == []


CANCELLED_AS_MAIN_RETURNS = """
    import asyncio, kopechka

    async def main():
        client = kopechka.AsyncKopechkaClient()  # never closed: asyncio.run cancels what is left
        entered = asyncio.Event()

        async def sign_up():
            async with client.mailbox("example.com", "x.com"):
                entered.set()
                await asyncio.sleep(60)

        task = asyncio.get_running_loop().create_task(sign_up())
        await entered.wait()
        task.cancel()  # main returns at once: the loop stops as the task starts its refund

    asyncio.run(main())
    print("done", flush=True)
"""


def test_a_refund_started_as_the_loop_stops_is_not_lost(sandbox: Sandbox) -> None:
    # the refund's task is created in the loop's last round: asyncio.run then cancels it before
    # its first step, when no code of it can catch the cancellation
    bot = children.python(sandbox, CANCELLED_AS_MAIN_RETURNS)
    assert bot.line() == "done"
    bot.finish()
    assert sandbox.state.order_count() == 1
    assert unused_charged(sandbox) == []


GATHERED = """
    import asyncio, kopechka

    async def sign_up(client):
        async with client.mailbox("example.com", "x.com") as box:
            await box.wait_for_code(timeout=60, poll_interval=0.2)

    async def main():
        async with kopechka.AsyncKopechkaClient() as client:
            async def announce():
                while len([o async for o in client.iter_orders()]) < 5:
                    await asyncio.sleep(0.05)
                print("ready", flush=True)
                await asyncio.sleep(60)
            {guard}
                await asyncio.gather(*(sign_up(client) for _ in range(5)), announce())

    asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("how", "guard", "code"),
    [
        (signal.SIGTERM, "with kopechka.exit_on_signals():", 143),
        (signal.SIGINT, "if True:", -signal.SIGINT),
    ],
    ids=["SIGTERM under exit_on_signals", "Ctrl-C"],
)
def test_a_signal_with_five_gathered_mailboxes_refunds_all(
    slow_refunds: Sandbox, how: signal.Signals, guard: str, code: int
) -> None:
    bot = children.python(slow_refunds, GATHERED.replace("{guard}", guard))
    assert bot.line() == "ready"
    bot.proc.send_signal(how)
    returncode, _, err = bot.finish()
    assert returncode == code, err
    assert slow_refunds.state.order_count() == 5
    assert unused_charged(slow_refunds) == []


# --- a closed client ---------------------------------------------------------------------------


def test_a_closed_client_refuses_to_send_on_both_faces(face: Face, sandbox: Sandbox) -> None:
    with face.sandbox_client(sandbox) as client:
        client.get_balance()
        if face.is_async:  # the view's own close() also ends its loop
            client.run(client.client.close())
        else:
            client.close()
        with pytest.raises(RuntimeError, match="the client is closed: create another one"):
            client.get_balance()
        with pytest.raises(RuntimeError, match="the client is closed: create another one"):
            client.create_order("example.com", "x.com")
        derived = client.with_options(timeout=5.0)
        with pytest.raises(RuntimeError, match="the client is closed"):
            client.run(derived.get_balance()) if face.is_async else derived.get_balance()
    assert sandbox.state.order_count() == 0


def test_a_refund_in_flight_at_close_completes(slow_refunds: Sandbox) -> None:
    """Another thread leaves its mailbox while the client closes: close() waits for the refund,
    and a mailbox still open is refunded by close() itself."""
    import threading

    client = KopechkaClient(api_key=slow_refunds.api_key, base_url=slow_refunds.url)
    leaving = client.mailbox("example.com", "x.com")
    still_open = client.mailbox("example.com", "x.com")
    exiting = threading.Thread(target=leaving.__exit__, args=(None, None, None))
    exiting.start()
    slow_refunds.requests  # noqa: B018 - the refund is on its way (bounded wait below)
    children.wait_until(lambda: any(r.method == "DELETE" for r in slow_refunds.requests))
    client.close()
    exiting.join(timeout=30)
    assert leaving.cancellation is not None
    assert still_open.cancellation is not None
    assert unused_charged(slow_refunds) == []
    with pytest.raises(RuntimeError, match="the client is closed"):
        client.get_balance()


def test_close_timeout_bounds_the_wait(sandbox: Sandbox) -> None:
    sandbox.fail(method="DELETE", delay=5.0, times=None)
    client = KopechkaClient(
        api_key=sandbox.api_key, base_url=sandbox.url, close_timeout=0.2, timeout=(2.0, 10.0)
    )
    box = client.mailbox("example.com", "x.com")
    import threading
    import time

    exiting = threading.Thread(target=box.__exit__, args=(None, None, None), daemon=True)
    exiting.start()
    children.wait_until(lambda: any(r.method == "DELETE" for r in sandbox.requests))
    started = time.monotonic()
    client.close()
    assert time.monotonic() - started < 4.0  # not the refund's 5 s
    exiting.join(timeout=30)


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), "10", True])
def test_close_timeout_is_checked(face: Face, sandbox: Sandbox, value: object) -> None:
    with pytest.raises(ValueError, match="close_timeout"):
        face.sandbox_client(sandbox, close_timeout=value)
