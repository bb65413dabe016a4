"""The MCP server through the protocol: the SDK's own client, in memory, on the sandbox."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

if tuple(sys.version_info) < (3, 11):  # a call: mypy (set to 3.10) still checks the rest
    pytest.skip("the mcp extra needs Python 3.11 or newer", allow_module_level=True)

from mcp.client.context import ClientRequestContext
from mcp.types import ElicitRequestParams, ElicitResult

from kopechka import __version__
from kopechka.mcp import Guards
from kopechka.mcp._journal import Journal
from kopechka.testing import Sandbox

from .agents import Recorder, connected, posts, run, set_price, text

GOLDEN = Path(__file__).with_name("tools_list.json")
FREE = Guards(budget=Decimal(100), confirm=False)


def _walk(schema: Any) -> list[Any]:
    found = [schema]
    if isinstance(schema, dict):
        for value in schema.values():
            found += _walk(value)
    elif isinstance(schema, list):
        for value in schema:
            found += _walk(value)
    return found


async def _tools(rec: Recorder) -> list[dict[str, Any]]:
    listed = await rec.client.list_tools()
    return [
        {
            "name": t.name,
            "input_schema": t.input_schema,
            "output_schema": t.output_schema,
            "annotations": t.annotations.model_dump(exclude_none=True, by_alias=True)
            if t.annotations
            else None,
        }
        for t in listed.tools
    ]


def test_tools_list_is_golden_flat_and_annotated(sandbox: Sandbox) -> None:
    async def scenario() -> None:
        async with connected(sandbox, FREE) as rec:
            assert rec.client.server_info is not None
            assert rec.client.server_info.name == "kopechka"
            assert rec.client.server_info.version == __version__
            tools = await _tools(rec)
        assert tools == json.loads(GOLDEN.read_text(encoding="utf-8"))
        for tool in tools:
            schema = tool["input_schema"]
            assert schema["additionalProperties"] is False, tool["name"]
            nodes = [n for n in _walk(schema) if isinstance(n, dict)]
            assert not any({"oneOf", "anyOf", "allOf", "$ref"} & n.keys() for n in nodes)
            for prop in schema["properties"].values():
                assert prop["type"] in {"string", "integer", "number", "boolean"}
            hints = tool["annotations"]
            assert {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"} <= set(
                hints
            )
        by_name = {t["name"]: t["annotations"] for t in tools}
        assert by_name["buy_address"]["readOnlyHint"] is False
        assert by_name["buy_address"]["idempotentHint"] is False
        assert by_name["cancel_order"]["destructiveHint"] is True
        assert by_name["cancel_order"]["idempotentHint"] is True
        for name in ("get_balance", "list_domains", "wait_for_code", "quote_address"):
            assert by_name[name]["readOnlyHint"] is True, name

    run(scenario)


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("get_balance", {"verbose": True}),
        ("buy_address", {"confirmation_id": "q-x", "max_price": "1000"}),
        ("quote_address", {"domain": "example.com", "site": "a.com", "budget": "1000"}),
    ],
)
def test_unknown_arguments_are_refused(
    sandbox: Sandbox, tool: str, arguments: dict[str, Any]
) -> None:
    async def scenario() -> None:
        async with connected(sandbox, FREE) as rec:
            refusal = await rec.refused(tool, arguments)
        assert "Extra inputs are not permitted" in refusal
        assert "\n" not in refusal
        assert refusal.startswith(f"The arguments of {tool} were refused")
        assert (
            next(k for k in arguments if k not in ("confirmation_id", "domain", "site")) in refusal
        )
        assert posts(sandbox) == 0

    run(scenario)


def test_quote_then_buy_within_the_budget(sandbox: Sandbox) -> None:
    async def scenario() -> None:
        async with connected(sandbox, Guards(budget=Decimal(12), confirm=False)) as rec:
            quote = await rec.ok("quote_address", {"domain": "example.com", "site": "github.com"})
            assert quote["allowed"] is True
            assert quote["reason"] is None
            assert quote["price"] == "5.00"
            assert quote["budget_left"] == "12"
            assert posts(sandbox) == 0  # a quote buys nothing
            bought = await rec.ok("buy_address", {"confirmation_id": quote["confirmation_id"]})
            assert bought["price"] == "5.00"
            assert bought["email"].endswith("@example.com")
            again = await rec.refused("buy_address", {"confirmation_id": quote["confirmation_id"]})
            assert "unknown, used or expired" in again  # a quote buys once
            spend = await rec.read("kopechka://spend")
            assert spend["bought"] == 1
            assert spend["budget_left"] == "7.00"
            await rec.buy()
            third = await rec.ok("quote_address", {"domain": "example.com", "site": "github.com"})
            assert third["allowed"] is False
            assert third["confirmation_id"] is None
            assert "budget" in third["reason"]
        assert posts(sandbox) == 2

    run(scenario)


async def _accept(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
    assert "example.com" in params.message
    assert "5.00" in params.message
    return ElicitResult(action="accept", content={"approve": True})


async def _decline(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
    return ElicitResult(action="decline")


def test_a_live_purchase_needs_the_users_approval(sandbox: Sandbox) -> None:
    guards = Guards(budget=Decimal(50), confirm=True)

    async def scenario() -> None:
        async with connected(sandbox, guards) as rec:  # this client cannot elicit
            quote = await rec.ok("quote_address", {"domain": "example.com", "site": "a.com"})
            args = {"confirmation_id": quote["confirmation_id"]}
            refusal = await rec.refused("buy_address", args)
            assert "user_approved=true" in refusal
            assert posts(sandbox) == 0
            await rec.ok(  # the same quote, once the user said yes
                "buy_address", {"confirmation_id": quote["confirmation_id"], "user_approved": True}
            )
        async with connected(sandbox, guards, elicitation_callback=_decline, mode="legacy") as rec:
            quote = await rec.ok("quote_address", {"domain": "example.com", "site": "a.com"})
            args = {"confirmation_id": quote["confirmation_id"], "user_approved": True}
            assert "did not approve" in await rec.refused("buy_address", args)  # the model cannot
        async with connected(sandbox, guards, elicitation_callback=_accept, mode="legacy") as rec:
            await rec.buy("example.com", "a.com")
        assert posts(sandbox) == 2

    run(scenario)


def test_a_price_that_moved_above_the_quote_is_not_bought(sandbox: Sandbox) -> None:
    async def scenario() -> None:
        async with connected(sandbox, FREE) as rec:
            await rec.buy()  # the ledger's price list is now fresh, at the old price
            quote = await rec.ok("quote_address", {"domain": "example.com", "site": "github.com"})
            set_price(sandbox, "example.com", "7.00")
            before, balance = posts(sandbox), sandbox.balance
            refusal = await rec.refused(
                "buy_address", {"confirmation_id": quote["confirmation_id"]}
            )
            assert "moved from 5.00 to 7.00" in refusal
            assert posts(sandbox) == before
            assert sandbox.balance == balance
            set_price(sandbox, "example.com", "4.00")  # lower: bought at the new price
            quote = await rec.ok("quote_address", {"domain": "example.com", "site": "github.com"})
            set_price(sandbox, "example.com", "3.00")
            bought = await rec.ok("buy_address", {"confirmation_id": quote["confirmation_id"]})
            assert bought["price"] == "3.00"

    run(scenario)


def _lose_answers(sb: Sandbox, times: int) -> None:
    """The next purchases go through, and their answers are lost (a 502 after the charge)."""
    sb.fail(status=502, path="/orders", method="POST", execute=True, times=times)


def test_lost_answers_exhaust_the_budget(sandbox: Sandbox) -> None:
    async def scenario() -> None:
        async with connected(sandbox, Guards(budget=Decimal(10), confirm=False)) as rec:
            _lose_answers(sandbox, 2)
            for site in ("a.com", "b.com"):
                quote = await rec.ok("quote_address", {"domain": "example.com", "site": site})
                refusal = await rec.refused(
                    "buy_address", {"confirmation_id": quote["confirmation_id"]}
                )
                assert "answer was lost" in refusal
                assert "without a new quote" in refusal
            spend = await rec.read("kopechka://spend")
            assert spend["unknown"] == 2
            assert spend["budget_left"] == "0.00"
            quote = await rec.ok("quote_address", {"domain": "inbox.test", "site": "c.com"})
            assert quote["allowed"] is False
            assert "budget" in quote["reason"]
        assert posts(sandbox) == 2

    run(scenario)


def test_no_rebuy_after_a_lost_answer_without_a_new_quote(sandbox: Sandbox) -> None:
    async def scenario() -> None:
        async with connected(sandbox, FREE) as rec:
            site = {"domain": "example.com", "site": "github.com"}
            first = await rec.ok("quote_address", site)
            second = await rec.ok("quote_address", site)
            other = await rec.ok("quote_address", {"domain": "example.com", "site": "gitlab.com"})
            _lose_answers(sandbox, 1)
            await rec.refused("buy_address", {"confirmation_id": first["confirmation_id"]})
            refusal = await rec.refused(
                "buy_address", {"confirmation_id": second["confirmation_id"]}
            )
            assert "lost its answer" in refusal
            assert posts(sandbox) == 1  # the older quote bought nothing
            await rec.ok(
                "buy_address", {"confirmation_id": other["confirmation_id"]}
            )  # another site
            fresh = await rec.ok("quote_address", site)
            await rec.ok("buy_address", {"confirmation_id": fresh["confirmation_id"]})
        assert posts(sandbox) == 3

    run(scenario)


def test_waits_return_no_mail_yet_as_data_within_their_bound(sandbox: Sandbox) -> None:
    async def scenario() -> None:
        async with connected(sandbox, FREE) as rec:
            order = await rec.buy()
            for tool in ("wait_for_code", "wait_for_message"):
                started = time.monotonic()
                waited = await rec.ok(tool, {"order_id": order["order_id"], "timeout": 1})
                elapsed = time.monotonic() - started
                assert waited["status"] == "no_mail_yet"
                assert waited["messages_seen"] == 0
                assert "not a failure" in waited["next_step"]
                assert 0.9 <= elapsed < 6.0, elapsed
            sandbox.deliver(order["order_id"], subject="Your code", content="Code: 804291")
            got = await rec.ok("wait_for_code", {"order_id": order["order_id"], "timeout": 5})
            assert got["status"] == "code"
            assert got["code"] == "804291"
            assert got["messages_seen"] == 1
            listing = await rec.ok("get_messages", {"order_id": order["order_id"]})
            assert listing["messages"][0]["content"] is None  # bodies only on request
            full = await rec.ok(
                "get_messages", {"order_id": order["order_id"], "include_body": True}
            )
            assert full["messages"][0]["content"] == "Code: 804291"
            closed = await rec.buy()
            await rec.ok("cancel_order", {"order_id": closed["order_id"]})
            waited = await rec.ok("wait_for_code", {"order_id": closed["order_id"], "timeout": 5})
            assert waited["status"] == "order_closed"
            too_long = await rec.refused(
                "wait_for_code", {"order_id": order["order_id"], "timeout": 56}
            )
            assert "55" in too_long
            assert "\n" not in too_long

    run(scenario)


def test_the_allowlists(sandbox: Sandbox) -> None:
    guards = Guards(
        budget=Decimal(50),
        confirm=False,
        sites=frozenset({"GitHub.com"}),
        domains=frozenset({"inbox.test"}),
    )

    async def scenario() -> None:
        async with connected(sandbox, guards) as rec:
            domains = await rec.ok("list_domains")
            allowed = {d["name"]: d["allowed"] for d in domains["domains"]}
            assert allowed["inbox.test"] is True
            assert allowed["example.com"] is False
            for domain, site, why in (("inbox.test", "gitlab.com", "gitlab.com"),
                                      ("example.com", "github.com", "example.com")):  # fmt: skip
                quote = await rec.ok("quote_address", {"domain": domain, "site": site})
                assert quote["allowed"] is False
                assert quote["confirmation_id"] is None
                assert "does not allow" in quote["reason"]
                assert why in quote["reason"]
            await rec.buy("inbox.test", "github.com")
        assert posts(sandbox) == 1

    run(scenario)


def test_the_open_order_cap(sandbox: Sandbox) -> None:
    async def scenario() -> None:
        async with connected(sandbox, Guards(budget=Decimal(50), confirm=False, max_open=2)) as rec:
            held = await rec.ok("quote_address", {"domain": "inbox.test", "site": "a.com"})
            first = await rec.buy("inbox.test", "a.com")
            await rec.buy("inbox.test", "a.com")
            quote = await rec.ok("quote_address", {"domain": "inbox.test", "site": "a.com"})
            assert quote["allowed"] is False
            assert "2 orders without mail" in quote["reason"]
            refusal = await rec.refused("buy_address", {"confirmation_id": held["confirmation_id"]})
            assert "2 orders without mail" in refusal
            sandbox.deliver(first["order_id"], content="code 123456")
            await rec.ok("wait_for_code", {"order_id": first["order_id"], "timeout": 5})
            await rec.buy("inbox.test", "a.com")  # mail came: that one is used, not open
        assert posts(sandbox) == 3

    run(scenario)


def test_another_sessions_orders_are_out_of_reach(sandbox: Sandbox) -> None:
    async def scenario() -> None:
        with sandbox.client() as other:
            foreign = other.create_order("example.com", "x.com").order_id
        async with connected(sandbox, FREE) as rec:
            mine = await rec.buy()
            for tool in ("get_order", "get_messages", "cancel_order", "wait_for_code"):
                refusal = await rec.refused(tool, {"order_id": foreign})
                assert "not bought by this session" in refusal
            listed = await rec.ok("list_orders")
            assert [o["order_id"] for o in listed["orders"]] == [mine["order_id"]]
            active = await rec.read("kopechka://orders/active")
            assert [o["order_id"] for o in active["orders"]] == [mine["order_id"]]

    run(scenario)


def test_cancel_is_idempotent_and_shutdown_refunds_the_rest(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    journal_path = tmp_path / "journal.jsonl"

    async def scenario() -> None:
        async with connected(sandbox, FREE, journal=Journal(journal_path)) as rec:
            one = await rec.buy()
            two = await rec.buy()
            used = await rec.buy()
            first = await rec.ok("cancel_order", {"order_id": one["order_id"]})
            again = await rec.ok("cancel_order", {"order_id": one["order_id"]})
            assert first == again == {"order_id": one["order_id"], "refunded": "5.00"}
            sandbox.deliver(used["order_id"], content="code 123456")
            await rec.ok("get_messages", {"order_id": used["order_id"]})
            assert sandbox.balance == Decimal("90.00")
            _lose_answers(sandbox, 1)
            await rec.refused("buy_address", {"confirmation_id": (await rec.ok(
                "quote_address", {"domain": "example.com", "site": "z.com"}))["confirmation_id"]})  # fmt: skip
            assert two["order_id"]
        assert sandbox.balance == Decimal("90.00")  # two refunded on leaving; the lost one is not

    started = time.monotonic()
    run(scenario)
    assert time.monotonic() - started < 30
    records = [json.loads(line) for line in journal_path.read_text(encoding="utf-8").splitlines()]
    events = [(r["event"], r.get("order_id"), r.get("on")) for r in records]
    assert events.count(("purchase", one_id := records[0]["order_id"], None)) == 1
    assert ("refund", one_id, None) in events
    assert [r["event"] for r in records].count("purchase") == 3
    assert [r["event"] for r in records].count("unknown") == 1
    assert sum(1 for e in events if e[0] == "refund" and e[2] == "shutdown") == 1
    body = journal_path.read_text(encoding="utf-8")
    for record in records:
        if record["event"] == "purchase":
            assert "@" not in json.dumps(record)
            assert len(record["email_sha256"]) == 64
    with sandbox.client() as kc:
        emails = [o.email for o in kc.iter_orders()]
    hashes = {hashlib.sha256(e.casefold().encode()).hexdigest() for e in emails}
    assert {r["email_sha256"] for r in records if r["event"] == "purchase"} <= hashes
    assert not any(e in body for e in emails)


KEY = "kp-live-Zq8vW3nR5tY7uI9oP1aS"


def _name_the_next_order_by_the_key(sb: Sandbox) -> None:
    """A server that echoes the key as the id of the next order it sells."""
    state = sb.state
    sell = state.create_order

    def keyed(domain: object, site: object) -> dict[str, Any]:
        answer = sell(domain, site)
        if state.create_order is keyed:  # once
            del state.create_order
            order = state._orders.pop(answer["orderId"])
            order.order_id = KEY
            state._orders[KEY] = order
            answer["orderId"] = KEY
        return answer

    state.create_order = keyed  # type: ignore[method-assign]


def test_nothing_returned_holds_the_key(tmp_path: Path) -> None:
    journal_path = tmp_path / "journal.jsonl"

    async def scenario(sb: Sandbox) -> Recorder:
        async with connected(sb, Guards(budget=Decimal(20), confirm=False, max_open=2),
                             journal=Journal(journal_path)) as rec:  # fmt: skip
            await rec.ok("get_balance")
            await rec.ok("list_domains")
            order = await rec.buy()
            await rec.ok("wait_for_code", {"order_id": order["order_id"], "timeout": 0.5})
            sb.deliver(order["order_id"], content=f"code 123456 {KEY[:4]}")
            await rec.ok("wait_for_message", {"order_id": order["order_id"], "timeout": 2})
            await rec.ok("get_messages", {"order_id": order["order_id"], "include_body": True})
            await rec.ok("get_order", {"order_id": order["order_id"]})
            await rec.ok("list_orders", {"status": "active"})
            _name_the_next_order_by_the_key(sb)
            keyed = await rec.buy()
            assert keyed["order_id"] == "***"
            await rec.ok("list_orders")  # the order named by the key, listed
            await rec.refused("get_order", {"order_id": "API-404"})
            sb.fail(status=401, times=1)
            await rec.refused("get_balance")
            sb.fail(status=500, times=5, path="/domains")
            await rec.refused("quote_address", {"domain": "example.com", "site": "b.com"})
            _lose_answers(sb, 1)
            quote = await rec.ok("quote_address", {"domain": "inbox.test", "site": "b.com"})
            await rec.refused("buy_address", {"confirmation_id": quote["confirmation_id"]})
            await rec.refused("buy_address", {"confirmation_id": "q-forged"})
            await rec.ok("sweep", {"dry_run": True, "older_than": 300})
            await rec.ok("cancel_order", {"order_id": order["order_id"]})
            for uri in ("kopechka://spend", "kopechka://orders/active"):
                await rec.read(uri)
            prompt = await rec.client.get_prompt(
                "sign_up_with_disposable_address", {"site": "x.com"}
            )
            rec.seen.append(prompt.model_dump_json())
            flow = await rec.client.read_resource("kopechka://docs/flow")
            rec.seen.append(flow.model_dump_json())
            tools = await rec.client.list_tools()
            rec.seen.append(tools.model_dump_json())
            return rec

    with Sandbox(api_key=KEY) as sb:
        rec: list[Recorder] = []

        async def main() -> None:
            rec.append(await scenario(sb))

        run(main)
    seen = rec[0].seen
    assert len(seen) >= 20
    everything = "\n".join(seen) + journal_path.read_text(encoding="utf-8")
    assert KEY not in everything
    assert KEY[4:] not in everything
    assert "X-API-Key" not in everything
    assert "x-api-key" not in everything.lower()
    for result in seen:
        assert "Traceback" not in result


def test_refusals_are_one_sentence(sandbox: Sandbox) -> None:
    async def scenario() -> None:
        async with connected(sandbox, Guards(budget=Decimal(3), confirm=False)) as rec:
            refusals = [
                await rec.refused("buy_address", {"confirmation_id": "q-nope"}),
                await rec.refused("get_order", {"order_id": "API-1"}),
            ]
            quote = await rec.ok("quote_address", {"domain": "inbox.test", "site": "a.com"})
            set_price(sandbox, "inbox.test", "9.00")
            refusals.append(
                await rec.refused("buy_address", {"confirmation_id": quote["confirmation_id"]})
            )
        for refusal in refusals:
            assert "\n" not in refusal
            assert refusal.endswith(".")
            assert refusal.count(". ") == 0, refusal

    run(scenario)


def test_text_is_the_structured_content(sandbox: Sandbox) -> None:
    async def scenario() -> None:
        async with connected(sandbox, FREE) as rec:
            result = await rec.call("get_balance")
            assert json.loads(text(result)) == result.structured_content == {"balance": "100.00"}

    run(scenario)


def test_an_unexpected_failure_is_one_sentence_without_its_text(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kopechka.mcp._session import Session

    def broken(self: Session) -> dict[str, Any]:
        raise RuntimeError(f"internal detail {sandbox.api_key}")

    monkeypatch.setattr(Session, "balance", broken)

    async def scenario() -> None:
        async with connected(sandbox, FREE) as rec:
            refusal = await rec.refused("get_balance")
        assert refusal == (
            "get_balance failed unexpectedly; tell the user, and do not retry with other arguments."
        )

    run(scenario)


def test_a_lost_answer_that_bought_nothing_stops_counting(sandbox: Sandbox) -> None:
    async def scenario() -> None:
        async with connected(sandbox, Guards(budget=Decimal(10), confirm=False, max_open=1)) as rec:
            site = {"domain": "example.com", "site": "a.com"}
            old = await rec.ok("quote_address", site)
            lost = await rec.ok("quote_address", site)
            sandbox.fail(drop=True, path="/orders", method="POST")  # never carried out
            await rec.refused("buy_address", {"confirmation_id": lost["confirmation_id"]})
            spend = await rec.read("kopechka://spend")
            assert spend["unknown"] == 0  # the listing showed no order: the ledger gave it back
            assert spend["budget_left"] == "10.00"
            assert "lost its answer" in await rec.refused(
                "buy_address", {"confirmation_id": old["confirmation_id"]}
            )  # a new quote is still needed
            await rec.buy("example.com", "a.com")  # and the open-order cap (1) is not taken by it
        assert posts(sandbox) == 2

    run(scenario)


def test_sweep_spares_this_sessions_orders_and_anything_younger_than_five_minutes() -> None:
    with Sandbox(virtual_time=True) as sb:

        async def scenario() -> None:
            with sb.client() as other:  # another process on the same key, its order abandoned
                foreign = other.create_order("example.com", "x.com").order_id
            async with connected(sb, FREE) as rec:
                mine = await rec.buy()  # an agent still waiting for its mail
                sb.advance(seconds=400)  # both are old enough now, neither has mail
                refusal = await rec.refused("sweep", {"dry_run": False, "older_than": 60})
                assert "300" in refusal
                young = await rec.buy()
                sb.advance(seconds=120)
                planned = await rec.ok("sweep", {"older_than": 300})
                assert (planned["dry_run"], planned["cancelled"]) == (True, 1)
                swept = await rec.ok("sweep", {"dry_run": False, "older_than": 300})
                assert (swept["cancelled"], swept["refunded"], swept["kept"]) == (1, "5.00", 2)
                for held in (mine, young):
                    order = await rec.ok("get_order", {"order_id": held["order_id"]})
                    assert order["status"] == "active"
                with sb.client() as look:
                    assert str(look.get_order(foreign).status) == "cancelled"

        run(scenario)


@pytest.mark.parametrize(
    ("field", "value"),
    [("quote_ttl", True), ("quote_ttl", 0), ("quote_ttl", float("inf")), ("max_open", 0)],
)
def test_guards_refuse_unusable_settings(field: str, value: object) -> None:
    """A bool is not a number of seconds (``True`` was a one-second quote), nor is infinity."""
    with pytest.raises(ValueError, match=f"^{field} must be"):
        Guards(budget=Decimal(10), **{field: value})  # type: ignore[arg-type]


def test_guards_keep_a_quote_ttl_as_seconds() -> None:
    assert Guards(budget=Decimal(10), quote_ttl=30).quote_ttl == 30.0
