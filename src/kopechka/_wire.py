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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar
from urllib.parse import quote, urlsplit

import pydantic_core
from pydantic import ValidationError

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
from ._lazy import lazy
from ._scrub import Secret, scrub, scrub_text, snippet, window

if TYPE_CHECKING:
    from . import _envelopes, _extract, _models
    from ._envelopes import BodyShape
    from ._models import (
        Cancellation,
        Domain,
        MessageList,
        Order,
        OrderPage,
        PollingStatus,
        Profile,
    )
else:  # loaded on first use: importing a client declares no model (see _lazy)
    _envelopes = lazy("kopechka._envelopes", __name__)
    _extract = lazy("kopechka._extract", __name__)
    _models = lazy("kopechka._models", __name__)

R = TypeVar("R")

_BODY_SNIPPET = 2000
_MESSAGE_LIMIT = 500
_JSON_BODY_LIMIT = 64 * 1024
PARSE_BUDGET = 48 * 1024 * 1024
"""The most memory an answer may take to parse, as ``parse_cost`` estimates it: with the answer
itself (at most ``max_body``, 10 MiB by default), a call stays within 64 MiB of peak memory. The
largest documented answers (a listing page, a mailbox of long mails) cost a few MiB."""
_MARK_COST = 130
"""Bytes a structural mark may cost once parsed: a ``Decimal`` in a list (``1.5,``) or an empty
object (``{},``) is about that; so 9 MiB of ``1.5,`` would need ~270 MiB."""
_MARKS = (b",", b":", b"[", b"{")
_WIDE = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
"""A character past the BMP, raw (a 4-byte UTF-8 lead) or escaped (a surrogate): the text may
become 4 bytes a character. A BMP escape (``\\u0417``) decodes to at most 2 bytes a character,
fewer than its own 6."""
_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
"""A JSON string, escapes included: its commas and colons are text, not structure."""
_FEW_QUOTES = 200_000
"""At most this many quotes (100,000 strings), the strings are walked to take their marks off."""


class ResponseLike(Protocol):
    """What decoding needs of an HTTP response."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer as plain values, whatever its status: what the drivers hand to ``decode``,
    and (scrubbed, bounded) what an ``APIStatusError`` carries as ``response``."""

    status_code: int
    headers: Mapping[str, str] = field(repr=False)
    content: bytes = field(repr=False)


# --- calls: what each endpoint sends -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call(Generic[R]):
    """The parts of one request, and the shape of its answer: ``body()`` gives it when the answer
    is decoded, so that building a call loads no model (they load on first use)."""

    method: str
    path: str
    body: Callable[[], BodyShape[R]]
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
    return Call("GET", "/profile", lambda: _envelopes.ProfileBody)


def get_balance() -> Call[Decimal]:
    """``GET /balance``."""
    return Call("GET", "/balance", lambda: _envelopes.BalanceBody)


def get_domains() -> Call[list[Domain]]:
    """``GET /domains``."""
    return Call("GET", "/domains", lambda: _envelopes.DomainsBody)


ORDER_FILTERS = ("pending", "active", "cancelled", "expired")
"""The statuses ``GET /orders`` filters on. The server answers any other with no orders, which
reads as "none of them": a misspelt filter is refused instead."""


def order_filter(status: object) -> str:
    """The ``status`` query value of ``GET /orders``.

    Raises:
        ValueError: ``status`` is not one of ``ORDER_FILTERS`` (the message lists them).
    """
    value = status.value if isinstance(status, _models.OrderStatus) else _text("status", status)
    if value not in ORDER_FILTERS:
        raise ValueError(f"status must be one of {', '.join(ORDER_FILTERS)}; got {value!r}")
    return value


def list_orders(
    page: object, limit: object, status: object = None, domain: object = None
) -> Call[OrderPage]:
    """``GET /orders`` with its query."""
    params = {"page": str(_positive("page", page)), "limit": str(_positive("limit", limit))}
    if status is not None:
        params["status"] = order_filter(status)
    if domain is not None:
        params["domain"] = _text("domain", domain)
    return Call("GET", "/orders", lambda: _envelopes.PageBody, params=params)


def get_order(order_id: object) -> Call[Order]:
    """``GET /orders/{orderId}``."""
    return Call("GET", order_path(order_id), lambda: _envelopes.OrderBody)


def create_order(domain: object, site: object) -> Call[Order]:
    """``POST /orders``: this one spends money."""
    body = {"domain": _text("domain", domain), "site": _text("site", site)}
    return Call("POST", "/orders", lambda: _envelopes.OrderBody, json=body)


def cancel_order(order_id: object) -> Call[Cancellation]:
    """``DELETE /orders/{orderId}``."""
    return Call("DELETE", order_path(order_id), lambda: _envelopes.CancelBody)


def get_messages(order_id: object) -> Call[MessageList]:
    """``GET /orders/{orderId}/messages``."""
    return Call("GET", order_path(order_id) + "/messages", lambda: _envelopes.MessagesBody)


def start_polling(order_id: object) -> Call[PollingStatus]:
    """``POST /orders/{orderId}/start-polling``."""
    return Call("POST", order_path(order_id) + "/start-polling", lambda: _envelopes.PollingBody)


# --- base URL ----------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Return whether ``host`` names this machine by one of the exact names that never reach DNS:
    ``localhost``, an address in 127.0.0.0/8, or ``::1`` (not ``localhost.``, not
    ``localhost.localdomain``: a resolver decides those)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def normalize_base_url(url: object) -> str:
    """Check a base URL and return it without a trailing slash.

    Raises:
        ValueError: Not an http(s) URL, carries credentials, a query or a fragment (even an
            empty one: a ``?`` or ``#``), a ``%`` that escapes nothing, or is plain ``http://``
            to a host that is not loopback (the key would travel in clear text).
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
    if parts.username or parts.password or "?" in text or "#" in text:
        raise ValueError("base_url must not carry credentials, a query or a fragment")
    if _BAD_ESCAPE.search(text):
        raise ValueError(f"base_url has a % not followed by two hex digits: {text!r}")
    if parts.scheme == "http" and not is_loopback(host):
        raise ValueError(
            f"refusing plain http:// to {host}: the API key would travel in clear text; use https://"
        )
    return text.rstrip("/")


def check_api_key(key: object) -> str:
    """Return the key if it can travel in an HTTP header as it is: a non-empty ``str`` of
    printable ASCII without spaces.

    Raises:
        ValueError: Not a ``str``, empty, or with a character outside printable ASCII (the
            message never quotes the key).
    """
    if not isinstance(key, str):
        raise ValueError(f"the API key must be a str, got {type(key).__name__}")
    if not key or not all("!" <= ch <= "~" for ch in key):
        raise ValueError(
            "the API key must be printable ASCII, without whitespace or control characters"
        )
    return key


def _bounded(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    return (
        text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"
    )


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


def _snippet(content: bytes, secret: Secret | None) -> str:
    """The first 2,000 characters of a body, the key scrubbed before the cut (``snippet``)."""
    text = content[: window(secret, _BODY_SNIPPET)].decode("utf-8", errors="replace")
    return snippet(text, secret, _BODY_SNIPPET)


def _describe(text: str) -> str:
    """A one-line human description of a body (already scrubbed) that is not the documented JSON."""
    text = text.strip()
    if not text:
        return "an empty body"
    if _extract.looks_like_html(text):
        title = re.search(r"<title[^>]{0,200}>([^<]{0,400})</title>", text, re.IGNORECASE)
        first = (title.group(1) if title else _extract.html_to_text(text)).strip().splitlines()
        return f"an HTML page ({first[0][:120] if first else 'no text'})"
    return f"a body that is not the documented JSON ({text[:120]!r})"


def safe_answer(response: ResponseLike, secret: Secret | None) -> Answer:
    """A copy of an answer for an error to carry: headers and a bounded body, key scrubbed."""
    headers = {scrub_text(k, secret): scrub_text(v, secret) for k, v in response.headers.items()}
    content = _snippet(response.content, secret).encode("utf-8", "replace")
    return Answer(response.status_code, headers, content)


def _error_body(content: bytes, secret: Secret | None) -> Any:
    """The body an error carries: decoded JSON when it is small enough, else a text snippet;
    the key scrubbed from every string."""
    if content and len(content) <= _JSON_BODY_LIMIT:
        try:
            return scrub(pydantic_core.from_json(content), secret)
        except ValueError:
            pass
    return _snippet(content, secret) if content else None


def status_error(response: ResponseLike, secret: Secret | None = None) -> APIStatusError:
    """Build the typed error for an error status (or a redirect, which is never followed)."""
    status = response.status_code
    body = _error_body(response.content, secret)
    message = _server_message(body)
    if 300 <= status < 400:
        location = scrub_text(header(response.headers, "location") or "nowhere", secret)
        shown = _bounded(location, 200)
        message = f"redirect to {shown!r} not followed: the API key is sent only to base_url"
    text = _bounded(message or f"HTTP {status} with {_describe(_snippet_text(response, secret))}")
    cls = error_class(status)
    answer = safe_answer(response, secret)
    if cls is RateLimitError:
        return RateLimitError(
            text, body=body, response=answer, retry_after=parse_retry_after(response.headers)
        )
    return cls(text, status_code=status, body=body, response=answer)


def _snippet_text(response: ResponseLike, secret: Secret | None) -> str:
    return _snippet(response.content, secret)


def _server_message(body: Any) -> str | None:
    """The error body's ``message`` (or ``error``) when it is a non-empty string."""
    if isinstance(body, dict):
        for key in ("message", "error"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value
    return None


def decode(call: Call[R], response: ResponseLike, secret: Secret | None = None) -> R:
    """Turn an answer into the call's model, or raise the typed error it stands for.

    Raises:
        APIStatusError: A non-2xx status (its subclass by the status table), or ``success: false``.
        APIResponseValidationError: A 2xx answer that is not the documented JSON.
    """
    if not 200 <= response.status_code < 300:
        raise status_error(response, secret)
    value = _parse(call, response, secret)
    if isinstance(value, _Refused):
        raise value.error  # from a frame that holds nothing of the answer, with no context chain
    return value


@dataclass(frozen=True, slots=True)
class _Refused:
    error: Exception


def parse_cost(content: bytes) -> int:
    """An upper bound on the bytes parsing a JSON text costs, found without parsing it: its
    structural marks outside strings (an upper bound on its values) and its text, decoded and
    parsed (4 bytes a character once one is past the BMP).

    The marks are first counted in the whole text, strings too. Only when that is over
    ``PARSE_BUDGET`` and the text has few strings (a mailbox of long mails) are the marks inside
    strings taken off; a text of many strings keeps the first count (too dear to walk; such a
    text is refused anyway). A parser stops at the first error, so a string misread in a broken
    text lies past what gets parsed."""
    if len(content) <= _JSON_BODY_LIMIT:  # too small to matter: a few MiB at most
        return 0
    text = len(content) * (8 if _wide(content) else 2)
    marks = _marks(content, 0, len(content))
    if marks * _MARK_COST + text > PARSE_BUDGET and content.count(b'"') <= _FEW_QUOTES:
        for string in _STRINGS.finditer(content):
            marks -= _marks(content, string.start(), string.end())
    return marks * _MARK_COST + text


def _wide(content: bytes) -> bool:
    return any(lead in content for lead in _WIDE) or bool(_SURROGATE.search(content))


def _marks(content: bytes, start: int, end: int) -> int:
    return sum(content.count(mark, start, end) for mark in _MARKS)


def _parse(call: Call[R], response: ResponseLike, secret: Secret | None) -> R | _Refused:
    cost = parse_cost(response.content)
    if cost > PARSE_BUDGET:
        return _Refused(
            APIResponseValidationError(
                f"unexpected answer to {call.method} {call.path} (HTTP {response.status_code}): "
                f"parsing it could take {cost >> 20} MiB of memory, more than the "
                f"{PARSE_BUDGET >> 20} MiB allowed (too many values, or text too wide)",
                status_code=response.status_code,
                body=_snippet_text(response, secret),
            )
        )
    try:
        body = call.body().model_validate_json(response.content)
        if body.success:
            return body.result()
        return _Refused(status_error(response, secret))
    except (_envelopes.MissingFieldError, ValidationError) as exc:
        return _Refused(_not_documented(call, response, secret, exc))


def _not_documented(
    call: Call[Any], response: ResponseLike, secret: Secret | None, exc: Exception
) -> Exception:
    status = response.status_code
    body = _error_body(response.content, secret)
    if isinstance(body, dict) and body.get("success") is False:
        return status_error(response, secret)  # still the server's refusal, other fields off
    if isinstance(exc, _envelopes.MissingFieldError):
        reason = f"the field {exc.args[0]!r} is missing"
    elif isinstance(exc, ValidationError) and isinstance(body, (dict, list)):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        reason = f"{where}: {first['msg']}"
    else:
        reason = f"it is {_describe(_snippet_text(response, secret))}"
    return APIResponseValidationError(
        _bounded(f"unexpected answer to {call.method} {call.path} (HTTP {status}): {reason}"),
        status_code=response.status_code,
        body=_snippet_text(response, secret),
    )
