"""Table tests of the pure wire layer: request parts, argument checks, answers, Retry-After."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopechka import (
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    KopechkaError,
    NotFoundError,
    OrderStatus,
    PermissionDeniedError,
    RateLimitError,
    _scrub,
)
from kopechka import _wire as wire
from kopechka._endpoints import ENDPOINTS

from . import vendor_examples as ex


@dataclass
class Resp:
    status_code: int
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@pytest.mark.parametrize(
    ("call", "method", "path", "params", "json"),
    [
        (wire.get_profile(), "GET", "/profile", None, None),
        (wire.get_balance(), "GET", "/balance", None, None),
        (wire.get_domains(), "GET", "/domains", None, None),
        (wire.list_orders(1, 10), "GET", "/orders", {"page": "1", "limit": "10"}, None),
        (
            wire.list_orders(2, 5, OrderStatus.ACTIVE, "example.com"),
            "GET",
            "/orders",
            {"page": "2", "limit": "5", "status": "active", "domain": "example.com"},
            None,
        ),
        (
            wire.list_orders(1, 1, "expired"),
            "GET",
            "/orders",
            {"page": "1", "limit": "1", "status": "expired"},
            None,
        ),
        (wire.get_order("API-1"), "GET", "/orders/API-1", None, None),
        (
            wire.create_order("example.com", "x.com"),
            "POST",
            "/orders",
            None,
            {"domain": "example.com", "site": "x.com"},
        ),
        (wire.cancel_order("API-1"), "DELETE", "/orders/API-1", None, None),
        (wire.get_messages("API-1"), "GET", "/orders/API-1/messages", None, None),
        (wire.start_polling("API-1"), "POST", "/orders/API-1/start-polling", None, None),
    ],
)
def test_request_parts(
    call: wire.Call[Any], method: str, path: str, params: object, json: object
) -> None:
    assert (call.method, call.path, call.params, call.json) == (method, path, params, json)
    assert call.idempotent is (method == "GET")


@pytest.mark.parametrize(
    ("order_id", "path"),
    [
        ("API-1234567890", "/orders/API-1234567890"),
        ("a/b", "/orders/a%2Fb"),
        ("../balance", "/orders/..%2Fbalance"),
        ("x?y=1", "/orders/x%3Fy%3D1"),
        ("x#frag", "/orders/x%23frag"),
        ("100%", "/orders/100%25"),
        ("a b", "/orders/a%20b"),
        ("заказ", "/orders/%D0%B7%D0%B0%D0%BA%D0%B0%D0%B7"),
        ("...", "/orders/..."),
    ],
)
def test_order_path_escapes(order_id: str, path: str) -> None:
    assert wire.order_path(order_id) == path


@given(st.text(min_size=1))
def test_order_path_never_leaves_its_segment(order_id: str) -> None:
    try:
        path = wire.order_path(order_id)
    except ValueError:
        return
    tail = path.removeprefix("/orders/")
    assert not set("/?#") & set(tail)
    assert tail not in {".", ".."}


@pytest.mark.parametrize(
    "make",
    [
        lambda: wire.order_path(""),
        lambda: wire.order_path("   "),
        lambda: wire.order_path(".."),
        lambda: wire.order_path("."),
        lambda: wire.order_path("a\nb"),
        lambda: wire.order_path(None),
        lambda: wire.order_path(123),
        lambda: wire.list_orders(0, 10),
        lambda: wire.list_orders(1, 0),
        lambda: wire.list_orders(1, -5),
        lambda: wire.list_orders(True, 10),
        lambda: wire.list_orders(1.5, 10),
        lambda: wire.list_orders(1, 10, "", None),
        lambda: wire.list_orders(1, 10, None, ""),
        lambda: wire.create_order("", "site"),
        lambda: wire.create_order("example.com", ""),
        lambda: wire.create_order("example.com", None),
    ],
)
def test_bad_arguments_raise_value_error(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="must"):
        make()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.kopechka.com/api/v1", "https://api.kopechka.com/api/v1"),
        ("https://api.kopechka.com/api/v1/", "https://api.kopechka.com/api/v1"),
        ("http://localhost:8025/api/v1", "http://localhost:8025/api/v1"),
        ("http://127.0.0.1:1/api/v1", "http://127.0.0.1:1/api/v1"),
        ("http://127.8.9.10/api", "http://127.8.9.10/api"),
        ("http://[::1]:8025/api/v1", "http://[::1]:8025/api/v1"),
        ("https://api.kopechka.com/a%2Fb%c3%bc/v1", "https://api.kopechka.com/a%2Fb%c3%bc/v1"),
    ],
)
def test_base_url_accepted(url: str, expected: str) -> None:
    assert wire.normalize_base_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://api.kopechka.com/api/v1",
        "http://10.0.0.1/api",
        "http://localhost.evil.com/api",
        "http://127.0.0.1.nip.io/api",
        "ftp://api.kopechka.com",
        "api.kopechka.com/api/v1",
        "https://user:pw@api.kopechka.com",
        "https://api.kopechka.com/api?x=1",
        "https://api.kopechka.com/api?",  # an empty query: the paths would become its text
        "https://api.kopechka.com/api#",
        "https://api.kopechka.com/api%zz",  # requests would escape the % again, and the path
        "https://api.kopechka.com/api%4",
        "https://api.kopechka.com:99999/",
        "",
    ],
)
def test_base_url_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"base_url|plain http"):
        wire.normalize_base_url(url)


NOW = datetime(2024, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, None),
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"RETRY-AFTER": " 7 "}, 7.0),
        ({"Retry-After": "-4"}, 0.0),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "Mon, 01 Jan 2024 12:00:30 GMT"}, 30.0),
        ({"Retry-After": "Mon, 01 Jan 2024 11:00:00 GMT"}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "bad", "Retry-After": "2"}, 2.0),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),
    ],
)
def test_parse_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert wire.parse_retry_after(headers, NOW) == seconds


@given(st.text())
def test_parse_retry_after_never_raises(raw: str) -> None:
    value = wire.parse_retry_after({"Retry-After": raw}, NOW)
    assert value is None or value >= 0


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, InternalServerError),
        (502, InternalServerError),
        (599, InternalServerError),
        (409, APIStatusError),
        (302, APIStatusError),
    ],
)
def test_status_table(status: int, cls: type[APIStatusError]) -> None:
    assert wire.error_class(status) is cls
    error = wire.status_error(Resp(status, b'{"success": false, "message": "nope"}'))
    assert type(error) is cls
    assert error.status_code == status


@pytest.mark.parametrize(
    ("call", "body", "check"),
    [
        (
            wire.get_profile(),
            ex.PROFILE,
            lambda p: p.balance == Decimal("150.75") and p.email_verified,
        ),
        (wire.get_balance(), ex.BALANCE, lambda b: b == Decimal("150.75")),
        (
            wire.get_domains(),
            ex.DOMAINS,
            lambda d: d[0].price == Decimal("5.00") and d[0].name == "example.com",
        ),
        (
            wire.list_orders(1, 10),
            ex.ORDERS,
            lambda p: p.pagination.pages == 3 and p.orders[0].order_id == "API-1234567890",
        ),
        (wire.get_order("API-1"), ex.ORDER, lambda o: o.duration == 10 and o.end_time.minute == 10),
        (
            wire.create_order("example.com", "instagram.com"),
            ex.CREATED,
            lambda o: o.id is None and o.status == "pending",
        ),
        (wire.cancel_order("API-1"), ex.CANCELLED, lambda c: c.refund_amount == Decimal("5.00")),
        (
            wire.get_messages("API-1"),
            ex.MESSAGES,
            lambda m: (
                m.messages[0].sender == "[email protected]" and m.order.created_at.year == 2024
            ),
        ),
        (wire.start_polling("API-1"), ex.POLLING, lambda p: p.polling_status == "active"),
    ],
)
def test_decode_vendor_examples(
    call: wire.Call[Any], body: str, check: Callable[[Any], bool]
) -> None:
    assert check(wire.decode(call, Resp(200, body.encode())))


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (
            200,
            b'{"success": false, "message": "Insufficient balance"}',
            APIStatusError,
            "Insufficient balance",
        ),
        (200, b'{"success": false}', APIStatusError, "HTTP 200"),
        (201, b'{"success": false, "data": 7, "message": "no"}', APIStatusError, "no"),
        (
            200,
            b"<html><title>Maintenance</title></html>",
            APIResponseValidationError,
            "Maintenance",
        ),
        (200, b"", APIResponseValidationError, "empty body"),
        (
            200,
            b'{"success": true, "data": {"bal',
            APIResponseValidationError,
            "not the documented JSON",
        ),
        (200, b'{"success": true}', APIResponseValidationError, "'data' is missing"),
        (
            200,
            b'{"success": true, "data": {"balance": "lots"}}',
            APIResponseValidationError,
            "data.balance",
        ),
        (200, b"[1, 2]", APIResponseValidationError, "GET /balance"),
        (400, b'{"success": false, "message": "Bad domain"}', BadRequestError, "Bad domain"),
        (400, b'{"error": "Bad thing"}', BadRequestError, "Bad thing"),
        (
            502,
            b"<html><head><title>502 Bad Gateway</title></head></html>",
            InternalServerError,
            "502 Bad Gateway",
        ),
        (500, b"", InternalServerError, "empty body"),
        (503, b"upstream down", InternalServerError, "upstream down"),
        (404, b'{"success": false, "message": 5}', NotFoundError, "HTTP 404"),
    ],
)
def test_decode_failures(status: int, body: bytes, error: type[Exception], text: str) -> None:
    with pytest.raises(error) as info:
        wire.decode(wire.get_balance(), Resp(status, body))
    assert text in str(info.value)
    assert type(info.value) is error


def test_rate_limit_error_carries_retry_after() -> None:
    error = wire.status_error(Resp(429, b"{}", {"Retry-After": "12"}))
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 12.0


def test_secret_is_scrubbed_from_errors() -> None:
    body = b'{"success": false, "message": "key sk-live-123 is invalid", "key": "sk-live-123"}'
    error = wire.status_error(Resp(401, body), secret=_scrub.Secret("sk-live-123"))
    assert "sk-live-123" not in str(error)
    assert "sk-live-123" not in repr(error.body)
    with pytest.raises(APIResponseValidationError) as info:
        wire.decode(
            wire.get_balance(),
            Resp(200, b"<p>sk-live-123</p>"),
            secret=_scrub.Secret("sk-live-123"),
        )
    assert "sk-live-123" not in str(info.value) + str(info.value.body)


def test_redirect_error_names_target() -> None:
    error = wire.status_error(Resp(302, b"", {"Location": "https://evil.example/x"}))
    assert "https://evil.example/x" in str(error)
    assert "not followed" in str(error)


# Any JSON value; and the shapes of the documented envelopes, with the models' own field names
# (so that drawn answers get past the envelope and into the models, not only into the JSON parser)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["balance", "orderId", "order_id", "id", "email", "domain", "site", "status", "price",
          "createdAt", "created_at", "expiresAt", "duration", "username", "name", "category",
          "from", "subject", "content", "receivedAt", "refundAmount", "pollingStatus", "message"]  # fmt: skip
FIELD_VALUES = (
    JSON_VALUES
    | st.decimals(allow_nan=False, allow_infinity=False, places=2).map(float)
    | st.sampled_from(["2024-01-01T00:00:00Z", "API-1", "a@b.test", "active", "5.00", ""])
)
OBJECTS = st.dictionaries(st.sampled_from(FIELDS), FIELD_VALUES, max_size=8)
DATA = JSON_VALUES | OBJECTS | st.lists(OBJECTS, max_size=3)
ENVELOPES = st.fixed_dictionaries(
    {"success": st.just(True) | st.booleans() | JSON_VALUES},
    optional={"data": DATA, "message": JSON_VALUES, "messages": st.lists(OBJECTS, max_size=3),
              "order": OBJECTS, "pagination": OBJECTS | JSON_VALUES, "refundAmount": FIELD_VALUES},
)  # fmt: skip
ANSWERS = (
    st.binary(max_size=300)
    | JSON_VALUES.map(lambda v: json.dumps(v).encode())
    | ENVELOPES.map(lambda v: json.dumps(v).encode())
)


@given(body=ANSWERS, status=st.sampled_from([200, 201, 204, 400, 404, 429, 500]))
def test_any_answer_gives_a_model_or_a_kopechka_error(body: bytes, status: int) -> None:
    """Random bytes, any JSON document, envelope-shaped documents: every endpoint's decoding
    returns what its row says it returns, or raises a KopechkaError; nothing else escapes."""
    for endpoint in ENDPOINTS:
        call = endpoint.build(*endpoint.arguments("API-1"), **endpoint.kwargs)
        try:
            result = wire.decode(call, Resp(status, body))
        except KopechkaError:
            continue
        assert 200 <= status < 300
        assert isinstance(result, endpoint.returns), (endpoint.name, result)


KEY = "sk-Live/Key+1=ab"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nothing here", "nothing here"),
        (f"key {KEY} bad", "key *** bad"),
        (f"key {KEY.upper()}", "key ***"),
        ("key " + "".join(f"\\u{ord(c):04x}" for c in KEY), "key ***"),
        ("key " + KEY.replace("/", "\\/"), "key ***"),
        ("key " + "".join(f"&#{ord(c)};" for c in KEY), "key ***"),
        ("key " + "".join(f"&#x{ord(c):x};" for c in KEY), "key ***"),
        ("k=sk-Live%2FKey%2B1%3Dab", "k=***"),
        ("k=sk-Live%252FKey%252B1%253Dab", "k=***"),   # encoded twice
        (f"{KEY} and &#115;k-Live/Key+1=ab", "*** and ***"),   # two spellings at once
        ("sk-Live/Key 1=ab", "sk-Live/Key 1=ab"),   # not the key: '+' is not a space here
        ("100%25 sure", "100%25 sure"),   # no key: the text is kept as it was, not decoded
    ],
)  # fmt: skip
def test_scrub_text_table(text: str, expected: str) -> None:
    assert _scrub.scrub_text(text, _scrub.Secret(KEY)) == expected


@given(
    st.text(max_size=40),
    st.text(max_size=40),
    st.sampled_from(["raw", "upper", "url", "json", "html"]),
)
def test_scrub_text_removes_every_spelling(before: str, after: str, spelling: str) -> None:
    from urllib.parse import quote

    echo = {
        "raw": KEY,
        "upper": KEY.upper(),
        "url": quote(KEY, safe=""),
        "json": "".join(f"\\u{ord(c):04x}" for c in KEY),
        "html": "".join(f"&#{ord(c)};" for c in KEY),
    }[spelling]
    scrubbed = _scrub.scrub_text(before + echo + after, _scrub.Secret(KEY))
    assert KEY.casefold() not in scrubbed.casefold()


def test_secret_is_masked_and_never_pickled() -> None:
    import pickle

    secret = _scrub.Secret(KEY)
    assert KEY not in repr(secret) + str(secret)
    assert secret.reveal() == KEY
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(secret)


@pytest.mark.parametrize("body", [b"K\\ud800", b'"\\udfff"', b'{"message": "\\ud83d\\ude00"}'])
def test_lone_surrogates_in_an_error_body_are_kept_printable(body: bytes) -> None:
    error = wire.status_error(Resp(301, body), secret=_scrub.Secret(KEY))
    assert error.response is not None
    assert isinstance(error.response.content, bytes)
    str(error).encode("utf-8")


# --- parse_cost: what a text may cost to parse ---------------------------------------------------

_MIB = 1 << 20
COSTS = [
    # (what, text, most it may be estimated at, least it must be estimated at)
    ("BMP escapes: 2 bytes a character", b'"' + b"\\u0417" * _MIB + b'"', 13 * _MIB, 12 * _MIB),
    ("a surrogate escape: 4", b'"\\ud83d\\ude00' + b"a" * 6 * _MIB + b'"', None, 48 * _MIB),
    ("a raw 4-byte character: 4", b'"\xf0\x9f\x98\x80' + b"a" * 6 * _MIB + b'"', None, 48 * _MIB),
    ("commas in a string are text", b'"' + b"a,b:" * 2 * _MIB + b'"', 17 * _MIB, 16 * _MIB),
    (
        "commas outside are values",
        b"[" + b"1," * 3 * _MIB + b"1]",
        None,
        3 * _MIB * wire._MARK_COST,
    ),
    (
        "an escaped quote hides nothing",
        b'["\\"",' + b"1," * 3 * _MIB + b'"x"]',
        None,
        3 * _MIB * wire._MARK_COST,
    ),
]


@pytest.mark.parametrize(("what", "text", "most", "least"), COSTS, ids=[c[0] for c in COSTS])
def test_parse_cost_table(what: str, text: bytes, most: int | None, least: int) -> None:
    cost = wire.parse_cost(text)
    assert cost >= least, what
    if most is not None:
        assert cost <= most, what
