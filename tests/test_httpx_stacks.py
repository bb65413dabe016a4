"""The async face on either HTTP stack: httpx2 when it is installed, httpx otherwise (the nox lane
``tests-httpx`` runs the async suites with httpx alone). Nothing aliases one stack to the other;
a caller's client of either stack works, and the same failure gives the same kopechka error."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from types import ModuleType

import pytest

from kopechka import APIConnectionError, APITimeoutError, AsyncKopechkaClient, KopechkaError
from kopechka._httpx import httpx as chosen
from kopechka.testing import Sandbox

INSTALLED = [name for name in ("httpx2", "httpx") if importlib.util.find_spec(name) is not None]


def stack(name: str) -> ModuleType:
    return __import__(name)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


def test_httpx2_is_preferred_and_nothing_is_aliased(sandbox: Sandbox) -> None:
    script = f"""
import asyncio, sys
from kopechka import AsyncKopechkaClient
async def main():
    async with AsyncKopechkaClient("test-key", base_url={sandbox.url!r}) as client:
        balance = await client.get_balance()
        print(type(client._transport.client).__module__.partition(".")[0], balance)
asyncio.run(main())
print("httpx" in sys.modules, "httpcore" in sys.modules)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    used, balance = out.stdout.split("\n")[0].split()
    assert Decimal(balance) == 100
    assert used == INSTALLED[0]  # httpx2 whenever it is installed
    if used == "httpx2":  # the other stack is never imported, nor made to answer to its name
        assert out.stdout.split("\n")[1] == "False False"


def test_the_compat_module_picks_the_installed_stack() -> None:
    assert chosen.__name__ == INSTALLED[0]


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _failure(name: str, url: str) -> tuple[type[KopechkaError], str]:
    async with stack(name).AsyncClient(trust_env=False) as mine:
        client = AsyncKopechkaClient(
            "test-key", base_url=url, http_client=mine, max_retries=0, timeout=0.3
        )
        with pytest.raises(KopechkaError) as info:
            await client.get_balance()
    return type(info.value), str(info.value)


@pytest.mark.parametrize("name", INSTALLED)
def test_a_callers_client_of_either_stack_works(name: str, sandbox: Sandbox) -> None:
    async def main() -> Decimal:
        async with stack(name).AsyncClient(trust_env=False) as mine:
            client = AsyncKopechkaClient("test-key", base_url=sandbox.url, http_client=mine)
            return await client.get_balance()

    assert asyncio.run(main()) == Decimal("100")


def test_either_stacks_failures_are_the_same_kopechka_errors() -> None:
    refused = f"http://127.0.0.1:{_refused_port()}/api/v1"
    with socket.socket() as silent:  # accepts (in its backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        mute = f"http://127.0.0.1:{silent.getsockname()[1]}/api/v1"
        seen = {
            name: (asyncio.run(_failure(name, refused)), asyncio.run(_failure(name, mute)))
            for name in INSTALLED
        }
    for connect, read in seen.values():
        assert connect[0] is APIConnectionError, connect
        assert read[0] is APITimeoutError, read
    assert len(set(seen.values())) == 1, seen  # the same classes and messages on every stack
