"""Every retry rule, shown by counting the requests the sandbox received and the waits asked for.
Every test runs against both faces (``KopechkaClient`` and ``AsyncKopechkaClient``)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from kopechka import (
    APIConnectionError,
    APITimeoutError,
    InternalServerError,
    KopechkaClient,
    OrderOutcomeUnknownError,
    RateLimitError,
)
from kopechka._endpoints import ENDPOINTS, Endpoint
from kopechka._policy import MIN_RETRY_DELAY
from kopechka.testing import Sandbox

from .conftest import Canned, Sleeps
from .faces import Face


def sent(sandbox: Sandbox, method: str, path: str) -> int:
    return sum(1 for r in sandbox.requests if r.method == method and r.path == "/api/v1" + path)


@pytest.fixture
def client(face: Face, sandbox: Sandbox, sleeps: Sleeps) -> Iterator[KopechkaClient]:
    with face.sandbox_client(sandbox, sleep=sleeps, timeout=(2.0, 5.0)) as c:
        yield c


@pytest.fixture
def canned_client(
    face: Face, canned: tuple[Canned, str], sleeps: Sleeps
) -> Iterator[tuple[Canned, KopechkaClient]]:
    app, url = canned
    with face.client(api_key="test-key", base_url=url, sleep=sleeps, timeout=(2.0, 5.0)) as c:
        yield app, c


def _order(sandbox: Sandbox) -> str:
    with sandbox.client() as c:
        order_id = c.create_order("example.com", "x.com").order_id
    sandbox.deliver(order_id, content="code 123456")
    sandbox.clear_requests()
    return order_id


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_429_is_retried_for_every_endpoint_after_retry_after(
    sandbox: Sandbox, client: KopechkaClient, sleeps: Sleeps, endpoint: Endpoint
) -> None:
    order_id = _order(sandbox)
    path = endpoint.url_path(order_id)
    sandbox.fail(429, times=2, retry_after=7, path=path, method=endpoint.method)
    call = getattr(client, endpoint.name)
    assert isinstance(call(*endpoint.arguments(order_id), **endpoint.kwargs), endpoint.returns)
    assert sent(sandbox, endpoint.method, path) == 3
    assert sleeps == [7.0, 7.0]


def test_429_with_http_date_and_ms(
    sandbox: Sandbox, client: KopechkaClient, sleeps: Sleeps
) -> None:
    sandbox.fail(429, retry_after="Mon, 01 Jan 2024 00:00:00 GMT")  # in the past: the floor
    assert client.get_balance() == Decimal("100")
    assert sleeps == [MIN_RETRY_DELAY]


def test_429_retry_after_ms_wins_over_retry_after(
    canned_client: tuple[Canned, KopechkaClient], sleeps: Sleeps
) -> None:
    app, client = canned_client
    headers = [("Retry-After", "9"), ("retry-after-ms", "1500")]
    app.set("GET", "/api/v1/balance", '{"success": false, "message": "slow"}', 429, headers)
    with pytest.raises(RateLimitError):
        client.get_balance()
    assert sleeps == [1.5, 1.5, 1.5]  # three retries, each after the millisecond header


def test_429_without_retry_after_backs_off_with_jitter(
    sandbox: Sandbox, client: KopechkaClient, sleeps: Sleeps
) -> None:
    sandbox.fail(429, times=3)
    client.get_balance()
    assert len(sleeps) == 3
    for n, wait in enumerate(sleeps):
        assert 0.75 * 0.5 * 2**n <= wait <= 0.5 * 2**n


def test_429_beyond_max_retry_wait_fails_at_once(
    face: Face, sandbox: Sandbox, sleeps: Sleeps
) -> None:
    sandbox.fail(429, times=5, retry_after=3600)
    with (
        face.sandbox_client(sandbox, sleep=sleeps, max_retry_wait=60) as client,
        pytest.raises(RateLimitError) as info,
    ):
        client.get_balance()
    assert info.value.retry_after == 3600.0
    assert sleeps == []
    assert sent(sandbox, "GET", "/balance") == 1


def test_retries_run_out_with_the_last_typed_error(
    face: Face, sandbox: Sandbox, sleeps: Sleeps
) -> None:
    sandbox.fail(429, times=10, retry_after=1)
    with (
        face.sandbox_client(sandbox, sleep=sleeps, max_retries=2) as client,
        pytest.raises(RateLimitError),
    ):
        client.get_balance()
    assert sent(sandbox, "GET", "/balance") == 3


def test_max_retries_zero_disables_retrying(face: Face, sandbox: Sandbox, sleeps: Sleeps) -> None:
    sandbox.fail(503, times=10)
    with (
        face.sandbox_client(sandbox, sleep=sleeps, max_retries=0) as client,
        pytest.raises(InternalServerError),
    ):
        client.get_balance()
    assert sent(sandbox, "GET", "/balance") == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_get_retried_on_5xx(sandbox: Sandbox, client: KopechkaClient, status: int) -> None:
    sandbox.fail(status, times=2)
    assert client.get_balance() == Decimal("100")
    assert sent(sandbox, "GET", "/balance") == 3


@pytest.mark.parametrize("status", [501, 505, 400, 401, 404])
def test_get_not_retried_on_other_statuses(
    sandbox: Sandbox, client: KopechkaClient, status: int
) -> None:
    sandbox.fail(status, times=2)
    with pytest.raises(Exception):  # noqa: B017 - the class is covered by test_client
        client.get_balance()
    assert sent(sandbox, "GET", "/balance") == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize(("method", "path"), [("POST", "/orders"), ("DELETE", "/orders/{id}")])
def test_post_and_delete_never_retried_on_5xx(
    sandbox: Sandbox, client: KopechkaClient, status: int, method: str, path: str
) -> None:
    order_id = _order(sandbox)
    path = path.format(id=order_id)
    sandbox.fail(status, times=2, path=path, method=method, execute=True)
    with pytest.raises(
        OrderOutcomeUnknownError if method == "POST" else InternalServerError
    ) as info:
        if method == "POST":
            client.create_order("example.com", "x.com")
        else:
            client.cancel_order(order_id)
    cause = info.value.__cause__ if method == "POST" else info.value  # the purchase may be made
    assert isinstance(cause, InternalServerError)
    assert sent(sandbox, method, path) == 1


def test_dropped_connection_get_retried_post_not(sandbox: Sandbox, client: KopechkaClient) -> None:
    sandbox.fail(drop=True, path="/balance")
    assert client.get_balance() == Decimal("100")
    assert sent(sandbox, "GET", "/balance") == 2
    sandbox.fail(drop=True, path="/orders", method="POST", execute=True)
    with pytest.raises(OrderOutcomeUnknownError) as info:
        client.create_order("example.com", "x.com")
    assert isinstance(info.value.__cause__, APIConnectionError)
    assert sent(sandbox, "POST", "/orders") == 1
    assert sandbox.state.order_count() == 1  # bought once, its answer lost, never bought again


def test_read_timeout_get_retried_post_not(face: Face, sandbox: Sandbox, sleeps: Sleeps) -> None:
    # a read timeout a loaded machine's answers stay well inside, half the delay that trips it
    with face.sandbox_client(sandbox, sleep=sleeps, timeout=(2.0, 1.5)) as client:
        sandbox.fail(delay=3.0, path="/balance")
        assert client.get_balance() == Decimal("100")
        assert sent(sandbox, "GET", "/balance") == 2
        sandbox.fail(delay=3.0, path="/orders", method="POST")
        with pytest.raises(OrderOutcomeUnknownError, match="waiting for the answer") as info:
            client.create_order("example.com", "x.com")
        assert isinstance(info.value.__cause__, APITimeoutError)
        assert sent(sandbox, "POST", "/orders") == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "call", [lambda c: c.create_order("example.com", "x"), lambda c: c.cancel_order("A")]
)
def test_connection_refused_is_retried_even_for_post_and_delete(
    face: Face, sleeps: Sleeps, call: Callable[[KopechkaClient], object]
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/api/v1"
    client = face.client(api_key="k", base_url=url, sleep=sleeps, max_retries=2)
    with client, pytest.raises(APIConnectionError, match="could not connect") as info:
        call(client)
    assert not isinstance(info.value, APITimeoutError)
    assert len(sleeps) == 2  # the request never reached a server: safe to try again


def test_unexpected_errors_are_not_retried(face: Face, sandbox: Sandbox, sleeps: Sleeps) -> None:
    with (
        face.broken_connection() as broken,
        face.sandbox_client(sandbox, sleep=sleeps, **broken) as client,
        pytest.raises(KeyError),
    ):
        client.get_balance()
    assert sleeps == []
