"""Hostile servers made of raw sockets on 127.0.0.1, scripted per test.

``RawServer(script)`` accepts connections in a background thread and runs ``script(conn, request)``
for each request it reads, where ``request`` is the raw request head and body. Scripts may answer
anything, drip it, never end it or hang up. Every loop is bounded: a script's writes stop when the
server is closed, and the server closes at the end of the test.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

SECRET = "sk-Live/Key+Hostile=0123456789abcdef"
"""A key with characters that URL- and JSON-encoding change ('/', '+', '=')."""

Script = Callable[["Conn", bytes], None]


class Conn:
    """One accepted connection, as a script sees it."""

    def __init__(self, sock: socket.socket, server: RawServer) -> None:
        self.sock = sock
        self.server = server

    def send(self, data: bytes) -> bool:
        """Send bytes; False once the peer or the server is gone (the script should stop)."""
        if self.server.closed.is_set():
            return False
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def drip(self, data: bytes, every: float, limit: float = 30.0) -> None:
        """Send one byte every ``every`` seconds, for at most ``limit`` seconds."""
        ends = time.monotonic() + limit
        for byte in data:
            if time.monotonic() > ends or not self.send(bytes([byte])):
                return
            if self.server.closed.wait(every):
                return

    def forever(self, chunk: bytes, limit_bytes: int = 2 * 1024**3, limit_s: float = 30.0) -> None:
        """Send ``chunk`` again and again, until the peer hangs up or a limit is reached."""
        sent, ends = 0, time.monotonic() + limit_s
        while sent < limit_bytes and time.monotonic() < ends and self.send(chunk):
            sent += len(chunk)


def answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 answer with a Content-Length (unless headers name another framing)."""
    fields = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    fields.update(headers or {})
    head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return head.encode("utf-8") + b"\r\n" + body


class RawServer:
    """A listening socket whose connections are answered by a script."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.closed = threading.Event()
        self.requests: list[bytes] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                continue
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(5.0)
        with sock:
            conn = Conn(sock, self)
            for _ in range(100):  # keep-alive: at most 100 requests a connection
                request = _read_request(sock)
                if request is None or self.closed.is_set():
                    return
                self.requests.append(request)
                self.script(conn, request)

    def close(self) -> None:
        self.closed.set()
        self._listener.close()
        self._accepting.join(2)
        for thread in self._threads:
            thread.join(2)


def _read_request(sock: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except OSError:
            return None
        if not chunk or len(data) > 1_000_000:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
            while len(body) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                body += chunk
    return head + b"\r\n\r\n" + body


@pytest.fixture
def raw_server() -> Iterator[Callable[[Script], RawServer]]:
    """Make raw servers for this test; all are closed at its end."""
    made: list[RawServer] = []

    def make(script: Script) -> RawServer:
        server = RawServer(script)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()
