"""A purchasing campaign under seeded random faults: 200 purchases by 6 threads sharing one client,
through ``create_order`` and ``mailbox()``, with answers dropped, failed, cut, late and refused,
transient failures on the listings, and refunds that fail; then ``sweep``. The sandbox's ledger
must show:

* no order bought twice by a retry (POSTs sent = purchases + 429s retried, orders = POSTs served);
* every order bought either returned to its caller or named in an ``OrderOutcomeUnknownError``;
* no candidate is an order returned to a caller (threads never take each other's orders);
* after the sweep, no unused order left charged: each order is cancelled or has mail, and the
  balance is the start less the price of the orders with mail.

``run_campaign`` also gives the counts quoted in benchmarks/RESULTS.md."""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kopechka import KopechkaClient, KopechkaError, OrderOutcomeUnknownError, RateLimitError
from kopechka.testing import Sandbox

SEED = 20261130
START = Decimal("100000")
SITES = ("a.example", "b.example", "c.example")
DOMAINS = ("example.com", "inbox.test")

# what the k-th POST /orders gets: (weight, sandbox.fail options, does the server buy?)
POST_FAULTS: dict[str, tuple[int, dict[str, Any], bool]] = {
    "answered": (55, {}, True),
    "dropped after buying": (8, {"drop": True, "execute": True}, True),
    "500 after buying": (6, {"status": 500, "execute": True}, True),
    "500, nothing bought": (4, {"status": 500}, False),
    "truncated 200": (5, {"status": 200, "body": "truncated", "execute": True}, True),
    "html 200": (4, {"status": 200, "body": "html", "execute": True}, True),
    "answer past the timeout": (4, {"delay": 1.5}, True),
    "late but in time": (6, {"delay": 0.4}, True),
    "429": (8, {"status": 429, "retry_after": 0}, False),
}
OTHER_FAULTS: list[
    dict[str, Any]
] = [  # transient failures of the listings and mail checks, and refunds that fail
    *[{"status": 500, "method": "GET", "path": "/orders"}] * 15,
    *[{"drop": True, "method": "GET", "path": "/orders"}] * 5,
    *[{"status": 500, "method": "DELETE"}] * 6,
    *[{"status": 500, "method": "DELETE", "execute": True}] * 4,
]


@dataclass
class Campaign:
    """What happened, as the callers saw it and as the sandbox's ledger records it."""

    calls: Counter[str] = field(default_factory=Counter)
    returned: set[str] = field(default_factory=set)
    named: set[str] = field(default_factory=set)
    candidates_per_error: Counter[int] = field(default_factory=Counter)
    lone_cancels: int = 0
    unlisted: int = 0  # errors whose candidates could not be listed (the listing failed too)
    rate_limited: int = 0
    faults_served: Counter[str] = field(default_factory=Counter)
    posts: int = 0
    orders: int = 0
    lost: int = 0
    swept: int = 0
    swept_refund: Decimal = Decimal(0)
    sweep_failures: int = 0
    left_unused: int = 0
    balance_ok: bool = False
    ids: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _plan(rng: random.Random, purchases: int) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    names = list(POST_FAULTS)
    weights = [POST_FAULTS[n][0] for n in names]
    faults = rng.choices(names, weights, k=purchases * 2)  # more than enough: 429s retry
    plan = [
        (
            rng.choice(("create", "mailbox")),
            rng.choice(DOMAINS),
            rng.choice(SITES),
            rng.choice(("mail", "unused", "raise", "cancel")),
        )
        for _ in range(purchases)
    ]
    return plan, faults


def _buy(
    client: KopechkaClient, sandbox: Sandbox, step: tuple[str, str, str, str], c: Campaign
) -> None:
    how, domain, site, use = step
    bought = False  # a RateLimitError after the purchase (its wait or refund) bought nothing less
    try:
        if how == "create":
            order = client.create_order(domain, site)
            bought = True
            with c.lock:
                c.returned.add(order.order_id)
            if use == "mail":
                sandbox.deliver(order.order_id, content="Your code is 123456")
            elif use == "cancel":
                client.cancel_order(order.order_id)  # may fail: then the sweep refunds it
            return
        with client.mailbox(domain, site) as box:
            bought = True
            with c.lock:
                c.returned.add(box.order_id)
            if use == "mail":
                sandbox.deliver(box.order_id, content="Your code is 123456")
                box.wait_for_code(timeout=10, poll_interval=0.05)
            elif use == "raise":
                raise LookupError("the sign-up failed")
    except OrderOutcomeUnknownError as exc:
        with c.lock:
            c.named.update(o.order_id for o in exc.candidates)
            c.candidates_per_error[len(exc.candidates)] += 1
            c.lone_cancels += "was cancelled" in str(exc)
            c.unlisted += "could not be listed" in str(exc)
    except RateLimitError:
        with c.lock:
            c.rate_limited += not bought  # the purchase itself was refused: no POST after it
    except (KopechkaError, LookupError):
        pass  # a failed refund (kept on the box) or the sign-up's own error


def run_campaign(seed: int = SEED, purchases: int = 200, threads: int = 6) -> Campaign:
    """Run the campaign on a fresh sandbox and check the ledger; returns what it saw."""
    rng = random.Random(seed)
    plan, faults = _plan(rng, purchases)
    c = Campaign()
    with Sandbox(balance=START) as sandbox:
        for name in faults:
            sandbox.fail(**POST_FAULTS[name][1], path="/orders", method="POST")
        for options in rng.sample(OTHER_FAULTS, len(OTHER_FAULTS)):
            sandbox.fail(**options)
        steps = iter(plan)
        take = threading.Lock()
        # Sleeps are skipped, so the clock stands still for the limiter: a rate learned from an
        # injected 429 would refuse most purchases (their slots past max_retry_wait). A rate far
        # above the sandbox's keeps the shared cooldown and spends the campaign on purchases;
        # learning is tests/test_limits.py's subject.
        with sandbox.client(timeout=(2.0, 1.0), sleep=lambda s: None, rate_limit=1e6) as client:

            def worker() -> None:
                while True:
                    with take:
                        step = next(steps, None)
                    if step is None:
                        return
                    with c.lock:
                        c.calls[step[0]] += 1
                    _buy(client, sandbox, step, c)

            pool = [threading.Thread(target=worker) for _ in range(threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join(timeout=600)
            assert not any(t.is_alive() for t in pool)
        _audit(sandbox, faults, c)
    return c


def _audit(sandbox: Sandbox, faults: list[str], c: Campaign) -> None:
    with sandbox.app.lock:
        sandbox.app.faults.clear()
    posts = [r for r in sandbox.requests if r.method == "POST" and r.path == "/api/v1/orders"]
    c.posts = len(posts)
    # a start-polling would have taken one of the POST /orders faults: the counts assume none
    assert not any(r.path.endswith("/start-polling") for r in sandbox.requests)
    c.faults_served = Counter(faults[: c.posts])
    c.orders = sandbox.state.order_count()
    with sandbox.client() as auditor:
        every = list(auditor.iter_orders())
        c.lost = sum(1 for o in every if o.order_id not in c.returned)
        report = auditor.sweep(older_than=0, dry_run=False)
        c.swept, c.swept_refund = len(report.cancelled), report.refunded
        c.sweep_failures = len(report.failed)
        after = {o.order_id: o for o in auditor.iter_orders()}
        used = {i for i in after if auditor.get_messages(i).messages}
    c.left_unused = sum(1 for i, o in after.items() if i not in used and o.status != "cancelled")
    paid = sum((o.price for i, o in after.items() if i in used), Decimal(0))
    c.balance_ok = sandbox.balance == START - paid
    c.ids = set(after)


def test_campaign() -> None:
    c = run_campaign()
    assert sum(c.calls.values()) == 200
    # no order bought twice: only a 429 (nothing bought) is ever followed by another POST
    assert c.posts == 200 + c.faults_served["429"] - c.rate_limited
    bought_kinds = {n for n, (_, _, buys) in POST_FAULTS.items() if buys}
    assert c.orders == sum(n for kind, n in c.faults_served.items() if kind in bought_kinds)
    # every purchase returned to its caller or named in an OrderOutcomeUnknownError
    assert len(c.ids) == c.orders
    # (an error whose own listing failed names nothing and says so; the sweep refunds its order)
    assert len(c.ids - c.returned - c.named) <= c.unlisted
    assert not c.named & c.returned  # no thread's order was offered to another as its own
    assert c.lost > 0  # the faults did lose answers (how many mailboxes then found a lone
    # candidate depends on the threads' timing: it is counted, not asserted)
    # after the sweep, nothing unused is left charged
    assert c.sweep_failures == 0
    assert c.left_unused == 0
    assert c.balance_ok


def test_campaign_plan_is_seeded() -> None:
    assert _plan(random.Random(SEED), 200) == _plan(random.Random(SEED), 200)
    assert _plan(random.Random(SEED), 200) != _plan(random.Random(SEED + 1), 200)
