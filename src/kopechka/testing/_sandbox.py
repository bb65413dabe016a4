"""``Sandbox``: the offline Kopechka API as a user meets it, in one object.

Owns the user-facing surface: construction (checked arguments), binding (loud beyond loopback, with
an admin token then), the clients it hands out (bound to it, on its virtual clock when asked), and
the test seams (deliver, fail, advance, reset, on_order, the request log). Everything it does goes
through the app (``_app``) under its lock; it must not answer HTTP itself.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .._client import KopechkaClient
from ._admin import TOKEN_HEADER
from ._app import API_PREFIX, OPENAPI_PATH, Fault, OrderHook, SandboxApp
from ._automail import AutoMail
from ._records import RecordedRequest
from ._server import AccessLog, AppServer, check_admin_token, is_loopback_host
from ._state import DEFAULT_DOMAINS, SandboxDomain, SandboxState

if TYPE_CHECKING:
    from .._async_client import AsyncKopechkaClient

__all__ = ["Sandbox"]


def _auto_mail(value: float | AutoMail | None) -> AutoMail | None:
    if value is None or isinstance(value, AutoMail):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"auto_mail must be seconds or an AutoMail, got {value!r}")
    return AutoMail(delay=float(value))


def _check_address(host: object, port: object) -> None:
    if not isinstance(host, str) or not host.strip():
        raise ValueError(f"host must be an address or a name, got {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be 0 to 65535, got {port!r}")


class Sandbox(AppServer):
    """The offline Kopechka API on loopback: a free port, a background thread, real HTTP.

    Args:
        api_key: The key the sandbox accepts.
        balance: The account's starting balance, served as written (``"100.00"``).
        domains: The domains on sale (``example.com`` at 5.00 and a few others by default).
        order_duration: Minutes an order lives before it expires (on the sandbox's clock).
        rate_limit: ``(requests, per_seconds)``: more than that is answered 429 with
            ``Retry-After``; ``None`` (the default) for no limit.
        auto_mail: Each new order receives a verification mail: seconds after the purchase (a
            six-digit code, the default text), or an ``AutoMail`` to choose the delay, sender,
            subject and content; ``None`` (the default) for no automatic mail.
        seed: Makes the random faults (``fail(probability=...)``) and the automatic codes
            reproducible; ``None`` for fresh randomness.
        virtual_time: Run on a virtual clock that only moves when told: by ``advance``, and by the
            waits of the clients from ``client()`` (their ``sleep`` moves it, their ``clock`` reads
            it), so a 120-second wait takes milliseconds while orders expire and auto-mail lands on
            the same clock.
        admin_token: A token the admin routes then require in ``X-Sandbox-Token``. Binding beyond
            loopback makes one when none is given (see ``admin_token`` on the instance), and
            refuses one shorter than 16 characters; an empty one is always refused.
        access_log: Called with one line per request (the key masked), e.g. ``print``.
        host: The address to listen on; anything but loopback warns and protects the admin routes.
        port: The port, 0 for a free one.

    Raises:
        ValueError: An argument is out of range (a bad amount, duration, rate, port, an empty
            or short ``admin_token``...).
    """

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        balance: Decimal | int | str = Decimal("100.00"),
        domains: Sequence[SandboxDomain] = DEFAULT_DOMAINS,
        order_duration: int = 10,
        rate_limit: tuple[int, float] | None = None,
        auto_mail: float | AutoMail | None = None,
        seed: int | str | None = None,
        virtual_time: bool = False,
        admin_token: str | None = None,
        access_log: AccessLog | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        _check_address(host, port)
        self.api_key = api_key
        self.virtual_time = bool(virtual_time)
        started = datetime.now(timezone.utc).replace(microsecond=0)
        self.state = SandboxState(
            api_key=api_key, balance=balance, domains=tuple(domains),
            order_duration=order_duration,
            clock=(lambda: started) if self.virtual_time else None,
            ticker=(lambda: 0.0) if self.virtual_time else time.monotonic,
        )  # fmt: skip
        if admin_token is None and not is_loopback_host(host):
            admin_token = secrets.token_urlsafe(18)
        check_admin_token(admin_token, host)
        self.admin_token = admin_token
        """The token the admin routes require in ``X-Sandbox-Token`` (``None``: none needed)."""
        self.app: SandboxApp = SandboxApp(
            self.state, rate_limit=rate_limit, seed=seed, auto_mail=_auto_mail(auto_mail),
            admin_token=admin_token,
        )  # fmt: skip
        super().__init__(self.app, host, port, access_log=access_log)

    def start(self) -> Sandbox:
        """Bind and serve in a background thread; beyond loopback, warn (``RuntimeWarning``).

        Returns:
            This sandbox, running.

        Raises:
            OSError: The address cannot be bound (port in use, unknown host...).
        """
        host = self._address[0]
        if self._server is None and not is_loopback_host(host):
            warnings.warn(
                f"the kopechka sandbox listens on {host}, beyond loopback: anyone who can reach "
                f"this machine can use it; its admin routes require the {TOKEN_HEADER} header",
                RuntimeWarning, stacklevel=2,
            )  # fmt: skip
        return super().start()

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

    @property
    def openapi_url(self) -> str:
        """Where the sandbox serves the API's OpenAPI 3.1 description (``{root}/openapi.json``)."""
        return self.root_url + OPENAPI_PATH

    def client(self, **kwargs: Any) -> KopechkaClient:
        """Make a client bound to this sandbox, with its key (and its clock, on virtual time).

        A sandbox bound to every interface (``0.0.0.0``, ``::``) is reached through loopback.

        Args:
            **kwargs: Passed on to ``KopechkaClient`` (``timeout``, ``max_retries``, ...). On
                virtual time, ``sleep`` and ``clock`` default to the sandbox's.

        Returns:
            A new ``KopechkaClient``; close it, or use it in a ``with`` block.

        Raises:
            RuntimeError: The sandbox is not running, or listens on one non-loopback address
                only, which a client refuses to reach over plain HTTP.
        """
        host = self.root_url.removeprefix("http://").rsplit(":", 1)[0]
        if not is_loopback_host(host):
            raise RuntimeError(
                f"the sandbox listens on {host} only; a client sends its key over plain HTTP "
                "to loopback only: bind 127.0.0.1 or 0.0.0.0 to get a client from client()"
            )
        kwargs.setdefault("api_key", self.api_key)
        if self.virtual_time:
            kwargs.setdefault("sleep", self.sleep)
            kwargs.setdefault("clock", self.clock)
        return KopechkaClient(base_url=self.url, **kwargs)

    def async_client(self, **kwargs: Any) -> AsyncKopechkaClient:
        """Make an asyncio client bound to this sandbox, with its key (needs ``kopechka[async]``).

        Args:
            **kwargs: Passed on to ``AsyncKopechkaClient`` (``timeout``, ``max_retries``, ...).
                On virtual time, ``sleep`` and ``clock`` default to the sandbox's.

        Returns:
            A new ``AsyncKopechkaClient``; close it, or use it in an ``async with`` block.

        Raises:
            ValueError: The sandbox listens on a non-loopback address only (plain HTTP).
            ImportError: neither httpx2 nor httpx is installed.
        """
        from .._async_client import AsyncKopechkaClient  # noqa: PLC0415 - httpx2/httpx are optional

        kwargs.setdefault("api_key", self.api_key)
        if self.virtual_time:

            async def sleep(seconds: float) -> None:
                self.sleep(seconds)  # moves the virtual clock at once
                await asyncio.sleep(0)

            kwargs.setdefault("sleep", sleep)
            kwargs.setdefault("clock", self.clock)
        return AsyncKopechkaClient(base_url=self.url, **kwargs)

    # --- the clock ---

    def clock(self) -> float:
        """The sandbox's monotonic clock, in seconds (pass it as a client's ``clock``).

        Returns:
            Seconds: on virtual time, those the clock was moved by; else the real monotonic clock
            plus what ``advance`` added.
        """
        return self.state.monotonic()

    def sleep(self, seconds: float) -> None:
        """Wait on the sandbox's clock (pass it as a client's ``sleep``): on virtual time, move the
        clock and return at once; else sleep for real.

        Args:
            seconds: How long; negative counts as 0.
        """
        seconds = max(0.0, float(seconds))
        if not self.virtual_time:
            time.sleep(seconds)
            return
        with self.app.lock:
            self.state.advance(seconds)
        time.sleep(0)  # let other threads run, as a real wait would

    def advance(self, minutes: float = 0.0, *, seconds: float = 0.0) -> None:
        """Move the clock forward: orders past their duration expire, scheduled mail lands.

        Args:
            minutes: Minutes to move on.
            seconds: Seconds to move on, added to the minutes.

        Raises:
            SandboxError: Not a finite amount from 0 to 100 years (in total).
        """
        with self.app.lock:
            self.state.advance(minutes * 60.0 + seconds)

    @property
    def now(self) -> datetime:
        """The sandbox's time (what ``createdAt`` and ``receivedAt`` are written with)."""
        with self.app.lock:
            return self.state.now()

    # --- driving it ---

    def deliver(
        self, order_id: str | None = None, *, to: str | None = None,
        sender: str = "no-reply@example.com", subject: str = "", content: str = "",
        after: float = 0.0,
    ) -> dict[str, Any]:  # fmt: skip
        """Deliver a mail to an order, as the site would.

        Args:
            order_id: The order to deliver to, by id...
            to: ...or by its address (``kp1234567890@example.com``): exactly one of the two.
            sender: The ``from`` address.
            subject: The subject.
            content: The body, plain text or HTML.
            after: Seconds from now on the sandbox's clock; the mail lands then, if the order
                is still open (0: now).

        Returns:
            The message as the API will show it (JSON).

        Raises:
            SandboxError: No such order (404), it no longer receives mail (400), or not exactly
                one of ``order_id`` and ``to`` (400).
        """
        return self.app.deliver(order_id, to, sender, subject, content, after)

    def fail(
        self,
        status: int | None = None,
        *,
        times: int | None = 1,
        retry_after: float | str | None = None,
        path: str | None = None,
        method: str | None = None,
        body: str = "json",
        delay: float = 0.0,
        drop: bool = False,
        execute: bool = False,
        probability: float | None = None,
        interim: int | None = None,
    ) -> None:
        """Make the next ``times`` matching requests misbehave.

        Args:
            status: Answer with this status instead of the real answer.
            times: How many requests it applies to; ``None`` for all of them until ``reset``.
            retry_after: A ``Retry-After`` header to add (seconds or an HTTP date).
            path: Only requests to this path (below ``/api/v1``, e.g. ``"/orders"``) or below it.
            method: Only requests with this method.
            body: ``"json"`` (the documented error body), ``"html"``, ``"empty"``,
                ``"malformed"`` (cut JSON) or ``"truncated"`` (fewer bytes than Content-Length).
            delay: Seconds (real time, at most an hour) to wait before answering.
            drop: Close the connection without answering.
            execute: Carry the request out first (the money moves), then misbehave.
            probability: Fire on each matching request with this chance, drawn from the
                sandbox's generator (reproducible with ``seed``); ``None``: every time.
            interim: Send this interim answer first (``103`` Early Hints, ``102`` Processing).

        Raises:
            SandboxError: An argument is out of range.
        """
        self.app.add_fault(
            Fault(
                status,
                times,
                retry_after,
                path,
                method,
                body,
                delay,
                drop,
                execute,
                probability,
                interim,
            )
        )

    def on_order(self, hook: OrderHook) -> OrderHook:
        """Call ``hook`` each time an order is bought (usable as a decorator).

        The hook gets the order's JSON as ``POST /orders`` answers it (``orderId``, ``email``,
        ``site``...), in the server's thread, after the purchase and before its answer is sent,
        outside the sandbox's lock: it may call ``deliver``, ``fail`` or a client. An exception
        in it is logged (logger ``kopechka.testing``) and does not break the purchase.

        Args:
            hook: A callable taking the order's JSON.

        Returns:
            ``hook`` itself.
        """
        with self.app.lock:
            self.app.on_order.append(hook)
        return hook

    def reset(self) -> None:
        """Back to as constructed: balance, no orders, no queued faults, no hooks, an empty request
        log, the random generator re-seeded. The clock keeps its time."""
        self.app.reset()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (admin routes excluded), oldest first (the last 50,000)."""
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
