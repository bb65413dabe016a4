"""The key where nobody looks: as a header's name, cut in two by the body snippet's end, and as
the id a server gives an order (which then shows in errors' messages and in the log), on both
faces."""

from __future__ import annotations

import http.client
import logging
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from kopechka import (
    APIError,
    APIStatusError,
    OrderOutcomeUnknownError,
    SpendLimitError,
)
from kopechka.testing import Sandbox

from ..faces import Face
from .conftest import SECRET, Conn, RawServer, Script, answer
from .keycheck import assert_key_unreachable, spellings_of

Make = Callable[[Script], RawServer]


def fixed(status: int, body: bytes, headers: dict[str, str] | None = None) -> Script:
    def script(conn: Conn, _request: bytes) -> None:
        conn.send(answer(status, body, headers))

    return script


def holds_a_prefix(text: str, secret: str, size: int = 8) -> bool:
    """Whether ``text`` holds the first ``size`` characters of ``secret``, in any spelling."""
    return any(secret[:size].casefold() in form.casefold() for form in spellings_of(text))


# --- a header's name ------------------------------------------------------------------------------

HEADER_KEY = "sk-live.Header_Key-0123456789abcdef"
"""A key spelled as an HTTP token, so that it can be a header's name."""


@pytest.mark.parametrize("name", [HEADER_KEY, HEADER_KEY.upper(), f"X-{HEADER_KEY}-Echo"])
def test_a_key_echoed_as_a_header_name_is_scrubbed(raw_server: Make, face: Face, name: str) -> None:
    server = raw_server(fixed(500, b'{"success": false, "message": "no"}', {name: "1"}))
    with (
        face.client(api_key=HEADER_KEY, base_url=server.url, max_retries=0) as client,
        pytest.raises(APIStatusError) as info,
    ):
        client.get_balance()
    headers = info.value.response.headers
    assert any("***" in header for header in headers)  # the header is kept, its name scrubbed
    assert_key_unreachable(info.value, HEADER_KEY)


# --- the body snippet's cut -----------------------------------------------------------------------


def _straddling(spelling: Callable[[str], str], before: int) -> bytes:
    """A text body whose echo of the key (spelled so) starts ``before`` characters before the
    snippet's cut (2,000)."""
    return ("x" * (2000 - before) + spelling(SECRET) + "y" * 3000).encode()


SPELLINGS: dict[str, Callable[[str], str]] = {
    "as sent": lambda key: key,
    "url-encoded": lambda key: quote(key, safe=""),
    "json-escaped": lambda key: "".join(f"\\u{ord(ch):04x}" for ch in key),
    "html entities": lambda key: "".join(f"&#{ord(ch)};" for ch in key),
    "entities, url-encoded": lambda key: quote("".join(f"&#{ord(ch)};" for ch in key), safe=""),
}


@pytest.mark.parametrize("spelling", list(SPELLINGS))
@pytest.mark.parametrize("before", [1, 9, 10, 20, len(SECRET) - 1, 200])
def test_a_key_cut_by_the_snippet_leaves_nothing_of_it(
    raw_server: Make, face: Face, spelling: str, before: int
) -> None:
    body = _straddling(SPELLINGS[spelling], before)
    server = raw_server(fixed(502, body, {"Content-Type": "text/plain"}))
    with (
        face.client(api_key=SECRET, base_url=server.url, max_retries=0) as client,
        pytest.raises(APIStatusError) as info,
    ):
        client.get_balance()
    error = info.value
    assert isinstance(error.body, str)
    assert len(error.body) <= 2000
    for text in (error.body, error.response.content.decode(), str(error)):
        assert not holds_a_prefix(text, SECRET), text[-120:]
    assert_key_unreachable(error, SECRET)


def test_a_key_cut_after_decoding_shrank_the_text_leaves_nothing_of_it(
    raw_server: Make, face: Face
) -> None:
    """One echo is found (so the decoded text is kept): the text shrinks, and a second echo cut
    by the end of what was scrubbed comes before the snippet's end."""
    escaped = "".join(f"\\u{ord(ch):04x}" for ch in SECRET)
    body = (SECRET + "%41" * 800 + escaped * 40).encode()
    server = raw_server(fixed(500, body, {"Content-Type": "text/plain"}))
    with (
        face.client(api_key=SECRET, base_url=server.url, max_retries=0) as client,
        pytest.raises(APIStatusError) as info,
    ):
        client.get_balance()
    assert not holds_a_prefix(info.value.body, SECRET)
    assert not holds_a_prefix(info.value.response.content.decode(), SECRET)


# --- an order named by the key ----------------------------------------------------------------------

ORDER_KEY = "sk-live-OrderKey-0123456789abcdef"
"""A key that is also a valid order id (no ``/``): the server names its order by it."""
SANDBOX_ORDER = b"API-1234567890"  # the sandbox's first order


def renaming(sandbox: Sandbox, charged: bytes | None = None) -> Script:
    """A server in front of the sandbox that names the sandbox's first order by the key (and,
    given ``charged``, answers a purchase with that price instead of the listed one)."""

    def script(conn: Conn, request: bytes) -> None:
        head, _, body = request.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        fields = dict(line.split(": ", 1) for line in lines[1:])
        fields = {k: v for k, v in fields.items() if k.lower() not in {"host", "content-length"}}
        upstream = http.client.HTTPConnection(urlsplit(sandbox.url).netloc, timeout=10)
        try:
            upstream.request(
                method, target.replace(ORDER_KEY, SANDBOX_ORDER.decode()), body, fields
            )
            reply = upstream.getresponse()
            data = reply.read().replace(SANDBOX_ORDER, ORDER_KEY.encode())
        finally:
            upstream.close()
        if charged is not None and method == "POST":
            data = data.replace(b'"price":5.00', b'"price":' + charged)
        conn.send(
            answer(reply.status, data, {"Retry-After": reply.getheader("Retry-After") or "0"})
        )

    return script


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(api_key=ORDER_KEY) as sb:
        yield sb


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.getMessage()} {vars(r)}" for r in caplog.records if r.name == "kopechka"]


def test_an_order_named_by_the_key_is_not_in_the_outcome_unknown_error(
    raw_server: Make, face: Face, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kopechka")
    server = raw_server(renaming(sandbox))
    sandbox.fail(500, path="/orders", method="POST", execute=True)  # bought, answer lost
    with (
        face.client(api_key=ORDER_KEY, base_url=server.url, max_retries=0) as client,
        pytest.raises(OrderOutcomeUnknownError) as info,
    ):
        client.create_order("example.com", "x.com")
    error = info.value
    assert [order.order_id for order in error.candidates] == [ORDER_KEY]  # the data, as served
    assert "Candidates: ***" in str(error)
    for text in (str(error), repr(error), error.message, *map(str, error.args[:3])):
        assert ORDER_KEY not in text
    assert all(ORDER_KEY not in line for line in _messages(caplog))


def test_an_order_named_by_the_key_is_not_in_the_spend_limit_error(
    raw_server: Make, face: Face, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kopechka")
    server = raw_server(renaming(sandbox, charged=b"9.00"))
    with (
        face.client(api_key=ORDER_KEY, base_url=server.url, max_retries=0) as client,
        pytest.raises(SpendLimitError, match=r"charged 9\.00") as info,
    ):
        client.create_order("example.com", "x.com", max_price=Decimal("5.00"))
    assert info.value.order is not None
    assert info.value.order.order_id == ORDER_KEY
    assert ORDER_KEY not in str(info.value)
    assert ORDER_KEY not in info.value.args[0]
    assert sandbox.balance == Decimal("100.00")  # it was cancelled: the order's id was used
    assert all(ORDER_KEY not in line for line in _messages(caplog))


def test_an_order_named_by_the_key_is_not_in_the_log(
    raw_server: Make, face: Face, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kopechka")
    server = raw_server(renaming(sandbox))
    with face.client(api_key=ORDER_KEY, base_url=server.url, max_retries=0) as client:
        order = client.create_order("example.com", "x.com")
        assert order.order_id == ORDER_KEY
        sandbox.fail(500, path=f"/orders/{SANDBOX_ORDER.decode()}/messages")
        with pytest.raises(APIError):
            client.get_messages(order.order_id)
    lines = _messages(caplog)
    assert any("/orders/***/messages -> 500" in line for line in lines), lines
    assert all(ORDER_KEY not in line for line in lines)


def test_a_log_record_of_a_caller_holds_no_key(
    face: Face, caplog: pytest.LogCaptureFixture
) -> None:
    """The scrub is on the way to every handler: any record of ``kopechka`` (args and ``extra``)."""
    caplog.set_level(logging.DEBUG, logger="kopechka")
    with Sandbox(api_key=ORDER_KEY) as sb, face.sandbox_client(sb):
        extra: dict[str, Any] = {"where": f"/orders/{ORDER_KEY}"}
        logging.getLogger("kopechka").warning("order %s", ORDER_KEY, extra=extra)
    record = caplog.records[-1]
    assert record.getMessage() == "order ***"
    assert vars(record)["where"] == "/orders/***"
