"""``AutoMail``: the verification mail the sandbox sends each new order, as the site would.

Owns the templates and their rendering: only the placeholders ``{site}``, ``{domain}``,
``{email}``, ``{order_id}`` and ``{code}`` are replaced (no format-string mini-language, so a
template from the command line cannot reach attributes); any other text, braces included, is kept.
It must not do I/O or choose the code: the app draws it from the sandbox's seeded generator.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["FIELDS", "AutoMail"]

FIELDS = ("site", "domain", "email", "order_id", "code")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
MAX_DELAY = 365 * 86400.0


@dataclass(frozen=True)
class AutoMail:
    """The mail every new order receives ``delay`` seconds after it is bought (sandbox clock).

    Templates may use ``{site}``, ``{domain}``, ``{email}``, ``{order_id}`` and ``{code}`` (six
    digits from the sandbox's random generator: reproducible with ``Sandbox(seed=...)``).

    Attributes:
        delay: Seconds after the purchase, on the sandbox's clock (virtual or real).
        sender: The ``from`` address.
        subject: The subject.
        content: The body, plain text or HTML.

    Raises:
        ValueError: A delay that is not a finite number of seconds from 0 to a year, or a template
            with a placeholder other than those above.
    """

    delay: float = 1.0
    sender: str = "no-reply@{site}"
    subject: str = "Your {site} code"
    content: str = "Your {site} verification code is {code}. It expires in 10 minutes."

    def __post_init__(self) -> None:
        delay = self.delay
        if isinstance(delay, bool) or not isinstance(delay, (int, float)):
            raise ValueError(f"auto_mail delay must be a number of seconds, got {delay!r}")
        if not (math.isfinite(delay) and 0 <= delay <= MAX_DELAY):
            raise ValueError(f"auto_mail delay must be 0 to {MAX_DELAY:g} seconds, got {delay!r}")
        for name in ("sender", "subject", "content"):
            template = getattr(self, name)
            if not isinstance(template, str):
                raise ValueError(f"auto_mail {name} must be a string")
            unknown = {m.group(1) for m in _PLACEHOLDER.finditer(template)} - set(FIELDS)
            if unknown:
                allowed = ", ".join("{" + f + "}" for f in FIELDS)
                raise ValueError(
                    f"auto_mail {name}: unknown placeholder(s) {sorted(unknown)}; use {allowed}"
                )

    def render(self, order: dict[str, Any], code: str) -> tuple[str, str, str]:
        """The sender, subject and content for an order (its JSON as bought) and a code."""
        values = {
            "site": str(order["site"]), "domain": str(order["domain"]),
            "email": str(order["email"]), "order_id": str(order["orderId"]), "code": code,
        }  # fmt: skip

        def fill(template: str) -> str:
            return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)

        return fill(self.sender), fill(self.subject), fill(self.content)
