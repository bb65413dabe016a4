"""In this example, we: run many sign-ups at once in one asyncio event loop, as a Telegram bot
would: each task buys an address with `async with client.mailbox(...)`, waits for its code without
blocking the loop, and gets its order refunded when no code came, even when the task is cancelled.
"""

from __future__ import annotations

import asyncio

from kopechka import AsyncKopechkaClient, WaitTimeoutError

SITES = ["instagram.com", "github.com", "twitter.com", "discord.com", "reddit.com", "twitch.tv"]


async def sign_up(client: AsyncKopechkaClient, site: str) -> str:
    async with client.mailbox("example.com", site) as box:
        try:
            code = await box.wait_for_code(timeout=60, poll_interval=1)
        except WaitTimeoutError:
            return f"{site}: no code, order refunded"
        return f"{site}: {box.email} got code {code}"


async def impatient(client: AsyncKopechkaClient) -> str:
    """A sign-up abandoned after a moment: cancelling the task refunds its order."""
    task = asyncio.create_task(sign_up(client, "example.org"))
    await asyncio.sleep(0.05)
    task.cancel()
    try:
        return await task
    except asyncio.CancelledError:
        return "example.org: cancelled, order refunded"


async def main() -> None:
    async with AsyncKopechkaClient() as client:  # key and URL from KOPECHKA_API_KEY/_BASE_URL
        lines = await asyncio.gather(*(sign_up(client, site) for site in SITES), impatient(client))
        for line in lines:
            print(line)
        print("Balance:", await client.get_balance())


if __name__ == "__main__":
    asyncio.run(main())
