"""In this example, we: handle each kind of failure the client can raise — a bad request, a missing
order, a rate limit that outlasts the retries, a network failure — each with its own typed error.
"""

from __future__ import annotations

from kopechka import (
    APIConnectionError,
    APIStatusError,
    BadRequestError,
    KopechkaClient,
    KopechkaError,
    NotFoundError,
    RateLimitError,
)


def main() -> None:
    with KopechkaClient(max_retries=2, max_retry_wait=30) as client:
        try:
            client.create_order("no-such-domain.example", "instagram.com")
        except BadRequestError as exc:
            print(f"Refused ({exc.status_code}): {exc.message}")

        try:
            client.get_order("API-0000000000")
        except NotFoundError as exc:
            print(f"No such order: {exc.message}")

        try:
            print("Balance:", client.get_balance())
        except RateLimitError as exc:
            print(f"Still rate limited after retrying; the server asks for {exc.retry_after} s")
        except APIStatusError as exc:
            print(f"The API answered {exc.status_code}: {exc.message}")
        except APIConnectionError as exc:
            print(f"Network trouble (nothing was charged twice): {exc.message}")

    try:
        KopechkaClient("key", base_url="http://api.kopechka.com/api/v1")
    except ValueError as exc:
        print(f"Refused configuration: {exc}")
    except KopechkaError as exc:
        print(f"Client error: {exc}")


if __name__ == "__main__":
    main()
