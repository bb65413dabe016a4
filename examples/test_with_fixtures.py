"""In this example, we: test a bot's sign-up step offline with the pytest fixtures that installing
kopechka provides (no network, no key, no money spent).

Run it with `pytest examples/test_with_fixtures.py`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kopechka import BadRequestError, KopechkaClient
from kopechka.testing import Sandbox


def confirm_account(client: KopechkaClient, site: str) -> str:
    """The code under test: buy an address and return the code the site sends to it."""
    with client.mailbox("example.com", site) as box:
        return box.wait_for_code(timeout=10, poll_interval=0.1)


def test_confirm_account(kopechka_client: KopechkaClient, kopechka_sandbox: Sandbox) -> None:
    @kopechka_sandbox.on_order  # the site mails a code to every address bought
    def site_sends_code(order: dict[str, Any]) -> None:
        kopechka_sandbox.deliver(to=order["email"], content="Your code: 424242")

    assert confirm_account(kopechka_client, "instagram.com") == "424242"
    assert kopechka_client.get_balance() == Decimal("95")


@pytest.mark.kopechka_sandbox(balance="1")
def test_low_balance_is_reported(kopechka_client: KopechkaClient) -> None:
    with pytest.raises(BadRequestError, match="Insufficient balance"):
        confirm_account(kopechka_client, "instagram.com")


def test_rate_limit_is_survived(kopechka_client: KopechkaClient, kopechka_sandbox: Sandbox) -> None:
    kopechka_sandbox.fail(429, times=2, retry_after=0)
    assert kopechka_client.get_balance() == Decimal("100")
