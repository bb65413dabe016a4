"""What the sandbox's server sends: a ``Reply`` (status, headers, body, and any misbehaviour), and
the JSON bodies every route answers with (``json_reply``, the documented error envelope ``error``).

Shared by the API routes (``_app``), the admin routes (``_admin``) and the server (``_server``);
it imports none of them. Data only: it must not do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._jsonio import dumps

__all__ = ["JSON_TYPE", "Reply", "error", "json_reply"]

JSON_TYPE = ("Content-Type", "application/json; charset=utf-8")


@dataclass
class Reply:
    """What the server must send: status, headers, body, and any misbehaviour."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0
    drop: bool = False
    truncate: bool = False
    interim: int | None = None
    """An interim (1xx) answer to send before this one, such as ``103 Early Hints``."""
    bought: dict[str, Any] | None = None
    """The order this request bought, for the hooks (never sent)."""


def json_reply(
    status: int, payload: Mapping[str, Any], headers: list[tuple[str, str]] | None = None
) -> Reply:
    """A JSON answer, money as written."""
    return Reply(status, dumps(payload), [JSON_TYPE, *(headers or [])])


def error(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Reply:
    """The documented error body: ``{"success": false, "message": ...}``."""
    return json_reply(status, {"success": False, "message": message}, headers)
