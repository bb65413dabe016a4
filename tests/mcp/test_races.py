"""Tools called at the same time: the session takes the ledger's verdict on a lost answer, whatever
other purchases and refunds move the spend meanwhile."""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Any

import pytest

if tuple(sys.version_info) < (3, 11):  # a call: mypy (set to 3.10) still checks the rest
    pytest.skip("the mcp extra needs Python 3.11 or newer", allow_module_level=True)

import anyio

from kopechka.mcp import Guards
from kopechka.testing import Sandbox

from .agents import Recorder, connected, posts, run

GUARDS = Guards(budget=Decimal(50), confirm=False)


async def _lose_while(rec: Recorder, site: str, meanwhile: Any) -> str:
    """Buy for ``site`` (its answer lost, late), running ``meanwhile`` while it is in flight."""
    quote = await rec.ok("quote_address", {"domain": "example.com", "site": site})
    said: list[str] = []

    async def buy() -> None:
        said.append(await rec.refused("buy_address", {"confirmation_id": quote["confirmation_id"]}))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(buy)
        await anyio.sleep(0.4)
        await meanwhile()
    return said[0]


def test_a_refund_meanwhile_does_not_hide_a_lost_answer(sandbox: Sandbox) -> None:
    async def scenario() -> None:
        async with connected(sandbox, GUARDS) as rec:
            held = await rec.buy("example.com", "a.com")
            # bought, then a late 502: the answer is lost, the order exists
            sandbox.fail(502, path="/orders", method="POST", execute=True, delay=1.2)

            async def cancel() -> None:
                await rec.ok("cancel_order", {"order_id": held["order_id"]})  # the same price back

            said = await _lose_while(rec, "b.com", cancel)
            assert "answer was lost" in said
            spend = await rec.read("kopechka://spend")
            assert spend["unknown"] == 1  # still spent, still open
            assert spend["budget_left"] == "45.00"

    run(scenario)


def test_a_purchase_meanwhile_does_not_count_a_loss_that_bought_nothing(sandbox: Sandbox) -> None:
    async def scenario() -> None:
        async with connected(sandbox, GUARDS) as rec:
            sandbox.fail(path="/orders", method="POST", drop=True, delay=1.2)  # never carried out

            async def other() -> None:
                await rec.buy("example.com", "a.com")

            await _lose_while(rec, "b.com", other)
            spend = await rec.read("kopechka://spend")
            assert spend["unknown"] == 0  # the listing showed nothing bought for b.com
            assert spend["budget_left"] == "45.00"
        assert posts(sandbox) == 2

    run(scenario)
