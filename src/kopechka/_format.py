"""Output for people and for machines: aligned tables, ``name: value`` lines, JSON text.

Pure functions over models and plain values, shared by the command line and the demo. Money is
shown to people with at least two decimals, and to machines (JSON) as a string of the server's own
digits; the values stay exact ``Decimal`` either way.

Anything the server or a mail says is printed inert: ``inert()`` removes terminal escape sequences
(CSI, OSC, DCS and the like, 7-bit and 8-bit), control characters and bidirectional overrides, and
folds line breaks into spaces, so a hostile text can neither forge an output line nor drive the
terminal. JSON text escapes the same characters. This module must not do I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from ._models import Domain, Message, Order

__all__ = [
    "domain_rows",
    "fields",
    "inert",
    "json_text",
    "message_rows",
    "money",
    "order_rows",
    "table",
    "to_json",
]

# An escape sequence as a whole, so its parameters do not stay behind as text: CSI (ESC [ or the
# 8-bit 0x9B) up to its final byte; OSC, DCS, SOS, PM, APC (ESC ] P X ^ _, or 0x9D 0x90 0x98 0x9E
# 0x9F) up to BEL or ST; any other ESC and the byte after it. Each is linear: no nested repeats.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
)
_LINE_BREAKS = re.compile(r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
# What is left to remove: C0 and C1 controls, DEL, and the bidirectional marks and overrides
# ("Trojan Source": text that displays in another order than it reads).
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Inside a JSON string: the same characters, which json.dumps(ensure_ascii=False) leaves raw.
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CELL_WIDTH = 60


def inert(text: object) -> str:
    """A text safe to print on a terminal: one line, no escape sequence, no control character."""
    value = _ESCAPES.sub("", str(text))
    value = _LINE_BREAKS.sub(" ", value).replace("\t", " ")
    return _CONTROLS.sub("", value)


def to_json(value: object) -> Any:
    """JSON-ready data: models in snake_case, money as strings of its digits, times in ISO 8601."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def json_text(value: object, *, indent: int | None = 2) -> str:
    """``value`` as JSON text in which no character can drive a terminal (see the module)."""
    text = json.dumps(to_json(value), indent=indent, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Align rows under headers, one space-padded column each."""
    cells = [[str(c) for c in headers], *([_cell(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def money(value: Decimal) -> str:
    """An amount for people, with at least two decimals (``5`` -> ``5.00``; ``0.125`` stays)."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        return f"{value:.2f}"  # exact: only adds zeros, whatever the context's precision
    return f"{value:f}"


def _cell(value: object) -> str:
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, datetime):  # in UTC, as the tables' headers and ``fields`` say
        utc = value.astimezone(timezone.utc) if value.tzinfo is not None else value
        return utc.strftime("%Y-%m-%d %H:%M:%S")
    text = inert(value if value is not None else "-")
    return text if len(text) <= _CELL_WIDTH else text[: _CELL_WIDTH - 3] + "..."


def order_rows(orders: Iterable[Order]) -> str:
    """The orders table."""
    headers = ("ORDER ID", "EMAIL", "DOMAIN", "SITE", "STATUS", "PRICE", "CREATED (UTC)")
    rows = (
        (o.order_id, o.email, o.domain, o.site, o.status, o.price, o.created_at) for o in orders
    )
    return table(headers, rows)


def domain_rows(domains: Iterable[Domain]) -> str:
    """The domains table."""
    rows = ((d.name, d.price, d.category, d.description) for d in domains)
    return table(("DOMAIN", "PRICE", "CATEGORY", "DESCRIPTION"), rows)


def message_rows(messages: Iterable[Message]) -> str:
    """The messages table, with each message's code when one is found."""
    rows = ((m.id, m.sender, m.subject, m.received_at, m.extract_code()) for m in messages)
    return table(("ID", "FROM", "SUBJECT", "RECEIVED (UTC)", "CODE"), rows)


def fields(model: BaseModel) -> str:
    """A model as aligned ``name: value`` lines; a time in UTC, saying so."""
    data = dict(model)
    width = max(len(k) for k in data)
    return "\n".join(
        f"{k.ljust(width)}  {_cell(v)}{' UTC' if isinstance(v, datetime) else ''}"
        for k, v in data.items()
    )
