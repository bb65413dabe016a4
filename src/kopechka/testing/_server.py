"""The sandbox on a real socket: a standard-library HTTP/1.1 server in a background thread.

Owns sockets, threads, timing and HTTP framing only; every answer comes from an ``App``'s
``handle``. Framing is strict, and every request gets an answer (JSON, even for the refusals
``http.server`` makes itself): a ``Content-Length`` that is not one plain number, or one beside
``Transfer-Encoding``, is a 400; a chunked body is read chunk by chunk; more than 1 MiB of body is a
413. After a refusal whose body was left unread, the connection is closed after a bounded drain, so
the client reads the answer instead of a reset. An unexpected error in the app is a 500, never a
dropped connection.

Each reply goes out in ONE write with ``TCP_NODELAY`` set: headers and body in separate writes
would meet Nagle's algorithm and the peer's delayed ACK and stall a keep-alive request for ~40 ms.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Protocol, TypeVar

from ._reply import Reply, error

__all__ = [
    "MAX_BODY",
    "MIN_ADMIN_TOKEN",
    "App",
    "AppServer",
    "check_admin_token",
    "is_loopback_host",
]

S = TypeVar("S", bound="AppServer")
MAX_BODY = 1 << 20
MAX_CHUNKS = 10_000
IDLE_TIMEOUT = 300.0
DRAIN_BYTES, DRAIN_SECONDS = 64 << 20, 5.0
AccessLog = Callable[[str], None]
logger = logging.getLogger("kopechka.testing")
_LENGTH = re.compile(r"[0-9]{1,18}")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,8}")
_UNPRINTABLE = re.compile(r"[^\x21-\x7e]")
_REASONS = {102: "Processing", 103: "Early Hints", 200: "OK", 400: "Bad Request",
            401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error"}  # fmt: skip


class App(Protocol):
    """Anything that answers a request with a ``Reply`` (the sandbox, or canned bodies)."""

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Answer one request."""


def is_loopback_host(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (``localhost``, 127/8, ::1)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


MIN_ADMIN_TOKEN = 16
"""The fewest characters of an admin token when the sandbox listens beyond loopback."""


def check_admin_token(token: object, host: str, name: str = "admin_token") -> None:
    """Refuse a token that is not printable ASCII, empty (an empty header would match it: the
    admin routes would be open to anyone), or short when other machines can reach them.

    Raises:
        ValueError: The token is unusable; the message starts with ``name``.
    """
    if token is None:
        return
    if not isinstance(token, str) or not (token.isascii() and token.isprintable()):
        raise ValueError(f"{name} must be printable ASCII")
    if not token.strip():
        raise ValueError(f"{name} must not be empty (leave it out: no token on loopback)")
    if len(token) < MIN_ADMIN_TOKEN and not is_loopback_host(host):
        raise ValueError(
            f"{name} must be at least {MIN_ADMIN_TOKEN} characters when listening on {host}, "
            "beyond loopback (leave it out for a random one)"
        )


class _RefusedError(Exception):
    """The request's framing is broken: answer with ``status`` and close the connection."""

    def __init__(self, status: int, message: str, *, unread: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.unread = status, message, unread


class _PeerGoneError(Exception):
    """The client closed the connection in the middle of its request."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    app: App
    access_log: AccessLog | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A peer that went away is routine; anything else is logged, never printed raw."""
        if not isinstance(sys.exc_info()[1], OSError):
            logger.error("sandbox connection from %s failed", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._started = time.perf_counter()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's own log (the access log is ``_log_access``)."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (request line, headers, method) answered in JSON."""
        self.close_connection = True
        reason = message or self.responses.get(code, ("Error",))[0]
        self._send(error(code, reason))

    def handle_expect_100(self) -> bool:
        """Refuse a too-large body before the client sends it."""
        length = (self.headers.get("Content-Length") or "").strip()
        if _LENGTH.fullmatch(length) and int(length) > MAX_BODY:
            self.send_error(413, f"Request body over {MAX_BODY} bytes")
            return False
        return super().handle_expect_100()

    def _serve(self) -> None:
        self._started = time.perf_counter()
        try:
            body = self._read_body()
        except _PeerGoneError:
            self.close_connection = True
            return
        except _RefusedError as refused:
            self.close_connection = True
            self._send(error(refused.status, refused.message))
            if refused.unread:
                self._drain()
            return
        reply = self._answer(body)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            self._log_access(0, 0)
            return
        self._send(reply)

    def _answer(self, body: bytes) -> Reply:
        try:
            return self.server.app.handle(self.command, self.path, dict(self.headers.items()), body)
        except Exception:  # a bug in the app: still an answer, and a log record to find it
            logger.exception("the sandbox failed on %s %s", self.command, self.path[:200])
            return error(500, "Internal sandbox error")

    # --- reading the body ---

    def _read_body(self) -> bytes:
        codings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if codings and lengths:
            raise _RefusedError(400, "Content-Length and Transfer-Encoding together")
        if codings:
            names = [c.strip().lower() for v in codings for c in v.split(",") if c.strip()]
            if names != ["chunked"]:
                raise _RefusedError(501, "Only the chunked transfer coding is implemented")
            return self._read_chunked()
        if not lengths:
            return b""
        values = {v.strip() for v in lengths}
        text = values.pop()
        if values or not _LENGTH.fullmatch(text):
            raise _RefusedError(400, "Content-Length must be one number of bytes")
        size = int(text)
        if size > MAX_BODY:
            raise _RefusedError(413, f"Request body over {MAX_BODY} bytes", unread=True)
        return self._read_exactly(size)

    def _read_exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) < size:
            raise _PeerGoneError
        return data

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        for _ in range(MAX_CHUNKS):
            line = self._read_line(1024)
            size_text = line.split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise _RefusedError(400, "Malformed chunk size")
            size = int(size_text, 16)
            if size == 0:
                self._skip_trailers()
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                raise _RefusedError(413, f"Request body over {MAX_BODY} bytes", unread=True)
            parts.append(self._read_exactly(size))
            if self._read_line(2).strip():
                raise _RefusedError(400, "Chunk data longer than its size")
        raise _RefusedError(400, f"More than {MAX_CHUNKS} chunks", unread=True)

    def _read_line(self, limit: int) -> bytes:
        line = self.rfile.readline(limit + 2)
        if not line:
            raise _PeerGoneError
        if not line.endswith(b"\n"):
            raise _RefusedError(400, "Malformed chunked body", unread=True)
        return line

    def _skip_trailers(self) -> None:
        for _ in range(100):
            if not self._read_line(8190).strip():
                return
        raise _RefusedError(400, "Too many trailer lines", unread=True)

    def _drain(self) -> None:
        """Read and drop what the client still sends (bounded), so it can read our answer."""
        deadline, left = time.monotonic() + DRAIN_SECONDS, DRAIN_BYTES
        try:
            self.connection.settimeout(0.5)
            while left > 0 and time.monotonic() < deadline:
                chunk = self.connection.recv(min(left, 1 << 16))
                if not chunk:
                    return
                left -= len(chunk)
        except OSError:
            return

    # --- writing ---

    def _send(self, reply: Reply) -> None:
        status, body = reply.status, reply.body
        reason = _REASONS.get(status) or self.responses.get(status, ("Error",))[0]
        size = len(body) + (64 if reply.truncate else 0)
        lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {size}"]
        lines += [f"{name}: {value}" for name, value in reply.headers]
        if reply.truncate or self.close_connection:
            lines.append("Connection: close")
            self.close_connection = True
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        sent = b"" if getattr(self, "command", None) == "HEAD" else body
        if reply.interim is not None:  # an interim answer first (RFC 9110, section 15.2)
            reason = _REASONS.get(reply.interim) or "Interim"
            hint = "Link: </style.css>; rel=preload" if reply.interim == 103 else "X-Interim: 1"
            head = f"HTTP/1.1 {reply.interim} {reason}\r\n{hint}\r\n\r\n".encode() + head
        self.wfile.write(head + sent)
        self._log_access(status, len(sent))

    def _log_access(self, status: int, size: int) -> None:
        log = self.server.access_log
        if log is None:
            return
        headers = getattr(self, "headers", None)
        key = "***" if headers is not None and headers.get("X-API-Key") else "-"
        method = _UNPRINTABLE.sub("?", str(getattr(self, "command", None) or "-"))[:20]
        target = _UNPRINTABLE.sub(_escape, str(getattr(self, "path", "") or "-"))[:300]
        elapsed = (time.perf_counter() - self._started) * 1000.0
        outcome = str(status) if status else "dropped"
        log(f'{_timestamp()} {self.client_address[0]} "{method} {target}" {outcome} {size}B '
            f"{elapsed:.1f}ms key={key}")  # fmt: skip

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve  # noqa: N815 - http.server names
    do_HEAD = do_OPTIONS = do_TRACE = do_CONNECT = do_QUERY = _serve  # noqa: N815


def _timestamp() -> str:
    """The wall-clock time of an access log line, in UTC to the millisecond (the virtual clock of
    the orders has no say here: the log tells when a request came)."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def _escape(match: re.Match[str]) -> str:
    return "".join(f"\\x{b:02x}" for b in match.group(0).encode("utf-8", "replace"))


class AppServer:
    """Serves an ``App`` over HTTP/1.1, in a background thread (loopback by default).

    Args:
        app: What answers the requests.
        host: The address to listen on.
        port: The port, 0 for a free one.
        access_log: Called with one line per request (when, in UTC; peer, method, path, status,
            size, time taken; the key masked), or ``None`` for no log.
    """

    def __init__(
        self, app: App, host: str = "127.0.0.1", port: int = 0, *,
        access_log: AccessLog | None = None,
    ) -> None:  # fmt: skip
        self.app = app
        self._address = (host, port)
        self.access_log = access_log
        self._server: _Server | None = None
        self._lifecycle = threading.Lock()

    def start(self: S) -> S:
        """Bind and serve in a background thread.

        Returns:
            This server, running.

        Raises:
            OSError: The address cannot be bound (port in use, unknown host...).
        """
        with self._lifecycle:
            if self._server is None:
                host = self._address[0]
                kind = _Server6 if ":" in host else _Server
                server = kind((host.strip("[]"), self._address[1]), _Handler)
                server.app, server.access_log = self.app, self.access_log
                threading.Thread(
                    target=server.serve_forever, kwargs={"poll_interval": 0.05},
                    name="kopechka-sandbox", daemon=True,
                ).start()  # fmt: skip
                self._server = server
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        with self._lifecycle:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def bound_address(self) -> tuple[str, int]:
        """The address and port the server listens on.

        Raises:
            RuntimeError: The server is not running.
        """
        if self._server is None:
            raise RuntimeError("the sandbox is not running: call start() or use it in a with block")
        raw_host, port = self._server.server_address[:2]
        host = bytes(raw_host).decode() if not isinstance(raw_host, str) else raw_host
        return host, int(port)

    @property
    def root_url(self) -> str:
        """``http://host:port`` to reach the running server from this machine (a wildcard bind,
        ``0.0.0.0`` or ``::``, is reached through loopback).

        Raises:
            RuntimeError: The server is not running.
        """
        host, port = self.bound_address
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"
