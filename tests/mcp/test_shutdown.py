"""Shutdown through the protocol: purchases still in flight, and refunds held to their bound."""

from __future__ import annotations

import json
import logging
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

if tuple(sys.version_info) < (3, 11):  # a call: mypy (set to 3.10) still checks the rest
    pytest.skip("the mcp extra needs Python 3.11 or newer", allow_module_level=True)

import anyio
import anyio.to_thread
from mcp.types import CallToolResult

from kopechka.mcp import Guards, shutdown
from kopechka.mcp._journal import Journal
from kopechka.testing import Sandbox

from .agents import connected, run, text

FREE = Guards(budget=Decimal(100), confirm=False)
SITE = {"domain": "example.com", "site": "github.com"}


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_purchase_answered_during_shutdown_is_journalled_and_refunds_itself(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal_path = tmp_path / "journal.jsonl"
    journal = Journal(journal_path)
    got: dict[str, Any] = {}

    async def scenario() -> None:
        async with connected(sandbox, FREE, journal=journal) as rec:
            quote = await rec.ok("quote_address", SITE)
            got["quote"] = quote["confirmation_id"]
            sandbox.fail(path="/orders", method="POST", delay=1.5)  # bought at once, answered late

            async def buy() -> None:
                got["buy"] = await rec.call("buy_address", {"confirmation_id": got["quote"]})

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(buy)
                await anyio.sleep(0.2)
                counts = await anyio.to_thread.run_sync(shutdown, rec.server, 1.8)
                got["counts"] = counts
                journal.write("stop", **counts)  # as `kopechka mcp` does, then it closes
                journal.close()

    with caplog.at_level(logging.WARNING, logger="kopechka"):
        run(scenario)
    assert got["counts"] == {"refunded": 0, "kept": 0, "failed": 0, "unknown": 1}
    records = _records(journal_path)
    assert [r["event"] for r in records] == ["unknown", "stop"]
    unknown, stop = records
    assert unknown["confirmation_id"] == got["quote"]
    assert (unknown["domain"], unknown["site"], unknown["on"]) == ("example.com", "github.com",
                                                                    "shutdown")  # fmt: skip
    assert "kopechka sweep" in unknown["hint"]
    assert stop["unknown"] == 1
    result: CallToolResult = got["buy"]
    assert result.is_error  # the order is gone: the agent is not handed it
    assert "cancelled and refunded" in text(result)
    assert sandbox.balance == Decimal("100.00")
    with sandbox.client() as kc:
        assert [str(o.status) for o in kc.iter_orders()] == ["cancelled"]
    late = "\n".join(
        r.getMessage() for r in caplog.records if "journal is closed" in r.getMessage()
    )
    assert '"event":"purchase"' in late  # written after close: logged, not dropped
    assert '"event":"refund"' in late


def test_shutdown_refunds_keep_to_their_bound_and_the_journal_stays_true(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    journal_path = tmp_path / "journal.jsonl"
    got: dict[str, Any] = {}

    async def scenario() -> None:
        async with connected(sandbox, FREE, journal=Journal(journal_path)) as rec:
            order = await rec.buy()
            got["order"] = order_id = order["order_id"]
            # two slow 503s, then the cancel would go through: retries past the bound refund it
            # after the journal said it failed
            sandbox.fail(503, path=f"/orders/{order_id}", method="DELETE", delay=1.0, times=2)
            started = time.monotonic()
            got["counts"] = await anyio.to_thread.run_sync(shutdown, rec.server, 1.8)
            got["took"] = time.monotonic() - started
            await anyio.sleep(2.5)  # whatever shutdown left running has ended by now
            with sandbox.client() as kc:
                got["status"] = str(kc.get_order(order_id).status)
            got["balance"] = sandbox.balance

    run(scenario)
    assert got["took"] < 1.8 + 1.2, got["took"]
    refunded = got["counts"]["refunded"]
    failed = [r for r in _records(journal_path) if r["event"] == "refund_failed"]
    if refunded:  # what the journal says is what happened
        assert got["status"] == "cancelled"
    else:
        assert [r["order_id"] for r in failed] == [got["order"]]
        assert got["status"] == "active"
        assert got["balance"] == Decimal("95.00")


def test_a_cancel_learned_from_the_orders_status_gives_the_budget_back(sandbox: Sandbox) -> None:
    got: dict[str, Any] = {}

    async def scenario() -> None:
        async with connected(sandbox, Guards(budget=Decimal(10), confirm=False)) as rec:
            order = await rec.buy()
            # the cancel goes through, its answer is lost: the order's status tells
            sandbox.fail(502, path=f"/orders/{order['order_id']}", method="DELETE", execute=True)
            got["counts"] = await anyio.to_thread.run_sync(shutdown, rec.server, 1.8)
            got["spend"] = await rec.read("kopechka://spend")

    run(scenario)
    assert got["counts"]["refunded"] == 1
    assert got["spend"]["budget_left"] == "10.00"
    assert sandbox.balance == Decimal("100.00")
