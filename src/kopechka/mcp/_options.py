"""The operator's side of ``kopechka mcp``: the guards and the command's options.

Owns ``Guards`` (what the operator allows an agent: budget, price cap, open orders, allowlists,
approval) and the ``kopechka mcp`` options that fill it. Guards come from the operator's flags only,
never from tool arguments, and the checks of their combinations (``plan_of``). It must not import
the SDK or the client, and it makes no request: the
budget and the price cap are enforced by the client's ledger (``budget=``, ``max_price=``); this
module only carries their values.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from .._config import ENV_API_KEY
from .._money import check_cap
from .._settings import checked_seconds, seconds_argument
from ..testing._server import is_loopback_host

__all__ = [
    "DEFAULT_MAX_OPEN",
    "DEFAULT_PORT",
    "QUOTE_TTL",
    "SANDBOX_BUDGET",
    "Guards",
    "Plan",
    "UsageError",
    "add_arguments",
    "plan_of",
]

DEFAULT_MAX_OPEN = 5
"""Orders without mail an agent may hold at once, unless ``--max-open`` says otherwise."""
DEFAULT_PORT = 8765
QUOTE_TTL = 120.0
"""Seconds a quote's ``confirmation_id`` can be used."""
SANDBOX_BUDGET = Decimal("100.00")
"""The session budget on the embedded sandbox when ``--budget`` is not given (its balance)."""


def _names(values: Iterable[str] | None) -> frozenset[str] | None:
    if values is None:
        return None
    return frozenset(v.strip().casefold() for v in values if v.strip())


@dataclass(frozen=True)
class Guards:
    """What the operator allows the agent; the server enforces it whatever the model asks.

    Attributes:
        budget: The most this session may spend (charged minus refunded; a purchase whose answer
            was lost counts as spent). ``None``: no session cap (the sandbox only).
        max_price: The most one order may cost; ``None``: no cap.
        max_open: How many orders without mail the agent may hold at once.
        sites: The sites an agent may buy for (case-insensitive); ``None``: any.
        domains: The domains it may buy on (case-insensitive); ``None``: any.
        confirm: A purchase needs the user's approval (elicitation, else ``user_approved``).
        quote_ttl: Seconds a quote's ``confirmation_id`` stays usable.

    Raises:
        ValueError: An amount is negative or not a number, or ``max_open`` is below 1.
    """

    budget: Decimal | None = None
    max_price: Decimal | None = None
    max_open: int = DEFAULT_MAX_OPEN
    sites: frozenset[str] | None = None
    domains: frozenset[str] | None = None
    confirm: bool = True
    quote_ttl: float = QUOTE_TTL

    def __post_init__(self) -> None:
        object.__setattr__(self, "budget", check_cap("budget", self.budget))
        object.__setattr__(self, "max_price", check_cap("max_price", self.max_price))
        object.__setattr__(self, "sites", _names(self.sites))
        object.__setattr__(self, "domains", _names(self.domains))
        if isinstance(self.max_open, bool) or not isinstance(self.max_open, int):
            raise ValueError(f"max_open must be an integer >= 1, got {self.max_open!r}")
        if self.max_open < 1:
            raise ValueError(f"max_open must be an integer >= 1, got {self.max_open!r}")
        object.__setattr__(
            self, "quote_ttl", checked_seconds("quote_ttl", self.quote_ttl, positive=True)
        )

    def site_allowed(self, site: str) -> bool:
        """Whether the allowlist lets the agent buy for ``site``."""
        return self.sites is None or site.strip().casefold() in self.sites

    def domain_allowed(self, domain: str) -> bool:
        """Whether the allowlist lets the agent buy on ``domain``."""
        return self.domains is None or domain.strip().casefold() in self.domains


def _amount(text: str) -> Decimal:
    try:
        value = check_cap("amount", text)
    except ValueError:
        value = None
    if value is None:
        raise argparse.ArgumentTypeError(f"must be an amount >= 0 such as 10.00, got {text!r}")
    return value


def _count(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to 10000, got {text!r}")
    return value


def _port(text: str) -> int:
    value = int(text) if text.isdigit() and len(text) <= 5 else -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535, got {text!r}")
    return value


_seconds = seconds_argument(most=3600)


def _list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"must name at least one, got {text!r}")
    return names


class UsageError(Exception):
    """A bad combination of options: one line for the operator, exit 2."""


@dataclass
class Plan:
    """What to serve, decided from the options before anything starts."""

    guards: Guards
    key: str | None
    sandbox: bool


def plan_of(a: argparse.Namespace) -> Plan:
    """The mode and the guards from the options, checked before anything loads or starts.

    Raises:
        UsageError: Live mode without ``--budget``, or HTTP beyond loopback without a token.
    """
    key = a.api_key if a.api_key is not None else os.environ.get(ENV_API_KEY)
    key = key if key is not None and key.strip() else None
    sandbox = bool(a.sandbox) or key is None
    if not sandbox and a.budget is None:
        raise UsageError(
            "live mode needs a session budget: pass --budget AMOUNT (or --sandbox to try it "
            "without money)"
        )
    if a.http and not is_loopback_host(a.host) and not a.token:
        raise UsageError(f"--host {a.host} is beyond loopback: pass --token TOKEN as well")
    budget: Decimal | None = a.budget if a.budget is not None else SANDBOX_BUDGET
    guards = Guards(
        budget=budget, max_price=a.max_price, max_open=a.max_open, sites=a.sites,
        domains=a.domains, confirm=not (sandbox or a.no_confirm),
    )  # fmt: skip
    return Plan(guards, key, sandbox)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``kopechka mcp`` options to its subparser (no SDK needed to parse them).

    Args:
        parser: The subparser of the ``mcp`` command.
    """
    add = parser.add_argument
    add(
        "--sandbox",
        action="store_true",
        help="serve on an embedded sandbox (the default when no API key is set): no money moves",
    )
    add(
        "--budget",
        type=_amount,
        metavar="AMOUNT",
        help="the most this session may spend; required in live mode (lost answers count as "
        f"spent); default on the sandbox: {SANDBOX_BUDGET}",
    )
    add("--max-price", type=_amount, metavar="AMOUNT", help="the most one order may cost")
    add(
        "--max-open",
        type=_count,
        default=DEFAULT_MAX_OPEN,
        metavar="N",
        help=f"orders without mail the agent may hold at once (default {DEFAULT_MAX_OPEN})",
    )
    add("--sites", type=_list, metavar="A,B", help="the only sites the agent may buy for")
    add("--domains", type=_list, metavar="A,B", help="the only domains the agent may buy on")
    add(
        "--no-confirm",
        action="store_true",
        help="live purchases without the user's approval (by default the user approves each)",
    )
    add(
        "--journal",
        metavar="FILE",
        help="append every purchase, refund and lost answer to FILE as JSON lines",
    )
    add("--http", action="store_true", help="serve Streamable HTTP instead of stdio")
    add(
        "--host",
        default="127.0.0.1",
        help="address for --http (default 127.0.0.1); beyond loopback only with --token",
    )
    add(
        "--port", type=_port, default=DEFAULT_PORT, help=f"port for --http (default {DEFAULT_PORT})"
    )
    add(
        "--token",
        metavar="TOKEN",
        help="a bearer token every HTTP request must carry (required beyond loopback)",
    )
    add(
        "--sandbox-mail-delay",
        type=_seconds,
        default=2.0,
        metavar="S",
        help="on the embedded sandbox, each order gets a verification mail after S seconds "
        "(default 2)",
    )
