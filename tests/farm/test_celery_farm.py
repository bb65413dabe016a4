"""The Celery farm of ``examples/celery_farm``, as users run it: a real worker (prefork, 2 processes)
and ``kopechka sandbox`` with a rate limit and automatic mail, each in its own process, 40 sign-ups
submitted with the example's ``submit.py``.

Checked afterwards from the sandbox's side (its access log, its state and the API): every code
came back and is the one mailed, no order was bought twice, every unused order was refunded and the
balance adds up, the limit held (few 429s, no call failed on it) and the workers shared one limiter
in Redis. Redis comes from ``KOPECHKA_TEST_REDIS_URL`` (``.ci/services.sh`` starts one in CI);
without it the test skips saying so, but never under ``CI=true``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kopechka import KopechkaClient

REDIS_URL = os.environ.get("KOPECHKA_TEST_REDIS_URL")
FARM = Path(__file__).resolve().parents[2] / "examples" / "celery_farm"
LIMIT = 10  # requests per second, the sandbox's
SIGNUPS = 40
REFUSED = {f"s{n}.invalid" for n in (9, 18, 27, 36)}  # their sign-up fails: the order is refunded
SITES = [f"s{n}.invalid" if f"s{n}.invalid" in REFUSED else f"s{n}.example" for n in range(1, 41)]
BALANCE, PRICE = Decimal("1000.00"), Decimal("5.00")
DEADLINE = 240.0  # seconds for the whole farm: it takes about 30
_ACCESS = re.compile(r'"(?P<method>\w+) (?P<path>\S+)" (?P<status>\d+|dropped) ')

pytestmark = pytest.mark.slow


def test_ci_never_skips_the_farm() -> None:
    if os.environ.get("CI") == "true":
        assert REDIS_URL, "CI must start redis-server (.ci/services.sh) and export its URL"


@dataclass
class Served:
    """``kopechka sandbox`` in a process, its access log read as it comes (time, line)."""

    proc: subprocess.Popen[str]
    url: str
    key: str
    log: list[tuple[float, str]] = field(default_factory=list)

    def read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:  # ends when the process does
            self.log.append((time.monotonic(), line.rstrip("\n")))

    def answers(self) -> list[tuple[float, str, str, str]]:
        """(time, method, path, status) of each answer; two threads' lines may share one line
        (print writes a line and its end separately), so every entry of a line counts."""
        return [
            (t, m["method"], m["path"], m["status"])
            for t, line in list(self.log)
            for m in _ACCESS.finditer(line)
        ]

    def state(self) -> dict[str, Any]:
        """``GET /_sandbox/state``: the balance and the number of orders."""
        root = self.url.removesuffix("/api/v1")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: direct
        with opener.open(f"{root}/_sandbox/state", timeout=10) as reply:
            data: dict[str, Any] = json.loads(reply.read())["data"]
        return {**data, "balance": Decimal(data["balance"])}  # written as a decimal string


def stop(proc: subprocess.Popen[Any], *, group: bool = False) -> None:
    """Ask the process to stop, then kill it (its process group: a worker and its children)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def redis_url() -> str:
    if not REDIS_URL:
        pytest.skip("Redis is absent: set KOPECHKA_TEST_REDIS_URL (.ci/services.sh does)")
    return REDIS_URL


@pytest.fixture
def sandbox(redis_url: str) -> Iterator[Served]:
    key = f"farm-{uuid.uuid4().hex}"
    command = [sys.executable, "-m", "kopechka", "sandbox", "--port", "0", "--api-key", key,
               "--rate-limit", str(LIMIT), "--auto-mail", "1", "--balance", str(BALANCE),
               "--access-log"]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        reader: threading.Thread | None = None
        try:
            assert proc.stdout is not None
            banner = proc.stdout.readline()
            assert banner.startswith("Kopechka sandbox serving at "), banner
            served = Served(proc, banner.split()[-1], key)
            reader = threading.Thread(target=served.read_log, daemon=True)
            reader.start()
            yield served
        finally:
            stop(proc)
            if reader is not None:
                reader.join(timeout=10)  # the log ends with the process


@pytest.fixture
def farm_env(redis_url: str, sandbox: Served) -> dict[str, str]:
    return {
        **os.environ,
        "KOPECHKA_API_KEY": sandbox.key,
        "KOPECHKA_BASE_URL": sandbox.url,
        "FARM_REDIS_URL": redis_url,
        "FARM_QUEUE": f"farm-test-{uuid.uuid4().hex}",  # no other run's tasks
    }


@pytest.fixture
def worker(farm_env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    log = tmp_path / "worker.log"
    command = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", "prefork",
               "--concurrency", "2", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
               "--without-heartbeat", "-n", f"{farm_env['FARM_QUEUE']}@%h"]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, cwd=FARM, env=farm_env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed whole if need be
        )  # fmt: skip
    try:
        yield log
    finally:
        stop(proc, group=True)


def submit(farm_env: dict[str, str]) -> list[dict[str, str]]:
    """Run the example's submit.py (without the API key: it needs none) and read its lines."""
    env = {k: v for k, v in farm_env.items() if k != "KOPECHKA_API_KEY"}
    command = [sys.executable, "submit.py", "--json", "--poll-interval", "0.1", "--timeout",
               "60", "--wait", str(DEADLINE), *SITES]  # fmt: skip
    done = subprocess.run(
        command, cwd=FARM, env=env, capture_output=True, text=True, timeout=DEADLINE + 30,
        check=False,
    )  # fmt: skip
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == SIGNUPS, done.stdout + done.stderr
    return lines


def test_forty_sign_ups_on_one_key(sandbox: Served, farm_env: dict[str, str], worker: Path) -> None:
    results = submit(farm_env)
    log = worker.read_text()
    farm = sandbox.answers()  # before the checks below add their own requests

    assert [r["site"] for r in results] == SITES
    for r in results:
        if r["site"] in REFUSED:
            assert r["error"].startswith("SignUpRefusedError"), r
        else:
            assert re.fullmatch(r"\d{6}", r.get("code", "")), (r, log[-3000:])

    with KopechkaClient(sandbox.key, base_url=sandbox.url, rate_limit=LIMIT - 1) as client:
        page = client.list_orders(limit=100)
        orders = {o.site: o for o in page.orders}
        mail = {site: client.get_messages(o.order_id).messages for site, o in orders.items()}
    assert len(orders) == page.pagination.total == SIGNUPS  # one order per sign-up
    for r in results:  # every code came back, and it is the one mailed to that sign-up's order
        if "code" in r:
            assert orders[r["site"]].order_id == r["order_id"]
            assert [m.extract_code() for m in mail[r["site"]]] == [r["code"]]
    unused = [site for site in orders if not mail[site]]
    assert unused, "no refused sign-up was refunded: does the mailbox still cancel?"
    assert set(unused) <= REFUSED  # the rest lost the race with the sandbox's mail (after 1 s)
    assert all(orders[site].status == "cancelled" for site in unused)
    state = sandbox.state()  # every unused order was refunded, and only those
    assert (state["orders"], state["balance"]) == (
        SIGNUPS, BALANCE - PRICE * (SIGNUPS - len(unused))
    )  # fmt: skip

    bought = [a for a in farm if a[1:3] == ("POST", "/api/v1/orders") and a[3].startswith("2")]
    assert len(bought) == SIGNUPS, [a for a in farm if a[1] == "POST"]  # none bought twice
    statuses = [a[3] for a in farm]
    throttled = statuses.count("429")
    assert set(statuses) <= {"200", "201", "429"}, statuses
    assert throttled <= 0.05 * len(statuses), (throttled, len(statuses))  # the limit held
    assert "RateLimitError" not in log
    learned = learned_rate(farm_env["FARM_REDIS_URL"], sandbox.key)
    assert 0 < learned <= LIMIT  # the workers shared one limiter in Redis, and it learned
    print_figures(farm, throttled, learned, len(unused))


def learned_rate(url: str, key: str) -> float:
    """The rate the farm's RedisLimiter learned (its keys are named after the API key)."""
    import redis

    name = "key-" + hashlib.sha256(key.encode()).hexdigest()[:16]
    store = redis.Redis.from_url(url, decode_responses=True)
    try:
        state = store.hgetall(f"kopechka:{{{name}}}:state")
    finally:
        store.close()
    return float(state.get("quota", 0)) / float(state.get("window", 1) or 1)


def print_figures(
    farm: list[tuple[float, str, str, str]], throttled: int, learned: float, refunded: int
) -> None:
    times = [a[0] for a in farm]
    seconds = times[-1] - times[0]
    busiest = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    print(
        f"\nfarm: {SIGNUPS} sign-ups, {len(farm)} requests in {seconds:.1f} s "
        f"({len(farm) / seconds:.1f}/s, limit {LIMIT}/s), 429: {throttled} "
        f"({throttled / len(farm):.1%}), most requests in one second: {busiest}, "
        f"learned rate {learned:.2f}/s, refunded {refunded} of {len(REFUSED)} refused"
    )
