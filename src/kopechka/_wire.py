"""The wire format: arguments -> request parts, and response bytes -> a model or a typed error.

Pure functions over plain values. This module owns the endpoint table (method, path, body shape),
argument checks, decoding through the envelopes of ``_envelopes``, ``Retry-After`` parsing and the
one table that maps a status to an exception class. It must not import requests or tenacity and
must not do I/O: a response is anything with ``status_code``, ``headers`` and ``content``.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote, urlsplit

import pydantic_core
from pydantic import ValidationError

from ._envelopes import (
    BalanceBody,
    BodyShape,
    CancelBody,
    DomainsBody,
    MessagesBody,
    MissingFieldError,
    OrderBody,
    PageBody,
    PollingBody,
    ProfileBody,
)
from ._exceptions import (
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from ._extract import html_to_text, looks_like_html
from ._models import (
    Cancellation,
    Domain,
    MessageList,
    Order,
    OrderPage,
    OrderStatus,
    PollingStatus,
    Profile,
)

R = TypeVar("R")

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_BODY_SNIPPET = 2000


class ResponseLike(Protocol):
    """What decoding needs of an HTTP response."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> bytes: ...


# --- calls: what each endpoint sends -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call(Generic[R]):
    """The parts of one request, and the shape of its answer."""

    method: str
    path: str
    body: BodyShape[R]
    params: Mapping[str, str] | None = None
    json: Mapping[str, str] | None = None

    @property
    def idempotent(self) -> bool:
        """Whether sending it twice is harmless (so failures after sending may be retried)."""
        return self.method == "GET"


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(f"{name} must not contain control characters")
    return value


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def order_path(order_id: object) -> str:
    """Return ``/orders/{order_id}`` with the id escaped so it can address no other endpoint.

    Raises:
        ValueError: The id is empty, has control characters, or is a dot segment.
    """
    text = _text("order_id", order_id)
    if text.strip() in {".", ".."}:
        raise ValueError(f"order_id must not be a dot segment, got {order_id!r}")
    return "/orders/" + quote(text, safe="")


def get_profile() -> Call[Profile]:
    """``GET /profile``."""
    return Call("GET", "/profile", ProfileBody)


def get_balance() -> Call[Decimal]:
    """``GET /balance``."""
    return Call("GET", "/balance", BalanceBody)


def get_domains() -> Call[list[Domain]]:
    """``GET /domains``."""
    return Call("GET", "/domains", DomainsBody)


def list_orders(
    page: object, limit: object, status: object = None, domain: object = None
) -> Call[OrderPage]:
    """``GET /orders`` with its query."""
    params = {"page": str(_positive("page", page)), "limit": str(_positive("limit", limit))}
    if status is not None:
        params["status"] = (
            status.value if isinstance(status, OrderStatus) else _text("status", status)
        )
    if domain is not None:
        params["domain"] = _text("domain", domain)
    return Call("GET", "/orders", PageBody, params=params)


def get_order(order_id: object) -> Call[Order]:
    """``GET /orders/{orderId}``."""
    return Call("GET", order_path(order_id), OrderBody)


def create_order(domain: object, site: object) -> Call[Order]:
    """``POST /orders``: this one spends money."""
    body = {"domain": _text("domain", domain), "site": _text("site", site)}
    return Call("POST", "/orders", OrderBody, json=body)


def cancel_order(order_id: object) -> Call[Cancellation]:
    """``DELETE /orders/{orderId}``."""
    return Call("DELETE", order_path(order_id), CancelBody)


def get_messages(order_id: object) -> Call[MessageList]:
    """``GET /orders/{orderId}/messages``."""
    return Call("GET", order_path(order_id) + "/messages", MessagesBody)


def start_polling(order_id: object) -> Call[PollingStatus]:
    """``POST /orders/{orderId}/start-polling``."""
    return Call("POST", order_path(order_id) + "/start-polling", PollingBody)


# --- base URL ----------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Return whether ``host`` names this machine (localhost, 127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower().rstrip(".")
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_base_url(url: object) -> str:
    """Check a base URL and return it without a trailing slash.

    Raises:
        ValueError: Not an http(s) URL, carries credentials, a query or a fragment, or is plain
            ``http://`` to a host that is not loopback (the key would travel in clear text).
    """
    text = _text("base_url", url).strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError as exc:
        raise ValueError(f"base_url is not a valid URL: {text!r}") from exc
    if parts.scheme not in {"http", "https"} or not host:
        raise ValueError(f"base_url must be an http(s) URL with a host, got {text!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("base_url must not carry credentials, a query or a fragment")
    if parts.scheme == "http" and not is_loopback(host):
        raise ValueError(
            f"refusing plain http:// to {host}: the API key would travel in clear text; use https://"
        )
    return text.rstrip("/")


def origin(url: str) -> tuple[str, str, int | None]:
    """Return the (scheme, host, port) of a URL, default ports made explicit."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").rstrip("."), port


# --- answers -----------------------------------------------------------------------------------

_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}


def error_class(status_code: int) -> type[APIStatusError]:
    """The one table from an HTTP status to the exception raised for it."""
    if status_code >= 500:
        return InternalServerError
    return _STATUS_ERRORS.get(status_code, APIStatusError)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Look a header up case-insensitively in any mapping."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds the server asks to wait: ``retry-after-ms``, else ``Retry-After`` (seconds or an
    HTTP date). ``None`` when absent or unreadable; never negative, NaN or infinite."""
    raw_ms = header(headers, "retry-after-ms")
    if raw_ms is not None:
        seconds = _finite(raw_ms)
        if seconds is not None:
            return seconds / 1000.0
    raw = header(headers, "retry-after")
    if raw is None:
        return None
    seconds = _finite(raw)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def _finite(raw: str) -> float | None:
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return max(0.0, value) if math.isfinite(value) else None


def _snippet(content: bytes) -> str:
    return content[:_BODY_SNIPPET].decode("utf-8", errors="replace")


def _describe(content: bytes) -> str:
    """A one-line human description of a body that is not the documented JSON."""
    text = _snippet(content).strip()
    if not text:
        return "an empty body"
    if looks_like_html(text):
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        first = (title.group(1) if title else html_to_text(text)).strip().splitlines()
        return f"an HTML page ({first[0][:120] if first else 'no text'})"
    return f"a body that is not the documented JSON ({text[:120]!r})"


def _scrubbed(content: bytes, secret: str | None) -> bytes:
    return content.replace(secret.encode(), b"***") if secret else content


def status_error(response: ResponseLike, secret: str | None = None) -> APIStatusError:
    """Build the typed error for an error status (or a redirect that was not followed)."""
    status, content = response.status_code, _scrubbed(response.content, secret)
    body: Any
    try:
        body = pydantic_core.from_json(content) if content else None
    except ValueError:
        body = _snippet(content)
    message = _server_message(body)
    if 300 <= status < 400:
        location = header(response.headers, "location") or "nowhere"
        message = f"redirect to {location} not followed: the API key is sent only to base_url"
    text = message or f"HTTP {status} with {_describe(content)}"
    cls = error_class(status)
    if cls is RateLimitError:
        return RateLimitError(
            text, body=body, response=response, retry_after=parse_retry_after(response.headers)
        )
    return cls(text, status_code=status, body=body, response=response)


def _server_message(body: Any) -> str | None:
    """The error body's ``message`` (or ``error``) when it is a non-empty string."""
    if isinstance(body, dict):
        for key in ("message", "error"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value
    return None


def decode(call: Call[R], response: ResponseLike, secret: str | None = None) -> R:
    """Turn an answer into the call's model, or raise the typed error it stands for.

    Raises:
        APIStatusError: A non-2xx status (its subclass by the status table), or ``success: false``.
        APIResponseValidationError: A 2xx answer that is not the documented JSON.
    """
    status = response.status_code
    if not 200 <= status < 300:
        raise status_error(response, secret)
    try:
        body = call.body.model_validate_json(response.content)
    except ValidationError as exc:
        raise _not_documented(call, response, secret, exc) from None
    if not body.success:
        raise status_error(response, secret)
    try:
        return body.result()
    except (MissingFieldError, ValidationError) as exc:
        raise _not_documented(call, response, secret, exc) from None


def _not_documented(
    call: Call[Any], response: ResponseLike, secret: str | None, exc: Exception
) -> Exception:
    content = _scrubbed(response.content, secret)
    try:
        failed = pydantic_core.from_json(content).get("success") is False
    except (ValueError, AttributeError):
        failed = False
    if failed:  # {"success": false} whose other fields are off: still the server's refusal
        return status_error(response, secret)
    if isinstance(exc, MissingFieldError):
        reason = f"the field {exc.args[0]!r} is missing"
    elif isinstance(exc, ValidationError) and _is_json(content):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        reason = f"{where}: {first['msg']}"
    else:
        reason = f"it is {_describe(content)}"
    return APIResponseValidationError(
        f"unexpected answer to {call.method} {call.path} (HTTP {response.status_code}): {reason}",
        status_code=response.status_code,
        body=_snippet(content),
    )


def _is_json(content: bytes) -> bool:
    try:
        pydantic_core.from_json(content)
    except ValueError:
        return False
    return True
