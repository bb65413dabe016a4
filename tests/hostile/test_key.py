"""The key goes nowhere but base_url, and nothing reachable from an error holds it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from urllib.parse import quote

import pytest
import requests

from kopechka import (
    APIError,
    APIResponseValidationError,
    APIStatusError,
    AsyncKopechkaClient,
    KopechkaClient,
    KopechkaError,
    RateLimitError,
)
from kopechka._httpx import httpx
from kopechka.testing import Sandbox

from ..faces import Face
from .conftest import SECRET, Conn, RawServer, Script, answer
from .keycheck import assert_key_unreachable

Make = Callable[[Script], RawServer]


def fixed(status: int, body: bytes, headers: dict[str, str] | None = None) -> Script:
    def script(conn: Conn, _request: bytes) -> None:
        conn.send(answer(status, body, headers))

    return script


# --- redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{other}\\@127.0.0.1:{port}/api/v1/balance",   # requests connects to other
        "http://127.0.0.1:{other}/api/v1/balance",
        "//127.0.0.1:{other}/api/v1/balance",
        "http://user:pw@127.0.0.1:{other}/api/v1/balance",
        "http://127.0.0.1:{port}@127.0.0.1:{other}/api/v1/balance",
        "http://%31%32%37.0.0.1:{other}/api/v1/balance",
        "http://１２７.0.0.1:{other}/api/v1/balance",
        "/api/v1/balance2",                                               # same origin: not either
        "http://127.0.0.1:{port}/api/v1/balance2",
    ],
)  # fmt: skip
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("own_session", [True, False])
def test_no_redirect_carries_the_key(
    raw_server: Make, location: str, status: int, own_session: bool
) -> None:
    other = raw_server(fixed(200, b'{"success": true, "data": {"balance": 1}}'))
    server = raw_server(lambda conn, req: None)
    target = location.format(other=other.port, port=server.port)
    server.script = fixed(status, b"", {"Location": target})
    session = None if own_session else requests.Session()
    with (
        contextlib.closing(session or requests.Session()),
        KopechkaClient(SECRET, base_url=server.url, session=session) as client,
        pytest.raises(APIStatusError) as info,
    ):
        client.get_balance()
    assert info.value.status_code == status
    assert other.requests == []
    assert len(server.requests) == 1
    assert_key_unreachable(info.value, SECRET)


@pytest.mark.parametrize("location", [":abc", "http://127.0.0.1:99999/x", "http://[::1/x",
                                      "http://[zz]/x", "\x00\r\n", "h" * 100_000])  # fmt: skip
@pytest.mark.parametrize("own_session", [True, False])
def test_malformed_location_gives_a_typed_error(
    raw_server: Make, location: str, own_session: bool
) -> None:
    raw = location.encode("latin-1", "replace").replace(b"\r\n", b"")
    head = b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\nLocation: " + raw + b"\r\n\r\n"
    server = raw_server(lambda conn, _: conn.forever(head, limit_bytes=1))
    session = None if own_session else requests.Session()
    with (
        contextlib.closing(session or requests.Session()),
        KopechkaClient(SECRET, base_url=server.url, session=session) as client,
        pytest.raises(KopechkaError) as info,
    ):
        client.get_balance()
    assert len(str(info.value)) < 1000


def test_a_callers_session_keeps_its_response_hooks(raw_server: Make) -> None:
    """The client adds its redirect guard after the session's own hooks, never in their place."""
    server = raw_server(fixed(200, b'{"success": true, "data": {"balance": 1}}'))
    seen: list[int] = []
    session = requests.Session()
    session.hooks["response"].append(lambda response, **_: seen.append(response.status_code))
    with session, KopechkaClient(SECRET, base_url=server.url, session=session) as client:
        assert client.get_balance() == 1
        server.script = fixed(302, b"moved", {"Location": "/elsewhere"})
        with pytest.raises(APIStatusError, match="not followed"):
            client.get_balance()
    assert seen == [200, 302]


# --- proxies -----------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
@pytest.mark.parametrize("own_session", [True, False])
def test_loopback_never_goes_through_a_proxy(
    raw_server: Make, monkeypatch: pytest.MonkeyPatch, variable: str, own_session: bool
) -> None:
    proxy = raw_server(fixed(200, b'{"success": true, "data": {"balance": 666}}'))
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, f"http://127.0.0.1:{proxy.port}")
    session = None if own_session else requests.Session()  # a caller's session trusts the env
    with Sandbox(api_key=SECRET) as sb, sb.client(session=session) as client:
        assert client.get_balance() == 100
    assert proxy.connections == 0
    assert proxy.requests == []


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
def test_a_callers_connection_never_takes_the_key_to_a_proxy(
    raw_server: Make, monkeypatch: pytest.MonkeyPatch, face: Face, variable: str
) -> None:
    """A session or ``httpx.AsyncClient`` of the caller's, built trusting the environment: the
    sync face sends past its proxies, the async face refuses it at construction. Either way
    nothing reaches the proxy, and the key least of all."""
    proxy = raw_server(fixed(200, b'{"success": true, "data": {"balance": 666}}'))
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, f"http://127.0.0.1:{proxy.port}")
    with Sandbox(api_key=SECRET) as sb:
        if face.is_async:
            with pytest.raises(ValueError, match="through a proxy"):
                AsyncKopechkaClient(SECRET, base_url=sb.url, http_client=httpx.AsyncClient())
        else:
            with requests.Session() as session, sb.client(session=session) as client:
                assert client.get_balance() == 100
    assert proxy.connections == 0


@pytest.mark.parametrize("how", ["proxy=", "mounts="])
def test_an_async_client_with_its_own_proxy_is_refused_for_loopback(
    raw_server: Make, how: str
) -> None:
    proxy = raw_server(fixed(200, b'{"success": true, "data": {"balance": 666}}'))
    url = f"http://127.0.0.1:{proxy.port}"
    with Sandbox(api_key=SECRET) as sb:
        transport = httpx.AsyncHTTPTransport(proxy=url)
        given = (
            httpx.AsyncClient(proxy=url, trust_env=False)
            if how == "proxy="
            else httpx.AsyncClient(mounts={"http://": transport}, trust_env=False)
        )
        with pytest.raises(ValueError, match="through a proxy"):
            AsyncKopechkaClient(SECRET, base_url=sb.url, http_client=given)


def test_an_async_client_that_skips_the_proxy_for_loopback_is_used(
    raw_server: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = raw_server(fixed(200, b'{"success": true, "data": {"balance": 666}}'))
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")

    async def main(url: str) -> object:
        async with (
            httpx.AsyncClient() as given,
            AsyncKopechkaClient(SECRET, base_url=url, http_client=given) as client,
        ):
            return await client.get_balance()

    with Sandbox(api_key=SECRET) as sb:
        assert asyncio.run(main(sb.url)) == 100
    assert proxy.connections == 0


# --- echoes ------------------------------------------------------------------------------------


def _json_escaped(text: str) -> str:
    return "".join(f"\\u{ord(ch):04x}" for ch in text)


def _entities(text: str) -> str:
    return "".join(f"&#{ord(ch)};" for ch in text)


ECHOES: dict[str, tuple[int, bytes, dict[str, str]]] = {
    "raw message": (400, json.dumps({"success": False, "message": f"bad key {SECRET}"}).encode(), {}),
    "json unicode escapes": (401, b'{"success": false, "message": "key ' + _json_escaped(SECRET).encode() + b'"}', {}),
    "json slash escape": (403, b'{"success": false, "message": "' + SECRET.replace("/", "\\/").encode() + b'"}', {}),
    "html entities": (500, f"<html><title>{_entities(SECRET)}</title><p>{SECRET}</p></html>".encode(), {"Content-Type": "text/html"}),
    "url-encoded": (404, json.dumps({"success": False, "message": "k=" + quote(SECRET, safe="")}).encode(), {}),
    "upper-cased": (429, json.dumps({"success": False, "message": SECRET.upper()}).encode(), {"Retry-After": "3600"}),
    "lower-cased in a field": (400, json.dumps({"success": False, "message": "no", "echo": {"key": [SECRET.lower()]}}).encode(), {}),
    "in a header": (500, b'{"success": false, "message": "x"}', {"X-Echo": SECRET}),
    "in Location": (302, b"", {"Location": f"https://evil.example/?k={quote(SECRET)}"}),
    "in a 200 that is not JSON": (200, f"<html>{SECRET}</html>".encode(), {"Content-Type": "text/html"}),
    "in a 200 with missing fields": (200, json.dumps({"success": True, "data": {"key": SECRET}}).encode(), {}),
    "success false on 200": (200, json.dumps({"success": False, "message": _json_escaped(SECRET)}).encode(), {}),
    "in a huge message": (400, json.dumps({"success": False, "message": "x" * 1_000_000 + SECRET}).encode(), {}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ECHOES))
def test_an_echoed_key_is_scrubbed_everywhere(
    raw_server: Make, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    status, body, headers = ECHOES[case]
    server = raw_server(fixed(status, body, headers))
    caplog.set_level(logging.DEBUG, logger="kopechka")
    client = KopechkaClient(SECRET, base_url=server.url, max_retries=0)
    with client, pytest.raises(APIError) as info:
        client.get_balance()
    assert isinstance(info.value, (APIStatusError, APIResponseValidationError))
    if status == 429:
        assert isinstance(info.value, RateLimitError)
    assert len(str(info.value)) < 1000  # a server's text is bounded in the error
    assert_key_unreachable(info.value, SECRET)
    assert SECRET.casefold() not in caplog.text.casefold()


def test_network_errors_hold_no_request(raw_server: Make) -> None:
    def hang_up(conn: Conn, _request: bytes) -> None:
        conn.sock.close()

    server = raw_server(hang_up)
    client = KopechkaClient(SECRET, base_url=server.url, max_retries=1, sleep=lambda s: None)
    with client, pytest.raises(APIError) as info:
        client.get_balance()
    assert len(server.requests) == 2
    assert_key_unreachable(info.value, SECRET)


def test_connection_refused_holds_no_request() -> None:
    client = KopechkaClient(SECRET, base_url="http://127.0.0.1:9/api", max_retries=0)
    with client, pytest.raises(APIError) as info:
        client.get_profile()
    assert_key_unreachable(info.value, SECRET)


# --- the key itself ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["kéy", "key\u200b", "ключ", "k y", "key\t", "key\x00", "key\x7f", b"key", 123, ["k"]]
)
def test_a_key_that_cannot_travel_is_refused_at_construction(key: object) -> None:
    with pytest.raises(KopechkaError, match="API key must") as info:
        KopechkaClient(key)  # type: ignore[arg-type]
    if isinstance(key, str):
        assert key not in str(info.value)


@pytest.mark.parametrize(
    "url",
    ["http://localhost./api", "http://localhost.localdomain/api", "http://ip6-localhost/api",
     "http://localhost.evil.com/api", "http://127.0.0.1.nip.io/api", "http://0x7f000001/api"],
)  # fmt: skip
def test_plain_http_only_for_the_exact_loopback_names(url: str) -> None:
    with pytest.raises(ValueError, match="plain http"):
        KopechkaClient(SECRET, base_url=url)
