"""The key in text: ``Secret``, the scrub that removes it in any spelling, and the one filter that
every message and log record of kopechka goes through.

A server may echo the key anywhere: in a body, a header's name or value, a ``Location``, or as the
id of an order (which then lands in an error's message and in the funnel's log lines). This module
owns the scrub (``scrub_text``, ``scrub``, ``snippet``) and the registry of the keys of the
process's live clients, so that ``KopechkaError`` scrubs its message and ``LogScrubber`` (attached
once to the logger ``kopechka``) scrubs every record, whoever built them. It must not import the
rest of kopechka, and does no I/O.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, unquote_plus

__all__ = [
    "MIN_KEY_PREFIX",
    "LogScrubber",
    "Secret",
    "remember",
    "scrub",
    "scrub_known",
    "scrub_text",
    "snippet",
]

MIN_KEY_PREFIX = 8
"""A cut text never ends with this many characters of the key or more (in any spelling); a key
shorter than this is too short to be told from ordinary text and is not looked for in kopechka's
own messages (a server's text is still scrubbed of it)."""


class Secret:
    """The API key, shown as ``***`` by ``repr``/``str`` (so tracebacks with locals never print
    it) and never pickled. ``reveal()`` gives the value, for the request header only."""

    __slots__ = ("__weakref__", "_value")

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The key itself."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("an API key is never pickled")


# --- one key, in server text ---------------------------------------------------------------------

_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\([/\\\"])")
_ENCODED = re.compile(r"[\\&%]")
_PARTIAL_ESCAPE = re.compile(r"(?:%[0-9A-Fa-f]?|\\(?:u[0-9A-Fa-f]{0,3})?|&#?[0-9A-Za-z]{0,10})$")


def _unescape(match: re.Match[str]) -> str:
    if not match[1]:
        return match[2]
    code = int(match[1], 16)
    return "\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)  # a lone surrogate is not text


def _decoded(text: str, unquote_url: Callable[[str], str]) -> str:
    """``text`` with JSON escapes, HTML entities and percent-encoding undone (twice over)."""
    import html  # noqa: PLC0415 - loaded on first use (its entity table is large)

    for _ in range(2):
        text = _JSON_ESCAPE.sub(_unescape, text)
        text = unquote_url(html.unescape(text))
    return text


def _forms(text: str) -> tuple[str, ...]:
    """The spellings to look in: decoded both ways, then as it is. Text with no ``\\``, ``&`` or
    ``%`` decodes to itself (``+`` read as a space cannot make a key, which has no spaces)."""
    if not _ENCODED.search(text):
        return (text,)
    return (_decoded(text, unquote), _decoded(text, unquote_plus), text)


def scrub_text(text: str, secret: Secret | None) -> str:
    """Return ``text`` without the key in any spelling a server could echo it in.

    The key is looked for case-insensitively in the text as it is and decoded (JSON escapes,
    HTML entities, URL-encoding); where found, the decoded text is returned with every
    occurrence replaced by ``***``.
    """
    if secret is None:
        return text
    wanted = re.compile(re.escape(secret.reveal()), re.IGNORECASE)
    for _ in range(3):  # each round removes the spellings one decoding reveals
        found = next((form for form in _forms(text) if wanted.search(form)), None)
        if found is None:
            return text
        text = wanted.sub("***", found)
    return "***"  # still there after three rounds: nothing of it is kept


def scrub(value: Any, secret: Secret | None) -> Any:
    """``scrub_text`` over every string in a decoded JSON value (keys included)."""
    if isinstance(value, str):
        return scrub_text(value, secret)
    if isinstance(value, dict):
        return {scrub_text(str(k), secret): scrub(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(item, secret) for item in value]
    return value


def window(secret: Secret | None, limit: int) -> int:
    """How much of a text to scrub so that a cut to ``limit`` characters after it is whole: the
    limit plus the longest spelling of the key that the scrub decodes (an HTML entity then
    URL-encoded, ``%26%23115%3B``: 12 characters a character; 24 are read)."""
    return limit + (24 * len(secret.reveal()) + 24 if secret is not None else 0)


def snippet(text: str, secret: Secret | None, limit: int) -> str:
    """``text`` scrubbed, then cut to ``limit`` characters, never ending with
    ``MIN_KEY_PREFIX`` characters of the key or more in any spelling (a key cut by the end of
    what was scrubbed, moved before ``limit`` by decoding): such a tail becomes ``***``.

    ``text`` should reach ``window(secret, limit)`` characters past its start, when there are
    that many: a key straddling ``limit`` is then scrubbed whole before the cut.
    """
    cut = scrub_text(text, secret)[:limit]
    if secret is None:
        return cut
    key = secret.reveal().lower()
    for form in _forms(cut):
        trimmed = _PARTIAL_ESCAPE.sub("", form)
        tail = trimmed[-len(key) :].lower()
        for size in range(min(len(key) - 1, len(tail)), MIN_KEY_PREFIX - 1, -1):
            if tail.endswith(key[:size]):
                return trimmed[:-size] + "***"
    return cut


# --- every live key, in kopechka's own messages and log records ---------------------------------

_LIVE: weakref.WeakSet[Secret] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


def remember(secret: Secret) -> None:
    """Scrub ``secret`` from every kopechka message and log record while it lives (a key shorter
    than ``MIN_KEY_PREFIX`` is not looked for: see there)."""
    if len(secret.reveal()) >= MIN_KEY_PREFIX:
        with _LIVE_LOCK:
            _LIVE.add(secret)


def scrub_known(text: str) -> str:
    """``text`` without the key of any live client, in any spelling."""
    with _LIVE_LOCK:
        secrets = list(_LIVE)
    for secret in secrets:
        text = scrub_text(text, secret)
    return text


_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) - {"message"}


class LogScrubber(logging.Filter):
    """Scrubs every record of the logger it is attached to (``kopechka``): its message once
    formatted, and every text a caller put in it with ``extra=``. It never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _LIVE:
            return True
        message = record.getMessage()
        scrubbed = scrub_known(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        for name, value in list(vars(record).items()):
            if name not in _RECORD_FIELDS and isinstance(value, str):
                setattr(record, name, scrub_known(value))
        return True
