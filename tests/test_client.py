"""The client through real sockets: every endpoint on the vendor's example bodies and on the sandbox,
every error class, arguments checked before any request, configuration."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import certifi
import pytest
import requests

from kopechka import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    KopechkaClient,
    KopechkaError,
    NotFoundError,
    OrderStatus,
    PermissionDeniedError,
    RateLimitError,
)
from kopechka.testing import Sandbox

from . import vendor_examples as ex
from .conftest import Canned

# Each endpoint on the vendor's example answer, for both clients: tests/test_endpoints.py (driven by
# the one endpoint table, kopechka._endpoints).


def test_list_orders_sends_query(canned_client: tuple[Canned, KopechkaClient]) -> None:
    app, client = canned_client
    app.set("GET", "/api/v1/orders", ex.ORDERS)
    client.list_orders(page=2, limit=50, status=OrderStatus.ACTIVE, domain="example.com")
    assert app.received[-1][1] == "/api/v1/orders?page=2&limit=50&status=active&domain=example.com"


def test_every_endpoint_on_the_sandbox(sandbox: Sandbox, client: KopechkaClient) -> None:
    assert client.get_balance() == Decimal("100")
    assert client.get_profile().balance == Decimal("100")
    prices = {d.name: d.price for d in client.get_domains()}
    assert prices["example.com"] == Decimal("5.00")
    order = client.create_order("example.com", "instagram.com")
    assert order.status == OrderStatus.PENDING
    assert order.email.endswith("@example.com")
    assert client.get_balance() == Decimal("95")
    detail = client.get_order(order.order_id)
    assert detail.status == OrderStatus.ACTIVE
    assert detail.end_time is not None
    assert (detail.end_time - detail.created_at).total_seconds() == 600
    assert [o.order_id for o in client.list_orders().orders] == [order.order_id]
    sandbox.deliver(
        order.order_id, sender="no-reply@instagram.com", subject="Code", content="code 777123"
    )
    listing = client.get_messages(order.order_id)
    assert listing.messages[0].sender == "no-reply@instagram.com"
    assert listing.order.status == OrderStatus.ACTIVE
    assert client.start_polling(order.order_id).polling_status == "active"
    assert client.cancel_order(order.order_id).refund_amount == Decimal("0")
    assert client.get_balance() == Decimal("95")


def test_iter_orders_walks_every_page_lazily(sandbox: Sandbox, client: KopechkaClient) -> None:
    bought = [client.create_order("inbox.test", f"s{i}.com").order_id for i in range(7)]
    sandbox.clear_requests()
    iterator = client.iter_orders(page_size=3)
    assert sandbox.requests == []  # nothing fetched before the first item is asked for
    first = next(iterator)
    assert len(sandbox.requests) == 1
    rest = [o.order_id for o in iterator]
    assert sorted([first.order_id, *rest]) == sorted(bought)
    assert len(sandbox.requests) == 3
    assert list(client.iter_orders(domain="example.com")) == []


@pytest.mark.parametrize("arriving", [1, 3, 7])
def test_iter_orders_yields_each_order_once_while_new_ones_arrive(
    sandbox: Sandbox, client: KopechkaClient, arriving: int
) -> None:
    present = {client.create_order("inbox.test", f"s{i}.com").order_id for i in range(6)}
    iterator = client.iter_orders(page_size=3)
    seen = [next(iterator).order_id for _ in range(3)]
    for i in range(arriving):  # pushes orders from page 1 to the next pages
        client.create_order("inbox.test", f"late{i}.com")
    seen += [o.order_id for o in iterator]
    assert len(seen) == len(set(seen))  # no order twice
    assert present <= set(seen)  # every order present throughout was yielded


def test_iter_orders_yields_every_order_while_the_caller_cancels(
    sandbox: Sandbox, client: KopechkaClient
) -> None:
    bought = {client.create_order("inbox.test", f"s{i}.com").order_id for i in range(25)}
    cancelled = []
    for order in client.iter_orders(status="active", page_size=10):
        client.cancel_order(order.order_id)  # the rest moves up a page
        cancelled.append(order.order_id)
    assert sorted(cancelled) == sorted(bought)
    assert client.list_orders(status="active").orders == []


def test_iter_orders_checks_arguments_at_call(client: KopechkaClient) -> None:
    with pytest.raises(ValueError, match="limit"):
        client.iter_orders(page_size=0)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, BadRequestError), (401, AuthenticationError), (403, PermissionDeniedError),
     (404, NotFoundError), (409, APIStatusError), (429, RateLimitError), (500, InternalServerError),
     (501, InternalServerError)],
)  # fmt: skip
def test_every_status_class(sandbox: Sandbox, status: int, cls: type[APIStatusError]) -> None:
    sandbox.fail(status, times=10)
    with sandbox.client(max_retries=0) as client, pytest.raises(cls) as info:
        client.get_balance()
    assert type(info.value) is cls
    assert info.value.status_code == status
    assert info.value.body["success"] is False


def test_documented_refusals(sandbox: Sandbox, client: KopechkaClient) -> None:
    with pytest.raises(BadRequestError, match="not available"):
        client.create_order("nope.example", "x.com")
    with pytest.raises(NotFoundError, match="Order not found"):
        client.get_order("API-0")
    with (
        Sandbox(balance="1") as poor,
        poor.client() as c,
        pytest.raises(BadRequestError, match="Insufficient"),
    ):
        c.create_order("example.com", "x.com")
    with (
        sandbox.client(api_key="wrong") as bad,
        pytest.raises(AuthenticationError, match="Invalid API key"),
    ):
        bad.get_balance()


@pytest.mark.parametrize("body", ["html", "empty", "malformed"])
def test_2xx_that_is_not_json(sandbox: Sandbox, client: KopechkaClient, body: str) -> None:
    sandbox.fail(200, body=body)
    with pytest.raises(APIResponseValidationError) as info:
        client.get_balance()
    assert "GET /balance" in str(info.value)


def test_success_false_on_200(canned_client: tuple[Canned, KopechkaClient]) -> None:
    app, client = canned_client
    app.set("GET", "/api/v1/balance", '{"success": false, "message": "Account frozen"}')
    with pytest.raises(APIStatusError, match="Account frozen") as info:
        client.get_balance()
    assert info.value.status_code == 200


def test_truncated_body_is_a_connection_error(sandbox: Sandbox) -> None:
    sandbox.fail(200, body="truncated")
    with sandbox.client(max_retries=0) as client, pytest.raises(APIConnectionError):
        client.get_balance()


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_order(""),
        lambda c: c.get_order("../balance/.."[:2]),
        lambda c: c.cancel_order("  "),
        lambda c: c.get_messages(None),
        lambda c: c.start_polling("a\r\nb"),
        lambda c: c.create_order("", "x"),
        lambda c: c.create_order("example.com", ""),
        lambda c: c.list_orders(page=0),
        lambda c: c.list_orders(limit=0),
        lambda c: c.list_orders(domain=""),
        lambda c: c.wait_for_message("API-1", timeout=0),
        lambda c: c.wait_for_message("API-1", poll_interval=-1),
        lambda c: c.wait_for_message("", timeout=1),
    ],
)
def test_arguments_checked_before_any_request(
    sandbox: Sandbox, client: KopechkaClient, call: Callable[[KopechkaClient], object]
) -> None:
    with pytest.raises(ValueError, match="must"):
        call(client)
    assert sandbox.requests == []


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KOPECHKA_API_KEY", raising=False)
    with pytest.raises(KopechkaError, match="KOPECHKA_API_KEY"):
        KopechkaClient()
    monkeypatch.setenv("KOPECHKA_API_KEY", "")
    with pytest.raises(KopechkaError, match="KOPECHKA_API_KEY"):
        KopechkaClient()
    with pytest.raises(KopechkaError, match="whitespace"):
        KopechkaClient("a b")


def test_environment_supplies_key_and_base_url(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOPECHKA_API_KEY", "test-key")
    monkeypatch.setenv("KOPECHKA_BASE_URL", sandbox.url)
    with KopechkaClient() as client:
        assert client.base_url == sandbox.url
        assert client.get_balance() == Decimal("100")
    monkeypatch.delenv("KOPECHKA_BASE_URL")
    assert KopechkaClient().base_url == "https://api.kopechka.com/api/v1"


@pytest.mark.parametrize(
    "kwargs",
    [{"timeout": 0}, {"timeout": -1.0}, {"timeout": (1.0,) * 3}, {"timeout": None}, {"timeout": "5"},
     {"max_retries": -1}, {"max_retries": 1.5}, {"max_retry_wait": -1}],
)  # fmt: skip
def test_bad_configuration(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=f"{next(iter(kwargs))} must be"):
        KopechkaClient("k", **kwargs)


def test_a_host_idna_refuses_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="base_url is not a valid URL") as info:
        KopechkaClient("k", base_url="https://-\u00e4-.com/api")
    assert not isinstance(info.value, requests.RequestException)  # the library's own error
    idna = KopechkaClient("k", base_url="https://b\u00fccher.example/api")
    assert idna._transport._direct is not None
    assert idna._transport._direct.prefix == "https://xn--bcher-kva.example/api"  # as requests


def test_timeout_forms() -> None:
    assert KopechkaClient("k").timeout == (10.0, 30.0)
    assert KopechkaClient("k", timeout=5).timeout == (5.0, 5.0)
    assert KopechkaClient("k", timeout=(1, 2)).timeout == (1.0, 2.0)


def test_callers_session_is_used_and_left_open(sandbox: Sandbox) -> None:
    import requests

    session = requests.Session()
    session.headers["X-Trace"] = "mine"
    with sandbox.client(session=session) as client:
        client.get_balance()
    assert sandbox.requests[-1].headers["X-Trace"] == "mine"
    # the client did not close it: the session still works afterwards
    assert (
        session.get(sandbox.url + "/balance", headers={"X-API-Key": "test-key"}).status_code == 200
    )
    session.close()


def test_client_closes_its_own_session(sandbox: Sandbox) -> None:
    client = sandbox.client()
    client.get_balance()
    adapter = client._transport.session.get_adapter(sandbox.url)
    assert adapter.poolmanager.pools  # type: ignore[attr-defined]
    client.close()
    assert not adapter.poolmanager.pools  # type: ignore[attr-defined]


def test_environment_proxies_resolved_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundle = tmp_path / "custom.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes())  # a bundle ssl can load
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    client = KopechkaClient("k")
    session = client._transport.session
    assert session.trust_env is False  # no per-request scan of the environment
    assert session.proxies.get("https") == "http://proxy.internal:3128"
    assert session.verify == str(bundle)


def test_missing_ca_bundle_refused_at_construction(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match="does not exist"):
        KopechkaClient("k")


def test_no_proxy_bypasses_for_the_sandbox(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with sandbox.client() as client:
        assert client.get_balance() == Decimal("100")
        assert client._transport.session.proxies == {}
