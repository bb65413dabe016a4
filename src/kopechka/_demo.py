"""``kopechka demo``: the whole job, narrated, against an embedded sandbox (no network, no key).

Buys an address, has the sandbox deliver a verification mail a moment later, waits for it, extracts
the code, then shows the refund rule: an order that got mail is closed without refund, one that went
unused is refunded in full. Imports the sandbox, so only the command line loads this module.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import TextIO

from ._format import domain_rows, inert, money
from .testing import Sandbox

__all__ = ["run"]

MAIL = """<html><body style="font-family:sans-serif">
<p>Hi there,</p><p>Use this code to confirm your Instagram account:</p>
<h1 style="color:#262626;letter-spacing:4px">482 913</h1>
<p>It expires in 10 minutes. Sent 2024-05-01 at 10:42.</p>
<p style="color:#8e8e8e">&copy; 2024 Instagram from Meta, 1601 Willow Road, Menlo Park, CA 94025</p>
</body></html>"""


def run(out: TextIO, *, delay: float = 1.0) -> int:
    """Narrate the flow on ``out``; returns the exit code (0).

    Args:
        out: Where the story is written.
        delay: Seconds before the sandbox "site" sends its mail.
    """

    def say(text: str = "") -> None:  # what the (sandbox) server says is printed inert
        print("\n".join(inert(line) for line in text.split("\n")), file=out, flush=True)

    with Sandbox() as sandbox, sandbox.client() as client:
        say("kopechka demo: the whole flow on an embedded sandbox (no network, no API key)")
        say(f"sandbox API at {sandbox.url}\n")
        say(f"1. Balance: {money(client.get_balance())}")
        say("2. Domains on sale:")
        say("   " + domain_rows(client.get_domains()).replace("\n", "\n   "))
        with client.mailbox("example.com", "instagram.com") as box:
            say(f"3. Bought {box.order_id}: {box.email} for {money(box.order.price)}")
            say(f"   balance now {money(client.get_balance())}")
            say(f"4. Signing up on instagram.com with {box.email}; the site mails a code...")
            threading.Timer(delay, _send, (sandbox, box.order_id)).start()
            started = time.monotonic()
            message = box.wait_for_message(timeout=30, poll_interval=0.25)
            waited = time.monotonic() - started
            say(f'   received "{message.subject}" from {message.sender} after {waited:.1f} s')
            say(f"5. Extracted code: {message.extract_code()}")
            refund = box.cancel().refund_amount
            say(f"6. Cancelled {box.order_id}: refund {money(refund)} (mail came: no refund)")
        with client.mailbox("example.com", "twitter.com") as spare:
            say(f"7. Bought {spare.order_id} for a sign-up that never happened...")
        refunded = spare.cancellation.refund_amount if spare.cancellation else Decimal(0)
        say(f"   leaving the mailbox block cancelled it: refund {money(refunded)}")
        final = money(client.get_balance())
        say(f"\nFinal balance: {final} (spent only on the order that was used)")
        say("Next: `kopechka sandbox` serves this API for your own tests; see the docs.")
    return 0


def _send(sandbox: Sandbox, order_id: str) -> None:
    sandbox.deliver(
        order_id, sender="security@mail.instagram.com", subject="Your Instagram code", content=MAIL
    )
