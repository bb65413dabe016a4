"""Looking for the key everywhere an error can carry it, in every spelling a server could use."""

from __future__ import annotations

import dataclasses
import html
import json
import pickle
import re
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus

import requests

import kopechka

_PACKAGE = str(Path(kopechka.__file__).parent)

_ESCAPES = re.compile(r"\\u([0-9a-fA-F]{4})|\\([/\\\"])")


def spellings_of(text: str) -> list[str]:
    """The text as it is and decoded the ways a server may encode an echo, twice over."""
    forms = [text]
    for unquoting in (unquote, unquote_plus):
        decoded = text
        for _ in range(2):
            decoded = _ESCAPES.sub(lambda m: chr(int(m[1], 16)) if m[1] else m[2], decoded)
            decoded = unquoting(html.unescape(decoded))
        forms.append(decoded)
    return forms


def holds(text: str, secret: str) -> bool:
    """Whether ``text`` holds ``secret`` in any spelling, any case."""
    return any(secret.casefold() in form.casefold() for form in spellings_of(text))


def _texts_of(value: Any, depth: int = 0) -> list[str]:
    if depth > 6:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, bytes):
        return [value.decode("latin-1")]
    if isinstance(value, dict):
        return [
            t for k, v in value.items() for t in _texts_of(k, depth + 1) + _texts_of(v, depth + 1)
        ]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [t for item in value for t in _texts_of(item, depth + 1)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _texts_of(dataclasses.asdict(value), depth + 1)
    if hasattr(value, "__dict__"):
        return [repr(value), *_texts_of(vars(value), depth + 1)]
    return [repr(value)]


def chain(error: BaseException) -> list[BaseException]:
    """The error, its causes and contexts."""
    found: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        item = todo.pop()
        if item is None or any(item is f for f in found):
            continue
        found.append(item)
        todo += [item.__cause__, item.__context__]
    return found


def assert_key_unreachable(error: BaseException, secret: str) -> None:
    """Nothing an error carries holds the key: text, args, attributes, the chain behind it, its
    pickle, the response attached to it, and the local variables of its traceback's frames."""
    for item in chain(error):
        assert not isinstance(item, requests.RequestException), f"{type(item)} in the chain"
        response = getattr(item, "response", None)
        assert not hasattr(response, "request"), "a response that holds its request"
        texts = [str(item), repr(item), *_texts_of(item.args), *_texts_of(vars(item))]
        for text in texts:
            assert not holds(text, secret), f"key in {type(item).__name__}: {text[:200]!r}"
    pickled = pickle.dumps(error)
    assert not holds(pickled.decode("latin-1"), secret), "key in the pickle"
    shown = traceback.TracebackException.from_exception(error, capture_locals=True)
    ours = [frame for frame in shown.stack if frame.filename.startswith(_PACKAGE)]
    assert ours, "the error was raised outside kopechka?"
    for frame in ours:  # the caller's own frames are the caller's business
        for name, value in (frame.locals or {}).items():
            assert not holds(value, secret), f"key in local {name!r} of {frame.name}"
    assert json.dumps(str(error))  # printable
