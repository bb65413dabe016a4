"""Memory is bounded: huge, endless and compressed-bomb answers stop at the body cap.

Each call runs in a child process whose address space is capped (RLIMIT_AS), so a regression
fails the test with a MemoryError in the child instead of swapping the machine.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Callable

import pytest

from .conftest import Conn, RawServer, Script

Make = Callable[[Script], RawServer]

CAP_MB = 512
GIB = 1024**3

CHILD = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, ({cap} * 2**20, {cap} * 2**20))
    from kopechka import KopechkaClient, KopechkaError
    kwargs = {kwargs}
    if kwargs.pop("callers_session", False):
        import requests
        kwargs["session"] = requests.Session()
    client = KopechkaClient("k", base_url=sys.argv[1], max_retries=0, timeout=(5, 60), **kwargs)
    try:
        print("answer", client.get_balance())
    except KopechkaError as exc:
        print(type(exc).__name__, str(exc)[:200])
    """
)


def run_child(url: str, **kwargs: object) -> str:
    code = CHILD.format(cap=CAP_MB, kwargs=repr(kwargs))
    # Untraced: coverage's tracer would multiply the time of the decompression loops (the other
    # tests cover the same code); the read timeout is generous for a loaded machine, the test
    # being about memory, not time
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    done = subprocess.run(
        [sys.executable, "-c", code, url], capture_output=True, text=True, timeout=180,
        check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


@functools.cache
def bomb(wbits: int) -> bytes:
    """1 GiB of zeros, compressed (about 1 MB)."""
    engine = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = bytes(1024 * 1024)
    return b"".join(engine.compress(zeros) for _ in range(1024)) + engine.flush()


def head(status: int = 200, **fields: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X", "Content-Type: application/json"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in fields.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def declared_gigabyte(conn: Conn, _: bytes) -> None:
    conn.send(head(Content_Length=str(GIB)))
    conn.forever(b"x" * 65536, limit_bytes=GIB)


def endless(conn: Conn, _: bytes) -> None:
    conn.send(head(Connection="close"))
    conn.forever(b'{"success": true, ' * 4096, limit_bytes=GIB)


def endless_chunked(conn: Conn, _: bytes) -> None:
    conn.send(head(Transfer_Encoding="chunked"))
    conn.forever(b"10000\r\n" + b"y" * 0x10000 + b"\r\n", limit_bytes=GIB)


def bombing(encoding: str, wbits: int, status: int = 200, **fields: str) -> Script:
    def script(conn: Conn, _: bytes) -> None:
        body = bomb(wbits)
        length = str(len(body))
        conn.send(head(status, Content_Encoding=encoding, Content_Length=length, **fields) + body)

    return script


@pytest.mark.parametrize(
    "script",
    [
        declared_gigabyte,
        endless,
        endless_chunked,
        bombing("gzip", 16 + zlib.MAX_WBITS),
        bombing("deflate", zlib.MAX_WBITS),
        bombing("deflate", -zlib.MAX_WBITS),
        bombing("gzip", 16 + zlib.MAX_WBITS, status=500),
        # requests reads a redirect's body whole to build Response.next, even unfollowed
        bombing("gzip", 16 + zlib.MAX_WBITS, status=302, Location="/api/v1/elsewhere"),
    ],
    ids=["declared-1GiB", "endless", "endless-chunked", "gzip-bomb", "deflate-bomb",
         "raw-deflate-bomb", "gzip-bomb-on-500", "gzip-bomb-on-302"],
)  # fmt: skip
def test_huge_answers_stop_at_the_cap(raw_server: Make, script: Script) -> None:
    server = raw_server(script)
    out = run_child(server.url)
    assert out.startswith("APIResponseValidationError"), out
    assert "larger than 10485760 bytes" in out


def test_a_redirect_bomb_stops_at_the_cap_through_a_callers_session_too(raw_server: Make) -> None:
    """requests reads a redirect's body whole (for ``Response.next``) in any session; the client
    reads it first, within the cap, through a session of the caller's as through its own."""
    server = raw_server(bombing("gzip", 16 + zlib.MAX_WBITS, status=302, Location="/x"))
    out = run_child(server.url, callers_session=True)
    assert out.startswith("APIResponseValidationError"), out
    assert "larger than 10485760 bytes" in out


def test_the_cap_is_configurable(raw_server: Make) -> None:
    body = b'{"success": true, "data": {"balance": 1.5}, "pad": "' + b"p" * 5000 + b'"}'

    def script(conn: Conn, _: bytes) -> None:
        conn.send(head(Content_Length=str(len(body))) + body)

    server = raw_server(script)
    assert run_child(server.url, max_body=4096).startswith("APIResponseValidationError")
    assert run_child(server.url, max_body=8192) == "answer 1.5"


def test_a_small_compressed_answer_is_read(raw_server: Make) -> None:
    body = zlib.compress(b'{"success": true, "data": {"balance": 7.25}}')

    def script(conn: Conn, _: bytes) -> None:
        conn.send(head(Content_Encoding="deflate", Content_Length=str(len(body))) + body)

    server = raw_server(script)
    assert run_child(server.url) == "answer 7.25"


@pytest.mark.parametrize(
    ("encoding", "body", "expected"),
    [("br", b"\x00\x01", "did not ask for"), ("gzip", b"not gzip at all", "is broken"),
     ("gzip, gzip", b"", "did not ask for")],
)  # fmt: skip
def test_unwanted_or_broken_encodings_are_typed_errors(
    raw_server: Make, encoding: str, body: bytes, expected: str
) -> None:
    def script(conn: Conn, _: bytes) -> None:
        conn.send(head(Content_Encoding=encoding, Content_Length=str(len(body))) + body)

    server = raw_server(script)
    out = run_child(server.url)
    assert out.startswith("APIResponseValidationError"), out
    assert expected in out


# --- memory after the cap: what parsing an answer under the cap costs ---------------------------

BUDGET_MIB = 64
PARSE_CHILD = textwrap.dedent(
    """
    import asyncio, gc, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, ({cap} * 2**20, {cap} * 2**20))
    from kopechka import AsyncKopechkaClient, KopechkaClient, KopechkaError

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024

    async def main():
        async with AsyncKopechkaClient("k", base_url=sys.argv[1], max_retries=0) as client:
            await client.get_balance()  # warm: baseline after a first answer
            gc.collect()
            base = peak()
            try:
                result = await client.get_balance()
            except KopechkaError as exc:
                result = type(exc).__name__
            return base, result

    if sys.argv[2] == "async":
        base, result = asyncio.run(main())
    else:
        client = KopechkaClient("k", base_url=sys.argv[1], max_retries=0)
        client.get_balance()
        gc.collect()
        base = peak()
        try:
            result = client.get_balance()
        except KopechkaError as exc:
            result = type(exc).__name__
    print(peak() - base, result)
    """
)
NEAR_CAP = 9 * 1024 * 1024


def _filler(unit: bytes) -> bytes:
    return b"[" + unit * (NEAR_CAP // len(unit)) + b"0]"


_DECIMALS = b"1.5," * (NEAR_CAP // 4 - 10)


def _mailbox(mails: int) -> bytes:
    """A mailbox of Russian HTML mails, as Python's ``json`` writes it (``ensure_ascii``)."""
    html = (
        '<td style="font-family: Arial, sans-serif; color: #333; padding: 0 0 10px 0;">'
        "Здравствуйте, ваш код подтверждения ниже, спасибо.</td>\n"
    ) * 2000
    mail = {"from": "a@b.c", "subject": "Код", "content": html, "receivedAt": "2026-01-01"}
    return json.dumps([dict(mail, id=str(i)) for i in range(mails)]).encode()


PARSE_ATTACKS = {
    "decimals": _filler(b"1.5,"),
    "integers": _filler(b"1000,"),
    "empty-objects": _filler(b"{},"),
    "empty-lists": _filler(b"[],"),
    "short-strings": _filler(b'"ab",'),
    "small-objects": _filler(b'{"a":1},'),
    "wide-text": b'"\xf0\x9f\x98\x80' + b"a" * NEAR_CAP + b'"',
    "escaped-wide-text": b'"\\ud83d\\ude00' + b"a" * NEAR_CAP + b'"',
    "under-the-budget": b'["' + b"a" * (NEAR_CAP - 2_000_000) + b'",' + b"1.5," * 150_000 + b"0]",
    # an escaped quote or backslash must not hide the decimals after it from the estimate
    "escaped-quote-then-decimals": b'["\\"",' + _DECIMALS + b'"x"]',
    "escaped-backslash-then-decimals": b'["\\\\",' + _DECIMALS + b'"x"]',
    # legitimate: structure inside strings, BMP escapes (as Python writes JSON by default)
    "mailbox-ensure-ascii": _mailbox(10),
    "commas-in-a-string": b'"' + b"a,b:" * (NEAR_CAP // 4) + b'"',
    "bmp-escapes": b'"' + b"\\u0417" * (NEAR_CAP // 6) + b'"',
}
PARSED = {"under-the-budget", "mailbox-ensure-ascii", "commas-in-a-string", "bmp-escapes"}


@pytest.mark.parametrize("face", ["sync", "async"])
@pytest.mark.parametrize("attack", list(PARSE_ATTACKS))
def test_an_answer_under_the_cap_parses_within_64_mib(
    raw_server: Make, attack: str, face: str
) -> None:
    """9 MiB of valid JSON under the 10 MiB cap, in a field the model ignores: each number
    became a Decimal (~270 MiB for a list of 1.5s). Whatever the shape, the call costs at most
    64 MiB of peak memory, in a child capped well above that."""
    body = b'{"success": true, "data": {"balance": 1.5}, "pad": ' + PARSE_ATTACKS[attack] + b"}"

    calls: list[int] = []

    def answer_it(conn: Conn, request: bytes) -> None:
        calls.append(1)
        data = b'{"success": true, "data": {"balance": 2}}' if len(calls) % 2 else body
        conn.send(head(Content_Length=str(len(data))) + data)

    server = raw_server(answer_it)
    code = PARSE_CHILD.format(cap=CAP_MB)
    done = subprocess.run(
        [sys.executable, "-c", code, server.url, face],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    grown, result = done.stdout.split()
    assert int(grown) <= BUDGET_MIB, (attack, face, grown, result)
    expected = "1.5" if attack in PARSED else "APIResponseValidationError"
    assert result == expected, (attack, result)
