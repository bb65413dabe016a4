"""Client CPU per call against bare sessions doing the same work, for every endpoint, both faces.

The baselines are like for like: a ``requests.Session`` with ``trust_env = False`` (the client's own
session reads the environment once, and so does this one) and an ``AsyncClient(trust_env=False)`` of
the same stack as the async client's (httpx2 when it is installed, httpx otherwise), each sending
the same request and parsing the JSON answer (``.json()``). The endpoints come from the one table,
``kopechka._endpoints``. CPU time is measured in interleaved rounds (best of each); callgrind
instruction counts, which do not depend on the machine's load, are measured beside it when valgrind
is installed (``--callgrind-child`` is the program it runs). Beside the endpoints, one more case:
``list_orders`` asking for a page of ``PAGE_SIZE`` orders (what a sweep over an account, or a
farm's listing, fetches), against the bare client plus ``json.loads`` of the same bytes. Both
measure the steady state: past the limiter's start window (the first 4 s of a client), with the
objects of the start-up frozen out of the collector's way (``gc.freeze``).
"""

from __future__ import annotations

import asyncio
import gc
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import requests

from kopechka import AsyncKopechkaClient, KopechkaClient
from kopechka._endpoints import ENDPOINTS, Endpoint
from kopechka._httpx import httpx
from kopechka._limits import START_SPAN

STACK = httpx.__name__
"""The HTTP stack both async sides run on (``kopechka._httpx`` chose it)."""
KEY = "bench-key"
HEADERS = {"X-API-Key": KEY}
ORDER = "API-1234567890"
BODY = {"domain": "example.com", "site": "x.com"}
PAGE_SIZE = 100
"""Orders on the page of the extra listing case (the endpoint table's own case asks for 10)."""
PAGE = f"list_orders, {PAGE_SIZE}-order page"
"""The extra case's name."""


def case_name(e: Endpoint) -> str:
    """An endpoint's case, named by the endpoint; a listing says its page size."""
    limit = e.kwargs.get("limit") if e.kwargs else None
    return e.name if limit is None else f"{e.name}, {limit}-order page"


def case_names() -> list[str]:
    """Every case, in the order they are measured: the endpoints, then the large page."""
    return [case_name(e) for e in ENDPOINTS] + [PAGE]


def _request_parts(url: str, e: Endpoint) -> tuple[str, dict[str, Any]]:
    options: dict[str, Any] = {"headers": HEADERS}
    if e.kwargs:
        options["params"] = {k: str(v) for k, v in e.kwargs.items()}
    if e.name == "create_order":
        options["json"] = BODY
    return url + e.url_path(ORDER), options


def sync_cases(url: str, session: requests.Session, client: KopechkaClient) -> dict[str, Any]:
    """``{endpoint: (bare call, our call)}``: the same request, the same JSON parsed."""
    cases: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {}
    for e in ENDPOINTS:
        target, options = _request_parts(url, e)
        method, arguments = getattr(client, e.name), e.arguments(ORDER)
        cases[case_name(e)] = (
            lambda m=e.method, t=target, o=options: session.request(m, t, **o).json(),
            lambda f=method, a=arguments, k=e.kwargs: f(*a, **k),
        )
    page = {"page": "1", "limit": str(PAGE_SIZE)}
    cases[PAGE] = (
        lambda: json.loads(session.get(url + "/orders", headers=HEADERS, params=page).content),
        lambda: client.list_orders(page=1, limit=PAGE_SIZE),
    )
    return cases


def async_cases(
    url: str, bare: httpx.AsyncClient, client: AsyncKopechkaClient
) -> dict[str, tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[Any]]]]:
    cases: dict[str, tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[Any]]]] = {}
    for e in ENDPOINTS:
        target, options = _request_parts(url, e)
        method, arguments = getattr(client, e.name), e.arguments(ORDER)

        async def plain(m: str = e.method, t: str = target, o: dict[str, Any] = options) -> Any:
            return (await bare.request(m, t, **o)).json()

        cases[case_name(e)] = (plain, lambda f=method, a=arguments, k=e.kwargs: f(*a, **k))
    page = {"page": "1", "limit": str(PAGE_SIZE)}

    async def bare_page() -> Any:
        return json.loads((await bare.get(url + "/orders", headers=HEADERS, params=page)).content)

    cases[PAGE] = (bare_page, lambda: client.list_orders(page=1, limit=PAGE_SIZE))
    return cases


def best_cpu(fns: dict[str, Callable[[], object]], n: int, rounds: int) -> dict[str, float]:
    """CPU seconds per call of each function: the best of ``rounds`` interleaved rounds."""
    for fn in fns.values():
        for _ in range(max(5, n // 20)):
            fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.process_time()
            for _ in range(n):
                fn()
            best[name] = min(best[name], (time.process_time() - start) / n)
    return best


async def best_cpu_async(
    fns: dict[str, Callable[[], Awaitable[object]]], n: int, rounds: int
) -> dict[str, float]:
    for fn in fns.values():
        for _ in range(max(5, n // 20)):
            await fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.process_time()
            for _ in range(n):
                await fn()
            best[name] = min(best[name], (time.process_time() - start) / n)
    return best


def _steady(created: float) -> None:
    """Measure the steady state: past the limiter's start window (its first seconds take a slower
    path), with the start-up's objects out of the collector's way, as under callgrind."""
    time.sleep(max(0.0, created + START_SPAN - time.monotonic()))
    _quiet_collector()


def measure_sync(url: str, n: int, rounds: int) -> dict[str, tuple[float, float]]:
    """``{endpoint: (bare CPU, ours CPU)}`` per call."""
    session = requests.Session()
    session.trust_env = False
    out = {}
    with KopechkaClient(KEY, base_url=url) as client:
        client.get_balance()  # the start window runs from the first request
        _steady(time.monotonic())
        for name, (bare, ours) in sync_cases(url, session, client).items():
            got = best_cpu({"bare": bare, "ours": ours}, n, rounds)
            out[name] = (got["bare"], got["ours"])
    session.close()
    return out


def measure_async(url: str, n: int, rounds: int) -> dict[str, tuple[float, float]]:
    async def main() -> dict[str, tuple[float, float]]:
        out = {}
        async with (
            httpx.AsyncClient(trust_env=False) as bare_client,
            AsyncKopechkaClient(KEY, base_url=url) as client,
        ):
            await client.get_balance()
            _steady(time.monotonic())
            for name, (bare, ours) in async_cases(url, bare_client, client).items():
                got = await best_cpu_async({"bare": bare, "ours": ours}, n, rounds)
                out[name] = (got["bare"], got["ours"])
        return out

    return asyncio.run(main())


# --- callgrind: instructions per call ----------------------------------------------------------


def callgrind_available() -> bool:
    return shutil.which("valgrind") is not None


def callgrind(url: str, side: str, n: int) -> dict[str, float]:
    """Instructions per call of every endpoint on one side (``bare``, ``ours``, ``bare-async``,
    ``ours-async``): one process under callgrind, a counter dump before each endpoint's calls
    (``os.getppid`` is the marker callgrind dumps on)."""
    with tempfile.TemporaryDirectory() as directory:
        out = os.path.join(directory, "callgrind.out")
        command = [
            "valgrind", "--tool=callgrind", "--dump-before=getppid", f"--callgrind-out-file={out}",
            sys.executable, __file__, "--callgrind-child", url, side, str(n),
        ]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, timeout=3600)
        parts = sorted(glob.glob(out + ".*"), key=lambda p: int(p.rsplit(".", 1)[1]))
        totals = [_total(path) for path in parts]
    # dump k (k >= 2) holds what ran between marker k-1 and marker k: endpoint k-2's calls
    names = case_names()
    return {name: totals[i + 1] / n for i, name in enumerate(names)}


def _total(path: str) -> int:
    with open(path) as f:
        text = f.read()
    found = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    return int(found.group(1)) if found else 0


def _quiet_collector() -> None:
    """Move what the start-up made out of the collector's way: a full collection over the
    imported modules costs millions of instructions and would land on whichever endpoint ran
    then (both sides alike; what the calls themselves allocate is still collected)."""
    gc.collect()
    gc.freeze()


def _child(url: str, side: str, n: int) -> None:
    if side in {"bare", "ours"}:
        session = requests.Session()
        session.trust_env = False
        client, created = KopechkaClient(KEY, base_url=url), time.monotonic()
        cases = sync_cases(url, session, client)
        fns = [pair[0 if side == "bare" else 1] for pair in cases.values()]
        for fn in fns:  # warm every path first
            for _ in range(20):
                fn()
        _steady(created)
        os.getppid()
        for fn in fns:
            for _ in range(n):
                fn()
            os.getppid()
        return
    asyncio.run(_child_async(url, side, n))


async def _child_async(url: str, side: str, n: int) -> None:
    async with (
        httpx.AsyncClient(trust_env=False) as bare,
        AsyncKopechkaClient(KEY, base_url=url) as client,
    ):
        created = time.monotonic()
        cases = async_cases(url, bare, client)
        fns = [pair[0 if side == "bare-async" else 1] for pair in cases.values()]
        for fn in fns:
            for _ in range(20):
                await fn()
        _steady(created)
        os.getppid()
        for fn in fns:
            for _ in range(n):
                await fn()
            os.getppid()


if __name__ == "__main__" and sys.argv[1:2] == ["--callgrind-child"]:
    _child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
