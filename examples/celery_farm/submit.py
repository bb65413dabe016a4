"""In this example, we: hand sign-ups to the Celery farm of ``tasks.py`` and print, for each site,
the code a worker got (or why the sign-up failed: its order was then refunded by the worker).

    cd examples/celery_farm
    python submit.py instagram.com github.com discord.com      # FARM_REDIS_URL as for the workers

It needs no API key: only the workers talk to the API.
"""

from __future__ import annotations

import argparse
import json
import time

from celery import group
from tasks import sign_up


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Submit sign-ups to the farm.")
    parser.add_argument("sites", nargs="+", help="one sign-up per site")
    parser.add_argument("--domain", default="example.com", help="the domain of the addresses")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for a code")
    parser.add_argument("--poll-interval", type=float, default=2.0, help="seconds between polls")
    parser.add_argument("--wait", type=float, default=900.0, help="seconds to wait for them all")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser.parse_args()


def main() -> int:
    args = parse()
    started = time.monotonic()
    job = group(
        sign_up.s(site, args.domain, args.timeout, args.poll_interval) for site in args.sites
    ).apply_async()
    outcomes = job.get(timeout=args.wait, propagate=False)  # in the order submitted
    failed = 0
    for site, outcome in zip(args.sites, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            failed += 1
            line = {"site": site, "error": f"{type(outcome).__name__}: {outcome}"}
        else:
            line = outcome
        print(json.dumps(line) if args.json else " ".join(line.values()), flush=True)
    elapsed = time.monotonic() - started
    if not args.json:
        print(f"{len(args.sites)} sign-ups in {elapsed:.1f} s: {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
