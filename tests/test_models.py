"""The models: both spellings, exact money, aware times, tolerated unknowns, immutability, and
schemas that are ready before the first (possibly concurrent) use."""

from __future__ import annotations

import decimal
import json
import pickle
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from kopechka import (
    APIResponseValidationError,
    Cancellation,
    Domain,
    Message,
    Order,
    OrderPage,
    OrderStatus,
    OrderSummary,
    Profile,
    _envelopes,
    _models,
)
from kopechka import _wire as wire
from kopechka._models import MONEY_DIGITS, _charge, _exact, _not_negative, loads_exact

ORDER = {
    "orderId": "API-1",
    "email": "[email protected]",
    "domain": "example.com",
    "site": "instagram.com",
    "status": "active",
    "price": 150.75,
    "createdAt": "2024-01-01T00:00:00Z",
}


def test_vendor_and_attribute_spellings_validate_alike() -> None:
    by_alias = Message.model_validate(
        {
            "id": "m",
            "from": "a@b",
            "subject": "s",
            "content": "c",
            "receivedAt": "2024-01-01T00:00:00Z",
        }
    )
    by_name = Message.model_validate(
        {
            "id": "m",
            "sender": "a@b",
            "subject": "s",
            "content": "c",
            "received_at": "2024-01-01T00:00:00Z",
        }
    )
    assert by_alias == by_name
    assert by_alias.sender == "a@b"


def test_money_is_exact_decimal() -> None:
    order = Order.model_validate_json(
        b'{"orderId":"A","email":"e","domain":"d","site":"s","status":"active",'
        b'"price":150.75,"createdAt":"2024-01-01T00:00:00Z"}'
    )
    assert order.price == Decimal("150.75")
    assert isinstance(order.price, Decimal)
    assert Cancellation.model_validate({"refundAmount": 0.1}).refund_amount == Decimal("0.1")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-01-01T00:00:00Z", datetime(2024, 1, 1, tzinfo=timezone.utc)),
        ("2024-01-01T03:00:00+03:00", datetime(2024, 1, 1, tzinfo=timezone.utc)),
        ("2024-01-01T00:00:00", datetime(2024, 1, 1, tzinfo=timezone.utc)),
        ("2024-01-01T00:00:00.123Z", datetime(2024, 1, 1, 0, 0, 0, 123000, tzinfo=timezone.utc)),
    ],
)
def test_times_are_aware(raw: str, expected: datetime) -> None:
    order = Order.model_validate({**ORDER, "createdAt": raw})
    assert order.created_at.tzinfo is not None
    assert order.created_at == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("active", OrderStatus.ACTIVE),
        ("pending", OrderStatus.PENDING),
        ("expired", OrderStatus.EXPIRED),
    ],
)
def test_known_status_becomes_enum(raw: str, expected: OrderStatus) -> None:
    status = Order.model_validate({**ORDER, "status": raw}).status
    assert status is expected
    assert status == raw


def test_unknown_status_kept_as_str() -> None:
    status = Order.model_validate({**ORDER, "status": "on_hold"}).status
    assert status == "on_hold"
    assert not isinstance(status, OrderStatus)


def test_unknown_fields_tolerated_and_optional_fields_default() -> None:
    order = Order.model_validate({**ORDER, "brandNew": [1, 2]})
    assert order.id is None
    assert order.duration is None
    assert order.end_time is None


def test_models_are_immutable() -> None:
    order = Order.model_validate(ORDER)
    with pytest.raises(ValidationError):
        order.price = Decimal(0)  # type: ignore[misc]


def test_order_summary_accepts_snake_and_camel_created_at() -> None:
    base = {"id": "o", "email": "e", "domain": "d", "status": "active"}
    snake = OrderSummary.model_validate({**base, "created_at": "2024-01-01T00:00:00Z"})
    camel = OrderSummary.model_validate({**base, "createdAt": "2024-01-01T00:00:00Z"})
    assert snake == camel


def test_order_page_from_data_or_orders() -> None:
    pagination = {"page": 1, "limit": 10, "total": 1, "pages": 1}
    assert OrderPage.model_validate(
        {"data": [ORDER], "pagination": pagination}
    ) == OrderPage.model_validate({"orders": [ORDER], "pagination": pagination})


def test_missing_required_field_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        Profile.model_validate({"id": "x"})


def test_message_extract_helpers_delegate() -> None:
    message = Message.model_validate(
        {
            "id": "m",
            "from": "a",
            "subject": "Your code",
            "content": "Use 4821 <https://x.io/a>",
            "receivedAt": "2024-01-01T00:00:00Z",
        }
    )
    assert message.extract_code() == "4821"
    assert message.extract_code(r"Use (\d)") == "4"
    assert message.extract_links() == ["https://x.io/a"]


def test_models_build_by_attribute_name_on_every_pydantic() -> None:
    # what the envelopes do for a cancel: by name (validate_by_name alone needs pydantic 2.11)
    cancel = Cancellation(message="ok", refund_amount=Decimal("5.00"))
    assert cancel.refund_amount == Decimal("5.00")
    assert Cancellation.model_validate({"refundAmount": "1.5"}).refund_amount == Decimal("1.5")
    page = OrderPage(orders=[Order.model_validate(ORDER)], pagination=PAGINATION)
    assert page.orders[0].order_id == "API-1"


# --- lossless money ------------------------------------------------------------------------------

PAGINATION = {"page": 1, "limit": 10, "total": 1, "pages": 1}


@dataclass
class Answer:
    """A 200 answer as the wire layer sees it."""

    content: bytes
    status_code: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def _order_json(price: str) -> str:
    return (
        '{"orderId":"A","email":"e","domain":"d","site":"s","status":"active",'
        f'"price":{price},"createdAt":"2024-01-01T00:00:00Z"}}'
    )


# (the JSON number as the server writes it, the exact Decimal with its digits)
EXACT = [
    ("12345678901234567.89", "12345678901234567.89"),
    ("5.00", "5.00"),
    ("150.75", "150.75"),
    ("0.1", "0.1"),
    ("5", "5"),
    ("0", "0"),
    ("1e-5", "0.00001"),
    ("2.5E+3", "2.5E+3"),
    ("9999999999999999999999999999", "9999999999999999999999999999"),  # 28 digits, an int
    ("99999999999999999999999999.99", "99999999999999999999999999.99"),  # 28 digits in all
    ("0.000000000000000000000000001", "1E-27"),  # 28 digits written out
    ("1E+27", "1E+27"),  # 28 digits written out
]


def _decoded(field_name: str, raw: str) -> dict[str, Decimal]:
    """The amount decoded from each endpoint's answer that carries money."""
    return {
        "balance": wire.decode(
            wire.get_balance(), Answer(f'{{"success":true,"data":{{"balance":{raw}}}}}'.encode())
        ),
        "refund": wire.decode(
            wire.cancel_order("A"),
            Answer(f'{{"success":true,"message":"ok","refundAmount":{raw}}}'.encode()),
        ).refund_amount,
        "order": wire.decode(
            wire.get_order("A"), Answer(f'{{"success":true,"data":{_order_json(raw)}}}'.encode())
        ).price,
        "page": wire.decode(
            wire.list_orders(1, 10),
            Answer(
                f'{{"success":true,"data":[{_order_json(raw)}],'
                f'"pagination":{json.dumps(PAGINATION)}}}'.encode()
            ),
        )
        .orders[0]
        .price,
        "domains": wire.decode(
            wire.get_domains(),
            Answer(f'{{"success":true,"data":[{{"id":"1","name":"n","price":{raw}}}]}}'.encode()),
        )[0].price,
        "profile": Profile.model_validate_json(
            '{"id":"u","email":"e","username":"u","balance":' + raw + ',"role":"user",'
            '"emailVerified":true,"isActive":true,"createdAt":"2024-01-01T00:00:00Z",'
            '"updatedAt":"2024-01-01T00:00:00Z"}'
        ).balance,
    }


@pytest.mark.parametrize("where", ["refund", "order", "page", "domains"])
def test_a_negative_charge_is_refused(where: str) -> None:
    """A price, a charge or a refund the API cannot mean negative; a balance may be."""
    orders = f'[{_order_json("-0.01")}],"pagination":{json.dumps(PAGINATION)}'
    call, body = {
        "refund": (wire.cancel_order("A"), '{"success":true,"refundAmount":-0.01}'),
        "order": (wire.get_order("A"), f'{{"success":true,"data":{_order_json("-0.01")}}}'),
        "page": (wire.list_orders(1, 10), f'{{"success":true,"data":{orders}}}'),
        "domains": (
            wire.get_domains(),
            '{"success":true,"data":[{"id":"1","name":"n","price":-1}]}',
        ),
    }[where]
    with pytest.raises(APIResponseValidationError, match="cannot be negative"):
        wire.decode(call, Answer(body.encode()))  # type: ignore[arg-type]
    balance = wire.decode(wire.get_balance(), Answer(b'{"success":true,"data":{"balance":-2.50}}'))
    assert balance == Decimal("-2.50")


@pytest.mark.parametrize(("raw", "expected"), EXACT)
def test_money_keeps_the_servers_digits(raw: str, expected: str) -> None:
    for where, amount in _decoded("price", raw).items():
        assert isinstance(amount, Decimal), where
        # as_tuple: the same value AND the same digits (Decimal("5.00") == Decimal("5") is True)
        assert amount.as_tuple() == Decimal(expected).as_tuple(), (where, amount)


@pytest.mark.parametrize(
    "raw",
    [
        "12345678901234567890123456789",  # 29 digits: a sum would round it
        "1234567890123456789012345678.9",
        "0.0000000000000000000000000001",  # 29 digits written out
        "1E+28",
        "1e400",  # one significant digit, but 401 written out
        "NaN",
        "Infinity",
        "-Infinity",
    ],
)
def test_money_that_cannot_be_kept_exactly_is_refused(raw: str) -> None:
    with pytest.raises(APIResponseValidationError, match=r"refundAmount|Invalid JSON") as info:
        wire.decode(
            wire.cancel_order("A"),
            Answer(f'{{"success":true,"message":"ok","refundAmount":{raw}}}'.encode()),
        )
    assert info.value.status_code == 200
    with pytest.raises(ValidationError, match=r"price|Invalid JSON"):
        Domain.model_validate_json(f'{{"id":"1","name":"n","price":{raw}}}')


def _written_out(value: Decimal) -> int | None:
    """Digits of ``value`` written out in full, from its tuple (None: not finite)."""
    _sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        return None
    whole = max(len(digits) + exponent, 1)  # digits before the point, at least "0"
    return whole + max(-exponent, 0)


@given(
    st.decimals(allow_nan=True, allow_infinity=True)
    | st.builds(
        lambda digits, exponent, negative: Decimal((negative, digits, exponent)),
        st.lists(st.integers(0, 9), min_size=1, max_size=40).map(tuple),
        st.integers(-40, 40),
        st.integers(0, 1),
    )
    | st.from_regex(r"-?[0-9]{1,32}(\.[0-9]{1,32})?", fullmatch=True).map(Decimal)
)
@example(Decimal("9" * 28))  # the boundary, as plain text: 28 digits kept, 29 refused
@example(Decimal("-" + "9" * 28))
@example(Decimal("1" * 29))
@example(Decimal("-" + "1" * 28 + ".5"))
@example(Decimal("0.000001"))
def test_the_exactness_rule_matches_its_definition(value: Decimal) -> None:
    """The fast path (the amount as text) agrees with the definition on every amount."""
    count = _written_out(value)
    if count is not None and count <= MONEY_DIGITS:
        assert _exact(value) is value
    else:
        with pytest.raises(ValueError, match="at most 28 digits"):
            _exact(value)


@pytest.mark.parametrize(
    "body",
    [
        b'{"success":true,"data":{"balance":',
        b"[" * 100_000 + b"]" * 100_000,  # too deep: refused, not a RecursionError
        b'{"success":true,"data":{"balance":1' + b"0" * 5000 + b"}}",  # past int's digit limit
        b"\xff\xfe\x00",
    ],
    ids=["truncated", "deep", "huge-int", "not-utf8"],
)
def test_what_is_not_json_is_a_validation_error(body: bytes) -> None:
    with pytest.raises(APIResponseValidationError, match=r"not the documented JSON|Invalid JSON"):
        wire.decode(wire.get_balance(), Answer(body))


def test_integer_fields_refuse_fractions_instead_of_truncating() -> None:
    page = '{"success":true,"data":[],"pagination":{"page":1.5,"limit":10,"total":0,"pages":0}}'
    with pytest.raises(APIResponseValidationError, match=r"pagination\.page"):
        wire.decode(wire.list_orders(1, 10), Answer(page.encode()))
    whole = page.replace("1.5", "2.0")
    assert wire.decode(wire.list_orders(1, 10), Answer(whole.encode())).pagination.page == 2


@pytest.mark.parametrize("raw", ["1e30", "1e-40", "-1e29"])
def test_the_exactness_rule_holds_whatever_the_decimal_context_writes(raw: str) -> None:
    """Under ``capitals=0`` ``str`` writes the exponent as "e": still an exponent."""
    with decimal.localcontext() as context:
        context.capitals = 0
        assert "e" in str(Decimal(raw))
        with pytest.raises(ValueError, match="at most 28 digits"):
            _exact(Decimal(raw))


def test_only_models_without_numbers_are_parsed_by_pydantic() -> None:
    """The fast parser only where no number could be rounded: a number (or a field that could
    hold one) anywhere in a schema, nested models and lists included, keeps a model exact."""
    native = {
        body.__name__: _models._native(body)
        for body in (
            _envelopes.MessagesBody, _envelopes.PollingBody, _envelopes.PageBody,
            _envelopes.BalanceBody, _envelopes.ProfileBody, _envelopes.CancelBody,
            _envelopes.OrderBody, _envelopes.DomainsBody,
        )
    }  # fmt: skip
    assert native == {
        "MessagesBody": True, "PollingBody": True, "PageBody": False, "BalanceBody": False,
        "ProfileBody": False, "CancelBody": False, "OrderBody": False, "DomainsBody": False,
    }  # fmt: skip

    class Rate(_models.ExactJSONModel):
        ratio: float

    class Nested(_models.ExactJSONModel):
        rates: list[dict[str, Rate]] | None = None

    class Count(_models.ExactJSONModel):
        count: int  # 1.2345678901234567e19 would be rounded to an int by pydantic's parser

    class Loose(_models.ExactJSONModel):
        extra: dict[str, Any] = {}

    assert not _models._native(Nested)
    assert not _models._native(Count)
    assert not _models._native(Loose)


def _messages_body(contents: list[str]) -> bytes:
    messages = [
        {"id": str(i), "from": "a@example.com", "subject": c[:5], "content": c,
         "receivedAt": "2024-01-01T12:00:00"}
        for i, c in enumerate(contents)
    ]  # fmt: skip
    order = {"id": "API-1", "email": "e@example.com", "domain": "example.com",
             "status": "active", "created_at": "2024-01-01T00:00:00Z"}  # fmt: skip
    return json.dumps({"success": True, "messages": messages, "order": order}).encode()


def test_a_body_the_fast_parser_refuses_is_read_by_the_exact_one() -> None:
    """A lone surrogate in a mail (a broken sender or server): pydantic's parser refuses the
    body; the exact path reads it as it always did, and the other mails are not lost."""
    body = _messages_body(["code 123456", "broken \ud800 text"])
    assert b"\\ud800" in body
    listing = wire.decode(wire.get_messages("API-1"), Answer(body))
    assert [m.content for m in listing.messages] == ["code 123456", "broken \ud800 text"]


@given(st.lists(st.text(st.characters(exclude_categories=()), max_size=40), max_size=5))
def test_the_fast_parser_reads_messages_as_the_exact_one_does(contents: list[str]) -> None:
    body = _messages_body(contents)
    call = wire.get_messages("API-1")
    fast = wire.decode(call, Answer(body))
    _models._NATIVE[_envelopes.MessagesBody] = False
    try:
        exact = wire.decode(call, Answer(body))
    finally:
        del _models._NATIVE[_envelopes.MessagesBody]
    assert fast == exact


def test_json_output_of_a_model_keeps_the_digits() -> None:
    order = Order.model_validate_json(_order_json("5.00"))
    assert order.model_dump(mode="json")["price"] == "5.00"
    assert json.loads(order.model_dump_json())["price"] == "5.00"


# --- schemas ready before first use --------------------------------------------------------------

_DECLARED = textwrap.dedent(
    """
    import json
    import pydantic_core
    from kopechka import _envelopes, _models

    models = {
        v for m in (_models, _envelopes) for v in vars(m).values()
        if isinstance(v, type) and issubclass(v, _models.ExactJSONModel)
        and v is not _models.ExactJSONModel
    }
    lazy = [c.__name__ for c in models
            if not isinstance(c.__pydantic_validator__, pydantic_core.SchemaValidator)]
    print(json.dumps({"lazy": lazy, "models": len(models)}))
    """
)

_FIRST_USE = textwrap.dedent(
    """
    import json, sys, threading
    from kopechka import KopechkaClient
    from kopechka import _wire

    # The client's import declares no model: the threads below are the first to need them, so
    # the first of them imports the models while the others wait for them.
    before = sorted(m for m in ("kopechka._models", "kopechka._envelopes") if m in sys.modules)

    class Answer:
        status_code, headers = 200, {}
        def __init__(self, content): self.content = content

    order = ('{"orderId":"A","email":"e","domain":"d","site":"s","status":"active",'
             '"price":5.00,"createdAt":"2024-01-01T00:00:00Z"}')
    summary = '{"id":"o","email":"e","domain":"d","status":"active","created_at":"2024-01-01T00:00:00Z"}'
    calls = [
        (lambda: _wire.get_balance(), '{"success":true,"data":{"balance":5.00}}'),
        (lambda: _wire.cancel_order("A"), '{"success":true,"message":"ok","refundAmount":5.00}'),
        (lambda: _wire.get_order("A"), '{"success":true,"data":' + order + '}'),
        (lambda: _wire.get_domains(), '{"success":true,"data":[{"id":"1","name":"n","price":5.00}]}'),
        (lambda: _wire.get_messages("A"), '{"success":true,"messages":[],"order":' + summary + '}'),
        (lambda: _wire.list_orders(1, 10, "active"), '{"success":true,"data":[' + order + '],'
                                   '"pagination":{"page":1,"limit":10,"total":1,"pages":1}}'),
        (lambda: _wire.start_polling("A"), '{"success":true,"data":{"orderId":"A","pollingStatus":"on"}}'),
        (lambda: _wire.get_profile(), '{"success":true,"data":{"id":"u","email":"e","username":"u",'
         '"balance":1,"role":"r","emailVerified":true,"isActive":true,'
         '"createdAt":"2024-01-01T00:00:00Z","updatedAt":"2024-01-01T00:00:00Z"}}'),
    ]
    THREADS = 48
    barrier = threading.Barrier(THREADS, timeout=30)
    errors = []

    def first_use(i):
        call, body = calls[i % len(calls)]
        barrier.wait()
        try:
            _wire.decode(call(), Answer(body.encode()))
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=first_use, args=(i,)) for i in range(THREADS)]
    for t in threads: t.start()
    for t in threads: t.join(60)
    print(json.dumps({"before": before, "errors": errors[:3]}))
    """
)


def _child(code: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def test_schemas_are_built_when_declared() -> None:
    # A fresh process: in this one the schemas have long been used. With defer_build, pydantic
    # 2.11.0 raced on first concurrent use ("'Body' object has no attribute 'result'", "BaseModel
    # cannot be instantiated directly"); whatever pydantic is installed, no schema may be left to
    # build once the models are declared.
    report = _child(_DECLARED)
    assert report["models"] >= 19  # 11 public models and 8+ envelopes
    assert report["lazy"] == []


def test_first_concurrent_use_declares_the_models_once_and_safely() -> None:
    # The models are declared on first use, not when the client is imported: 48 threads that
    # decode at once in a fresh process are the first to need them. Python's import lock makes
    # the others wait for the finished module, whose schemas are built (test above).
    report = _child(_FIRST_USE)
    assert report["before"] == []  # else this would test nothing: the race is the first use
    assert report["errors"] == []


def test_json_unicode_escapes_decode_to_their_characters() -> None:
    # A server that writes ASCII-only JSON escapes every other character. pydantic 2.7.0 to 2.7.2
    # decoded such escapes into the wrong characters: the reason the pydantic floor is 2.7.3.
    escaped = "\\u041a\\u043e\\u0434 \\u00e9 \\ud83d\\ude42"
    message = Message.model_validate_json(
        f'{{"id":"m","from":"a","subject":"{escaped}","receivedAt":"2024-01-01T00:00:00Z"}}'
    )
    assert message.subject == "Код é 🙂"
    refused = f'{{"success":false,"message":"{escaped}"}}'.encode()
    assert wire.status_error(Answer(refused, status_code=400)).message == "Код é 🙂"


def _reference(data: bytes) -> str:
    """What ``json.loads`` makes of ``data``, fractions as ``Decimal``, as a ``repr`` (which shows
    a ``Decimal``'s digits: ``5.00`` is not ``5``), or ``"ValueError"``."""

    def refuse(name: str) -> Any:
        raise ValueError(name)

    try:
        return repr(json.loads(data, parse_float=Decimal, parse_constant=refuse))
    except (ValueError, RecursionError):
        return "ValueError"


def _exact_parse(data: bytes) -> str:
    try:
        return repr(loads_exact(data))
    except ValueError:
        return "ValueError"


@pytest.mark.parametrize(
    "data",
    [
        b'{"price": 5.00, "big": 12345678901234567.89, "tiny": 1e-400, "neg": -0.0}',
        b"[NaN]",
        b"[Infinity]",
        b'{"a": -Infinity}',
        b'{"a": 1, "b": 2, "a": 3}',  # the last wins, in the first one's place
        b"[" + b"9" * 4300 + b"]",  # the longest integer int() reads
        b"[" + b"9" * 4301 + b"]",
        b"[" * 300 + b"]" * 300,  # deeper than jiter reads, not than json.loads does
        b"[" * 100_000 + b"]" * 100_000,
        '{"a": "\u0416", "p": 1.50}'.encode("utf-16"),
        '{"a": "\u0416", "p": 1.50}'.encode("utf-16-le"),
        '{"p": 1.50}'.encode("utf-32"),
        b'\xef\xbb\xbf{"p": 1.50}',
        b'["\\ud800", 1.5]',
        b'["\\udc00\\ud800"]',
        b'["\xed\xa0\x80"]',
        b'["\xff"]',
        b'["\xc0\x80"]',
        b"[1] x",
        b"",
    ],
    ids=[
        "amounts", "nan", "infinity", "minus-infinity", "duplicate-keys", "int-4300", "int-4301",
        "deep-300", "deep-100000", "utf-16", "utf-16-le", "utf-32", "utf-8-bom", "lone-surrogate",
        "reversed-surrogates", "raw-surrogate", "not-utf8", "overlong", "trailing", "empty",
    ],
)  # fmt: skip
def test_the_exact_parse_reads_bytes_as_json_loads_does(data: bytes) -> None:
    """jiter reads the bytes, and what it refuses json.loads reads: the value, or the refusal,
    is always json.loads's (fractions as Decimal, NaN refused)."""
    assert _exact_parse(data) == _reference(data)


def test_the_exact_parse_says_too_deep() -> None:
    with pytest.raises(ValueError, match="nested too deep"):
        loads_exact(b"[" * 100_000 + b"]" * 100_000)


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _dumps(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return "[" + ",".join(_dumps(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(k) + ":" + _dumps(v) for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)


@given(
    _JSON_VALUES,
    st.sampled_from(["utf-8", "utf-16", "utf-8-sig"]),
    st.binary(max_size=3),
    st.integers(0, 64),
)
def test_the_exact_parse_agrees_with_json_loads(
    value: object, encoding: str, spice: bytes, at: int
) -> None:
    """Any JSON text, as written or with a few bytes put in, in any encoding json.loads reads."""
    text = _dumps(value).encode(encoding, "surrogatepass")
    for data in (text, text[:at] + spice + text[at:]):
        assert _exact_parse(data) == _reference(data)


@given(
    st.decimals(allow_nan=True, allow_infinity=True)
    | st.from_regex(r"-?[0-9]{1,32}(\.[0-9]{1,32})?", fullmatch=True).map(Decimal)
)
@example(Decimal("-0"))
@example(Decimal("-0.00"))
@example(Decimal("-0.01"))
@example(Decimal("9" * 28))
@example(Decimal("-" + "9" * 27))
@example(Decimal("1E+2"))
def test_the_charge_rule_is_exact_then_not_negative(value: Decimal) -> None:
    """A charge's one validator refuses what the two rules refuse, with their words."""
    try:
        expected: Decimal | str = _not_negative(_exact(value))
    except ValueError as exc:
        expected = str(exc)
    try:
        got: Decimal | str = _charge(value)
    except ValueError as exc:
        got = str(exc)
    assert got == expected
    assert not isinstance(got, Decimal) or got is value


def test_importing_a_client_loads_no_parser() -> None:
    """jiter loads with the models, on the first decode, not with the client."""
    code = (
        "import sys; from kopechka import KopechkaClient, AsyncKopechkaClient;"
        "print(sorted(m for m in ('jiter', 'kopechka._models') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_a_decoded_page_is_the_page_its_fields_validate_to() -> None:
    """The page is put together from orders already validated: the same model as validating
    its fields, field for field (which fields were set, equality, pickling, immutability)."""
    orders = f"[{_order_json('5.00')},{_order_json('0.1')}]"
    fields = f'"data":{orders},"pagination":{json.dumps(PAGINATION)}'
    page = wire.decode(wire.list_orders(1, 10), Answer(f'{{"success":true,{fields}}}'.encode()))
    validated = OrderPage.model_validate_json("{" + fields + "}")
    assert type(page) is OrderPage
    assert page == validated
    assert page.model_fields_set == validated.model_fields_set == {"orders", "pagination"}
    assert [o.price.as_tuple() for o in page.orders] == [Decimal("5.00").as_tuple(), (0, (1,), -1)]
    assert pickle.loads(pickle.dumps(page)) == page
    assert page.model_dump() == validated.model_dump()
    with pytest.raises(ValidationError):
        page.orders = []  # type: ignore[misc]


def test_the_exact_parse_keeps_no_value_in_jiter_cache() -> None:
    """jiter caches strings process-wide; only field names may stay there, never a value an answer
    carried (a code, an address, anything a server echoed)."""
    import jiter

    jiter.cache_clear()
    loads_exact(b'{"orderId": "API-1", "email": "one@example.com", "codes": ["111111"]}')
    after_first = jiter.cache_usage()
    loads_exact(b'{"orderId": "API-2", "email": "two@example.com", "codes": ["222222"]}')
    assert jiter.cache_usage() == after_first  # the same keys; the new values are not cached
