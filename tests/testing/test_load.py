"""32 threads buying, polling and cancelling for 10 seconds: every cent and every order accounted for.

The throughput figure is measured in benchmarks/, not asserted here."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

import pytest

from kopechka import KopechkaClient
from kopechka.testing import Sandbox

THREADS = 32
SECONDS = 10.0
START = Decimal("1000000.00")


@dataclass
class Ledger:
    bought: int = 0
    paid: Decimal = Decimal("0")
    refunded: Decimal = Decimal("0")


def _work(sandbox: Sandbox, client: KopechkaClient, seed: int, stop: float) -> Ledger:
    rng = random.Random(seed)
    ledger = Ledger()
    while time.monotonic() < stop:
        domain = rng.choice(["example.com", "inbox.test", "mail-sandbox.net"])
        order = client.create_order(domain, f"site{seed}.com")
        ledger.bought += 1
        ledger.paid += order.price
        if rng.random() < 0.5:
            sandbox.deliver(order.order_id, content=f"code {rng.randint(1000, 9999)}")
            assert len(client.get_messages(order.order_id).messages) == 1
            client.start_polling(order.order_id)
        ledger.refunded += client.cancel_order(order.order_id).refund_amount
    return ledger


@pytest.mark.slow
def test_books_balance_under_32_threads() -> None:
    with Sandbox(balance=START) as sandbox, sandbox.client(timeout=(5.0, 30.0)) as client:
        stop = time.monotonic() + SECONDS
        barrier = threading.Barrier(THREADS)

        def run(seed: int) -> Ledger:
            barrier.wait()
            return _work(sandbox, client, seed, stop)

        with ThreadPoolExecutor(THREADS) as pool:
            ledgers = list(pool.map(run, range(THREADS)))
        bought = sum(led.bought for led in ledgers)
        paid = sum((led.paid for led in ledgers), Decimal("0"))
        refunded = sum((led.refunded for led in ledgers), Decimal("0"))
        assert bought > THREADS  # every thread got work done
        assert sandbox.state.order_count() == bought
        assert client.get_balance() == START - paid + refunded == sandbox.balance
        assert sandbox.state.spent() == paid - refunded
        cancelled = client.list_orders(status="cancelled", limit=1).pagination.total
        assert cancelled == bought
