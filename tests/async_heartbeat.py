"""50 concurrent sign-ups on one AsyncKopechkaClient while a heartbeat task measures the event loop.

Run by tests/test_async_client.py in a subprocess (a timing figure, kept out of the test process).
The sandbox runs in a process of its own (its threads would otherwise compete for this process's
GIL and be counted as stalls), mailing every order after 1 s, and answering some of the looks
after 200 ms: a client that blocked the loop in a request or a sleep (0.2 s poll interval) would
show a gap of at least that, at every look of every wait: most beats would be late. A loaded shared
machine also preempts the process now and then, so the 99th percentile of the gaps is the figure
checked, beside the worst one. The sign-ups arrive 10 ms apart, as users of a bot do (50 started in the same instant would
measure the CPU time of 50 requests decoded in one turn of the loop, not a stall), and all 50 waits
run at once. Prints ``{"codes": N, "worst_gap": s, "p99_gap": s, "beats": N}``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request

from kopechka import AsyncKopechkaClient

WAITS = 50
ARRIVAL = 0.01
BEAT = 0.005


async def heartbeat(done: asyncio.Event) -> list[float]:
    """The gaps between beats: how long the loop was late for each."""
    loop, gaps = asyncio.get_running_loop(), []
    while not done.is_set():
        before = loop.time()
        await asyncio.sleep(BEAT)
        gaps.append(loop.time() - before - BEAT)
    return gaps


async def signup(client: AsyncKopechkaClient, arrival: float) -> str:
    await asyncio.sleep(arrival)
    async with client.mailbox("inbox.test", "x.com") as box:
        return await box.wait_for_code(timeout=60, poll_interval=0.2)


async def main(url: str) -> dict[str, float]:
    done = asyncio.Event()
    async with AsyncKopechkaClient("test-key", base_url=url) as client:
        await client.get_balance()  # a warm connection, as in a running bot
        beat = asyncio.create_task(heartbeat(done))
        codes = await asyncio.gather(*(signup(client, n * ARRIVAL) for n in range(WAITS)))
        done.set()
        gaps = sorted(await beat)
    return {
        "codes": sum(1 for code in codes if code),
        "worst_gap": gaps[-1],
        "p99_gap": gaps[int(len(gaps) * 0.99)],
        "beats": len(gaps),
    }


def slow_looks(root: str) -> None:
    body = json.dumps({"delay": 0.2, "times": 40, "path": "/orders", "method": "GET"}).encode()
    request = urllib.request.Request(root + "/_sandbox/fail", body, method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


if __name__ == "__main__":
    command = [sys.executable, "-m", "kopechka", "sandbox", "--port", "0", "--auto-mail", "1",
               "--balance", "1000"]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            url = server.stdout.readline().split()[-1]
            slow_looks(url.removesuffix("/api/v1"))
            print(json.dumps(asyncio.run(main(url))))
        finally:
            server.terminate()
            server.wait(timeout=10)
