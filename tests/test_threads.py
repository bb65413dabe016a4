"""One client shared by 32 threads: correct answers and no connection-pool overflow."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from kopechka.testing import Sandbox


def test_32_threads_share_one_client(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="urllib3")
    with Sandbox(balance="1000") as sandbox, sandbox.client() as client:
        barrier = threading.Barrier(32)

        def work(i: int) -> Decimal:
            barrier.wait()
            order = client.create_order("inbox.test", f"site{i}.com")
            client.get_order(order.order_id)
            return client.cancel_order(order.order_id).refund_amount

        with ThreadPoolExecutor(32) as pool:
            refunds = list(pool.map(work, range(32)))
        assert refunds == [Decimal("1.25")] * 32
        assert client.get_balance() == Decimal("1000")
        pool_size = len(client._transport.session.get_adapter(sandbox.url).poolmanager.pools)  # type: ignore[attr-defined]
        assert pool_size == 1
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
