"""The key stays safe: not in reprs, errors or logs; never over plain HTTP to a remote host; never
sent to another origin by a redirect; an order id cannot address another endpoint."""

from __future__ import annotations

import logging

import pytest

from kopechka import APIStatusError, AuthenticationError, KopechkaClient, KopechkaError
from kopechka.testing import Sandbox
from kopechka.testing._server import AppServer

from .conftest import Canned

SECRET = "sk-live-0123456789abcdef"


def test_key_not_in_repr_or_str() -> None:
    client = KopechkaClient(SECRET)
    assert SECRET not in repr(client)
    assert SECRET not in str(client)
    assert "***" in repr(client)


def test_key_sent_as_header(sandbox: Sandbox) -> None:
    with sandbox.client() as client:
        client.get_balance()
    assert sandbox.requests[-1].headers["X-API-Key"] == "test-key"


def test_key_scrubbed_from_echoing_server(canned: tuple[Canned, str]) -> None:
    app, url = canned
    app.set(
        "GET", "/api/v1/balance", f'{{"success": false, "message": "bad key {SECRET}"}}', status=401
    )
    with KopechkaClient(SECRET, base_url=url) as client, pytest.raises(AuthenticationError) as info:
        client.get_balance()
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value.body)
    assert SECRET not in repr(info.value.args)


def test_key_never_logged(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with Sandbox(api_key=SECRET) as sb, sb.client() as client:
        sb.fail(429, retry_after=0)
        client.get_balance()
        with pytest.raises(KopechkaError):
            client.get_order("API-none")
    records = [r for r in caplog.records if r.name == "kopechka"]
    assert records, "the funnel logs one record per attempt"
    assert any("attempt 2" in r.getMessage() for r in records)
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert SECRET not in str(record.__dict__)


def test_log_record_fields(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kopechka")
    with sandbox.client() as client:
        client.get_balance()
    record = next(r for r in caplog.records if r.name == "kopechka")
    assert record.levelno == logging.DEBUG
    fields = record.__dict__
    assert (fields["method"], fields["path"], fields["status"], fields["attempt"]) == (
        "GET",
        "/balance",
        200,
        1,
    )
    assert fields["elapsed_ms"] >= 0


@pytest.mark.parametrize(
    "url", ["http://api.kopechka.com/api/v1", "http://192.168.1.5:8025/api/v1"]
)
def test_plain_http_refused_for_remote_hosts(url: str) -> None:
    with pytest.raises(ValueError, match="clear text"):
        KopechkaClient(SECRET, base_url=url)


def test_plain_http_allowed_on_loopback() -> None:
    for url in ("http://localhost:1/api", "http://127.0.0.2:1/api", "http://[::1]:1/api"):
        assert KopechkaClient(SECRET, base_url=url).base_url == url


def test_cross_origin_redirect_not_followed(canned: tuple[Canned, str]) -> None:
    app, url = canned
    elsewhere = Canned()
    elsewhere.set("GET", "/steal", '{"success": true, "data": {"balance": 1}}')
    with AppServer(elsewhere) as other:
        target = other.root_url + "/steal"
        app.set("GET", "/api/v1/balance", b"", status=302, headers=[("Location", target)])
        with KopechkaClient(SECRET, base_url=url) as client, pytest.raises(APIStatusError) as info:
            client.get_balance()
    assert info.value.status_code == 302
    assert "not followed" in str(info.value)
    assert elsewhere.received == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_no_redirect_is_followed_even_to_the_same_origin(
    canned: tuple[Canned, str], status: int, method: str
) -> None:
    app, url = canned
    path = "/api/v1/balance" if method == "GET" else "/api/v1/orders"
    app.set(method, path, b"", status=status, headers=[("Location", path + "2")])
    app.set(method, path + "2", '{"success": true, "data": {"balance": 2.5}}')
    with KopechkaClient(SECRET, base_url=url) as client, pytest.raises(APIStatusError) as info:
        if method == "GET":
            client.get_balance()
        else:
            client.create_order("example.com", "x.com")
    assert info.value.status_code == status
    assert [r[1] for r in app.received] == [path]  # one request, never the redirect's target


@pytest.mark.parametrize(
    ("order_id", "path"),
    [("../balance", "/api/v1/orders/..%2Fbalance"), ("x/messages", "/api/v1/orders/x%2Fmessages"),
     ("a?b#c", "/api/v1/orders/a%3Fb%23c")],
)  # fmt: skip
def test_order_id_cannot_reach_another_endpoint(
    sandbox: Sandbox, client: KopechkaClient, order_id: str, path: str
) -> None:
    with pytest.raises(KopechkaError):
        client.get_order(order_id)
    assert sandbox.requests[-1].path == path
