"""A crowd of async calls made ready in one turn of the loop goes in several (``kopechka._turns``)."""

from __future__ import annotations

import asyncio
import collections
import itertools

import pytest

from kopechka import AsyncKopechkaClient, _turns
from kopechka._turns import TURN, give_way
from kopechka.testing import Sandbox

STEP = 0.008  # what each call's step costs, in fake time


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
