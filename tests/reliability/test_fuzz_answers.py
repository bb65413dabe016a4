"""Arbitrary answers: whatever bytes or JSON a server sends, with whatever status, every public call
returns a valid model or raises a KopechkaError subclass, nothing else."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from kopechka import KopechkaClient, KopechkaError
from kopechka.testing._app import Reply
from kopechka.testing._server import AppServer

ORDER = "API-1"
CALLS: list[tuple[str, str, Callable[[KopechkaClient], object]]] = [
    ("GET", "/api/v1/profile", lambda c: c.get_profile()),
    ("GET", "/api/v1/balance", lambda c: c.get_balance()),
    ("GET", "/api/v1/domains", lambda c: c.get_domains()),
    ("GET", "/api/v1/orders", lambda c: c.list_orders()),
    ("GET", "/api/v1/orders/API-1", lambda c: c.get_order(ORDER)),
    ("POST", "/api/v1/orders", lambda c: c.create_order("example.com", "x.com")),
    ("DELETE", "/api/v1/orders/API-1", lambda c: c.cancel_order(ORDER)),
    ("GET", "/api/v1/orders/API-1/messages", lambda c: c.get_messages(ORDER)),
    ("POST", "/api/v1/orders/API-1/start-polling", lambda c: c.start_polling(ORDER)),
]


class Fixed:
    """Answers every request with the reply set last."""

    reply = Reply(200)

    def handle(self, method: str, target: str, headers: object, body: bytes) -> Reply:
        return Reply(self.reply.status, self.reply.body, list(self.reply.headers))


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Fixed, KopechkaClient]]:
    app = Fixed()
    with AppServer(app) as server:
        url = server.root_url + "/api/v1"
        with KopechkaClient(
            "k", base_url=url, max_retries=1, sleep=lambda s: None, timeout=(1, 2)
        ) as c:
            yield app, c


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
SHAPED = st.fixed_dictionaries(
    {"success": st.booleans() | JSON, "data": JSON},
    optional={
        "message": JSON,
        "pagination": JSON,
        "messages": JSON,
        "order": JSON,
        "refundAmount": JSON,
    },
)
BODIES = (
    st.binary(max_size=300)
    | JSON.map(lambda v: json.dumps(v).encode())
    | SHAPED.map(lambda v: json.dumps(v).encode())
)
STATUS = st.sampled_from([200, 201, 204, 301, 400, 401, 403, 404, 409, 429, 500, 503, 599])
HEADERS = st.sampled_from(
    [
        [],
        [("Content-Type", "application/json")],
        [("Retry-After", "0")],
        [("Retry-After", "junk")],
        [("Location", "http://elsewhere.invalid/")],
    ]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(status=STATUS, body=BODIES, headers=HEADERS)
def test_every_call_returns_a_model_or_a_kopechka_error(
    served: tuple[Fixed, KopechkaClient], status: int, body: bytes, headers: list[tuple[str, str]]
) -> None:
    app, client = served
    app.reply = Reply(status, body, headers)
    for _method, _path, call in CALLS:
        try:
            result = call(client)
        except KopechkaError:
            continue
        assert 200 <= status < 300
        items = result if isinstance(result, list) else [result]
        assert all(
            isinstance(item, BaseModel) or type(item).__name__ == "Decimal" for item in items
        )
