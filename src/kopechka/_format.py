"""Output for people and for machines: aligned tables, ``name: value`` lines, JSON-ready data.

Pure functions over models and plain values, shared by the command line and the demo. Money is
shown with at least two decimals (display only: the values stay exact ``Decimal``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from ._models import Domain, Message, Order

__all__ = ["domain_rows", "fields", "message_rows", "money", "order_rows", "table", "to_json"]


def to_json(value: object) -> Any:
    """JSON-ready data: models in snake_case, money as strings, times in ISO 8601."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Align rows under headers, one space-padded column each."""
    cells = [[str(c) for c in headers], *([_cell(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def money(value: Decimal) -> str:
    """An amount with at least two decimals (``5`` -> ``5.00``; ``0.125`` stays)."""
    exponent = value.as_tuple().exponent
    return str(
        value.quantize(Decimal("0.01")) if isinstance(exponent, int) and exponent > -2 else value
    )


def _cell(value: object) -> str:
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    text = str(value if value is not None else "-")
    return text if len(text) <= 60 else text[:57] + "..."


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
    """A model as aligned ``name: value`` lines."""
    data = dict(model)
    width = max(len(k) for k in data)
    return "\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in data.items())
