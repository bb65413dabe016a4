"""Spend guards that must fail closed where features meet: negative money from the server (in a
purchase answer, a price list, a refund) is refused and never booked, and a budget never lets a
purchase at an unknown price through (a crowd of threads and of tasks on one client)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest

from kopechka import (
    APIResponseValidationError,
    AsyncKopechkaClient,
    KopechkaClient,
    OrderOutcomeUnknownError,
    SpendLimitError,
)
from kopechka.testing import Sandbox
from kopechka.testing._state import SandboxDomain

from .conftest import Canned
from .faces import Face

ORDER = {
    "orderId": "API-1", "email": "a@neg.test", "domain": "neg.test", "site": "x.com",
    "status": "pending", "price": -100, "createdAt": "2026-01-01T00:00:00Z",
}  # fmt: skip
DOMAINS = [
    {"id": "d1", "name": "neg.test", "price": 5},
    {"id": "d2", "name": "free.test", "price": -50},
]


def envelope(data: object, **beside: object) -> str:
    return json.dumps({"success": True, "data": data, **beside})


def negative_server(canned: Canned, domains: list[dict[str, object]] = DOMAINS) -> None:
    canned.set("GET", "/api/v1/domains", envelope(domains))
    canned.set("POST", "/api/v1/orders", envelope(ORDER))
    page = {"page": 1, "limit": 100, "total": 1, "pages": 1}
    canned.set("GET", "/api/v1/orders", envelope([ORDER], pagination=page))
    canned.set("DELETE", "/api/v1/orders/API-1", json.dumps({"success": True, "refundAmount": -7}))


def posts(canned: Canned) -> int:
    return sum(1 for method, target, _, _ in canned.received if method == "POST")


def test_a_negative_price_in_the_purchase_answer_never_lifts_the_budget(
    face: Face, canned: tuple[Canned, str]
) -> None:
    app, url = canned
    negative_server(app, DOMAINS[:1])
    with face.client(api_key="k", base_url=url, budget=10, max_retries=0) as client:
        for _ in range(30):
            with pytest.raises((OrderOutcomeUnknownError, SpendLimitError)) as caught:
                client.create_order("neg.test", "x.com")
            if isinstance(caught.value, OrderOutcomeUnknownError):
                assert isinstance(caught.value.__cause__, APIResponseValidationError)
        spent = client._ledger.spent
    assert posts(app) <= 2  # 10 / 5: each unknown outcome stays spent (fail closed)
    assert spent >= 0


def test_a_negative_listed_price_is_refused_and_buys_nothing(
    face: Face, canned: tuple[Canned, str]
) -> None:
    app, url = canned
    negative_server(app)
    with face.client(api_key="k", base_url=url, budget=10, max_retries=0) as client:
        with pytest.raises(APIResponseValidationError):
            client.get_domains()
        with pytest.raises(APIResponseValidationError):
            client.create_order("free.test", "x.com")
    assert posts(app) == 0


def test_a_negative_refund_is_refused_and_never_booked(
    face: Face, canned: tuple[Canned, str]
) -> None:
    app, url = canned
    negative_server(app)
    with face.client(api_key="k", base_url=url, budget=10, max_retries=0) as client:
        with pytest.raises(APIResponseValidationError):
            client.cancel_order("API-1")
        assert client._ledger.spent == 0


# --- an unknown price under a budget ----------------------------------------------------------

HIDDEN = (SandboxDomain("example.com", Decimal("5.00")),
          SandboxDomain("hidden.test", Decimal("1.00"), listed=False))  # fmt: skip


@pytest.fixture
def hidden() -> Iterator[Sandbox]:
    with Sandbox(domains=HIDDEN, balance="1000.00") as sandbox:
        yield sandbox


def test_a_crowd_of_threads_buys_nothing_at_an_unknown_price(hidden: Sandbox) -> None:
    refused: list[SpendLimitError] = []
    with hidden.client(budget=10) as client:

        def buy() -> None:
            try:
                client.create_order("hidden.test", "x.com")
            except SpendLimitError as exc:
                refused.append(exc)

        threads = [threading.Thread(target=buy) for _ in range(64)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert client.create_order("example.com", "x.com").price == 5  # listed: still bought
    assert len(refused) == 64
    assert "not in the price list" in str(refused[0])
    assert refused[0].price is None
    assert hidden.state.order_count() == 1


def test_a_crowd_of_tasks_buys_nothing_at_an_unknown_price(hidden: Sandbox) -> None:
    async def crowd() -> list[BaseException | object]:
        async with AsyncKopechkaClient(api_key=hidden.api_key, base_url=hidden.url, budget=10) as c:
            return await asyncio.gather(
                *(c.create_order("hidden.test", "x.com") for _ in range(200)),
                return_exceptions=True,
            )

    results = asyncio.run(crowd())
    assert all(isinstance(r, SpendLimitError) for r in results)
    assert hidden.state.order_count() == 0


def test_an_unknown_price_without_a_budget_is_left_to_the_server(hidden: Sandbox) -> None:
    with KopechkaClient(api_key=hidden.api_key, base_url=hidden.url) as client:
        assert client.create_order("hidden.test", "x.com").price == 1
        assert client.create_order("hidden.test", "x.com", max_price=2).price == 1
