"""A crowd of async calls made ready in one turn of the loop goes in several (``kopechka._turns``)."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import importlib
import itertools
import threading

import pytest

from kopechka import AsyncKopechkaClient, _turns
from kopechka._turns import TURN, give_way
from kopechka.testing import Sandbox

from .children import python

STEP = 0.008  # what each call's step costs, in fake time
for _name in _turns.FIRST_USE:  # loaded: the turns counted here are the calls' own, not an import's
    importlib.import_module(_name)


def turns_of(costs: list[float], monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Run one call per cost, all made ready in the same turn; return how many ran in each turn."""
    clock = [0.0]
    monkeypatch.setattr(_turns, "_clock", lambda: clock[0])

    async def main() -> list[int]:
        loop, turn, ran, ticking = asyncio.get_running_loop(), [0], [], [True]

        def tick() -> None:  # runs once in every turn of the loop: counts them
            turn[0] += 1
            if ticking[0]:
                loop.call_soon(tick)

        async def call(cost: float) -> None:
            await give_way()
            ran.append(turn[0])
            clock[0] += cost

        loop.call_soon(tick)
        await asyncio.wait_for(asyncio.gather(*(call(cost) for cost in costs)), timeout=10)
        ticking[0] = False
        return list(collections.Counter(ran).values())

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("costs", "per_turn"),
    [
        ([STEP] * 10, [3, 3, 3, 1]),  # 0, 8 and 16 ms into the turn go; at 24 ms the rest wait
        ([0.0] * 50, [50]),  # cheap calls: nobody waits
        ([TURN] * 3, [2, 1]),  # at exactly TURN a call still goes; past it, not
        ([0.1, STEP, STEP], [1, 2]),  # one long step: the next call waits for the next turn
        ([STEP], [1]),  # a lone call goes at once
    ],
)
def test_a_crowd_goes_in_turns_of_turn_seconds(
    costs: list[float], per_turn: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert turns_of(costs, monkeypatch) == per_turn


def test_a_crowd_of_requests_leaves_the_loop_turns_for_other_tasks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """300 purchases started at once on one client, against the sandbox: other tasks on the loop
    get turns while they start (each turn sees a part of the crowd's requests, not all). The
    turn's clock advances a millisecond a read, whatever this machine's speed and load."""
    reads = itertools.count()
    monkeypatch.setattr(_turns, "_clock", lambda: next(reads) * 0.001)
    crowd = 300
    sent: list[int] = []
    with Sandbox(balance=10_000) as sandbox:

        async def main() -> list[int]:
            per_turn: list[int] = []
            done = asyncio.Event()

            async def other_task() -> None:  # a bot's handler: counts requests between its turns
                seen = 0
                while not done.is_set():
                    await asyncio.sleep(0)
                    per_turn.append(len(sent) - seen)
                    seen = len(sent)

            hooks = {"request": [lambda event: sent.append(1)]}
            async with AsyncKopechkaClient(
                sandbox.api_key, base_url=sandbox.url, rate_limit=False, event_hooks=hooks
            ) as client:
                await client.get_balance()  # warm: connections, the models
                sent.clear()
                other = asyncio.create_task(other_task())
                await asyncio.sleep(0)
                buys = (client.create_order("inbox.test", "x.com") for _ in range(crowd))
                orders = await asyncio.wait_for(asyncio.gather(*buys), timeout=60)
                done.set()
                await other
            assert len(orders) == crowd
            return per_turn

        per_turn = asyncio.run(main())
    assert sum(per_turn) >= crowd
    assert max(per_turn) <= 2 * TURN / 0.001, per_turn[:20]  # each request reads the clock


FIRST_CALLS = """
    import asyncio, sys, threading
    from kopechka import AsyncKopechkaClient

    where = {}

    def audit(event, args):
        if event == "import" and args[0] in ("kopechka._models", "kopechka._extract"):
            where.setdefault(args[0], threading.current_thread().name)

    sys.addaudithook(audit)

    async def main():
        async with AsyncKopechkaClient() as client:
            first = asyncio.create_task(client.get_balance())
            gone = asyncio.create_task(client.get_balance())
            await asyncio.sleep(0)
            gone.cancel()  # a first call cancelled while the modules load stops nobody else
            rest = await asyncio.gather(first, *(client.get_balance() for _ in range(20)))
            print(len(rest), gone.cancelled(), str(rest[0]))

    asyncio.run(main())
    print(where.get("kopechka._models"), where.get("kopechka._extract"))
"""


def test_a_process_first_calls_load_the_models_in_a_thread(sandbox: Sandbox) -> None:
    """A process's first async calls do not hold the loop while the models, envelopes and code
    extraction load (100-200 ms of imports): a thread of kopechka's loads them, once, and the
    calls wait for it; one of them cancelled meanwhile stops neither the loading nor the rest."""
    code, out, err = python(sandbox, FIRST_CALLS).finish()
    assert code == 0, err
    counted, loaded = out.splitlines()
    assert counted == "21 True 100.00"
    assert loaded == "kopechka-load kopechka-load"


def test_nothing_is_loaded_in_a_thread_when_the_modules_are_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Modules already loaded (a sync call came first, or a bot imported the models): the first
    async call starts no thread and does not wait."""
    monkeypatch.setattr(_turns, "_LOADING", _turns._Loading())
    started = threading.active_count()

    async def main() -> None:
        await give_way()

    asyncio.run(main())
    assert _turns._LOADING.done
    assert _turns._LOADING.future is None
    assert threading.active_count() == started


FORK_WHILE_LOADING = """
    import asyncio, os, sys, time
    from kopechka import AsyncKopechkaClient, _turns

    client = AsyncKopechkaClient()  # starts loading the models in a thread
    ends = time.monotonic() + 10
    while "kopechka._models" not in sys.modules and time.monotonic() < ends:
        time.sleep(0.0001)  # until the thread is inside the models' import
    print("loading", not _turns._LOADING.future.done(), flush=True)
    pid = os.fork()
    if pid == 0:
        async def main():
            async with AsyncKopechkaClient() as child_client:
                return await child_client.get_balance()
        print("child", asyncio.run(main()), flush=True)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    print("parent", os.waitstatus_to_exitcode(status), flush=True)
"""


def test_a_fork_while_the_models_load_leaves_the_child_a_working_client(sandbox: Sandbox) -> None:
    """``os.fork()`` waits for a loading under way (the child would have no thread to finish it,
    and a half-imported module), so a child's first call works."""
    code, out, err = python(sandbox, FORK_WHILE_LOADING).finish()
    assert code == 0, err
    assert out.splitlines() == ["loading True", "child 100.00", "parent 0"]


def test_a_child_forgets_a_loading_it_has_no_thread_for(monkeypatch: pytest.MonkeyPatch) -> None:
    loading = _turns._Loading()
    loading.future = concurrent.futures.Future()
    monkeypatch.setattr(_turns, "_LOADING", loading)
    _turns._after_fork_in_child()
    assert loading.future is None  # the child's first call starts its own
    finished = _turns._Loading()
    finished.done, finished.future = True, concurrent.futures.Future()
    monkeypatch.setattr(_turns, "_LOADING", finished)
    _turns._after_fork_in_child()
    assert finished.future is not None
