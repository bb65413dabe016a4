"""``kopechka mcp``: serve the MCP server over stdio or Streamable HTTP, and refund on the way out.

Owns the command's run: the mode (the embedded sandbox with no key or ``--sandbox``; live with a
key and a mandatory ``--budget``), the checks of its options (HTTP beyond loopback only with a
token), the journal, the transport, and the shutdown: when stdin closes, on SIGTERM, SIGHUP or
Ctrl-C, every order bought that received no mail is refunded, in parallel, within about two
seconds (what an MCP client gives a server before it kills it), and the journal says so. It must
not print to stdout (the stdio transport owns it) nor ever print the key.
"""

from __future__ import annotations

import argparse
import hmac
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import ExitStack
from types import FrameType
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer

from .._client import KopechkaClient
from .._exceptions import KopechkaError
from .._format import inert
from ..testing import Sandbox
from ..testing._automail import AutoMail
from ._journal import Journal
from ._options import Plan, UsageError, plan_of
from ._server import create_server, shutdown

__all__ = ["run"]

EXIT_OK, EXIT_USAGE = 0, 2
SHUTDOWN_LIMIT = 1.8
"""Seconds the refunds on shutdown may take: the SDK's stdio client waits 2 s before SIGTERM."""

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def _bearer(app: App, token: str) -> App:
    """Every HTTP request must carry ``Authorization: Bearer <token>``; else 401."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"text/plain")]})  # fmt: skip
                await send({"type": "http.response.body", "body": b"a bearer token is required"})
                return
        await app(scope, receive, send)

    return guarded


async def _serve_http(server: MCPServer[Any], a: argparse.Namespace) -> None:
    import uvicorn  # noqa: PLC0415 - only for --http

    app: App = server.streamable_http_app(host=a.host)
    if a.token:
        app = _bearer(app, a.token)
    config = uvicorn.Config(app, host=a.host, port=a.port, log_level="warning")
    print(f"kopechka mcp: serving Streamable HTTP on http://{a.host}:{a.port}/mcp",
          file=sys.stderr, flush=True)  # fmt: skip
    await uvicorn.Server(config).serve()


class _Stopper:
    """SIGTERM, SIGHUP and Ctrl-C: refund, journal, and exit at once (128 + the signal).

    The stdio transport reads stdin in a thread that only ends at EOF, so unwinding the event
    loop could hang; the refunds run from the handler instead, and later signals are ignored.
    """

    def __init__(self, finish: Callable[[], None], finishing: threading.Event) -> None:
        self._finish, self._finishing = finish, finishing

    def install(self) -> None:
        for name in ("SIGTERM", "SIGHUP", "SIGINT"):
            signum = getattr(signal, name, None)
            if signum is not None:
                signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        for name in ("SIGTERM", "SIGHUP", "SIGINT"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_IGN)
        if self._finishing.is_set():  # the refunds are under way in the main thread: let them end
            return
        self._finish()
        sys.stderr.flush()
        os._exit(128 + signum)


def _client(plan: Plan, a: argparse.Namespace, stack: ExitStack) -> KopechkaClient:
    budget = plan.guards.budget
    if plan.sandbox:
        sandbox = Sandbox(auto_mail=AutoMail(delay=a.sandbox_mail_delay)).start()
        stack.callback(sandbox.stop)
        return stack.enter_context(sandbox.client(budget=budget))
    return stack.enter_context(KopechkaClient(plan.key, base_url=a.base_url, budget=budget))


def run(a: argparse.Namespace, plan: Plan | None = None) -> int:
    """Serve until stdin closes (stdio), or until stopped (HTTP); then refund and exit.

    Args:
        a: The parsed options of ``kopechka mcp``.
        plan: What ``plan_of(a)`` made of them, when already made.

    Returns:
        0 after an orderly end; 2 for bad usage (one line on stderr).
    """
    try:
        plan = plan_of(a) if plan is None else plan
        journal = Journal(a.journal)
    except (UsageError, ValueError, OSError) as exc:
        print(f"kopechka: mcp: {inert(exc)}", file=sys.stderr)
        return EXIT_USAGE
    with ExitStack() as stack:
        stack.callback(journal.close)
        try:
            client = _client(plan, a, stack)
        except (KopechkaError, ValueError, OSError) as exc:
            print(f"kopechka: mcp: {inert(exc)}", file=sys.stderr)
            return EXIT_USAGE
        server = create_server(client, plan.guards, journal=journal)
        mode = "sandbox" if plan.sandbox else "live"
        g = plan.guards
        journal.write(
            "start", mode=mode, budget=g.budget, max_price=g.max_price, max_open=g.max_open,
            sites=sorted(g.sites or []) or None, domains=sorted(g.domains or []) or None,
            confirm=g.confirm,
        )  # fmt: skip

        finishing = threading.Event()

        def finish() -> None:  # once: a signal during the refunds must not start them again
            if finishing.is_set():
                return
            finishing.set()
            counts = shutdown(server, SHUTDOWN_LIMIT)
            journal.write("stop", **counts)
            journal.close()

        _Stopper(
            finish, finishing
        ).install()  # under --http, uvicorn's own handlers come first, then these
        try:
            if a.http:
                anyio.run(_serve_http, server, a)
            else:
                print(f"kopechka mcp: serving on stdio ({mode})", file=sys.stderr, flush=True)
                anyio.run(server.run_stdio_async)
        finally:
            finish()
    return EXIT_OK
