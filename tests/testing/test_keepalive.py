"""Keep-alive without the Nagle stall: each reply is ONE write on a socket with TCP_NODELAY.

Headers and body written separately, on a socket without TCP_NODELAY, meet Nagle's algorithm and the
client's delayed ACK: every keep-alive request then waits ~40 ms. Each half of the cure is checked
on its own (the option on the server's accepted socket; one write per reply, errors included), and
the symptom is measured in a subprocess with a generous bound."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from kopechka.testing import Sandbox
from kopechka.testing._server import _Handler

H = {"X-API-Key": "test-key"}


class CountingWriter:
    """Stands for the handler's ``wfile``: counts the writes of each reply."""

    def __init__(self, inner: Any, writes: list[bytes]) -> None:
        self._inner, self._writes = inner, writes

    def write(self, data: bytes) -> int:
        self._writes.append(bytes(data))
        written: int = self._inner.write(data)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def observed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, list[int], list[bytes]]]:
    """A sandbox whose accepted sockets report TCP_NODELAY and whose writes are counted."""
    nodelay: list[int] = []
    writes: list[bytes] = []
    lock = threading.Lock()
    setup = _Handler.setup

    def observing_setup(self: _Handler) -> None:
        setup(self)
        with lock:
            nodelay.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        self.wfile = CountingWriter(self.wfile, writes)  # type: ignore[assignment]

    monkeypatch.setattr(_Handler, "setup", observing_setup)
    with Sandbox() as sandbox:
        yield sandbox, nodelay, writes


def test_accepted_sockets_have_tcp_nodelay(
    observed: tuple[Sandbox, list[int], list[bytes]],
) -> None:
    sandbox, nodelay, _ = observed
    for _ in range(3):  # three connections
        requests.get(sandbox.url + "/balance", headers=H, timeout=5)
    assert len(nodelay) == 3
    assert all(nodelay), nodelay


def test_every_reply_is_one_write(observed: tuple[Sandbox, list[int], list[bytes]]) -> None:
    sandbox, _, writes = observed
    with requests.Session() as s:
        answers = [
            s.get(sandbox.url + "/balance", headers=H, timeout=5),
            s.post(sandbox.url + "/orders", json={"domain": "example.com", "site": "x"}, headers=H, timeout=5),
            s.get(sandbox.url + "/orders?page=x", headers=H, timeout=5),
            s.get(sandbox.url + "/orders", headers=H, timeout=5),
            s.options(sandbox.url + "/orders", timeout=5),
            s.get(sandbox.root_url + "/openapi.json", timeout=5),
        ]  # fmt: skip
    assert [a.status_code for a in answers] == [200, 200, 400, 200, 405, 200]
    assert len(writes) == len(answers)  # one write per reply...
    for written, answer in zip(
        writes, answers, strict=False
    ):  # ...holding all of it, head and body
        assert written.startswith(b"HTTP/1.1 %d " % answer.status_code)
        assert written.endswith(b"\r\n\r\n" + answer.content)


LATENCY = textwrap.dedent(
    """
    import json, statistics, time
    import requests
    from kopechka.testing import Sandbox

    with Sandbox() as sb, requests.Session() as s:
        url = sb.url + "/orders"
        s.get(url, headers={"X-API-Key": "test-key"}, timeout=5)  # connect and warm up
        took = []
        for _ in range(40):
            started = time.perf_counter()
            r = s.get(url, headers={"X-API-Key": "test-key"}, timeout=5)
            took.append((time.perf_counter() - started) * 1000.0)
            assert r.status_code == 200
    print(json.dumps({"median_ms": statistics.median(took)}))
    """
)


@pytest.mark.timing
def test_keep_alive_requests_do_not_stall() -> None:
    """A Nagle/delayed-ACK stall costs >= 40 ms per request; unstalled, about 1 ms. The bound,
    30 ms on the median of 40 keep-alive requests (generous for a loaded machine, still below a
    stall), is run in a subprocess."""
    result = subprocess.run(
        [sys.executable, "-c", LATENCY], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    median = json.loads(result.stdout)["median_ms"]
    assert median < 30.0, f"median keep-alive request took {median:.1f} ms"
