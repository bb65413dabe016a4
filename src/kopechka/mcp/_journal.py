"""The audit journal of ``kopechka mcp``: one JSON object per line, appended and flushed.

Owns the journal's file and its record shape: every purchase, refund and lost answer, with money as
strings of the server's digits and e-mail addresses replaced by their SHA-256 (an operator can
match an address they hold, the journal does not disclose it). It must not hold the API key (every
record is scrubbed of it: a server may echo it as an order's id) or any header, and it never raises
into a tool: a journal that cannot be written is logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from .._scrub import scrub_known

__all__ = ["Journal", "hash_email", "scrubbed"]

logger = logging.getLogger("kopechka")


def hash_email(email: str) -> str:
    """The SHA-256 (hex) of an address, case-folded: what the journal writes instead of it."""
    return hashlib.sha256(email.strip().casefold().encode("utf-8")).hexdigest()


def scrubbed(value: Any) -> Any:
    """A JSON-ready value without the key of any live client in any string of it (keys of dicts
    included): the library's scrub, for everything the server returns or journals."""
    if isinstance(value, str):
        return scrub_known(value)
    if isinstance(value, dict):
        return {scrub_known(str(k)): scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrubbed(v) for v in value]
    return value


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Journal:
    """Appends records to a file (or nowhere, for ``path=None``), one JSON object per line.

    Args:
        path: The file, created if missing and appended to; ``None``: no journal.

    Raises:
        OSError: The file cannot be opened for appending.
    """

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._closed = False
        if path is not None:
            self._file = Path(path).open("a", encoding="utf-8")  # noqa: SIM115 - held for the session

    def write(self, event: str, **fields: object) -> None:
        """Append one record: ``{"time", "event", ...fields}``; ``email`` is written hashed.

        After ``close()`` the record is logged as a WARNING instead (it happened, and an operator
        must be able to see it)."""
        if self._file is None and not self._closed:
            return
        record: dict[str, object] = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "event": event,
        }
        for name, value in fields.items():
            if name == "email":
                record["email_sha256"] = hash_email(str(value)) if value else None
            else:
                record[name] = _plain(value)
        line = json.dumps(scrubbed(record), ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            if self._file is None:
                logger.warning("the mcp journal is closed; this record was not written: %s", line)
                return
            try:
                self._file.write(line + "\n")
                self._file.flush()
            except (OSError, ValueError) as exc:
                logger.error("the mcp journal could not be written: %s", exc)

    def close(self) -> None:
        """Close the file; later records are logged as WARNINGs instead."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
                self._closed = True
