"""In this example, we: walk every order of the account page by page (lazily, one page in memory),
group them by status, and total what the active ones cost.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from kopechka import KopechkaClient, OrderStatus


def main() -> None:
    with KopechkaClient() as client:
        by_status: Counter[str] = Counter()
        active_cost = Decimal("0")
        for order in client.iter_orders(page_size=50):
            by_status[str(order.status)] += 1
            if order.status == OrderStatus.ACTIVE:
                active_cost += order.price
        for status, count in sorted(by_status.items()):
            print(f"{status:>10}: {count}")
        print(f"Active orders hold {active_cost} of your balance")


if __name__ == "__main__":
    main()
