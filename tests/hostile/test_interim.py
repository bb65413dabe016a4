"""Interim answers (1xx) before the final one, from a raw socket: ``103 Early Hints`` and ``102
Processing`` before a purchase's ``200`` are skipped on both faces (RFC 9110, section 15.2), so the
order bought is the one returned; and an answer whose meaning is not certain is an unknown
outcome (``OrderOutcomeUnknownError``), never "nothing bought"."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import requests

from kopechka import KopechkaClient, OrderOutcomeUnknownError
from kopechka import _money as money
from kopechka._exceptions import APIStatusError
from kopechka.testing import Sandbox

from ..faces import Face
from .conftest import Conn, RawServer, Script, answer

ORDER = {
    "orderId": "API-7", "email": "a@example.com", "domain": "example.com", "site": "x.com",
    "status": "pending", "price": 5, "createdAt": "2026-01-01T00:00:00Z",
}  # fmt: skip
INTERIM = {
    "103": b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n",
    "102": b"HTTP/1.1 102 Processing\r\n\r\n",
    "102 then 103": b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
}


def purchase_after(interim: bytes) -> Script:
    def script(conn: Conn, request: bytes) -> None:
        body = json.dumps({"success": True, "data": ORDER}).encode()
        conn.send(interim + answer(200, body))

    return script


@pytest.mark.parametrize("interim", sorted(INTERIM))
def test_interim_answers_before_the_purchase_are_skipped(
    face: Face, raw_server: Callable[[Script], RawServer], interim: str
) -> None:
    server = raw_server(purchase_after(INTERIM[interim]))
    with face.client(api_key="k", base_url=server.url, max_retries=0) as client:
        order = client.create_order("example.com", "x.com")
        assert order.order_id == "API-7"
    assert len(server.requests) == 1


def test_a_mailbox_gets_its_box_after_early_hints(face: Face, sandbox: Sandbox) -> None:
    sandbox.fail(interim=103, path="/orders", method="POST")
    with face.sandbox_client(sandbox) as client, client.mailbox("example.com", "x.com") as box:
        assert box.order_id.startswith("API-")
    assert sandbox.balance == Decimal("100")  # bought, returned, refunded on leaving
    assert sandbox.state.order_count() == 1


@pytest.mark.parametrize("status", [100, 102, 103, 199])
def test_a_1xx_taken_as_final_is_an_unknown_outcome(status: int) -> None:
    assert money.outcome_unknown(APIStatusError("interim", status_code=status))


def test_an_interim_answer_then_a_hang_up_is_an_unknown_outcome(
    face: Face, raw_server: Callable[[Script], RawServer]
) -> None:
    def script(conn: Conn, request: bytes) -> None:
        if request.startswith(b"POST"):
            conn.send(INTERIM["103"])  # then nothing: the connection closes
            conn.sock.close()
            return
        page = {"page": 1, "limit": 100, "total": 0, "pages": 1}
        conn.send(
            answer(200, json.dumps({"success": True, "data": [], "pagination": page}).encode())
        )

    server = raw_server(script)
    client = face.client(api_key="k", base_url=server.url, max_retries=0)
    with client, pytest.raises(OrderOutcomeUnknownError):
        client.create_order("example.com", "x.com")


# --- a caller's requests.Session: its connections do not skip interim answers --------------------


def late_final_answer(final: Callable[[bytes, int], bytes]) -> Script:
    """The first request gets ``103`` at once and its final answer 0.3 s later, on the same
    connection; every request gets ``final(request, n)``, n counting from 0."""
    count = [0]

    def script(conn: Conn, request: bytes) -> None:
        n = count[0]
        count[0] += 1
        if n == 0:
            conn.send(INTERIM["103"])
            if conn.server.closed.wait(0.3):
                return
        conn.send(final(request, n))

    return script


def balance(n: int) -> bytes:
    return answer(200, json.dumps({"success": True, "data": {"balance": f"{n + 1}.00"}}).encode())


def test_a_callers_session_retries_a_get_whose_answer_was_interim(
    raw_server: Callable[[Script], RawServer],
) -> None:
    """The caller's connection reads the 103 as final: that connection is dropped (its final
    answer would be read as the next request's) and the GET is tried again."""
    server = raw_server(late_final_answer(lambda request, n: balance(n)))
    with requests.Session() as session:
        client = KopechkaClient(api_key="k", base_url=server.url, session=session, sleep=no_sleep)
        assert client.get_balance() == Decimal("2.00")  # the retry's own answer
        assert client.get_balance() == Decimal("3.00")  # never the first request's late one
    assert server.connections == 2


def test_a_callers_session_names_a_purchase_whose_answer_was_interim(
    raw_server: Callable[[Script], RawServer],
) -> None:
    """A purchase answered 103 stays an unknown outcome (the request reached the server); the
    search for its order reads its own listing, not the purchase's late answer."""
    bought = {**ORDER, "createdAt": datetime.now(timezone.utc).isoformat()}

    def final(request: bytes, n: int) -> bytes:
        if request.startswith(b"POST"):
            return answer(200, json.dumps({"success": True, "data": bought}).encode())
        listed = [bought] if b"status=pending" in request.split(b"\r\n", 1)[0] else []
        page = {"page": 1, "limit": 100, "total": len(listed), "pages": 1}
        return answer(
            200, json.dumps({"success": True, "data": listed, "pagination": page}).encode()
        )

    server = raw_server(late_final_answer(final))
    with requests.Session() as session:
        client = KopechkaClient(api_key="k", base_url=server.url, session=session, sleep=no_sleep)
        with pytest.raises(OrderOutcomeUnknownError) as info:
            client.create_order("example.com", "x.com")
    assert [o.order_id for o in info.value.candidates] == ["API-7"]
    assert sum(r.startswith(b"POST") for r in server.requests) == 1  # never bought twice


def no_sleep(seconds: float) -> None:
    """Retries at once: the test is about which answer is read, not when."""
