"""50 concurrent sign-ups on one AsyncKopechkaClient while a heartbeat task measures the event loop.

Run by tests/test_async_client.py in a subprocess (a timing figure, kept out of the test process).
The sandbox runs in a process of its own (its threads would otherwise compete for this process's
GIL and be counted as stalls), mailing every order after 1 s, and answering some of the looks
after 200 ms: a client that blocked the loop in a request or a sleep (0.2 s poll interval) would
show a gap of at least that. On a loaded shared machine the OS also keeps the process off the CPU
for tens of milliseconds now and then: that time (the thread's run-queue wait, from Linux's
schedstat) is taken out of each gap, and what remains is the loop's own stall. The sign-ups arrive 10 ms apart, as users of a bot do (50 started in the same instant would
measure the CPU time of 50 requests decoded in one turn of the loop, not a stall), and all 50 waits
run at once. Prints ``{"codes": N, "worst_gap": s, "worst_stall": s, "beats": N}``.
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


def runqueue_wait() -> float:
    """Seconds this thread has spent ready to run but waiting for a CPU (Linux schedstat): time
    the machine took, not the loop."""
    with open("/proc/thread-self/schedstat") as stats:
        return int(stats.read().split()[1]) / 1e9


async def heartbeat(done: asyncio.Event) -> tuple[list[float], list[float]]:
    """How late the loop was for each beat, as measured, and less the time the OS kept the
    thread waiting for a CPU (the stall the loop itself caused: its work or a blocking call)."""
    loop, gaps, stalls = asyncio.get_running_loop(), [], []
    while not done.is_set():
        before, waited = loop.time(), runqueue_wait()
        await asyncio.sleep(BEAT)
        gap = loop.time() - before - BEAT
        gaps.append(gap)
        stalls.append(gap - (runqueue_wait() - waited))
    return gaps, stalls


async def signup(client: AsyncKopechkaClient, arrival: float) -> str:
    await asyncio.sleep(arrival)
    async with client.mailbox("inbox.test", "x.com") as box:
        return await box.wait_for_code(timeout=60, poll_interval=0.2)


async def main(url: str) -> dict[str, float]:
    done = asyncio.Event()
    async with AsyncKopechkaClient("test-key", base_url=url) as client:
        # a running bot: warm connections, and every model's validator built (pydantic builds
        # one on a model's first use: tens of milliseconds, once per process)
        await signup(client, 0.0)
        beat = asyncio.create_task(heartbeat(done))
        codes = await asyncio.gather(*(signup(client, n * ARRIVAL) for n in range(WAITS)))
        done.set()
        gaps, stalls = await beat
    return {
        "codes": sum(1 for code in codes if code),
        "worst_gap": max(gaps),
        "worst_stall": max(stalls),
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
