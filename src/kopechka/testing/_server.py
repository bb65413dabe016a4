"""The sandbox on a real socket: a standard-library HTTP/1.1 server in a background thread.

Owns sockets, threads and timing only; every answer comes from ``SandboxApp.handle``. Each reply
goes out in ONE write with ``TCP_NODELAY`` set: headers and body in separate writes would meet
Nagle's algorithm and the peer's delayed ACK and stall a keep-alive request for ~40 ms.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._client import KopechkaClient
from ._app import API_PREFIX, Fault, RecordedRequest, Reply, SandboxApp
from ._state import DEFAULT_DOMAINS, SandboxDomain, SandboxError, SandboxState

if TYPE_CHECKING:
    from .._async_client import AsyncKopechkaClient

__all__ = ["App", "AppServer", "Sandbox"]

S = TypeVar("S", bound="AppServer")

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error"}  # fmt: skip


class App(Protocol):
    """Anything that answers a request with a ``Reply`` (the sandbox, or canned bodies)."""

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Answer one request."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    app: App


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log on stderr."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        reply = self.server.app.handle(self.command, self.path, dict(self.headers.items()), body)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._write(reply.status, reply.headers, reply.body, reply.truncate)

    def _write(
        self, status: int, headers: Sequence[tuple[str, str]], body: bytes, cut: bool
    ) -> None:
        reason = _REASONS.get(status) or self.responses.get(status, ("Error",))[0]
        lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body) + (64 if cut else 0)}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if cut or self.close_connection:
            lines.append("Connection: close")
            self.close_connection = True
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve  # noqa: N815 - http.server names


class AppServer:
    """Serves an ``App`` over HTTP/1.1 on loopback, in a background thread."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._address = (host, port)
        self._server: _Server | None = None

    def start(self: S) -> S:
        """Bind and serve in a background thread.

        Returns:
            This server, running.
        """
        if self._server is None:
            self._server = _Server(self._address, _Handler)
            self._server.app = self.app
            threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                name="kopechka-sandbox", daemon=True,
            ).start()  # fmt: skip
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
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
    def root_url(self) -> str:
        """``http://host:port`` of the running server (the sandbox's admin routes live under
        ``/_sandbox/``)."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running: call start() or use it in a with block")
        raw_host, port = self._server.server_address[:2]
        host = raw_host.decode() if isinstance(raw_host, bytes) else raw_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"


class Sandbox(AppServer):
    """The offline Kopechka API on loopback: a free port, a background thread, real HTTP.

    Args:
        api_key: The key the sandbox accepts.
        balance: The account's starting balance.
        domains: The domains on sale (``example.com`` at 5.00 and a few others by default).
        order_duration: Minutes an order lives before it expires (on the virtual clock).
        rate_limit: ``(requests, per_seconds)``: more than that is answered 429 with
            ``Retry-After``; ``None`` (the default) for no limit.
        auto_mail: Seconds after which each new order receives a verification mail with a
            six-digit code, as if the site sent it; ``None`` (the default) for no automatic mail.
        host: The address to listen on.
        port: The port, 0 for a free one.
    """

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        balance: Decimal | int | str = Decimal("100"),
        domains: Sequence[SandboxDomain] = DEFAULT_DOMAINS,
        order_duration: int = 10,
        rate_limit: tuple[int, float] | None = None,
        auto_mail: float | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.state = SandboxState(
            api_key=api_key, balance=Decimal(balance), domains=tuple(domains),
            order_duration=order_duration,
        )  # fmt: skip
        self.app: SandboxApp = SandboxApp(self.state, rate_limit=rate_limit)
        super().__init__(self.app, host, port)
        self._codes = random.Random()
        if auto_mail is not None:
            self.app.on_order.append(lambda order: self._mail_later(order, auto_mail))

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (``kopechka sandbox``)."""
        self.start()
        try:
            while True:
                time.sleep(3600)
        finally:
            self.stop()

    @property
    def url(self) -> str:
        """The base URL of the emulated API (``http://127.0.0.1:PORT/api/v1``)."""
        return self.root_url + API_PREFIX

    def client(self, **kwargs: Any) -> KopechkaClient:
        """Make a client bound to this sandbox, with its key.

        Args:
            **kwargs: Passed on to ``KopechkaClient`` (``timeout``, ``max_retries``, ...).

        Returns:
            A new ``KopechkaClient``; close it, or use it in a ``with`` block.
        """
        kwargs.setdefault("api_key", self.api_key)
        return KopechkaClient(base_url=self.url, **kwargs)

    def async_client(self, **kwargs: Any) -> AsyncKopechkaClient:
        """Make an asyncio client bound to this sandbox, with its key (needs ``kopechka[async]``).

        Args:
            **kwargs: Passed on to ``AsyncKopechkaClient`` (``timeout``, ``max_retries``, ...).

        Returns:
            A new ``AsyncKopechkaClient``; close it, or use it in an ``async with`` block.
        """
        from .._async_client import AsyncKopechkaClient  # noqa: PLC0415 - httpx is optional

        kwargs.setdefault("api_key", self.api_key)
        return AsyncKopechkaClient(base_url=self.url, **kwargs)

    # --- driving it ---

    def deliver(
        self, order_id: str, *, sender: str = "no-reply@example.com", subject: str = "",
        content: str = "",
    ) -> dict[str, Any]:  # fmt: skip
        """Deliver a mail to an order, as the site would.

        Args:
            order_id: The order to deliver to.
            sender: The ``from`` address.
            subject: The subject.
            content: The body, plain text or HTML.

        Returns:
            The message as the API will show it (JSON).

        Raises:
            SandboxError: No such order (404), or it no longer receives mail (400).
        """
        with self.app.lock:
            return self.state.deliver(order_id, sender, subject, content)

    def fail(
        self,
        status: int | None = None,
        *,
        times: int = 1,
        retry_after: float | str | None = None,
        path: str | None = None,
        method: str | None = None,
        body: str = "json",
        delay: float = 0.0,
        drop: bool = False,
        execute: bool = False,
    ) -> None:
        """Make the next ``times`` matching requests misbehave.

        Args:
            status: Answer with this status instead of the real answer.
            times: How many requests it applies to.
            retry_after: A ``Retry-After`` header to add (seconds or an HTTP date).
            path: Only requests to this path (below ``/api/v1``, e.g. ``"/orders"``) or below it.
            method: Only requests with this method.
            body: ``"json"`` (the documented error body), ``"html"``, ``"empty"``,
                ``"malformed"`` (cut JSON) or ``"truncated"`` (fewer bytes than Content-Length).
            delay: Seconds to wait before answering.
            drop: Close the connection without answering.
            execute: Carry the request out first (the money moves), then misbehave.

        Raises:
            SandboxError: An argument is out of range.
        """
        self.app.add_fault(
            Fault(status, times, retry_after, path, method, body, delay, drop, execute)
        )

    def _mail_later(self, order: dict[str, Any], delay: float) -> None:
        code = f"{self._codes.randrange(10**6):06d}"
        content = f"Your {order['site']} verification code is {code}. It expires in 10 minutes."
        timer = threading.Timer(delay, self._deliver_quietly, (order["orderId"], order, content))
        timer.daemon = True
        timer.start()

    def _deliver_quietly(self, order_id: str, order: dict[str, Any], content: str) -> None:
        with contextlib.suppress(SandboxError):  # cancelled or expired meanwhile: no mail
            self.deliver(
                order_id, sender=f"no-reply@{order['site']}",
                subject=f"Your {order['site']} code", content=content,
            )  # fmt: skip

    def advance(self, minutes: float = 0.0, *, seconds: float = 0.0) -> None:
        """Move the virtual clock forward: orders older than their duration expire.

        Args:
            minutes: Minutes to move on.
            seconds: Seconds to move on, added to the minutes.
        """
        with self.app.lock:
            self.state.advance(minutes * 60.0 + seconds)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (admin routes excluded), oldest first."""
        with self.app.lock:
            return list(self.app.requests)

    def clear_requests(self) -> None:
        """Forget the requests received so far."""
        with self.app.lock:
            self.app.requests.clear()

    @property
    def balance(self) -> Decimal:
        """The account's balance now."""
        with self.app.lock:
            return self.state.balance
