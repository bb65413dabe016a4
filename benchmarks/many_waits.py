"""500 sign-ups at once: each buys an order and waits for its code, on ONE client.

    python benchmarks/many_waits.py async URL N    # N tasks on one AsyncKopechkaClient
    python benchmarks/many_waits.py sync URL N     # N threads sharing one KopechkaClient

Run by run.py in a fresh process per face (so peak RSS is the face's own), against a sandbox in a
process of its own that mails every order a code after a second (``--auto-mail 1``). Prints one
JSON line: completion time, codes received, requests sent (from the sandbox's log), peak RSS and
its growth over the process before the run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from kopechka import AsyncKopechkaClient, KopechkaClient

KEY = "bench-key"
WAIT = {"timeout": 120.0, "poll_interval": 0.5}


def requests_seen(root: str) -> int:
    with urllib.request.urlopen(root + "/_sandbox/requests", timeout=30) as answer:
        return len(json.load(answer)["data"])


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run_async(url: str, n: int) -> int:
    async with AsyncKopechkaClient(KEY, base_url=url) as client:

        async def one() -> str:
            order = await client.create_order("inbox.test", "x.com")
            return await client.wait_for_code(order.order_id, **WAIT)

        return sum(1 for code in await asyncio.gather(*(one() for _ in range(n))) if code)


def run_sync(url: str, n: int) -> int:
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # "pool is full" past 64 connections
    with KopechkaClient(KEY, base_url=url) as client, ThreadPoolExecutor(n) as pool:

        def one(_: int) -> str:
            order = client.create_order("inbox.test", "x.com")
            return client.wait_for_code(order.order_id, **WAIT)

        return sum(1 for code in pool.map(one, range(n)) if code)


def main() -> None:
    face, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    root = url.removesuffix("/api/v1")
    before_requests, before_rss = requests_seen(root), rss_mb()
    start = time.perf_counter()
    codes = asyncio.run(run_async(url, n)) if face == "async" else run_sync(url, n)
    elapsed = time.perf_counter() - start
    sent = requests_seen(root) - before_requests
    print(json.dumps({
        "face": face, "waits": n, "codes": codes, "seconds": elapsed, "requests": sent,
        "requests_per_s": sent / elapsed, "peak_rss_mb": rss_mb(),
        "rss_growth_mb": rss_mb() - before_rss,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
