"""In this example, we: read the balance, list the domains on sale, buy an address, look at the
order, and cancel it for a refund.

Run it against the sandbox: start `kopechka sandbox` in another terminal, then
export KOPECHKA_BASE_URL=http://127.0.0.1:8025/api/v1 KOPECHKA_API_KEY=test-key
python examples/quickstart.py
"""

from __future__ import annotations

from kopechka import KopechkaClient


def main() -> None:
    with KopechkaClient() as client:  # key and base URL from KOPECHKA_API_KEY / KOPECHKA_BASE_URL
        print("Balance:", client.get_balance())
        cheapest = min(client.get_domains(), key=lambda domain: domain.price)
        print(f"Cheapest domain: {cheapest.name} at {cheapest.price}")

        order = client.create_order(cheapest.name, "instagram.com")
        print(f"Bought {order.order_id}: {order.email}")

        detail = client.get_order(order.order_id)
        print(f"Status {detail.status}, expires at {detail.end_time:%H:%M} UTC")

        refund = client.cancel_order(order.order_id)
        print(f"Cancelled: {refund.message} (refund {refund.refund_amount})")
        print("Balance:", client.get_balance())


if __name__ == "__main__":
    main()
