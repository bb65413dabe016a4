"""A server for the benchmarks, run in its own process so its CPU does not count against the client.

It answers canned bodies in the documented shapes for every endpoint: the balance, the profile, 10
domains, one order, a purchase, a cancellation, start-polling, pages of orders generated on the fly
(any page of a 100,000-order account), and 20 messages. ``--tls CERT KEY`` serves HTTPS. It
prints its port on the first line of stdout, then serves until killed.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

from kopechka.testing._app import Reply
from kopechka.testing._server import _Handler, _Server

TOTAL_ORDERS = 100_000
JSON = [("Content-Type", "application/json")]
BALANCE = b'{"success": true, "data": {"balance": 150.75}}'
ORDER = (
    '{{"id": "ord_{i:x}", "orderId": "API-{n}", "email": "kp{n}@example.com",'
    ' "domain": "example.com", "site": "instagram.com", "status": "active", "price": 5.00,'
    ' "createdAt": "2024-01-01T00:00:00Z"}}'
)
MESSAGE = (
    '{{"id": "msg_{i}", "from": "no-reply@instagram.com", "subject": "Your code {i}", "content":'
    ' "Hi! Your verification code is: {code}. It expires in 10 minutes.",'
    ' "receivedAt": "2024-01-01T12:00:00Z"}}'
)
MESSAGES = (
    '{"success": true, "messages": ['
    + ", ".join(MESSAGE.format(i=i, code=100000 + i) for i in range(20))
    + '], "order": {"id": "order_id", "email": "kp@example.com", "domain": "example.com",'
    ' "status": "active", "created_at": "2024-01-01T00:00:00Z"}}'
).encode()


PROFILE = (
    b'{"success": true, "data": {"id": "user_id", "email": "kp@example.com",'
    b' "username": "username", "balance": 150.75, "role": "user", "emailVerified": true,'
    b' "isActive": true,'
    b' "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-01-01T00:00:00Z"}}'
)
DOMAINS = (
    b'{"success": true, "data": ['
    + b", ".join(
        b'{"id": "domain_%d", "name": "d%d.example.com", "price": 5.00, "category": "popular",'
        b' "description": "Popular domain for general use"}' % (i, i)
        for i in range(10)
    )
    + b"]}"
)
ONE_ORDER = (
    b'{"success": true, "data": {"id": "order_id", "orderId": "API-1234567890",'
    b' "email": "kp@example.com", "domain": "example.com", "site": "instagram.com",'
    b' "status": "active", "price": 5.00, "createdAt": "2024-01-01T00:00:00Z", "duration": 10,'
    b' "endTime": "2024-01-01T00:10:00Z"}}'
)
CREATED = (
    b'{"success": true, "data": {"orderId": "API-1234567890", "email": "kp@example.com",'
    b' "domain": "example.com", "site": "instagram.com", "status": "pending", "price": 5.00,'
    b' "createdAt": "2024-01-01T00:00:00Z"}}'
)
CANCELLED = b'{"success": true, "message": "Order cancelled", "refundAmount": 5.00}'
POLLING = b'{"success": true, "data": {"orderId": "API-1234567890", "pollingStatus": "started"}}'
FIXED = {
    ("GET", "/api/v1/profile"): PROFILE,
    ("GET", "/api/v1/domains"): DOMAINS,
    ("POST", "/api/v1/orders"): CREATED,
}


def orders_page(page: int, limit: int) -> bytes:
    start = (page - 1) * limit
    items = ", ".join(
        ORDER.format(i=i, n=1_000_000_000 + i)
        for i in range(start, min(start + limit, TOTAL_ORDERS))
    )
    pagination = {
        "page": page,
        "limit": limit,
        "total": TOTAL_ORDERS,
        "pages": -(-TOTAL_ORDERS // limit),
    }
    return (
        f'{{"success": true, "data": [{items}], "pagination": {json.dumps(pagination)}}}'.encode()
    )


class Canned:
    """Routes to canned bodies; no state, no locks."""

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        parts = urlsplit(target)
        if parts.path == "/api/v1/balance":
            return Reply(200, BALANCE, JSON)
        fixed = FIXED.get((method, parts.path))
        if fixed is not None:
            return Reply(200, fixed, JSON)
        if parts.path.endswith("/start-polling"):
            return Reply(200, POLLING, JSON)
        if parts.path.startswith("/api/v1/orders/") and parts.path.count("/") == 4:
            return Reply(200, CANCELLED if method == "DELETE" else ONE_ORDER, JSON)
        if parts.path == "/api/v1/orders":
            query = parse_qs(parts.query)
            page, limit = int(query.get("page", ["1"])[0]), int(query.get("limit", ["10"])[0])
            return Reply(200, orders_page(page, limit), JSON)
        if parts.path.endswith("/messages"):
            return Reply(200, MESSAGES, JSON)
        return Reply(404, b'{"success": false, "message": "not found"}', JSON)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.app = Canned()
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*args.tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
