"""In this example, we: buy an address in a mailbox block, sign up on a site with it, wait for the
verification mail, extract the code and the confirmation link, and let the block refund the order
if no mail ever came.

The "site" here is simulated: against `kopechka sandbox --auto-mail 1` every new order receives a
verification mail a second after it is bought.
"""

from __future__ import annotations

import sys

from kopechka import KopechkaClient, OrderClosedError, WaitTimeoutError


def sign_up(email: str) -> None:
    """Stand-in for your own code that fills in the site's sign-up form."""
    print(f"Signing up on instagram.com as {email}")


def main() -> int:
    with KopechkaClient() as client, client.mailbox("example.com", "instagram.com") as box:
        sign_up(box.email)
        try:
            message = box.wait_for_message(sender="instagram", timeout=60, poll_interval=1)
        except OrderClosedError as exc:
            print(f"The order closed ({exc.status}) before any mail came")
            return 1
        except WaitTimeoutError as exc:
            print(f"No mail within a minute ({len(exc.messages)} other messages); refunding")
            return 1
        print(f'Mail from {message.sender}: "{message.subject}"')
        print("Code:", message.extract_code())
        for link in message.extract_links():
            print("Link:", link)
    return 0


if __name__ == "__main__":
    sys.exit(main())
