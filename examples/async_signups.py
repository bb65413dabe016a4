"""In this example, we: run many sign-ups at once in one asyncio event loop, as a Telegram bot
would: each task buys an address with `async with client.mailbox(...)`, waits for its code without
blocking the loop, and gets its order refunded when no code came, even when the task is cancelled.
The whole batch has a deadline, and SIGTERM stops it as Ctrl-C does; either way, leaving
`async with client` waits for the refunds of the cancelled sign-ups, so no unused order stays
charged.
"""

from __future__ import annotations

import asyncio

from kopechka import AsyncKopechkaClient, WaitTimeoutError, exit_on_signals

BATCH_DEADLINE = 90.0  # seconds for all the sign-ups together

SITES = ["instagram.com", "github.com", "twitter.com", "discord.com", "reddit.com", "twitch.tv"]


async def sign_up(client: AsyncKopechkaClient, site: str) -> str:
    async with client.mailbox("example.com", site) as box:
        try:
            code = await box.wait_for_code(timeout=60, poll_interval=1)
        except WaitTimeoutError:
            return f"{site}: no code, order refunded"
        return f"{site}: {box.email} got code {code}"


async def impatient(client: AsyncKopechkaClient) -> str:
    """A sign-up abandoned as soon as its address is bought: cancelling the task refunds it."""
    bought = asyncio.Event()

    async def abandoned() -> None:
        async with client.mailbox("example.com", "example.org") as box:
            bought.set()
            await box.wait_for_code(timeout=60, poll_interval=1)

    task = asyncio.create_task(abandoned())
    await bought.wait()
    task.cancel()  # reaches the task inside its wait, before any mail came
    try:
        await task
    except asyncio.CancelledError:
        return "example.org: cancelled, order refunded"
    return "example.org: finished before it was cancelled"


async def main() -> None:
    # leaving the client's block waits (close_timeout, 10 s) for the refunds still in flight
    async with AsyncKopechkaClient() as client:  # key and URL from KOPECHKA_API_KEY/_BASE_URL
        with exit_on_signals():  # SIGTERM or SIGHUP cancels main, as Ctrl-C does
            batch = asyncio.gather(*(sign_up(client, site) for site in SITES), impatient(client))
            try:
                lines = await asyncio.wait_for(batch, BATCH_DEADLINE)
            except asyncio.TimeoutError:  # the unfinished sign-ups are cancelled, and refunded
                lines = ["out of time: the unused orders are refunded"]
        for line in lines:
            print(line)
        print("Balance:", await client.get_balance())


if __name__ == "__main__":
    asyncio.run(main())
