"""500 sign-ups at once: each buys an order and waits for its code, on ONE client.

    python benchmarks/many_waits.py async URL N    # N tasks on one AsyncKopechkaClient
    python benchmarks/many_waits.py async-cold URL N   # the same as a process's first calls
    python benchmarks/many_waits.py sync URL N     # N threads sharing one KopechkaClient

Run by run.py in a fresh process per face (so peak RSS is the face's own), against a sandbox in a
process of its own that mails every order a code after a second (``--auto-mail 1``). Prints one
JSON line: completion time, codes received, requests sent (counted by a request hook), the peak
resident memory during the run (sampled every 20 ms) and its growth over the process before it.
The async face also runs a heartbeat task on the loop (it sleeps ``BEAT`` seconds, over and over,
and records how late it wakes): a bot sharing the loop answers that late. ``stall_ms`` gives the
worst, the 99th percentile and the median lateness, as measured and less the time the OS kept
the thread waiting for a CPU (Linux's schedstat: the machine's load, not the loop's work).
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from kopechka import AsyncKopechkaClient, KopechkaClient

KEY = "bench-key"
WAIT, POLL = 120.0, 0.5
BEAT = 0.01


SENT: list[int] = []
STARTED = [0.0]  # when the run began (the async face: after its warm-up)
HOOKS = {"request": [lambda event: SENT.append(1)]}  # every attempt, counted by the client


def rss_mb() -> float:
    """This process's resident memory now (Linux), in MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


class PeakRSS(threading.Thread):
    """Samples the resident memory every 20 ms while the run lasts: its peak during the run."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.done = rss_mb(), threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.peak = max(self.peak, rss_mb())


def runqueue_wait() -> float:
    """Seconds this thread has spent ready to run but waiting for a CPU (Linux schedstat)."""
    try:
        with open("/proc/thread-self/schedstat") as stats:
            return int(stats.read().split()[1]) / 1e9
    except OSError:  # not Linux: nothing to take out
        return 0.0


async def heartbeat(done: asyncio.Event, gaps: list[float], stalls: list[float]) -> None:
    """How late the loop wakes a task that sleeps ``BEAT`` seconds: as measured (``gaps``), and
    less the time the OS kept the thread off the CPU meanwhile (``stalls``)."""
    loop = asyncio.get_running_loop()
    while not done.is_set():
        before, waited = loop.time(), runqueue_wait()
        await asyncio.sleep(BEAT)
        gap = max(0.0, loop.time() - before - BEAT)
        gaps.append(gap)
        stalls.append(max(0.0, gap - (runqueue_wait() - waited)))


def stall_ms(values: list[float]) -> dict[str, float]:
    """Worst, 99th percentile and median of ``values`` (seconds), in milliseconds."""
    ordered = sorted(values) or [0.0]
    at = lambda share: ordered[min(len(ordered) - 1, int(share * len(ordered)))]  # noqa: E731
    return {"worst": ordered[-1] * 1e3, "p99": at(0.99) * 1e3, "median": at(0.5) * 1e3}


async def run_async(url: str, n: int, beats: dict[str, list[float]], *, cold: bool) -> int:
    async with AsyncKopechkaClient(KEY, base_url=url, event_hooks=HOOKS) as client:

        async def one() -> str:
            order = await client.create_order("inbox.test", "x.com")
            return await client.wait_for_code(order.order_id, timeout=WAIT, poll_interval=POLL)

        # a running bot: its first call has loaded the models and the wait's modules (once per
        # process, 0.1-0.3 s: not what a crowd costs); its count and time are not the run's.
        # ``cold``: the crowd is the process's first calls, the loading measured with them.
        if not cold:
            await one()
        SENT.clear()
        STARTED[0] = time.perf_counter()
        done = asyncio.Event()
        beat = asyncio.create_task(heartbeat(done, beats["gaps"], beats["stalls"]))
        await asyncio.sleep(0)  # the heartbeat's first sleep starts before the crowd
        try:
            codes = await asyncio.gather(*(one() for _ in range(n)))
        finally:
            done.set()
            await beat
        return sum(1 for code in codes if code)


def run_sync(url: str, n: int) -> int:
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # "pool is full" past 64 connections
    with (
        KopechkaClient(KEY, base_url=url, event_hooks=HOOKS) as client,
        ThreadPoolExecutor(n) as pool,
    ):

        def one(_: int) -> str:
            order = client.create_order("inbox.test", "x.com")
            return client.wait_for_code(order.order_id, timeout=WAIT, poll_interval=POLL)

        return sum(1 for code in pool.map(one, range(n)) if code)


def main() -> None:
    face, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    before_rss = rss_mb()
    sampler = PeakRSS()
    sampler.start()
    STARTED[0] = time.perf_counter()
    beats: dict[str, list[float]] = {"gaps": [], "stalls": []}
    if face.startswith("async"):
        codes = asyncio.run(run_async(url, n, beats, cold=face == "async-cold"))
    else:
        codes = run_sync(url, n)
    elapsed = time.perf_counter() - STARTED[0]
    sampler.done.set()
    sampler.join()
    sent = len(SENT)
    print(json.dumps({
        "face": face, "waits": n, "codes": codes, "seconds": elapsed, "requests": sent,
        "requests_per_s": sent / elapsed, "peak_rss_mb": sampler.peak,
        "rss_growth_mb": sampler.peak - before_rss,
        **({"gap_ms": stall_ms(beats["gaps"]), "stall_ms": stall_ms(beats["stalls"]),
            "beats": len(beats["gaps"])} if face.startswith("async") else {}),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
