"""In this example, we: share one client among a pool of threads that each buy an address, wait
for its verification code, and get refunded when no code came: many sign-ups at once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from kopechka import KopechkaClient, WaitTimeoutError

SITES = ["instagram.com", "github.com", "twitter.com", "discord.com", "reddit.com", "twitch.tv"]


def sign_up(client: KopechkaClient, site: str) -> str:
    with client.mailbox("example.com", site) as box:
        try:
            code = box.wait_for_code(timeout=60, poll_interval=1)
        except WaitTimeoutError:
            return f"{site}: no code, order refunded"
        return f"{site}: {box.email} got code {code}"


def main() -> None:
    with KopechkaClient() as client, ThreadPoolExecutor(max_workers=len(SITES)) as pool:
        for line in pool.map(lambda site: sign_up(client, site), SITES):
            print(line)
        print("Balance:", client.get_balance())


if __name__ == "__main__":
    main()
