"""The like-for-like benchmark measures what its rows say: the listing cases fetch the page size
their names give, the same orders on the bare side and on the client's, on both faces.

The benchmark's modules are loaded from ``benchmarks/`` as the benchmark runs them, against its
canned server answering on a real loopback socket (served from a thread here: no figure is taken).
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from kopechka import AsyncKopechkaClient, KopechkaClient
from kopechka._httpx import httpx
from kopechka.testing._server import _Handler, _Server

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str) -> Any:
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def canned_url() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.app = _load("canned_server").Canned()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def _listing_sizes(names: list[str]) -> dict[str, int]:
    return {name: int(name.split(", ")[1].split("-")[0]) for name in names if "order page" in name}


def test_the_listing_cases_say_their_page_size() -> None:
    like_for_like = _load("like_for_like")
    assert _listing_sizes(like_for_like.case_names()) == {
        "list_orders, 10-order page": 10,
        "list_orders, 100-order page": 100,
    }


def test_each_listing_case_fetches_its_page_on_both_sides_sync(canned_url: str) -> None:
    like_for_like = _load("like_for_like")
    session = requests.Session()
    session.trust_env = False
    with session, KopechkaClient(like_for_like.KEY, base_url=canned_url) as client:
        cases = like_for_like.sync_cases(canned_url, session, client)
        assert list(cases) == like_for_like.case_names()
        for name, size in _listing_sizes(list(cases)).items():
            bare, ours = cases[name]
            raw, page = bare(), ours()
            assert len(raw["data"]) == len(page.orders) == size
            assert [o["orderId"] for o in raw["data"]] == [o.order_id for o in page.orders]


def test_each_listing_case_fetches_its_page_on_both_sides_async(canned_url: str) -> None:
    like_for_like = _load("like_for_like")

    async def main() -> None:
        async with (
            httpx.AsyncClient(trust_env=False) as bare_client,
            AsyncKopechkaClient(like_for_like.KEY, base_url=canned_url) as client,
        ):
            cases = like_for_like.async_cases(canned_url, bare_client, client)
            assert list(cases) == like_for_like.case_names()
            for name, size in _listing_sizes(list(cases)).items():
                bare, ours = cases[name]
                raw, page = await bare(), await ours()
                assert len(raw["data"]) == len(page.orders) == size
                assert [o["orderId"] for o in raw["data"]] == [o.order_id for o in page.orders]

    asyncio.run(main())
