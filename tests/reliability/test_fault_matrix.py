"""The fault matrix: every endpoint (the one table, ``kopechka._endpoints``) against every fault,
transient (once) and persistent, on both faces (``KopechkaClient`` and ``AsyncKopechkaClient``), asserting
the typed error or the recovered result, the exact number of requests the server saw, and that no
POST /orders is ever sent again once it may have reached the server.

For create_order every fault but 429 is served *after* the purchase (``execute=True``): the order is
bought and its answer lost, the case where a retry would buy a second address. A 429 is the server's
explicit refusal (nothing bought), after which the contract retries every method."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from kopechka import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    InternalServerError,
    KopechkaError,
    OrderOutcomeUnknownError,
    RateLimitError,
)
from kopechka._endpoints import ENDPOINTS, Endpoint
from kopechka.testing import Sandbox

from ..faces import Face

MAX_RETRIES = 2
READ_TIMEOUT = 0.5  # for the delay fault: a healthy answer on loopback takes a few ms
GENEROUS_READ_TIMEOUT = (
    10.0  # for every other fault: a loaded machine must not turn it into a timeout
)


@dataclass(frozen=True)
class Fault:
    name: str
    options: dict[str, Any]
    retried_get: bool  # does the policy retry a GET after it?
    retried_unsafe: bool  # ... a POST or DELETE?
    error: type[KopechkaError]


FAULTS = [
    Fault("429 with Retry-After", {"status": 429, "retry_after": 1}, True, True, RateLimitError),
    Fault("429 without Retry-After", {"status": 429}, True, True, RateLimitError),
    Fault(
        "429 huge Retry-After", {"status": 429, "retry_after": 86400}, False, False, RateLimitError
    ),
    Fault("500", {"status": 500}, True, False, InternalServerError),
    Fault("502 html", {"status": 502, "body": "html"}, True, False, InternalServerError),
    Fault("503 empty", {"status": 503, "body": "empty"}, True, False, InternalServerError),
    Fault("504", {"status": 504}, True, False, InternalServerError),
    Fault("200 html", {"status": 200, "body": "html"}, False, False, APIResponseValidationError),
    Fault(
        "200 malformed",
        {"status": 200, "body": "malformed"},
        False,
        False,
        APIResponseValidationError,
    ),
    Fault("200 truncated", {"status": 200, "body": "truncated"}, True, False, APIConnectionError),
    Fault("delay past timeout", {"delay": READ_TIMEOUT * 3}, True, False, APITimeoutError),
    Fault("dropped connection", {"drop": True}, True, False, APIConnectionError),
]

SCENARIOS = [
    pytest.param(e, f, persistent, id=f"{e.name}-{f.name}-{'persistent' if persistent else 'once'}")
    for e in ENDPOINTS
    for f in FAULTS
    for persistent in (False, True)
]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(balance=Decimal("100000")) as sb:
        yield sb


@pytest.fixture
def order_id(sandbox: Sandbox) -> str:
    """A fresh active order with one mail (so start-polling is allowed)."""
    sandbox.app.faults.clear()
    with sandbox.client() as client:
        order = client.create_order("inbox.test", "x.com")
    sandbox.deliver(order.order_id, content="code 123456")
    sandbox.clear_requests()
    return order.order_id


@pytest.mark.parametrize(("endpoint", "fault", "persistent"), SCENARIOS)
def test_scenario(
    face: Face,
    sandbox: Sandbox,
    order_id: str,
    endpoint: Endpoint,
    fault: Fault,
    persistent: bool,
) -> None:
    path = endpoint.url_path(order_id)
    times = 50 if persistent else 1
    refused = fault.options.get("status") == 429
    execute = endpoint.name == "create_order" and not refused
    orders_before = sandbox.state.order_count()
    sandbox.fail(**fault.options, times=times, path=path, method=endpoint.method, execute=execute)
    waits: list[float] = []
    retried = fault.retried_get if endpoint.idempotent else fault.retried_unsafe
    read_timeout = READ_TIMEOUT if "delay" in fault.options else GENEROUS_READ_TIMEOUT
    with face.sandbox_client(
        sandbox, sleep=waits.append, max_retries=MAX_RETRIES, timeout=(1.0, read_timeout)
    ) as client:
        call = getattr(client, endpoint.name)
        arguments = endpoint.arguments(order_id)
        if retried and not persistent:
            result = call(*arguments, **endpoint.kwargs)  # recovered
            assert isinstance(result, endpoint.returns)
            expected = 2
        else:
            lost = execute and not retried  # the order was bought and its answer lost
            with pytest.raises(OrderOutcomeUnknownError if lost else fault.error) as info:
                call(*arguments, **endpoint.kwargs)
            error = info.value.__cause__ if lost else info.value
            assert type(error) is fault.error, repr(error)  # exactly, not a subclass
            expected = MAX_RETRIES + 1 if retried else 1
    seen = [
        r for r in sandbox.requests if r.method == endpoint.method and r.path == "/api/v1" + path
    ]
    assert len(seen) == expected
    assert len(waits) == expected - 1
    posts = [r for r in sandbox.requests if r.method == "POST" and r.path == "/api/v1/orders"]
    bought = sandbox.state.order_count() - orders_before
    if endpoint.name != "create_order":
        assert posts == []
        assert bought == 0
    elif refused:  # every attempt was refused before buying; only a recovered one buys
        assert bought == (1 if retried and not persistent else 0)
    else:  # the first POST bought the order: it is never sent again
        assert len(posts) == 1
        assert bought == 1
    sandbox.app.faults.clear()


def test_matrix_is_complete() -> None:
    assert len(SCENARIOS) == len(ENDPOINTS) * len(FAULTS) * 2
