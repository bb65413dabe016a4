"""JSON in and out of the sandbox, money kept as written.

Owns two pure functions: ``dumps`` writes a ``Decimal`` as the digits it holds (``5.00`` stays
``5.00`` on the wire; no float anywhere), and ``loads`` reads a request body into plain values with
every number that has a fraction or exponent as a ``Decimal``, refusing what is not JSON (``NaN``,
``Infinity``, nesting deeper than the parser's stack, invalid UTF-8) with ``SandboxError(400)``.
It must not do I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from json.encoder import encode_basestring  # C-accelerated
from typing import Any

from ._state import SandboxError

__all__ = ["dumps", "loads", "loads_object"]


def dumps(value: object) -> bytes:
    """Encode ``value`` compactly as UTF-8 JSON, ``Decimal`` as written.

    Raises:
        ValueError: A number that JSON cannot hold (NaN, infinity).
        TypeError: A value of a type JSON has no spelling for.
    """
    parts: list[str] = []
    _encode(value, parts)
    # Only a lone surrogate (from a "\\ud800" escape in a request) cannot be UTF-8 encoded; it can
    # only sit inside a string, where backslashreplace writes it as that same JSON escape.
    return "".join(parts).encode("utf-8", "backslashreplace")


def _encode(value: object, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(encode_basestring(value))
    elif value is None or isinstance(value, bool):
        out.append({None: "null", True: "true", False: "false"}[value])
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a JSON number: {value}")
        out.append(str(value))
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a JSON number: {value}")
        out.append(float.__repr__(value))
    elif isinstance(value, Mapping):
        _encode_object(value, out)
    elif isinstance(value, Sequence):
        out.append("[")
        for index, item in enumerate(value):
            out.append("," if index else "")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"no JSON spelling for {type(value).__name__}")


def _encode_object(value: Mapping[Any, Any], out: list[str]) -> None:
    out.append("{")
    for index, (key, item) in enumerate(value.items()):
        if not isinstance(key, str):
            raise TypeError(f"JSON object keys are strings, not {type(key).__name__}")
        out.append(("," if index else "") + encode_basestring(key) + ":")
        _encode(item, out)
    out.append("}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(body: bytes) -> Any:
    """Decode a request body; fractions and exponents become ``Decimal``.

    Raises:
        SandboxError: 400, the body is not JSON (or is nested too deeply to read).
    """
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)
    except RecursionError:
        raise SandboxError(400, "Request body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SandboxError(400, "Request body must be JSON") from exc


def loads_object(body: bytes) -> dict[str, Any]:
    """Decode a body that must be a JSON object; an empty body is ``{}``.

    Raises:
        SandboxError: 400, the body is not a JSON object.
    """
    data = loads(body) if body.strip() else {}
    if not isinstance(data, dict):
        raise SandboxError(400, "Request body must be a JSON object")
    return data
