"""The sandbox's HTTP semantics without sockets: a request in, a reply out.

Owns the routes (the documented API under ``/api/v1`` and the admin routes under
``/_sandbox/``), the documented bodies and error envelopes, fault injection, the rate limit and
the log of received requests. It must not do I/O: delays, dropped connections and truncated
bodies are described in the ``Reply`` and carried out by ``_server``. One lock serialises every
change of state.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ._state import SandboxError, SandboxState, iso, money

__all__ = ["API_PREFIX", "Fault", "RecordedRequest", "Reply", "SandboxApp"]

API_PREFIX = "/api/v1"
ADMIN_PREFIX = "/_sandbox"
BODY_KINDS = frozenset({"json", "html", "empty", "malformed", "truncated"})
_ORDER_ROUTE = re.compile(r"^/orders/([^/]+)(/messages|/start-polling)?$")
_STATUS_TEXT = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
                429: "Too many requests", 500: "Internal server error", 502: "Bad gateway",
                503: "Service unavailable", 504: "Gateway timeout"}  # fmt: skip


@dataclass(frozen=True)
class RecordedRequest:
    """A request the sandbox received (admin routes excluded)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float = 0.0
    """``time.monotonic()`` when it was received."""

    def json(self) -> Any:
        """The body decoded as JSON (``None`` when empty)."""
        return json.loads(self.body) if self.body else None


@dataclass
class Fault:
    """What the next ``times`` matching requests get instead of (or besides) their answer."""

    status: int | None = None
    times: int = 1
    retry_after: float | str | None = None
    path: str | None = None
    method: str | None = None
    body: str = "json"
    delay: float = 0.0
    drop: bool = False
    execute: bool = False

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path is None or path == self.path or path.startswith(self.path.rstrip("/") + "/")
        )


@dataclass
class Reply:
    """What the server must send: status, headers, body, and any misbehaviour."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0
    drop: bool = False
    truncate: bool = False


def _json_reply(
    status: int, payload: Mapping[str, Any], headers: list[tuple[str, str]] | None = None
) -> Reply:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return Reply(
        status, body, [("Content-Type", "application/json; charset=utf-8"), *(headers or [])]
    )


def _error(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Reply:
    return _json_reply(status, {"success": False, "message": message}, headers)


def _fault_body(status: int, kind: str) -> Reply:
    if kind == "json":
        return _error(status, _STATUS_TEXT.get(status, f"HTTP {status}"))
    if kind == "html":
        text = f"<html><head><title>{status} {_STATUS_TEXT.get(status, 'Error')}</title></head>"
        body = (text + "<body><h1>nginx</h1></body></html>").encode()
        return Reply(status, body, [("Content-Type", "text/html")])
    if kind == "empty":
        return Reply(status, b"", [("Content-Type", "application/json")])
    if kind == "malformed":
        return Reply(
            status, b'{"success": true, "data": {"bal', [("Content-Type", "application/json")]
        )
    reply = _json_reply(status, {"success": True, "data": {"balance": 1.0}})  # truncated
    reply.truncate = True
    return reply


class SandboxApp:
    """The emulated API over a ``SandboxState``, with faults, a rate limit and a request log."""

    def __init__(
        self,
        state: SandboxState,
        *,
        rate_limit: tuple[int, float] | None = None,
        ticker: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.rate_limit = rate_limit
        self.on_order: list[Callable[[dict[str, Any]], None]] = []
        """Called (under the lock) with each order's JSON as it is bought."""
        self._ticker = ticker
        self._window: list[float] = []

    # --- the sandbox's own operations (also reached by the admin routes) ---

    def add_fault(self, fault: Fault) -> None:
        """Queue a fault; faults apply first-queued first."""
        if fault.times < 1 or fault.body not in BODY_KINDS or fault.delay < 0:
            raise SandboxError(400, "fault needs times >= 1, delay >= 0 and a known body kind")
        if fault.status is not None and not 100 <= fault.status <= 599:
            raise SandboxError(400, "fault status must be an HTTP status")
        with self.lock:
            self.faults.append(fault)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, path):
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _rate_limited(self) -> float | None:
        if self.rate_limit is None:
            return None
        count, per = self.rate_limit
        now = self._ticker()
        self._window = [t for t in self._window if now - t < per]
        if len(self._window) >= count:
            return max(0.0, per - (now - self._window[0]))
        self._window.append(now)
        return None

    # --- requests ---

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Answer one request as the service would."""
        parts = urlsplit(target)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if path.startswith(ADMIN_PREFIX + "/"):
            with self.lock:
                return self._admin(method, path[len(ADMIN_PREFIX) :], query, body)
        lowered = {k.lower(): v for k, v in headers.items()}
        with self.lock:
            self.requests.append(
                RecordedRequest(method, path, query, dict(headers), body, time.monotonic())
            )
            if not path.startswith(API_PREFIX + "/"):
                return _error(404, "Route not found")
            route = path[len(API_PREFIX) :]
            fault = self._take_fault(method, route)
            if fault is not None:
                return self._faulted(fault, method, route, query, lowered, body)
            return self._serve(method, route, query, lowered, body)

    def _faulted(
        self, fault: Fault, method: str, route: str, query: dict[str, str],
        headers: dict[str, str], body: bytes,
    ) -> Reply:  # fmt: skip
        served = None
        if fault.execute or (fault.status is None and not fault.drop):
            served = self._serve(method, route, query, headers, body)  # the state changes
        if fault.drop:
            reply = Reply(0)
        elif fault.status is not None:
            reply = _fault_body(fault.status, fault.body)
        else:
            assert served is not None
            reply = served
        if fault.retry_after is not None:
            reply.headers.append(("Retry-After", str(fault.retry_after)))
        reply.delay, reply.drop = fault.delay, fault.drop
        return reply

    def _serve(
        self, method: str, route: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Reply:
        wait = self._rate_limited()
        if wait is not None:
            return _error(429, "Rate limit exceeded", [("Retry-After", str(math.ceil(wait)))])
        try:
            self.state.authenticate(headers.get("x-api-key"))
            return self._route(method, route, query, body)
        except SandboxError as exc:
            return _error(exc.status, exc.message)

    def _route(self, method: str, route: str, query: dict[str, str], body: bytes) -> Reply:
        state = self.state
        if (method, route) == ("GET", "/profile"):
            return _json_reply(200, {"success": True, "data": state.profile()})
        if (method, route) == ("GET", "/balance"):
            return _json_reply(200, {"success": True, "data": {"balance": money(state.balance)}})
        if (method, route) == ("GET", "/domains"):
            return _json_reply(200, {"success": True, "data": state.domain_list()})
        if (method, route) == ("GET", "/orders"):
            orders, pagination = state.list_orders(
                _int(query, "page", 1), _int(query, "limit", 10),
                query.get("status") or None, query.get("domain") or None,
            )  # fmt: skip
            return _json_reply(200, {"success": True, "data": orders, "pagination": pagination})
        if (method, route) == ("POST", "/orders"):
            data = _json_object(body)
            order = state.create_order(data.get("domain"), data.get("site"))
            for listener in self.on_order:
                listener(order)
            return _json_reply(
                200, {"success": True, "message": "Order created successfully", "data": order}
            )
        return self._order_route(method, route)

    def _order_route(self, method: str, route: str) -> Reply:
        match = _ORDER_ROUTE.match(route)
        if match is None:
            raise SandboxError(404, "Route not found")
        order_id, tail = unquote(match.group(1)), match.group(2)
        if (method, tail) == ("GET", None):
            return _json_reply(200, {"success": True, "data": self.state.get_order(order_id)})
        if (method, tail) == ("DELETE", None):
            refund, message = self.state.cancel_order(order_id)
            return _json_reply(
                200, {"success": True, "message": message, "refundAmount": money(refund)}
            )
        if (method, tail) == ("GET", "/messages"):
            messages, order = self.state.messages(order_id)
            return _json_reply(200, {"success": True, "messages": messages, "order": order})
        if (method, tail) == ("POST", "/start-polling"):
            data = self.state.start_polling(order_id)
            return _json_reply(
                200, {"success": True, "message": "Email polling started", "data": data}
            )
        raise SandboxError(404, "Route not found")

    # --- admin routes: plain HTTP for clients in other languages ---

    def _admin(self, method: str, route: str, query: dict[str, str], body: bytes) -> Reply:
        try:
            data = _json_object(body) if method == "POST" else {}
            if (method, route) == ("POST", "/deliver"):
                message = self.state.deliver(
                    str(data.get("order_id") or data.get("orderId") or ""),
                    str(data.get("sender") or data.get("from") or "no-reply@example.com"),
                    str(data.get("subject") or ""), str(data.get("content") or ""),
                )  # fmt: skip
                return _json_reply(200, {"success": True, "data": message})
            if (method, route) == ("POST", "/fail"):
                self.add_fault(_fault_from(data))
                return _json_reply(200, {"success": True, "message": "Fault queued"})
            if (method, route) == ("POST", "/advance"):
                minutes, seconds = _number(data, "minutes"), _number(data, "seconds")
                self.state.advance(minutes * 60 + seconds)
                return _json_reply(200, {"success": True, "data": {"now": _iso_now(self.state)}})
            if (method, route) == ("GET", "/requests"):
                log = [
                    {"method": r.method, "path": r.path, "query": r.query} for r in self.requests
                ]
                return _json_reply(200, {"success": True, "data": log})
            if (method, route) == ("GET", "/state"):
                return _json_reply(200, {"success": True, "data": self.snapshot()})
        except SandboxError as exc:
            return _error(exc.status, exc.message)
        return _error(404, "Route not found")

    def snapshot(self) -> dict[str, Any]:
        """The balance, order count and virtual time, for checks and the admin route."""
        with self.lock:
            return {
                "balance": money(self.state.balance),
                "orders": self.state.order_count(),
                "now": _iso_now(self.state),
            }


def _iso_now(state: SandboxState) -> str:
    return iso(state.now())


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}", parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SandboxError(400, "Request body must be JSON") from exc
    if not isinstance(data, dict):
        raise SandboxError(400, "Request body must be a JSON object")
    return data


def _int(query: dict[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise SandboxError(400, f"'{name}' must be a positive integer")
    return int(raw)


def _number(data: dict[str, Any], name: str) -> float:
    value = data.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise SandboxError(400, f"'{name}' must be a number")
    return float(value)


def _fault_from(data: dict[str, Any]) -> Fault:
    try:
        return Fault(
            status=None if data.get("status") is None else int(data["status"]),
            times=int(data.get("times", 1)),
            retry_after=data.get("retry_after"),
            path=data.get("path"),
            method=data.get("method"),
            body=str(data.get("body", "json")),
            delay=float(data.get("delay", 0)),
            drop=bool(data.get("drop", False)),
            execute=bool(data.get("execute", False)),
        )
    except (TypeError, ValueError) as exc:
        raise SandboxError(400, f"bad fault: {exc}") from exc
