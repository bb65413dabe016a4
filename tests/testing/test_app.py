"""Table tests of ``SandboxApp.handle`` with no socket: method, target, headers, body -> status, headers
and the shape of the body. Fake clocks; one fresh app per row."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from kopechka.testing._app import Fault, Reply, SandboxApp
from kopechka.testing._automail import AutoMail
from kopechka.testing._state import SandboxDomain, SandboxError, SandboxState

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
KEY = {"X-API-Key": "test-key"}
ADMIN = {"Host": "127.0.0.1:8025", "Content-Type": "application/json"}
DOCS_ORDER = "API-1234567890"  # the first order of a fresh sandbox


def make_app(**kwargs: Any) -> SandboxApp:
    state = SandboxState(clock=lambda: T0, ticker=lambda: 0.0)
    return SandboxApp(state, **kwargs)


def call(
    app: SandboxApp, method: str, target: str, headers: dict[str, str] | None = None,
    body: bytes | dict[str, Any] = b"",
) -> Reply:  # fmt: skip
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    return app.handle(method, target, headers if headers is not None else KEY, raw)


def body(reply: Reply) -> Any:
    return json.loads(reply.body, parse_float=Decimal)


def with_order(app: SandboxApp) -> None:
    assert (
        call(app, "POST", "/api/v1/orders", body={"domain": "example.com", "site": "x"}).status
        == 200
    )


def with_mail(app: SandboxApp) -> None:
    with_order(app)
    app.deliver(DOCS_ORDER, None, "a@b", "Code", "1234")


def error_saying(text: str) -> Callable[[Any], bool]:
    return lambda b: b["success"] is False and text in b["message"]


def envelope(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda b: b["success"] is True and check(b["data"])


Row = tuple[
    str,
    str,
    str,
    dict[str, str] | None,
    Any,
    Callable[[SandboxApp], None] | None,
    int,
    Callable[[Any], bool],
]

ROWS: list[Row] = [
    # the documented API, each shape as the vendor documentation writes it
    ("profile", "GET", "/api/v1/profile", None, b"", None, 200,
     envelope(lambda d: d["balance"] == Decimal("100.00") and d["emailVerified"] is True)),
    ("balance", "GET", "/api/v1/balance", None, b"", None, 200,
     envelope(lambda d: d == {"balance": Decimal("100.00")})),
    ("domains", "GET", "/api/v1/domains", None, b"", None, 200,
     envelope(lambda d: d[0]["name"] == "example.com" and str(d[0]["price"]) == "5.00")),
    ("list: pagination beside data", "GET", "/api/v1/orders?page=1&limit=10", None, b"", with_order, 200,
     lambda b: b["pagination"] == {"page": 1, "limit": 10, "total": 1, "pages": 1} and len(b["data"]) == 1),
    ("list: empty filter values mean no filter", "GET", "/api/v1/orders?status=&domain=", None, b"", with_order, 200,
     lambda b: b["pagination"]["total"] == 1),
    ("create: no id, pending", "POST", "/api/v1/orders", None, {"domain": "example.com", "site": "x"}, None, 200,
     lambda b: b["message"] == "Order created successfully" and "id" not in b["data"] and b["data"]["status"] == "pending"),
    ("create: extra fields are ignored", "POST", "/api/v1/orders", None, {"domain": "example.com", "site": "x", "x": [1]}, None, 200,
     envelope(lambda d: d["site"] == "x")),
    ("get order: duration and endTime", "GET", f"/api/v1/orders/{DOCS_ORDER}", None, b"", with_order, 200,
     envelope(lambda d: d["duration"] == 10 and d["endTime"] == "2024-01-01T00:10:00Z")),
    ("cancel: no data envelope", "DELETE", f"/api/v1/orders/{DOCS_ORDER}", None, b"", with_order, 200,
     lambda b: "data" not in b and str(b["refundAmount"]) == "5.00"),
    ("messages: no envelope, snake_case created_at, from", "GET", f"/api/v1/orders/{DOCS_ORDER}/messages", None, b"", with_mail, 200,
     lambda b: "data" not in b and "created_at" in b["order"] and b["messages"][0]["from"] == "a@b"),
    ("start-polling", "POST", f"/api/v1/orders/{DOCS_ORDER}/start-polling", None, b"", with_mail, 200,
     envelope(lambda d: d == {"orderId": DOCS_ORDER, "pollingStatus": "active"})),
    ("percent-encoded order id", "GET", "/api/v1/orders/API%2D1234567890", None, b"", with_order, 200,
     envelope(lambda d: d["orderId"] == DOCS_ORDER)),
    # the service's refusals
    ("no key", "GET", "/api/v1/balance", {}, b"", None, 401, error_saying("required")),
    ("wrong key", "GET", "/api/v1/balance", {"x-api-key": "nope"}, b"", None, 401, error_saying("Invalid")),
    ("unknown order", "GET", "/api/v1/orders/API-1", None, b"", None, 404, error_saying("not found")),
    ("unknown route", "GET", "/api/v1/nowhere", None, b"", None, 404, error_saying("Route")),
    ("outside the API", "GET", "/", None, b"", None, 404, error_saying("Route")),
    ("unknown domain", "POST", "/api/v1/orders", None, {"domain": "nope.test", "site": "x"}, None, 400, error_saying("not available")),
    ("start-polling before mail", "POST", f"/api/v1/orders/{DOCS_ORDER}/start-polling", None, b"", with_order, 400, error_saying("at least one")),
    # what breaks the description: 400 naming it
    ("page=² (isdigit, not ASCII)", "GET", "/api/v1/orders?page=%C2%B2", None, b"", None, 400, error_saying("'page'")),
    ("page of 5,000 digits", "GET", "/api/v1/orders?page=" + "9" * 5000, None, b"", None, 400, error_saying("'page'")),
    ("limit of 5,000 digits", "GET", "/api/v1/orders?limit=" + "1" * 5000, None, b"", None, 400, error_saying("'limit'")),
    ("page=0", "GET", "/api/v1/orders?page=0", None, b"", None, 400, error_saying("'page'")),
    ("page=-1", "GET", "/api/v1/orders?page=-1", None, b"", None, 400, error_saying("'page'")),
    ("page empty", "GET", "/api/v1/orders?page=", None, b"", None, 400, error_saying("'page'")),
    ("limit past int32", "GET", "/api/v1/orders?limit=2147483648", None, b"", None, 400, error_saying("'limit'")),
    ("status too long", "GET", "/api/v1/orders?status=" + "a" * 33, None, b"", None, 400, error_saying("'status'")),
    ("order id too long", "GET", "/api/v1/orders/" + "A" * 129, None, b"", None, 400, error_saying("'orderId'")),
    ("too many query fields", "GET", "/api/v1/orders?" + "&".join(f"k{i}=1" for i in range(1001)), None, b"", None, 400, error_saying("query")),
    ("body not JSON", "POST", "/api/v1/orders", None, b"{not json", None, 400, error_saying("JSON")),
    ("body a list", "POST", "/api/v1/orders", None, b"[1]", None, 400, error_saying("JSON object")),
    ("body missing", "POST", "/api/v1/orders", None, b"", None, 400, error_saying("required")),
    ("site missing", "POST", "/api/v1/orders", None, {"domain": "example.com"}, None, 400, error_saying("'site'")),
    ("site not a string", "POST", "/api/v1/orders", None, {"domain": "example.com", "site": 5}, None, 400, error_saying("'site'")),
    ("site empty", "POST", "/api/v1/orders", None, {"domain": "example.com", "site": ""}, None, 400, error_saying("'site'")),
    ("site of 254 characters", "POST", "/api/v1/orders", None, {"domain": "example.com", "site": "s" * 254}, None, 400, error_saying("'site'")),
    ("200,000-deep JSON", "POST", "/api/v1/orders", None, b"[" * 200_000 + b"]" * 200_000, None, 400, error_saying("nested")),
    ("NaN is not JSON", "POST", "/api/v1/orders", None, b'{"domain": NaN, "site": "x"}', None, 400, error_saying("JSON")),
    ("invalid UTF-8", "POST", "/api/v1/orders", None, b'{"domain": "\xff", "site": "x"}', None, 400, error_saying("JSON")),
    # methods the description does not list: 405 with Allow, in JSON
    ("OPTIONS", "OPTIONS", "/api/v1/orders", None, b"", None, 405, error_saying("OPTIONS")),
    ("HEAD", "HEAD", "/api/v1/balance", None, b"", None, 405, error_saying("HEAD")),
    ("TRACE", "TRACE", "/api/v1/orders/API-1", None, b"", None, 405, error_saying("TRACE")),
    ("PUT", "PUT", "/api/v1/profile", None, b"", None, 405, error_saying("PUT")),
    # the description itself
    ("openapi.json", "GET", "/openapi.json", {}, b"", None, 200,
     lambda b: b["openapi"].startswith("3.1") and b["servers"] == [{"url": "/api/v1", "description": b["servers"][0]["description"]}]),
    ("openapi.json: GET only", "POST", "/openapi.json", {}, b"", None, 405, error_saying("POST")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "target", "headers", "payload", "setup", "status", "check"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_handle(
    method: str, target: str, headers: dict[str, str] | None, payload: Any,
    setup: Callable[[SandboxApp], None] | None, status: int, check: Callable[[Any], bool],
) -> None:  # fmt: skip
    app = make_app()
    if setup is not None:
        setup(app)
    reply = call(app, method, target, headers, payload)
    assert reply.status == status, reply.body[:300]
    assert ("Content-Type", "application/json; charset=utf-8") in reply.headers
    assert check(body(reply)), reply.body[:300]


@pytest.mark.parametrize(
    ("target", "allow"),
    [("/api/v1/orders", "GET, POST"), ("/api/v1/orders/X", "GET, DELETE"),
     ("/api/v1/balance", "GET"), ("/api/v1/orders/X/start-polling", "POST"),
     ("/openapi.json", "GET"), ("/_sandbox/reset", "POST"), ("/_sandbox/requests", "GET")],
)  # fmt: skip
def test_405_lists_the_documented_methods(target: str, allow: str) -> None:
    reply = call(make_app(), "PATCH", target, {**KEY, **ADMIN})
    assert reply.status == 405
    assert ("Allow", allow) in reply.headers


def test_money_is_served_as_written() -> None:
    app = make_app()
    app.state.domains["cheap.test"] = SandboxDomain("cheap.test", Decimal("0.10"))
    assert b'"balance":100.00}' in call(app, "GET", "/api/v1/balance").body
    assert b'"price":5.00,' in call(app, "GET", "/api/v1/domains").body
    assert b'"price":0.10,' in call(app, "GET", "/api/v1/domains").body
    created = call(app, "POST", "/api/v1/orders", body={"domain": "example.com", "site": "x"})
    assert b'"price":5.00,' in created.body
    assert b'"balance":95.00}' in call(app, "GET", "/api/v1/balance").body
    assert b'"refundAmount":5.00}' in call(app, "DELETE", f"/api/v1/orders/{DOCS_ORDER}").body


def test_the_request_is_judged_in_the_documented_order() -> None:
    app = make_app(rate_limit=(1, 60.0))
    assert call(app, "PATCH", "/api/v1/balance", {}).status == 405  # routing before the key
    assert call(app, "GET", "/api/v1/orders?page=x", {}).status == 401  # the key before the checks
    assert call(app, "GET", "/api/v1/orders?page=x").status == 429  # the limit before the key


def test_rate_limit_counts_on_the_apps_clock() -> None:
    now = [0.0]
    app = SandboxApp(SandboxState(clock=lambda: T0), rate_limit=(2, 10.0), ticker=lambda: now[0])
    assert [call(app, "GET", "/api/v1/balance").status for _ in range(3)] == [200, 200, 429]
    limited = call(app, "GET", "/api/v1/balance")
    assert ("Retry-After", "10") in limited.headers
    now[0] = 10.0
    assert call(app, "GET", "/api/v1/balance").status == 200


@pytest.mark.parametrize(
    "rate_limit",
    [(0, 1.0), (1, 0), (1, float("nan")), (1, float("inf")), (True, 1.0), ("3", 1.0), (1,)],
)
def test_bad_rate_limits_are_refused(rate_limit: Any) -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        make_app(rate_limit=rate_limit)


# --- faults ---------------------------------------------------------------------------------------


def test_fault_replaces_the_answer_and_counts_down() -> None:
    app = make_app()
    call(app, "POST", "/_sandbox/fail", ADMIN, {"status": 503, "times": 2, "path": "/balance"})
    statuses = [call(app, "GET", "/api/v1/balance").status for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert call(app, "GET", "/api/v1/profile").status == 200


def test_fault_with_execute_buys_then_fails_and_reports_the_purchase() -> None:
    app = make_app()
    app.add_fault(_fault(status=500, execute=True))
    reply = call(app, "POST", "/api/v1/orders", body={"domain": "example.com", "site": "x"})
    assert reply.status == 500
    assert reply.bought is not None
    assert reply.bought["orderId"] == DOCS_ORDER
    assert app.state.balance == Decimal("95.00")


def _fault(**kwargs: Any) -> Fault:
    return Fault(**kwargs)


def test_retry_after_is_written_as_given() -> None:
    app = make_app()
    for value, written in ((2, "2"), (1.5, "1.5"), ("Wed, 21 Oct 2026 07:28:00 GMT", None)):
        app.add_fault(_fault(status=429, retry_after=value))
        reply = call(app, "GET", "/api/v1/balance")
        assert ("Retry-After", written or value) in reply.headers


def test_seeded_random_faults_repeat() -> None:
    def run(seed: int) -> list[int]:
        app = make_app(seed=seed)
        app.add_fault(_fault(status=500, times=None, probability=0.3))
        return [call(app, "GET", "/api/v1/balance").status for _ in range(60)]

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert 5 <= first.count(500) <= 35  # about 30% of 60 (fixed by the seed)


def test_unseeded_random_faults_differ_between_apps() -> None:
    def run() -> list[int]:
        app = make_app()
        app.add_fault(_fault(status=500, times=None, probability=0.5))
        return [call(app, "GET", "/api/v1/balance").status for _ in range(64)]

    assert run() != run()


def test_persistent_fault_lasts_until_reset() -> None:
    app = make_app()
    app.add_fault(_fault(status=502, times=None))
    assert {call(app, "GET", "/api/v1/balance").status for _ in range(20)} == {502}
    assert call(app, "POST", "/_sandbox/reset", ADMIN).status == 200
    assert call(app, "GET", "/api/v1/balance").status == 200


# --- admin routes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "payload", "message"),
    [
        ("/advance", {"seconds": 3e11}, "100 years"),
        ("/advance", {"minutes": 1e300}, "100 years"),
        ("/advance", {"seconds": -1}, "100 years"),
        ("/advance", {"seconds": "5"}, "number"),
        ("/advance", {"hours": 1}, "unknown"),
        ("/fail", {"status": 500, "delay": 1e308}, "delay"),
        ("/fail", {"status": 500, "delay": 1e400}, "delay"),
        ("/fail", {"status": 500, "delay": -1}, "delay"),
        ("/fail", {"status": 500, "delay": 3601}, "delay"),
        ("/fail", {"status": 429, "retry_after": "1\r\nSet-Cookie: x=1"}, "retry_after"),
        ("/fail", {"status": 429, "retry_after": "1\n"}, "retry_after"),
        ("/fail", {"status": 429, "retry_after": 1e300}, "retry_after"),
        ("/fail", {"status": 600}, "status"),
        ("/fail", {"status": True}, "status"),
        ("/fail", {"status": 500, "times": 0}, "times"),
        ("/fail", {"status": 500, "probability": 0}, "probability"),
        ("/fail", {"status": 500, "probability": 1.5}, "probability"),
        ("/fail", {"status": 500, "method": "GET\r\nX: y"}, "method"),
        ("/fail", {"status": 500, "drop": "yes"}, "drop"),
        ("/fail", {"status": 500, "body": "xml"}, "body"),
        ("/fail", {"status": 500, "colour": "red"}, "unknown"),
        ("/deliver", {"content": "x"}, "exactly one"),
        ("/deliver", {"order_id": DOCS_ORDER, "to": "a@b"}, "exactly one"),
        ("/deliver", {"order_id": 5}, "string"),
        ("/deliver", {"to": "nobody@example.com"}, "No order"),
        ("/deliver", {"order_id": DOCS_ORDER, "after": 1e400}, "after"),
        ("/reset", {"everything": True}, "unknown"),
    ],
)
def test_absurd_admin_values_are_refused(route: str, payload: dict[str, Any], message: str) -> None:
    app = make_app()
    with_order(app)
    raw = json.dumps(payload).replace("Infinity", "1e400").encode()
    reply = call(app, "POST", "/_sandbox" + route, ADMIN, raw)
    assert reply.status in {400, 404}
    assert message in body(reply)["message"]
    assert app.faults == []
    assert app.state.elapsed == 0.0
    assert call(app, "GET", "/api/v1/balance").status == 200  # later requests are unharmed


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({"Host": "127.0.0.1:8025"}, 415, "Content-Type"),
        ({"Host": "127.0.0.1:8025", "Content-Type": "text/plain"}, 415, "Content-Type"),
        ({**ADMIN, "Origin": "http://evil.example"}, 403, "Origin"),
        ({**ADMIN, "Origin": "null"}, 403, "Origin"),
        ({**ADMIN, "Sec-Fetch-Site": "cross-site"}, 403, "Sec-Fetch-Site"),
        ({**ADMIN, "Sec-Fetch-Site": "same-site"}, 403, "Sec-Fetch-Site"),
        ({**ADMIN, "Host": "evil.example:8025"}, 403, "loopback"),
    ],
)
def test_admin_routes_refuse_what_a_web_page_can_send(
    headers: dict[str, str], status: int, message: str
) -> None:
    app = make_app()
    reply = call(app, "POST", "/_sandbox/advance", headers, b'{"minutes": 5}')
    assert (reply.status, message in body(reply)["message"]) == (status, True)
    assert app.state.elapsed == 0.0


@pytest.mark.parametrize(
    "headers",
    [ADMIN, {**ADMIN, "Origin": "http://127.0.0.1:8025", "Sec-Fetch-Site": "same-origin"},
     {**ADMIN, "Host": "localhost:8025"}, {**ADMIN, "Host": "[::1]:8025"},
     {"Content-Type": "application/json; charset=utf-8"}],
)  # fmt: skip
def test_admin_routes_serve_local_tools(headers: dict[str, str]) -> None:
    app = make_app()
    assert call(app, "POST", "/_sandbox/advance", headers, b'{"minutes": 5}').status == 200
    assert app.state.elapsed == 300.0


def test_admin_token_when_set() -> None:
    app = make_app(admin_token="s3cret")
    remote = {"Host": "sandbox.internal:8025", "Content-Type": "application/json"}
    assert call(app, "GET", "/_sandbox/state", remote).status == 401
    assert call(app, "GET", "/_sandbox/state", {**remote, "X-Sandbox-Token": "wrong"}).status == 401
    assert (
        call(app, "GET", "/_sandbox/state", {**remote, "X-Sandbox-Token": "s3cret"}).status == 200
    )
    assert call(app, "GET", "/api/v1/balance").status == 200  # the API still takes the key only


def test_request_log_masks_secrets_and_bounds_bodies() -> None:
    app = make_app()
    content = "x" * 10_000
    call(
        app,
        "POST",
        "/api/v1/orders",
        {**KEY, "Cookie": "a=b"},
        {"domain": "example.com", "site": content[:200]},
    )
    call(
        app,
        "GET",
        "/api/v1/orders/X/messages?x=1",
        {**KEY, "Authorization": "Bearer t"},
        content.encode(),
    )
    log = body(call(app, "GET", "/_sandbox/requests", ADMIN))["data"]
    assert [(e["method"], e["path"], e["query"]) for e in log] == [
        ("POST", "/api/v1/orders", {}),
        ("GET", "/api/v1/orders/X/messages", {"x": "1"}),
    ]
    assert log[0]["headers"] == {"X-API-Key": "***", "Cookie": "***"}
    assert json.loads(log[0]["body"])["site"] == content[:200]
    assert log[1]["headers"]["Authorization"] == "***"
    assert (len(log[1]["body"]), log[1]["body_size"], log[1]["body_truncated"]) == (
        2048,
        10_000,
        True,
    )
    assert app.requests[0].headers["X-API-Key"] == "test-key"  # in-process, the raw request
    assert len(body(call(app, "GET", "/_sandbox/requests?last=1", ADMIN))["data"]) == 1
    for bad in ("0", "x", "²", "9" * 5000):
        assert call(app, "GET", f"/_sandbox/requests?last={bad}", ADMIN).status == 400


def test_request_log_is_bounded() -> None:
    from kopechka.testing._records import RecordedRequest, RequestLog

    log = RequestLog(max_entries=3, max_bytes=10)
    for i in range(5):
        log.append(RecordedRequest("GET", f"/{i}", {}, {}, b""))
    assert [e.path for e in log] == ["/2", "/3", "/4"]
    log.append(RecordedRequest("POST", "/big", {}, {}, b"x" * 8))
    log.append(RecordedRequest("POST", "/big2", {}, {}, b"y" * 8))
    assert [e.path for e in log] == ["/big2"]


def test_reset_restores_as_constructed_and_keeps_the_clock() -> None:
    app = make_app(seed=3)
    with_mail(app)
    app.add_fault(_fault(status=500, times=None))
    app.on_order.append(lambda order: None)
    app.state.advance(90)
    assert call(app, "POST", "/_sandbox/reset", ADMIN, b"{}").status == 200
    assert (app.faults, len(app.requests), app.on_order) == ([], 0, [])
    assert app.state.balance == Decimal("100.00")
    assert app.state.order_count() == 0
    assert app.state.elapsed == 90.0
    again = call(app, "POST", "/api/v1/orders", body={"domain": "example.com", "site": "x"})
    assert body(again)["data"]["orderId"] == DOCS_ORDER  # numbering starts over


def test_auto_mail_codes_come_from_the_seed_and_the_template() -> None:
    def code_of(seed: int) -> str:
        app = make_app(
            seed=seed, auto_mail=AutoMail(delay=0, subject="{site}!", content="[{code}] {email}")
        )
        with_order(app)
        message = body(call(app, "GET", f"/api/v1/orders/{DOCS_ORDER}/messages"))["messages"][0]
        assert message["subject"] == "x!"
        assert message["content"].endswith(" kp1234567890@example.com")
        return str(message["content"][1:7])

    assert code_of(1) == code_of(1)
    assert code_of(1) != code_of(2)


def test_hooks_get_the_order_after_the_lock_is_released() -> None:
    app = make_app()
    seen: list[tuple[str, bool]] = []

    def hook(order: dict[str, Any]) -> None:
        owned = app.lock._is_owned()  # type: ignore[attr-defined]
        seen.append((order["orderId"], owned))

    def broken(order: dict[str, Any]) -> None:
        raise KeyError(order["orderId"])

    app.on_order.append(hook)
    app.on_order.append(broken)  # a broken hook is logged, the purchase stands
    with_order(app)
    assert seen == [(DOCS_ORDER, False)]


def test_deliver_by_address() -> None:
    app = make_app()
    with_order(app)
    message = app.deliver(None, "KP1234567890@example.com", "s@x", "Hi", "code 1")
    assert message["subject"] == "Hi"
    with pytest.raises(SandboxError, match="No order") as info:
        app.deliver(None, "kp1@example.com", "s@x", "Hi", "code 1")
    assert info.value.status == 404
