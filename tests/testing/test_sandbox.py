"""The Sandbox's test seams as a user meets them, over real sockets: reset, seeded faults, deliver by
address, the "order bought" hook, binding beyond loopback, the guarded admin routes, the request
log, money on the wire and the served OpenAPI description."""

from __future__ import annotations

import json
import logging
import threading
from decimal import Decimal
from typing import Any

import pytest
import requests

from kopechka import InternalServerError, KopechkaClient
from kopechka.testing import AutoMail, Sandbox, SandboxDomain, SandboxError
from kopechka.testing._spec import document

H = {"X-API-Key": "test-key"}


def test_reset_gives_a_fresh_sandbox(sandbox: Sandbox, client: KopechkaClient) -> None:
    client.create_order("example.com", "x.com")
    sandbox.fail(500, times=None)
    sandbox.on_order(lambda order: None)
    sandbox.reset()
    assert sandbox.requests == []
    assert sandbox.app.faults == []
    assert sandbox.app.on_order == []
    assert client.get_balance() == Decimal("100.00")
    assert client.list_orders().pagination.total == 0
    sandbox.fail(503, times=None)
    r = requests.post(
        sandbox.root_url + "/_sandbox/reset", json={}, timeout=5
    )  # the admin route does the same
    assert r.json() == {"success": True, "message": "Sandbox reset"}
    assert client.create_order("example.com", "y.com").order_id == "API-1234567890"


def test_seeded_random_faults_replay(sleeps: list[float]) -> None:
    def statuses(seed: int) -> list[int]:
        with Sandbox(seed=seed) as sb:
            sb.fail(500, probability=0.25, times=None)
            with requests.Session() as s:
                return [
                    s.get(sb.url + "/balance", headers=H, timeout=5).status_code for _ in range(40)
                ]

    first = statuses(11)
    assert first == statuses(11)
    assert first != statuses(12)
    assert 500 in first
    assert 200 in first


def test_soak_with_random_faults_and_retries(sleeps: list[float]) -> None:
    with Sandbox(seed=5) as sb, sb.client(sleep=sleeps, max_retries=10) as client:
        sb.fail(503, probability=0.3, times=None, method="GET")
        balances = {client.get_balance() for _ in range(30)}  # GETs retry through the faults
        assert balances == {Decimal("100.00")}
        assert len(sleeps) > 0
        sb.fail(500, times=None, probability=1.0, path="/profile")
        with pytest.raises(InternalServerError):
            client.get_profile()


def test_deliver_to_an_address(sandbox: Sandbox, client: KopechkaClient) -> None:
    order = client.create_order("example.com", "x.com")
    sandbox.deliver(to=order.email, content="Your code is 975310")
    assert client.wait_for_code(order.order_id, timeout=5) == "975310"
    with pytest.raises(SandboxError, match="No order") as info:
        sandbox.deliver(to="nobody@example.com", content="x")
    assert info.value.status == 404
    with pytest.raises(SandboxError, match="exactly one"):
        sandbox.deliver(order.order_id, to=order.email)
    with pytest.raises(SandboxError, match="exactly one"):
        sandbox.deliver()
    r = requests.post(
        sandbox.root_url + "/_sandbox/deliver", json={"to": order.email, "content": "2"}, timeout=5
    )
    assert r.status_code == 200


def test_on_order_hook_is_public_and_may_call_the_api(sandbox: Sandbox) -> None:
    seen: list[dict[str, Any]] = []

    @sandbox.on_order
    def site_sends_code(order: dict[str, Any]) -> None:
        seen.append(order)
        with sandbox.client() as other:  # another request while the purchase is answered
            assert other.get_balance() == Decimal("95.00")
        sandbox.deliver(order["orderId"], content="code 5151")

    with sandbox.client() as client, client.mailbox("example.com", "site.example") as box:
        assert box.wait_for_code(timeout=5) == "5151"
    assert [o["site"] for o in seen] == ["site.example"]
    assert str(seen[0]["price"]) == "5.00"


def test_a_raising_hook_is_logged_and_the_purchase_stands(
    sandbox: Sandbox, client: KopechkaClient, caplog: pytest.LogCaptureFixture
) -> None:
    @sandbox.on_order
    def broken(order: dict[str, Any]) -> None:
        raise ZeroDivisionError(order["orderId"])

    with caplog.at_level(logging.ERROR, logger="kopechka.testing"):
        order = client.create_order("example.com", "x.com")
    assert order.order_id == "API-1234567890"
    assert "on_order hook raised" in caplog.text


def test_auto_mail_content_is_chosen() -> None:
    mail = AutoMail(delay=0, sender="robot@{site}", subject="{site} code", content="<b>{code}</b>")
    with Sandbox(auto_mail=mail, seed=3) as sb, sb.client() as client:
        order = client.create_order("example.com", "game.example")
        message = client.wait_for_message(order.order_id, timeout=5, poll_interval=0.05)
    assert (message.sender, message.subject) == ("robot@game.example", "game.example code")
    assert message.content == f"<b>{message.extract_code()}</b>"
    with pytest.raises(ValueError, match="placeholder"):
        AutoMail(content="{cod}")
    inert = AutoMail(content="{code.__class__} {{site}}").render(
        {"site": "game.example", "domain": "example.com", "email": "e@x", "orderId": "API-1"}, "1"
    )
    assert inert[2] == "{code.__class__} {game.example}"  # no format mini-language: text stays text
    with pytest.raises(ValueError, match="delay"):
        Sandbox(auto_mail=float("nan"))


@pytest.mark.filterwarnings("error")
def test_binding_beyond_loopback_is_loud_and_guards_the_admin_routes() -> None:
    sb = Sandbox(host="0.0.0.0")
    with pytest.warns(RuntimeWarning, match="beyond loopback"):
        sb.start()
    try:
        assert sb.admin_token
        assert len(sb.admin_token) >= 20
        assert sb.root_url.startswith("http://127.0.0.1:")
        with sb.client() as client:  # reached through loopback
            assert client.get_balance() == Decimal("100.00")
        state = sb.root_url + "/_sandbox/state"
        assert requests.get(state, timeout=5).status_code == 401
        token = {"X-Sandbox-Token": sb.admin_token}
        assert requests.get(state, headers=token, timeout=5).status_code == 200
    finally:
        sb.stop()


def test_loopback_binding_is_quiet_and_tokenless(recwarn: pytest.WarningsRecorder) -> None:
    with Sandbox(host="localhost") as sb:
        assert sb.admin_token is None
        assert requests.get(sb.root_url + "/_sandbox/state", timeout=5).status_code == 200
    assert len(recwarn) == 0


def test_admin_routes_refuse_cross_site_requests(sandbox: Sandbox) -> None:
    advance = sandbox.root_url + "/_sandbox/advance"
    simple = requests.post(
        advance, data='{"minutes": 60}', headers={"Content-Type": "text/plain"}, timeout=5
    )
    assert simple.status_code == 415
    foreign = requests.post(
        advance, json={"minutes": 60}, headers={"Origin": "https://evil.example"}, timeout=5
    )
    assert foreign.status_code == 403
    fetch = requests.post(
        advance, json={"minutes": 60}, headers={"Sec-Fetch-Site": "cross-site"}, timeout=5
    )
    assert fetch.status_code == 403
    rebound = requests.post(
        advance, json={"minutes": 60}, headers={"Host": "evil.example"}, timeout=5
    )
    assert rebound.status_code == 403
    assert sandbox.state.elapsed == 0.0
    assert requests.post(advance, json={"minutes": 60}, timeout=5).status_code == 200


def test_request_log_over_http(sandbox: Sandbox, client: KopechkaClient) -> None:
    order = client.create_order("example.com", "x.com")
    requests.post(
        sandbox.url + f"/orders/{order.order_id}/start-polling",
        data="z" * 5000,
        headers=H,
        timeout=5,
    )
    log = requests.get(sandbox.root_url + "/_sandbox/requests", timeout=5).json()["data"]
    assert [(e["method"], e["path"]) for e in log] == [
        ("POST", "/api/v1/orders"), ("POST", f"/api/v1/orders/{order.order_id}/start-polling")
    ]  # fmt: skip
    assert log[0]["headers"]["X-API-Key"] == "***"
    assert "test-key" not in json.dumps(log)
    assert json.loads(log[0]["body"]) == {"domain": "example.com", "site": "x.com"}
    assert (log[1]["body_size"], log[1]["body_truncated"], len(log[1]["body"])) == (
        5000,
        True,
        2048,
    )


def test_money_on_the_wire_keeps_its_digits() -> None:
    domains = [
        SandboxDomain("cents.test", Decimal("0.10")),
        SandboxDomain("big.test", Decimal("12345678901.99")),
    ]
    with Sandbox(domains=domains, balance="99999999999.50") as sb:

        def get(path: str) -> bytes:
            return requests.get(sb.url + path, headers=H, timeout=5).content

        assert get("/balance") == b'{"success":true,"data":{"balance":99999999999.50}}'
        assert b'"price":0.10,' in get("/domains")
        assert b'"price":12345678901.99,' in get("/domains")
        r = requests.post(
            sb.url + "/orders", json={"domain": "big.test", "site": "x"}, headers=H, timeout=5
        )
        assert b'"price":12345678901.99,' in r.content
        assert get("/balance") == b'{"success":true,"data":{"balance":87654321097.51}}'
        cancel = requests.delete(sb.url + "/orders/API-1234567890", headers=H, timeout=5).content
        assert b'"refundAmount":12345678901.99}' in cancel


def test_the_served_openapi_is_the_shipped_one_pointing_here(sandbox: Sandbox) -> None:
    served = requests.get(sandbox.openapi_url, timeout=5)
    assert served.headers["Content-Type"].startswith("application/json")
    data = served.json()
    assert data["servers"][0]["url"] == "/api/v1"
    assert {**data, "servers": None} == {**document(), "servers": None}
    assert sandbox.requests == []  # the description is not an API request


def test_bad_arguments_are_value_errors() -> None:
    for kwargs in ({"balance": "abc"}, {"port": 70000}, {"port": True}, {"host": ""},
                   {"rate_limit": (0, 1.0)}, {"order_duration": 0}, {"admin_token": "a\nb"}):  # fmt: skip
        with pytest.raises(ValueError):
            Sandbox(**kwargs)


def test_concurrent_sleepers_share_one_virtual_clock() -> None:
    with Sandbox(virtual_time=True) as sb:
        threads = [threading.Thread(target=sb.sleep, args=(10,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
        assert sb.clock() == pytest.approx(40.0)  # every sleep moves the one clock
