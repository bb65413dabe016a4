"""The sandbox over HTTP: documented shapes and headers, faults, rate limit, admin routes."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import requests

from kopechka import KopechkaClient, RateLimitError
from kopechka.testing import Sandbox, SandboxError

H = {"X-API-Key": "test-key"}


def test_json_content_type_and_error_envelope(sandbox: Sandbox) -> None:
    ok = requests.get(sandbox.url + "/balance", headers=H, timeout=5)
    assert ok.headers["Content-Type"].startswith("application/json")
    assert ok.json() == {"success": True, "data": {"balance": 100.0}}
    bad = requests.get(sandbox.url + "/balance", timeout=5)
    assert bad.status_code == 401
    assert bad.json() == {"success": False, "message": "API key is required"}
    missing = requests.get(sandbox.url + "/nowhere", headers=H, timeout=5)
    assert missing.status_code == 404
    assert missing.json()["success"] is False


def test_bad_json_body_is_400(sandbox: Sandbox) -> None:
    for body in (b"{not json", b"[1]"):
        r = requests.post(sandbox.url + "/orders", data=body, headers=H, timeout=5)
        assert r.status_code == 400
        assert "JSON" in r.json()["message"]


def test_bad_query_is_400(sandbox: Sandbox) -> None:
    r = requests.get(sandbox.url + "/orders?page=x", headers=H, timeout=5)
    assert r.status_code == 400


def test_fault_on_one_path_only(sandbox: Sandbox, client: KopechkaClient) -> None:
    sandbox.fail(500, path="/orders", times=1)
    assert client.get_balance() == Decimal("100")  # other paths untouched
    r = requests.get(sandbox.url + "/orders", headers=H, timeout=5)
    assert r.status_code == 500
    assert requests.get(sandbox.url + "/orders", headers=H, timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("kind", "content_type", "starts"),
    [("json", "application/json", b'{"success":false'), ("html", "text/html", b"<html>"),
     ("empty", "application/json", b""), ("malformed", "application/json", b'{"success": true, "data": {"bal')],
)  # fmt: skip
def test_fault_bodies(sandbox: Sandbox, kind: str, content_type: str, starts: bytes) -> None:
    sandbox.fail(503, body=kind)
    r = requests.get(sandbox.url + "/balance", headers=H, timeout=5)
    assert r.status_code == 503
    assert r.headers["Content-Type"].startswith(content_type)
    assert r.content.startswith(starts)


def test_429_carries_retry_after(sandbox: Sandbox) -> None:
    sandbox.fail(429, retry_after=2)
    r = requests.get(sandbox.url + "/balance", headers=H, timeout=5)
    assert (r.status_code, r.headers["Retry-After"]) == (429, "2")


def test_configured_rate_limit() -> None:
    with Sandbox(rate_limit=(3, 60.0)) as sandbox:
        with sandbox.client(max_retries=0) as client:
            for _ in range(3):
                client.get_balance()
            with pytest.raises(RateLimitError) as info:
                client.get_balance()
        assert info.value.retry_after is not None
        assert 0 < info.value.retry_after <= 60


def test_bad_fault_arguments() -> None:
    with Sandbox() as sandbox:
        for kwargs in ({"times": 0}, {"body": "xml"}, {"status": 99}, {"delay": -1},
                       {"delay": float("nan")}, {"delay": float("inf")}, {"delay": 1e308},
                       {"retry_after": "1\r\nX: y"}, {"retry_after": float("nan")},
                       {"probability": 2}):  # fmt: skip
            with pytest.raises(SandboxError):
                sandbox.fail(**{"status": 500, **kwargs})  # type: ignore[arg-type]


def test_admin_routes(sandbox: Sandbox, client: KopechkaClient) -> None:
    order = client.create_order("example.com", "x.com")
    admin = sandbox.root_url + "/_sandbox"
    r = requests.post(
        admin + "/deliver",
        json={"order_id": order.order_id, "subject": "Hi", "content": "code 4455"},
        timeout=5,
    )
    assert r.status_code == 200
    assert client.wait_for_code(order.order_id, timeout=5) == "4455"
    assert (
        requests.post(admin + "/fail", json={"status": 502, "times": 1}, timeout=5).status_code
        == 200
    )
    assert requests.get(sandbox.url + "/balance", headers=H, timeout=5).status_code == 502
    requests.post(admin + "/advance", json={"minutes": 11}, timeout=5)
    assert client.get_order(order.order_id).status == "expired"
    log = requests.get(admin + "/requests", timeout=5).json()["data"]
    posts = [e for e in log if (e["method"], e["path"]) == ("POST", "/api/v1/orders")]
    assert posts[0]["query"] == {}
    assert posts[0]["headers"]["X-API-Key"] == "***"
    assert json.loads(posts[0]["body"]) == {"domain": "example.com", "site": "x.com"}
    state = requests.get(admin + "/state", timeout=5)
    assert b'"balance":"95.00"' in state.content  # a string: exact for any JSON reader
    assert state.json()["data"]["balance"] == "95.00"
    assert state.json()["data"]["orders"] == 1
    assert (
        requests.post(admin + "/deliver", json={"order_id": "nope"}, timeout=5).status_code == 404
    )
    assert requests.post(admin + "/advance", json={"minutes": "x"}, timeout=5).status_code == 400
    assert requests.post(admin + "/fail", json={"times": "many"}, timeout=5).status_code == 400
    assert requests.get(admin + "/nothing", timeout=5).status_code == 404


def test_admin_requests_are_not_recorded_or_faulted(sandbox: Sandbox) -> None:
    sandbox.fail(500, times=5)
    requests.get(sandbox.root_url + "/_sandbox/state", timeout=5)
    assert sandbox.requests == []


def test_requests_log_records_bodies(sandbox: Sandbox, client: KopechkaClient) -> None:
    client.create_order("example.com", "x.com")
    recorded = sandbox.requests[-1]
    assert recorded.json() == {"domain": "example.com", "site": "x.com"}
    assert recorded.method == "POST"


def test_stopped_sandbox_has_no_url() -> None:
    sandbox = Sandbox()
    with pytest.raises(RuntimeError, match="not running"):
        _ = sandbox.url


def test_auto_mail_sends_a_code_to_each_new_order() -> None:
    with Sandbox(auto_mail=0.1) as sandbox, sandbox.client() as client:
        order = client.create_order("example.com", "github.com")
        message = client.wait_for_message(order.order_id, timeout=5, poll_interval=0.05)
        assert message.sender == "no-reply@github.com"
        assert message.extract_code() is not None
        assert len(message.extract_code() or "") == 6
        cancelled = client.create_order("example.com", "x.com")
        client.cancel_order(cancelled.order_id)  # mail due later is dropped quietly
