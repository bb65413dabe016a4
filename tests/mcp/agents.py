"""Shared pieces of the MCP suite: a server on a sandbox, an in-memory SDK client, result helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest

if tuple(sys.version_info) < (3, 11):  # a call: mypy (set to 3.10) still checks the rest
    pytest.skip("the mcp extra needs Python 3.11 or newer", allow_module_level=True)

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent

from kopechka.mcp import Guards, create_server
from kopechka.mcp._journal import Journal
from kopechka.testing import Sandbox
from kopechka.testing._state import SandboxDomain
from mcp import Client

Scenario = Callable[[Client], Awaitable[None]]


class Recorder:
    """Every result of a session, as the model would read it (JSON text of the whole result)."""

    def __init__(self, client: Client, server: MCPServer[Any]) -> None:
        self.client = client
        self.server = server
        self.seen: list[str] = []

    async def call(self, name: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
        result = await self.client.call_tool(name, arguments or {})
        self.seen.append(result.model_dump_json())
        return result

    async def ok(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        result = await self.call(name, arguments)
        assert not result.is_error, text(result)
        assert result.structured_content is not None
        data: dict[str, Any] = result.structured_content
        assert json.loads(text(result)) == data
        return data

    async def refused(self, name: str, arguments: dict[str, Any] | None = None) -> str:
        result = await self.call(name, arguments)
        assert result.is_error, result
        return text(result)

    async def read(self, uri: str) -> Any:
        result = await self.client.read_resource(uri)
        self.seen.append(result.model_dump_json())
        content = result.contents[0]
        return json.loads(content.text) if hasattr(content, "text") else None

    async def buy(self, domain: str = "example.com", site: str = "github.com") -> dict[str, Any]:
        quote = await self.ok("quote_address", {"domain": domain, "site": site})
        assert quote["allowed"], quote
        return await self.ok("buy_address", {"confirmation_id": quote["confirmation_id"]})


def text(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


@asynccontextmanager
async def connected(
    sb: Sandbox, guards: Guards, *, journal: Journal | None = None, **client: Any
) -> AsyncIterator[Recorder]:
    """An in-memory SDK client on a server over ``sb``; leaving refunds as shutdown does."""
    from kopechka.mcp import shutdown

    with sb.client(budget=guards.budget) as kc:
        server = create_server(kc, guards, journal=journal)
        try:
            async with Client(server, **client) as c:
                yield Recorder(c, server)
        finally:
            shutdown(server)
            if journal is not None:
                journal.close()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    anyio.run(scenario)


def set_price(sb: Sandbox, domain: str, price: str) -> None:
    with sb.app.lock:
        sb.state.domains[domain] = SandboxDomain(domain, Decimal(price))


def posts(sb: Sandbox) -> int:
    return sum(1 for r in sb.requests if r.method == "POST" and r.path.endswith("/orders"))
