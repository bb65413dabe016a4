"""Every request gets an answer: hostile and malformed requests over raw sockets.

Each case is sent as bytes on a fresh connection; the answer must be JSON with the documented error
envelope, the connection kept when the framing is intact and closed when it is not, and the server
must go on serving, with no traceback and no error logged."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from kopechka.testing import Sandbox, SandboxError

KEY = b"X-API-Key: test-key\r\n"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool

    def json(self) -> Any:
        return json.loads(self.body)


def _read_answer(sock: socket.socket, *, head_only: bool = False) -> Answer:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed without an answer: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    size = 0 if head_only else int(headers["content-length"])
    while len(rest) < size:
        chunk = sock.recv(65536)
        assert chunk, "answer cut short"
        rest += chunk
    return Answer(int(status_line.split()[1]), headers, rest[:size], _closed(sock))


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(0.3)
    try:
        return sock.recv(1) == b""
    except (TimeoutError, BlockingIOError):
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.settimeout(10)


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def no_traceback(
    sb: Sandbox, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> Iterator[None]:
    """After each case: nothing logged as an error, nothing on stderr, the server still serves."""
    caplog.set_level(logging.WARNING, logger="kopechka.testing")
    yield
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert "Traceback" not in capfd.readouterr().err
    ok = requests.get(sb.url + "/balance", headers={"X-API-Key": "test-key"}, timeout=5)
    assert ok.status_code == 200


def connect(sb: Sandbox) -> socket.socket:
    host, port = sb.bound_address
    return socket.create_connection((host, port), timeout=10)


def send(sb: Sandbox, raw: bytes, **kwargs: bool) -> Answer:
    with connect(sb) as sock:
        sock.sendall(raw)
        return _read_answer(sock, **kwargs)


def post(path: str, headers: bytes, body: bytes = b"") -> bytes:
    return b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + KEY + headers + b"\r\n" + body


CASES = [
    # (name, request bytes, status, words in the message, connection closed)
    ("page=²", b"GET /api/v1/orders?page=%C2%B2 HTTP/1.1\r\nHost: x\r\n" + KEY + b"\r\n", 400, "page", False),
    ("page of 5,000 digits", b"GET /api/v1/orders?page=" + b"7" * 5000 + b" HTTP/1.1\r\nHost: x\r\n" + KEY + b"\r\n", 400, "page", False),
    ("limit of 5,000 digits", b"GET /api/v1/orders?limit=" + b"7" * 5000 + b" HTTP/1.1\r\nHost: x\r\n" + KEY + b"\r\n", 400, "limit", False),
    ("200,000-deep JSON", post("/api/v1/orders", b"Content-Length: 400000\r\n", b"[" * 200_000 + b"]" * 200_000), 400, "nested", False),
    ("Content-Length: abc", post("/api/v1/orders", b"Content-Length: abc\r\n", b"{}"), 400, "Content-Length", True),
    ("Content-Length: -1", post("/api/v1/orders", b"Content-Length: -1\r\n"), 400, "Content-Length", True),
    ("two Content-Lengths", post("/api/v1/orders", b"Content-Length: 2\r\nContent-Length: 3\r\n", b"{}"), 400, "Content-Length", True),
    ("Content-Length with chunked", post("/api/v1/orders", b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 400, "Transfer-Encoding", True),
    ("gzip transfer coding", post("/api/v1/orders", b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n"), 501, "chunked", True),
    ("bad chunk size", post("/api/v1/orders", b"Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n"), 400, "chunk", True),
    ("chunk longer than its size", post("/api/v1/orders", b"Transfer-Encoding: chunked\r\n", b"2\r\n{}}\r\n0\r\n\r\n"), 400, "Chunk", True),
    ("OPTIONS", b"OPTIONS /api/v1/orders HTTP/1.1\r\nHost: x\r\n\r\n", 405, "OPTIONS", False),
    ("TRACE", b"TRACE /api/v1/balance HTTP/1.1\r\nHost: x\r\n\r\n", 405, "TRACE", False),
    ("QUERY", b"QUERY /api/v1/profile HTTP/1.1\r\nHost: x\r\n\r\n", 405, "QUERY", False),
    ("unknown method", b"BREW /api/v1/profile HTTP/1.1\r\nHost: x\r\n\r\n", 501, "BREW", True),
    ("garbage request line", b"HELLO\r\n\r\n", 400, "Bad request", True),
    ("HTTP/2.0 request line", b"GET /api/v1/balance HTTP/2.0\r\n\r\n", 505, "version", True),
    ("request line over 64 KiB", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, "URI", True),
    ("header over 64 KiB", b"GET /api/v1/balance HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431, "Line too long", True),
    ("101 headers", b"GET /api/v1/balance HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n", 431, "headers", True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "status", "words", "closed"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_every_request_gets_a_json_answer(
    sb: Sandbox, raw: bytes, status: int, words: str, closed: bool
) -> None:
    answer = send(sb, raw)
    assert answer.status == status
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["success"] is False
    assert words.lower() in answer.json()["message"].lower()
    assert answer.closed is closed


def test_head_gets_headers_and_no_body(sb: Sandbox) -> None:
    with connect(sb) as sock:
        sock.sendall(b"HEAD /api/v1/balance HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = _read_answer(sock, head_only=True)
        assert (answer.status, answer.headers["allow"], answer.body) == (405, "GET", b"")
        sock.sendall(b"GET /api/v1/balance HTTP/1.1\r\nHost: x\r\n" + KEY + b"\r\n")
        assert _read_answer(sock).json()["data"]["balance"] == 100  # nothing was left unread


def test_a_400_keeps_the_connection_usable(sb: Sandbox) -> None:
    with connect(sb) as sock:
        sock.sendall(b"GET /api/v1/orders?page=0 HTTP/1.1\r\nHost: x\r\n" + KEY + b"\r\n")
        assert _read_answer(sock).status == 400
        sock.sendall(b"GET /api/v1/orders?page=1 HTTP/1.1\r\nHost: x\r\n" + KEY + b"\r\n")
        assert _read_answer(sock).status == 200


def test_chunked_body_is_read_chunk_by_chunk(sb: Sandbox) -> None:
    body = b'{"domain": "example.com", "site": "chunked.example"}'
    chunked = (
        b"5;name=value\r\n" + body[:5] + b"\r\n"
        + f"{len(body) - 5:x}".encode() + b"\r\n" + body[5:] + b"\r\n"
        + b"0\r\nX-Trailer: yes\r\n\r\n"
    )  # fmt: skip
    with connect(sb) as sock:
        sock.sendall(post("/api/v1/orders", b"Transfer-Encoding: chunked\r\n", chunked))
        created = _read_answer(sock)
        assert (created.status, created.json()["data"]["site"]) == (200, "chunked.example")
        sock.sendall(b"GET /api/v1/balance HTTP/1.1\r\nHost: x\r\n" + KEY + b"\r\n")
        assert _read_answer(sock).status == 200  # the framing ended where the body did
    assert sb.requests[-2].json() == json.loads(body)
    sb.reset()


def test_chunked_body_over_the_limit_is_413(sb: Sandbox) -> None:
    chunk = b"100000\r\n" + b"x" * 0x100000 + b"\r\n"
    with connect(sb) as sock:
        sock.sendall(post("/api/v1/orders", b"Transfer-Encoding: chunked\r\n", chunk * 2))
        answer = _read_answer(sock)
        assert (answer.status, answer.headers["connection"]) == (413, "close")
        sock.shutdown(socket.SHUT_WR)  # done sending: the server, draining, closes at once
        sock.settimeout(3)
        assert sock.recv(1) == b""


def test_16_mb_site_is_413_and_the_client_reads_it(sb: Sandbox) -> None:
    site = "s" * (16 << 20)
    r = requests.post(
        sb.url + "/orders", json={"domain": "example.com", "site": site},
        headers={"X-API-Key": "test-key"}, timeout=30,
    )  # fmt: skip
    assert r.status_code == 413
    assert r.json() == {"success": False, "message": "Request body over 1048576 bytes"}
    assert sb.state.order_count() == 0
    assert all(len(entry.body) <= 1 << 20 for entry in sb.requests)


def test_expect_100_continue_is_refused_before_the_body(sb: Sandbox) -> None:
    raw = post("/api/v1/orders", b"Content-Length: 16777216\r\nExpect: 100-continue\r\n")
    answer = send(sb, raw)
    assert answer.status == 413


def leave(sb: Sandbox, raw: bytes) -> bytes:
    """Send ``raw`` and stop sending, as a client that goes away does (the server reads the end
    of the stream); return what the server sent before it closed the connection. Its handler has
    ended by then: whatever it did with the cut request is done when this returns."""
    with connect(sb) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        got = b""
        for _ in range(1000):
            chunk = sock.recv(65536)
            if not chunk:
                return got
            got += chunk
    raise AssertionError(f"the server never closed the connection: {got[:200]!r}")


WHOLE = b'{"domain": "example.com", "site": "left.example"}'  # a valid order, if taken as complete
LEAVING = [
    ("Content-Length past the body", post("/api/v1/orders", b"Content-Length: %d\r\n" % (len(WHOLE) + 50), WHOLE)),
    ("in the middle of a chunk", post("/api/v1/orders", b"Transfer-Encoding: chunked\r\n", b"%x\r\n" % (len(WHOLE) + 50) + WHOLE)),
    ("before the last chunk", post("/api/v1/orders", b"Transfer-Encoding: chunked\r\n", b"%x\r\n" % len(WHOLE) + WHOLE + b"\r\n")),
    ("in a chunk-size line", post("/api/v1/orders", b"Transfer-Encoding: chunked\r\n", b"%x\r\n" % len(WHOLE) + WHOLE + b"\r\n1")),
]  # fmt: skip


@pytest.mark.parametrize("raw", [c[1] for c in LEAVING], ids=[c[0] for c in LEAVING])
def test_client_leaving_mid_body_harms_nothing(
    raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """A cut request is never taken as a whole one (no order bought, nothing reaches the app; the
    departed peer gets nothing, or a 400 for a line cut short), no exception leaves the
    connection's thread (the server logs one that does), and the next client is served whole."""
    caplog.set_level(logging.DEBUG, logger="kopechka.testing")
    with Sandbox() as own:
        answer = leave(own, raw)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 400 "), answer
        assert own.requests == []
        assert own.state.order_count() == 0
        nxt = requests.post(
            own.url + "/orders", json={"domain": "example.com", "site": "next.example"},
            headers={"X-API-Key": "test-key"}, timeout=10,
        )  # fmt: skip
        assert (nxt.status_code, nxt.json()["data"]["site"]) == (200, "next.example")
        assert own.state.order_count() == 1
        assert [r.json() for r in own.requests] == [
            {"domain": "example.com", "site": "next.example"}
        ]
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == []


def test_header_injection_through_a_fault_is_refused(sb: Sandbox) -> None:
    with pytest.raises(SandboxError, match="retry_after"):
        sb.fail(429, retry_after="1\r\nSet-Cookie: stolen=1")
    admin = requests.post(
        sb.root_url + "/_sandbox/fail",
        json={"status": 429, "retry_after": "1\r\nSet-Cookie: stolen=1"}, timeout=5,
    )  # fmt: skip
    assert admin.status_code == 400
    answer = requests.get(sb.url + "/balance", headers={"X-API-Key": "test-key"}, timeout=5)
    assert "set-cookie" not in {k.lower() for k in answer.headers}


@pytest.mark.parametrize(
    ("route", "payload"),
    [("/advance", {"seconds": 3e11}), ("/fail", {"status": 500, "delay": 1e308}),
     ("/fail", {"status": 500, "delay": -1})],
)  # fmt: skip
def test_absurd_admin_values_leave_the_sandbox_working(
    sb: Sandbox, route: str, payload: dict[str, float]
) -> None:
    r = requests.post(sb.root_url + "/_sandbox" + route, json=payload, timeout=5)
    assert r.status_code == 400
    assert sb.app.faults == []
