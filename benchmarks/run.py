"""Benchmarks for kopechka: each figure a ratio against a baseline measured in the same run.

    python benchmarks/run.py            # full run, writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick    # small counts, a smoke run (prints only)

Servers run in separate processes (benchmarks/canned_server.py answers canned bodies; the sandbox
for the wait latency), so the client-side CPU (``time.process_time`` of this process) is ours.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import like_for_like
import requests

from kopechka import KopechkaClient

HERE = Path(__file__).resolve().parent
KEY = "bench-key"
HEADERS = {"X-API-Key": KEY, "Content-Type": "application/json"}


@dataclass
class Row:
    figure: str
    value: str
    baseline: str
    ratio: str
    target: str
    verdict: str


ROWS: list[Row] = []


def record(
    figure: str, value: str, baseline: str, ratio: str, target: str, ok: bool | None
) -> None:
    verdict = "-" if ok is None else ("met" if ok else "MISSED")
    ROWS.append(Row(figure, value, baseline, ratio, target, verdict))
    print(f"  {figure}: {value} vs {baseline} -> {ratio} (target {target}) {verdict}", flush=True)


# --- servers in their own processes -----------------------------------------------------------


@contextlib.contextmanager
def canned_server(tls: tuple[str, str] | None = None) -> Iterator[str]:
    command = [sys.executable, str(HERE / "canned_server.py")]
    if tls:
        command += ["--tls", *tls]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            port = int(proc.stdout.readline())
            scheme = "https" if tls else "http"
            yield f"{scheme}://127.0.0.1:{port}/api/v1"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@contextlib.contextmanager
def sandbox_server(auto_mail: float | None = None) -> Iterator[tuple[str, str]]:
    command = [
        sys.executable,
        "-m",
        "kopechka",
        "sandbox",
        "--port",
        "0",
        "--api-key",
        KEY,
        "--balance",
        "100000",
        *(["--auto-mail", str(auto_mail)] if auto_mail is not None else []),
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().split()[-1]
            yield url, url.removesuffix("/api/v1")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def make_certificate(directory: str) -> tuple[str, str] | None:
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    command = [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        key,
        "-out",
        cert,
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return cert, key


# --- measuring ---------------------------------------------------------------------------------


def compare(
    cases: dict[str, tuple[Callable[[], object], int]], rounds: int = 5
) -> dict[str, tuple[float, float]]:
    """(CPU seconds, wall seconds) per call of each case: the best of ``rounds``.

    The cases run in turn inside each round, so drift in the machine's load hits them alike.
    Each case is ``(fn, calls per round)``.
    """
    for fn, n in cases.values():
        for _ in range(max(3, n // 20)):
            fn()
    best = dict.fromkeys(cases, (float("inf"), float("inf")))
    for _ in range(rounds):
        for name, (fn, n) in cases.items():
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(n):
                fn()
            cpu, wall = (time.process_time() - cpu) / n, (time.perf_counter() - wall) / n
            best[name] = (min(best[name][0], cpu), min(best[name][1], wall))
    return best


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs"


def cpu_per_call(url: str, n: int, rounds: int) -> None:
    """Every endpoint, and a page of 100 orders, both faces, against a like-for-like bare session
    (see like_for_like.py)."""
    print("client CPU per call against like-for-like bare sessions (plain HTTP, keep-alive)")
    for face, measure, bare_name in (
        ("sync", like_for_like.measure_sync, "bare requests.Session"),
        ("async", like_for_like.measure_async, f"bare {like_for_like.STACK}.AsyncClient"),
    ):
        for name, (bare, ours) in measure(url, n, rounds).items():
            ratio = ours / bare
            record(f"CPU {name} ({face})", us(ours), f"{bare_name} {us(bare)}",
                   f"{ratio:.2f}x", "<= 1.10x", ratio <= 1.10)  # fmt: skip
    session = requests.Session()  # the documentation's style, for reference
    vendor = compare({"v": (lambda: requests.get(url + "/balance", headers=HEADERS).json(), n)})
    record("CPU get_balance: vendor style (requests.get)", us(vendor["v"][0]), "-", "-", "-", None)
    session.close()


def instructions(url: str, n: int) -> None:
    """Callgrind instruction counts per call (independent of the machine's load)."""
    if not like_for_like.callgrind_available():
        print("valgrind not installed: callgrind instruction counts skipped", flush=True)
        record("callgrind instructions", "skipped: valgrind not installed", "-", "-", "-", None)
        return
    print("callgrind instructions per call", flush=True)
    counts = {side: like_for_like.callgrind(url, side, n)
              for side in ("bare", "ours", "bare-async", "ours-async")}  # fmt: skip
    for face, bare, ours in (("sync", "bare", "ours"), ("async", "bare-async", "ours-async")):
        for name, mine in counts[ours].items():
            base = counts[bare][name]
            record(f"instructions {name} ({face})", f"{mine / 1e6:.2f} M",
                   f"bare {base / 1e6:.2f} M", f"{mine / base:.2f}x", "<= 1.10x",
                   mine / base <= 1.10)  # fmt: skip


WAITS_SECONDS = 15.0
"""The most N concurrent sign-ups may take, each mailed a second after its purchase."""
RSS_MB = {"async": 150, "sync": 300}
"""Peak resident memory a face may reach during its run (1,000 tasks; 500 threads)."""
REQUESTS_PER_CODE = 6
"""Requests a sign-up may send: its purchase, a start of polling, and its looks at 0.5 s."""


def many_waits(n: int, n_async: int) -> None:
    """Concurrent buy-and-wait-for-code on one client: ``n_async`` async tasks (a running bot's,
    then a process's first calls) against ``n`` sync threads."""
    print(f"{n_async} / {n} concurrent wait_for_code on one client, sandbox with auto-mail")
    results = {}
    for face, count in (("async", n_async), ("async-cold", n_async), ("sync", n)):
        n = count
        with sandbox_server(auto_mail=1.0) as (url, _root):
            out = subprocess.run(
                [sys.executable, str(HERE / "many_waits.py"), face, url, str(n)],
                capture_output=True, text=True, timeout=600, check=False,
            )  # fmt: skip
        if out.returncode != 0:
            last = (out.stderr.strip().splitlines() or ["?"])[-1]
            record(f"{n} waits ({face})", f"failed: {last[:80]}", "-", "-", "-", None)
            continue
        results[face] = r = json.loads(out.stdout)
        # what a farm feels: every code, soon after its mail (1 s) and a poll (0.5 s); memory a
        # small machine holds; no polling beyond what the interval asks (a purchase, a start and
        # about three looks a code)
        per_code = r["requests"] / max(1, r["codes"])
        record(f"{n} waits ({face}): completion", f"{r['seconds']:.1f} s, {r['codes']} codes",
               "-", "-", f"all {n} codes, <= {WAITS_SECONDS:.0f} s",
               r["codes"] == n and r["seconds"] <= WAITS_SECONDS)  # fmt: skip
        most = RSS_MB[face.split("-")[0]]
        record(f"{n} waits ({face}): peak RSS", f"{r['peak_rss_mb']:.0f} MB",
               f"growth {r['rss_growth_mb']:.0f} MB", "-", f"<= {most} MB",
               r["peak_rss_mb"] <= most)  # fmt: skip
        record(f"{n} waits ({face}): requests", f"{per_code:.1f} a code",
               f"{r['requests']:,} in all, {r['requests_per_s']:,.0f}/s", "-",
               f"<= {REQUESTS_PER_CODE} a code", per_code <= REQUESTS_PER_CODE)  # fmt: skip
        if "stall_ms" in r:  # the async face: a heartbeat task on the loop, less the OS's waits
            st, gap = r["stall_ms"], r["gap_ms"]
            record(f"{n} waits ({face}): loop stall (heartbeat)",
                   f"worst {st['worst']:.0f} ms, p99 {st['p99']:.0f} ms, "
                   f"median {st['median']:.0f} ms",
                   f"as measured: worst {gap['worst']:.0f} ms", "-", "<= 100 ms",
                   st["worst"] <= 100)  # fmt: skip


def tls_wall_time(n: int) -> None:
    print("wall time over TLS on loopback", flush=True)
    with tempfile.TemporaryDirectory() as directory:
        pair = make_certificate(directory)
        if pair is None:
            record("TLS wall time", "not measured", "openssl missing", "-", ">= 2x faster", None)
            return
        with canned_server(tls=pair) as url:
            session = requests.Session()
            session.verify = pair[0]
            session.trust_env = False  # else $REQUESTS_CA_BUNDLE overrides session.verify
            with KopechkaClient(KEY, base_url=url, session=session) as client:
                got = compare(
                    {
                        "ours": (client.get_balance, n),
                        "vendor": (
                            lambda: requests.get(
                                url + "/balance", headers=HEADERS, verify=pair[0]
                            ).json(),
                            n // 4,
                        ),
                    }
                )
                ours, vendor = got["ours"][1], got["vendor"][1]
            session.close()
    speedup = vendor / ours
    record(
        "TLS get_balance wall: kopechka",
        us(ours),
        f"vendor style {us(vendor)}",
        f"{speedup:.1f}x faster",
        ">= 2x faster",
        speedup >= 2,
    )


def import_time(runs: int) -> None:
    """Import time as a ratio to ``import requests, pydantic``: each import in a fresh
    interpreter (a subprocess), the three interleaved so that drift in the machine's load hits
    them alike, the median of ``runs`` of each. The ratio is the child's CPU time
    (``time.process_time``); its wall time is shown beside it, and moves with the machine's load
    far more than the CPU time does. Every module's bytecode is cached, as after an install
    (pip compiles it): the children share a cache directory of their own, filled by one run of
    each statement first, so a checkout run with ``PYTHONDONTWRITEBYTECODE`` set does not time
    compiling kopechka's sources against requests' and pydantic's cached bytecode."""
    print("import time", flush=True)
    probe = (
        "import time; t, c = time.perf_counter(), time.process_time(); {}; "
        "print(time.process_time() - c, time.perf_counter() - t)"
    )
    cache = tempfile.mkdtemp(prefix="kopechka-bench-pycache-")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache

    def once(statement: str) -> tuple[float, float]:
        out = subprocess.run(
            [sys.executable, "-c", probe.format(statement)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        cpu, wall = out.stdout.split()
        return float(cpu), float(wall)

    statements = (
        "import kopechka",
        "from kopechka import KopechkaClient",  # a bot's first line
        "import requests, pydantic",
    )
    for statement in statements:
        once(statement)  # writes the bytecode cache
    times: dict[str, list[tuple[float, float]]] = {statement: [] for statement in statements}
    for _ in range(runs):
        for statement in statements:
            times[statement].append(once(statement))
    shutil.rmtree(cache, ignore_errors=True)

    def medians(statement: str) -> tuple[float, float]:
        cpu, wall = zip(*times[statement], strict=True)
        return statistics.median(cpu), statistics.median(wall)

    base_cpu, base_wall = medians("import requests, pydantic")
    baseline = f"import requests, pydantic {base_cpu * 1000:.0f} ms (wall {base_wall * 1000:.0f})"
    for statement, target in (
        ("import kopechka", 1.15),
        ("from kopechka import KopechkaClient", 1.20),
    ):
        cpu, wall = medians(statement)
        ratio = cpu / base_cpu
        record(statement, f"{cpu * 1000:.0f} ms (wall {wall * 1000:.0f}, {wall / base_wall:.2f}x)",
               baseline, f"{ratio:.2f}x", f"<= {target:.2f}x", ratio <= target)  # fmt: skip


class _PoolWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "pool is full" in record.getMessage():
            self.count += 1


def threads(url: str, calls: int) -> None:
    print("32 threads sharing one client", flush=True)
    warnings = _PoolWarnings()
    logging.getLogger("urllib3").addHandler(warnings)
    with KopechkaClient(KEY, base_url=url) as client:
        compare({"warm-up": (client.get_balance, 50)}, rounds=1)
        start = time.perf_counter()
        for _ in range(calls):
            client.get_balance()
        single = calls / (time.perf_counter() - start)
        with ThreadPoolExecutor(32) as pool:
            start = time.perf_counter()
            list(pool.map(lambda _: client.get_balance(), range(calls * 4)))
            many = calls * 4 / (time.perf_counter() - start)
    logging.getLogger("urllib3").removeHandler(warnings)
    record(
        "get_balance throughput, 32 threads",
        f"{many:,.0f}/s",
        f"1 thread {single:,.0f}/s",
        f"{many / single:.2f}x",
        "no pool warnings",
        warnings.count == 0,
    )
    record(
        "connection-pool warnings at 32 threads",
        str(warnings.count),
        "0",
        "-",
        "0",
        warnings.count == 0,
    )


def iter_memory(url: str, total: int) -> None:
    print(f"iter_orders over {total:,} orders", flush=True)
    with KopechkaClient(KEY, base_url=url) as client:
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        count = 0
        start = time.perf_counter()
        for _order in client.iter_orders(page_size=100):
            count += 1
            if count >= total:
                break
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] - baseline
        tracemalloc.stop()
    growth = peak / 2**20
    figure = f"iter_orders peak memory growth ({count:,} orders, {elapsed:.1f} s)"
    record(figure, f"{growth:.1f} MB", "flat", "-", "< 30 MB", growth < 30)


def wait_latency(runs: int, poll_interval: float = 0.5) -> None:
    print(f"wait_for_message latency, poll_interval {poll_interval} s", flush=True)
    rng = random.Random(7)
    latencies = []
    with sandbox_server() as (url, root), KopechkaClient(KEY, base_url=url) as client:
        admin = requests.Session()
        for _ in range(runs):
            order_id = client.create_order("inbox.test", "x.com").order_id
            returned: list[float] = []

            def wait(order_id: str = order_id, returned: list[float] = returned) -> None:
                client.wait_for_message(order_id, timeout=30, poll_interval=poll_interval)
                returned.append(time.perf_counter())

            waiter = threading.Thread(target=wait)
            waiter.start()
            time.sleep(rng.uniform(0.1, 0.1 + poll_interval))
            admin.post(
                f"{root}/_sandbox/deliver", json={"order_id": order_id, "content": "code 1234"}
            )
            visible = time.perf_counter()
            waiter.join()
            latencies.append(returned[0] - visible)
        admin.close()
        keep_alive = sandbox_latency(url)
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
    record(
        f"mail visible -> wait returns ({runs} runs)",
        f"median {statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, worst "
        f"{latencies[-1] * 1000:.0f} ms",
        f"poll interval {poll_interval * 1000:.0f} ms",
        "-",
        "<= poll interval + 1 round trip",
        latencies[-1] <= poll_interval + 0.1,
    )
    median, p99 = keep_alive
    record(
        "sandbox keep-alive request (bare session)",
        f"median {median * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms",
        "-",
        "-",
        "well under 2 ms",
        median < 0.002,
    )


def sandbox_latency(url: str, n: int = 1000) -> tuple[float, float]:
    session = requests.Session()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        session.get(url + "/balance", headers=HEADERS)
        times.append(time.perf_counter() - start)
    session.close()
    times.sort()
    return statistics.median(times), times[int(n * 0.99)]


def sandbox_throughput(seconds: float) -> None:
    print("sandbox throughput: 32 threads buying, polling, cancelling", flush=True)
    with sandbox_server() as (url, root), KopechkaClient(KEY, base_url=url) as client:
        stop = time.monotonic() + seconds
        admin = requests.Session()
        lock = threading.Lock()

        def work(_: int) -> int:
            done = 0
            while time.monotonic() < stop:
                order = client.create_order("inbox.test", "x.com")
                with lock:
                    admin.post(
                        f"{root}/_sandbox/deliver",
                        json={"order_id": order.order_id, "content": "c 1234"},
                    )
                client.get_messages(order.order_id)
                client.start_polling(order.order_id)
                client.cancel_order(order.order_id)
                done += 5
            return done

        start = time.perf_counter()
        with ThreadPoolExecutor(32) as pool:
            total = sum(pool.map(work, range(32)))
        rate = total / (time.perf_counter() - start)
        admin.close()
    record(
        f"sandbox, 32 threads for {seconds:.0f} s",
        f"{rate:,.0f} requests/s",
        "-",
        "-",
        ">= 500 requests/s",
        rate >= 500,
    )


BEGIN, END = "<!-- figures: written by run.py -->", "<!-- end of figures -->"


def write_results(quick: bool) -> None:
    """Replace the figures in RESULTS.md, between its markers; the sections around them (how to
    read the figures, what changed) are prose kept as they are."""
    figures = [
        BEGIN,
        f"Measured by `python benchmarks/run.py` on {time.strftime('%Y-%m-%d')}: "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, "
        f"{platform.machine()}, load average {os.getloadavg()[0]:.1f} at the end. Servers ran in "
        "separate processes; CPU is this process's alone.",
        "",
        "| figure | kopechka | baseline | ratio | target | |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r.figure} | {r.value} | {r.baseline} | {r.ratio} | {r.target} | {r.verdict} |"
            for r in ROWS
        ),
        END,
    ]
    if quick:
        return
    path = HERE / "RESULTS.md"
    text = path.read_text() if path.exists() else f"# Benchmark results\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + "\n".join(figures) + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + "\n".join(figures) + "\n"
    path.write_text(text)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small counts; do not write RESULTS.md"
    )
    args = parser.parse_args()
    n = 100 if args.quick else 2000
    with canned_server() as url:
        cpu_per_call(url, n // 4, 3 if args.quick else 9)
        if not args.quick:
            instructions(url, 30)
        threads(url, 100 if args.quick else 2000)
        iter_memory(url, 2_000 if args.quick else 100_000)
    tls_wall_time(n // 2)
    import_time(3 if args.quick else 15)
    wait_latency(3 if args.quick else 50)
    sandbox_throughput(1.0 if args.quick else 10.0)
    many_waits(20 if args.quick else 500, 20 if args.quick else 1000)
    print()
    width = max(len(r.figure) for r in ROWS)
    for r in ROWS:
        print(f"{r.figure.ljust(width)}  {r.value:>24}  {r.ratio:>12}  {r.verdict}")
    write_results(args.quick)
    sys.exit(1 if any(r.verdict == "MISSED" for r in ROWS) and not args.quick else 0)


if __name__ == "__main__":
    main()
