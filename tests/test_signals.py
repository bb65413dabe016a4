"""``exit_on_signals()``: SIGTERM and SIGHUP unwind a bot as Ctrl-C does. In real child processes:
the main thread's mailbox, worker threads' mailboxes, asyncio both ways, and a purchase whose answer
is still on its way; the sandbox's balance is back to its start each time."""

from __future__ import annotations

import logging
import os
import pickle
import signal
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest

import kopechka
from kopechka._signals import Terminated
from kopechka.testing import Sandbox

from . import children


@pytest.fixture
def handlers() -> Iterator[None]:
    """Put SIGTERM and SIGHUP back as they were (a received signal leaves the helper's in place)."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_signal_raises_an_orderly_exit_and_sets_stop(handlers: None) -> None:
    with pytest.raises(SystemExit) as info, kopechka.exit_on_signals() as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        threading.Event().wait(5)  # the handler raises here at the latest
    assert info.value.code == 128 + signal.SIGTERM
    assert isinstance(info.value, Terminated)
    assert str(info.value) == "stopped by SIGTERM"
    assert stop.is_set()


def test_a_second_signal_is_ignored_while_unwinding(
    handlers: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kopechka")
    mine = threading.Event()
    with pytest.raises(SystemExit), kopechka.exit_on_signals(stop=mine):
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            threading.Event().wait(5)
        finally:  # the refunds of an unwinding bot run here
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGHUP)
    assert mine.is_set()
    assert sum("ignored: already stopping" in r.getMessage() for r in caplog.records) == 2


def test_handlers_come_back_when_no_signal_came(handlers: None) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with kopechka.exit_on_signals(signal.SIGTERM):
        assert signal.getsignal(signal.SIGTERM) is not before
        assert signal.getsignal(signal.SIGHUP) is not None
    assert signal.getsignal(signal.SIGTERM) is before


def test_only_the_main_thread_may_enter() -> None:
    errors: list[BaseException] = []

    def enter() -> None:
        try:
            with kopechka.exit_on_signals():
                pass
        except ValueError as exc:
            errors.append(exc)

    worker = threading.Thread(target=enter)
    worker.start()
    worker.join(timeout=10)
    assert "main thread" in str(errors[0])


def test_terminated_pickles_with_its_signal() -> None:
    again = pickle.loads(pickle.dumps(Terminated(signal.SIGHUP)))
    assert (again.signum, again.code) == (signal.SIGHUP, 129)


# --- real processes -------------------------------------------------------------------------------

MAIN_THREAD_BOT = """
    import time, kopechka
    with kopechka.exit_on_signals():
        with kopechka.KopechkaClient() as client, client.mailbox("example.com", "x.com") as box:
            print(box.order_id, flush=True)
            time.sleep(60)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_main_thread_mailbox_refunds_on_signal(sandbox: Sandbox, signum: int) -> None:
    bot = children.python(sandbox, MAIN_THREAD_BOT)
    order_id = bot.line()
    assert sandbox.balance == Decimal("95")
    bot.proc.send_signal(signum)
    code, _, err = bot.finish()
    assert (code, err) == (128 + signum, "")
    assert sandbox.balance == Decimal("100")
    assert sandbox.state.get_order(order_id)["status"] == "cancelled"


WORKERS_BOT = """
    import threading, kopechka
    client = kopechka.KopechkaClient()
    ready = threading.Barrier(4)

    def work(stop):
        with client.mailbox("example.com", "x.com") as box:
            ready.wait()
            while not stop.wait(0.05):   # a bot's loop; a wait given stop= ends the same way
                box.messages()

    with kopechka.exit_on_signals() as stop:
        workers = [threading.Thread(target=work, args=(stop,)) for _ in range(3)]
        for w in workers:
            w.start()
        ready.wait()
        print("ready", flush=True)
        # not Thread.join(): on Python <= 3.11 a signal raised inside join() can mark a running
        # thread as stopped (bpo-45274), and the interpreter then exits without waiting for it
        while any(w.is_alive() for w in workers):
            stop.wait(0.1)
"""


def test_worker_threads_end_and_refund_on_signal(sandbox: Sandbox) -> None:
    bot = children.python(sandbox, WORKERS_BOT)
    assert bot.line() == "ready"
    assert sandbox.balance == Decimal("85")
    bot.proc.send_signal(signal.SIGTERM)
    code, _, err = bot.finish()
    assert (code, err) == (143, "")
    assert sandbox.balance == Decimal("100")


ASYNC_INSIDE = """
    import asyncio, kopechka

    async def main():
        with kopechka.exit_on_signals():        # inside the coroutine: cancels its task
            with kopechka.KopechkaClient() as client, client.mailbox("example.com", "x.com"):
                print("ready", flush=True)
                await asyncio.sleep(60)

    asyncio.run(main())
"""
ASYNC_AROUND = """
    import asyncio, kopechka

    async def main():
        client = kopechka.KopechkaClient()
        with client.mailbox("example.com", "x.com"):
            print("ready", flush=True)
            await asyncio.sleep(60)

    with kopechka.exit_on_signals():            # around asyncio.run: its tasks are cancelled
        asyncio.run(main())
"""


@pytest.mark.parametrize("program", [ASYNC_INSIDE, ASYNC_AROUND], ids=["inside", "around"])
def test_asyncio_bot_refunds_on_signal(sandbox: Sandbox, program: str) -> None:
    bot = children.python(sandbox, program)
    assert bot.line() == "ready"
    bot.proc.send_signal(signal.SIGTERM)
    code, _, err = bot.finish()
    assert (code, err) == (143, "")
    assert sandbox.balance == Decimal("100")


BUYING_BOT = """
    import kopechka
    with kopechka.exit_on_signals(), kopechka.KopechkaClient() as client:
        print("buying", flush=True)
        with client.mailbox("example.com", "x.com"):
            print("not reached", flush=True)
"""


def test_signal_while_the_purchase_is_answered_leaves_it_to_the_sweep(sandbox: Sandbox) -> None:
    """The farm rule: what the lost answer bought may be another process's order: the sweep
    refunds it."""
    sandbox.fail(path="/orders", method="POST", delay=5.0)  # bought at once, answered late
    bot = children.python(sandbox, BUYING_BOT)
    assert bot.line() == "buying"
    children.wait_until(lambda: any(r.method == "POST" for r in sandbox.requests))
    bot.proc.send_signal(signal.SIGTERM)
    code, out, err = bot.finish()
    assert (code, out, err) == (143, "", "")
    assert sandbox.state.order_count() == 1
    with sandbox.client() as client:
        assert len(client.sweep(older_than=0, dry_run=False).cancelled) == 1
    assert sandbox.balance == Decimal("100")
