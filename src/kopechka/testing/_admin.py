"""The admin routes under ``/_sandbox/``: plain HTTP for test code in other languages.

Owns who may use them and what they do. They need no API key, so they guard themselves:
- a web page cannot drive them: a ``POST`` must say ``Content-Type: application/json`` (which a
  cross-site "simple" request cannot), and a foreign ``Origin`` or ``Sec-Fetch-Site: cross-site``
  is refused; with no token, the ``Host`` must be a loopback name (no DNS rebinding);
- bound beyond loopback, the sandbox has a token, and every admin request must carry it in
  ``X-Sandbox-Token``.
Bodies are checked field by field (unknown fields refused). It must not do I/O; every change goes
through the app, under its lock. Admin requests are not recorded and never faulted.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

from ._faults import Fault, fault_from_json
from ._jsonio import loads_object
from ._records import MAX_ENTRIES, RecordedRequest, public_view
from ._reply import Reply, error, json_reply
from ._state import SandboxError, SandboxState

__all__ = ["TOKEN_HEADER", "handle"]

TOKEN_HEADER = "X-Sandbox-Token"  # noqa: S105 - a header name, not a secret
DEFAULT_SHOWN = 1000
_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


class SandboxApp(Protocol):
    """What the admin routes act on: the sandbox's app (``_app.SandboxApp``), which calls them."""

    @property
    def lock(self) -> AbstractContextManager[Any]:
        """Held while a route changes or reads the state."""

    @property
    def admin_token(self) -> str | None:
        """The token every admin request must carry, if any."""

    @property
    def state(self) -> SandboxState:
        """The service's state."""

    @property
    def requests(self) -> Iterable[RecordedRequest]:
        """The received API requests, oldest first."""

    def add_fault(self, fault: Fault) -> None:
        """Queue a fault."""

    def reset(self) -> None:
        """Back to the state it started in."""

    def deliver(
        self, order_id: str | None, to: str | None, sender: str, subject: str, content: str,
        after: float = 0.0,
    ) -> dict[str, Any]:  # fmt: skip
        """Deliver a mail to an order named by id or by its address."""

    def snapshot(self) -> dict[str, Any]:
        """The balance, order count and time."""


def handle(
    app: SandboxApp, method: str, route: str, query: dict[str, str],
    headers: dict[str, str], body: bytes,
) -> Reply:  # fmt: skip
    """Answer an admin request (``route`` is the path below ``/_sandbox``)."""
    refusal = _refusal(app, method, headers)
    if refusal is not None:
        return error(*refusal)
    allowed = [m for (m, r) in ROUTES if r == route]
    if not allowed:
        return error(404, "Route not found")
    if method not in allowed:
        return error(405, f"Method {method} not allowed", [("Allow", ", ".join(allowed))])
    try:
        data = loads_object(body) if method == "POST" else {}
        with app.lock:
            return json_reply(200, ROUTES[(method, route)](app, query, data))
    except SandboxError as exc:
        return error(exc.status, exc.message)


def _refusal(app: SandboxApp, method: str, headers: dict[str, str]) -> tuple[int, str] | None:
    if app.admin_token:  # an empty token guards nothing: the loopback rule applies
        given = headers.get(TOKEN_HEADER.lower(), "")
        if not hmac.compare_digest(given.encode("utf-8", "replace"), app.admin_token.encode()):
            return 401, f"Admin routes need the {TOKEN_HEADER} header printed at start"
    elif "host" in headers and not _is_loopback(_hostname(headers["host"])):
        return 403, "Admin routes answer requests addressed to a loopback host only"
    origin = headers.get("origin")
    if origin is not None and _hostport(origin) != headers.get("host", "").lower():
        return 403, "Admin routes refuse cross-site requests (foreign Origin)"
    if headers.get("sec-fetch-site", "none").lower() not in {"none", "same-origin"}:
        return 403, "Admin routes refuse cross-site requests (Sec-Fetch-Site)"
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if method == "POST" and media != "application/json":
        return 415, "Admin routes take Content-Type: application/json"
    return None


def _hostname(host: str) -> str:
    try:
        return (urlsplit("//" + host).hostname or "").lower()
    except ValueError:
        return ""


def _hostport(origin: str) -> str | None:
    try:
        parts = urlsplit(origin)
        return parts.netloc.lower() if parts.scheme == "http" and parts.netloc else None
    except ValueError:
        return None


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- the routes -----------------------------------------------------------------------------------


def _fields(data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise SandboxError(400, f"unknown field(s): {', '.join(unknown)}")


def _text(data: dict[str, Any], *names: str, default: str | None = "") -> str | None:
    for name in names:
        if name in data:
            value = data[name]
            if not isinstance(value, str):
                raise SandboxError(400, f"'{name}' must be a string")
            return value
    return default


def _seconds(data: dict[str, Any], name: str) -> float:
    value = data.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise SandboxError(400, f"'{name}' must be a number")
    return float(value)


def _deliver(app: SandboxApp, query: dict[str, str], data: dict[str, Any]) -> dict[str, Any]:
    _fields(data, {"order_id", "orderId", "to", "sender", "from", "subject", "content", "after"})
    message = app.deliver(
        _text(data, "order_id", "orderId", default=None), _text(data, "to", default=None),
        _text(data, "sender", "from") or "no-reply@example.com",
        _text(data, "subject") or "", _text(data, "content") or "", _seconds(data, "after"),
    )  # fmt: skip
    return {"success": True, "data": message}


def _fail(app: SandboxApp, query: dict[str, str], data: dict[str, Any]) -> dict[str, Any]:
    app.add_fault(fault_from_json(data))
    return {"success": True, "message": "Fault queued"}


def _advance(app: SandboxApp, query: dict[str, str], data: dict[str, Any]) -> dict[str, Any]:
    _fields(data, {"minutes", "seconds"})
    minutes, seconds = _seconds(data, "minutes"), _seconds(data, "seconds")
    app.state.advance(minutes * 60.0 + seconds)
    return {"success": True, "data": {"now": app.snapshot()["now"]}}


def _reset(app: SandboxApp, query: dict[str, str], data: dict[str, Any]) -> dict[str, Any]:
    _fields(data, set())
    app.reset()
    return {"success": True, "message": "Sandbox reset"}


def _requests(app: SandboxApp, query: dict[str, str], data: dict[str, Any]) -> dict[str, Any]:
    raw = query.get("last", str(DEFAULT_SHOWN))
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6 and 1 <= int(raw) <= MAX_ENTRIES):
        raise SandboxError(400, f"'last' must be an integer from 1 to {MAX_ENTRIES}")
    entries = list(app.requests)[-int(raw) :]
    return {"success": True, "data": [public_view(entry) for entry in entries]}


def _state(app: SandboxApp, query: dict[str, str], data: dict[str, Any]) -> dict[str, Any]:
    return {"success": True, "data": app.snapshot()}


Route = Callable[[SandboxApp, dict[str, str], dict[str, Any]], dict[str, Any]]
ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/deliver"): _deliver,
    ("POST", "/fail"): _fail,
    ("POST", "/advance"): _advance,
    ("POST", "/reset"): _reset,
    ("GET", "/requests"): _requests,
    ("GET", "/state"): _state,
}
