"""The key in text: ``Secret``, the scrub that removes it in any spelling, and the one filter that
every message and log record of kopechka goes through.

A server may echo the key anywhere: in a body, a header's name or value, a ``Location``, or as the
id of an order (which then lands in an error's message and in the funnel's log lines). This module
owns the scrub (``scrub_text``, ``scrub``, ``snippet``) and the registry of the keys of the
process's live clients, so that ``KopechkaError`` scrubs its message and state and ``ScrubHandler``
(attached first to the logger ``kopechka``) scrubs every record of it and of its children before
any handler above shows it, whoever built them. It must not import the
rest of kopechka, and does no I/O.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, unquote_plus

__all__ = [
    "MIN_KEY_PREFIX",
    "LogScrubber",
    "ScrubHandler",
    "Secret",
    "remember",
    "scrub",
    "scrub_known",
    "scrub_known_value",
    "scrub_record",
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


def _scrub_with(text: str, wanted: re.Pattern[str]) -> str:
    for _ in range(3):  # each round removes the spellings one decoding reveals
        found = next((form for form in _forms(text) if wanted.search(form)), None)
        if found is None:
            return text
        text = wanted.sub("***", found)
    return "***"  # still there after three rounds: nothing of it is kept


def scrub_text(text: str, secret: Secret | None) -> str:
    """Return ``text`` without the key in any spelling a server could echo it in.

    The key is looked for case-insensitively in the text as it is and decoded (JSON escapes,
    HTML entities, URL-encoding); where found, the decoded text is returned with every
    occurrence replaced by ``***``.
    """
    if secret is None:
        return text
    return _scrub_with(text, re.compile(re.escape(secret.reveal()), re.IGNORECASE))


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
_pattern: re.Pattern[str] | None = None
"""One pattern of every live key (longest first), compiled when the registry changes; ``None``
when no key is live, so that a scrub then costs one test."""
_stale = False  # a live key died: the pattern is compiled again at its next use


def _renew_lock() -> None:
    """After ``os.fork()``: the child's copy of the lock may be held by a thread that the child
    does not have, and would never be released."""
    global _LIVE_LOCK  # noqa: PLW0603 - replaced in the child only
    _LIVE_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_renew_lock)


def _forget(_: object) -> None:  # a weakref callback: may run in any thread, at any time
    global _stale  # noqa: PLW0603 - the one flag a dying key sets
    _stale = True


def _compile() -> None:
    global _pattern, _stale  # noqa: PLW0603 - the registry's own state
    with _LIVE_LOCK:
        _stale = False
        keys = sorted({s.reveal() for s in _LIVE}, key=len, reverse=True)
        _pattern = re.compile("|".join(map(re.escape, keys)), re.IGNORECASE) if keys else None


def _live_pattern() -> re.Pattern[str] | None:
    if _stale:
        _compile()
    return _pattern


def remember(secret: Secret) -> None:
    """Scrub ``secret`` from every kopechka message and log record while it lives (a key shorter
    than ``MIN_KEY_PREFIX`` is not looked for: see there)."""
    if len(secret.reveal()) >= MIN_KEY_PREFIX:
        with _LIVE_LOCK:
            _LIVE.add(secret)
            weakref.finalize(secret, _forget, None)
        _compile()


def scrub_known(text: str) -> str:
    """``text`` without the key of any live client, in any spelling."""
    wanted = _live_pattern()
    return text if wanted is None else _scrub_with(text, wanted)


def scrub_known_value(value: Any) -> Any:
    """``scrub_known`` over every string in a JSON value (keys included); other values as given."""
    wanted = _live_pattern()
    return value if wanted is None else _scrub_value(value, wanted)


def _scrub_value(value: Any, wanted: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return _scrub_with(value, wanted)
    if isinstance(value, dict):
        return {_scrub_with(str(k), wanted): _scrub_value(v, wanted) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub_value(item, wanted) for item in value)
    return value


_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) - {"message"}


def _message(record: logging.LogRecord, wanted: re.Pattern[str]) -> None:
    """Scrub the record's message: formatted, or (when it cannot be formatted, which logging
    reports later as its own error) its ``msg`` and ``args`` one by one."""
    try:
        message = record.getMessage()
    except Exception:
        if isinstance(record.msg, str):
            record.msg = _scrub_with(record.msg, wanted)
        if isinstance(record.args, (tuple, dict)):
            record.args = _scrub_value(record.args, wanted)
        return
    scrubbed = _scrub_with(message, wanted)
    if scrubbed != message:
        record.msg, record.args = scrubbed, ()


def _will_emit(record: logging.LogRecord) -> bool:
    """Whether a handler other than kopechka's own will see the record (else nothing is done)."""
    logger: Any = logging.Logger.manager.loggerDict.get(record.name)
    if not isinstance(logger, logging.Logger):
        return True  # a record brought here by other means (a queue listener): scrubbed
    while logger is not None:
        for handler in logger.handlers:
            if record.levelno >= handler.level and not isinstance(
                handler, (ScrubHandler, logging.NullHandler)
            ):
                return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


def scrub_record(record: logging.LogRecord) -> None:
    """Scrub every live key from ``record`` in place: its message, the texts a caller put in it
    with ``extra=``, its traceback and stack. Never raises."""
    wanted = _live_pattern()
    if wanted is None:
        return
    try:
        _message(record, wanted)
        for name, value in list(vars(record).items()):
            if name not in _RECORD_FIELDS and isinstance(value, str):
                setattr(record, name, _scrub_with(value, wanted))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _scrub_with(record.exc_text, wanted)
        if record.stack_info:
            record.stack_info = _scrub_with(record.stack_info, wanted)
    except Exception:  # a log call never fails because of the scrub
        return


class LogScrubber(logging.Filter):
    """Scrubs every record it sees (``scrub_record``) when a handler will show it, for a
    caller's own handler (``handler.addFilter(LogScrubber())``). It never drops a record and
    never raises."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (_pattern is not None or _stale) and _will_emit(record):
            scrub_record(record)
        return True


class ScrubHandler(logging.Handler):
    """Attached first to the logger ``kopechka``: every record of it or of any ``kopechka.*``
    logger (the package's, or a caller's own) passes here on its way up to the handlers of
    ``kopechka`` and of the root, and is scrubbed in place before they see it. It emits
    nothing."""

    def handle(self, record: logging.LogRecord) -> bool:  # no lock: it writes nothing
        if (_pattern is not None or _stale) and _will_emit(record):
            scrub_record(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """Nothing: the scrub is in ``handle``."""
