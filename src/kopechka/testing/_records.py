"""The log of requests the sandbox received, bounded, and its masked view for the admin route.

Owns ``RecordedRequest``, the ``RequestLog`` (oldest entries dropped past 50,000 requests or 64 MiB
of bodies, so a long-running sandbox cannot grow without end), and ``public_view``: what
``GET /_sandbox/requests`` shows, with secrets masked (``X-API-Key``, ``X-Sandbox-Token``,
``Authorization``, ``Cookie``) and each body cut to 2,048 characters. It must not do I/O.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["RecordedRequest", "RequestLog", "public_view"]

MAX_ENTRIES = 50_000
MAX_BODY_BYTES = 64 * 1024 * 1024
SHOWN_BODY_CHARS = 2048
MASKED = "***"
SECRET_HEADERS = frozenset(
    {"x-api-key", "x-sandbox-token", "authorization", "proxy-authorization", "cookie"}
)


@dataclass(frozen=True)
class RecordedRequest:
    """A request the sandbox received (admin routes excluded).

    Attributes:
        method: The HTTP method.
        path: The path, without the query.
        query: The query parameters (the last value of a repeated one).
        headers: The headers as received, secrets included (``GET /_sandbox/requests`` masks them).
        body: The body (at most the 1 MiB a request may carry).
        at: ``time.monotonic()`` when it was received.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float = 0.0

    def json(self) -> Any:
        """The body decoded as JSON (``None`` when empty)."""
        return json.loads(self.body) if self.body else None


class RequestLog:
    """The received requests, oldest first, bounded in count and in body bytes."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BODY_BYTES) -> None:
        self._entries: deque[RecordedRequest] = deque()
        self._bytes = 0
        self._max_entries, self._max_bytes = max_entries, max_bytes

    def append(self, entry: RecordedRequest) -> None:
        """Add an entry, dropping the oldest ones past the bounds."""
        self._entries.append(entry)
        self._bytes += len(entry.body)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            self._bytes -= len(self._entries.popleft().body)

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()
        self._bytes = 0

    def __iter__(self) -> Iterator[RecordedRequest]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index: int) -> RecordedRequest:
        return self._entries[index]


def public_view(entry: RecordedRequest) -> dict[str, Any]:
    """The entry as ``GET /_sandbox/requests`` shows it: secrets masked, body cut short."""
    text = entry.body.decode("utf-8", "replace")
    return {
        "method": entry.method,
        "path": entry.path,
        "query": entry.query,
        "headers": {
            name: MASKED if name.lower() in SECRET_HEADERS else value
            for name, value in entry.headers.items()
        },
        "body": text[:SHOWN_BODY_CHARS],
        "body_size": len(entry.body),
        "body_truncated": len(text) > SHOWN_BODY_CHARS,
    }
