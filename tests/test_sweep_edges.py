"""``sweep`` and the lost-answer search where the server's data meets the URL and the clock: an
order id that cannot be put in a URL is reported (never a ``ValueError`` halfway), and an order's
age is measured on the server's clock (the listing's ``Date``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kopechka import KopechkaError, OrderOutcomeUnknownError

from .conftest import Canned
from .faces import Face

BAD_IDS = ["..", ".", " ", "API-\x01"]


def order(order_id: str, created: str = "2020-01-01T00:00:00Z") -> dict[str, Any]:
    return {
        "orderId": order_id, "email": "a@example.com", "domain": "example.com", "site": "x.com",
        "status": "active", "price": 5, "createdAt": created,
    }  # fmt: skip


def listing(canned: Canned, orders: list[dict[str, Any]]) -> None:
    page = {"page": 1, "limit": 100, "total": len(orders), "pages": 1}
    body = json.dumps({"success": True, "data": orders, "pagination": page})
    canned.set("GET", "/api/v1/orders", body)
    for entry in orders:
        summary = {"id": entry["orderId"], "email": "a@x", "domain": "example.com",
                   "status": "active", "created_at": entry["createdAt"]}  # fmt: skip
        messages = json.dumps({"success": True, "messages": [], "order": summary})
        canned.set("GET", f"/api/v1/orders/{entry['orderId']}/messages", messages)
        refund = json.dumps({"success": True, "message": "ok", "refundAmount": 5})
        canned.set("DELETE", f"/api/v1/orders/{entry['orderId']}", refund)


def test_sweep_reports_an_id_it_cannot_address_and_goes_on(
    face: Face, canned: tuple[Canned, str]
) -> None:
    app, url = canned
    listing(app, [order(i) for i in BAD_IDS] + [order("API-2")])
    with face.client(api_key="k", base_url=url, max_retries=0) as client:
        report = client.sweep(older_than=60, dry_run=False)
    assert [o.order_id for o in report.cancelled] == ["API-2"]
    assert sorted(o.order_id for o, _ in report.failed) == sorted(BAD_IDS)
    assert all(isinstance(error, KopechkaError) for _, error in report.failed)
    assert "cannot be addressed" in str(report.failed[0][1])


def test_a_lost_purchase_lists_a_candidate_it_cannot_address(
    face: Face, canned: tuple[Canned, str]
) -> None:
    app, url = canned
    app.set("POST", "/api/v1/orders", "<html>oops</html>", status=502)
    listing(app, [order("..", created="2999-01-01T00:00:00Z")])
    client = face.client(api_key="k", base_url=url, max_retries=0)
    with (
        client,
        pytest.raises(OrderOutcomeUnknownError) as info,
        client.mailbox("example.com", "x.com"),
    ):
        pass  # pragma: no cover - never bought
    assert [o.order_id for o in info.value.candidates] == [".."]
    assert not any(method == "DELETE" for method, *_ in app.received)


# --- age on the server's clock ----------------------------------------------------------------


def test_sweep_ages_orders_on_the_sandboxs_clock(face: Face) -> None:
    from kopechka.testing import Sandbox

    with Sandbox(order_duration=60) as sandbox, face.sandbox_client(sandbox) as client:
        bought = client.create_order("example.com", "x.com")
        assert client.sweep(older_than=300, dry_run=False).cancelled == []  # young
        sandbox.advance(minutes=10)  # the server's clock moves; this machine's does not
        report = client.sweep(older_than=300, dry_run=False)
    assert [o.order_id for o in report.cancelled] == [bought.order_id]


@pytest.mark.parametrize(
    ("server_now", "swept"),
    [("Wed, 01 Jan 2020 00:10:00 GMT", False), ("Wed, 01 Jan 2020 02:00:00 GMT", True)],
    ids=["young by the server's clock", "old by the server's clock"],
)
def test_sweep_believes_the_servers_date_over_a_skewed_local_clock(
    face: Face, canned: tuple[Canned, str], server_now: str, swept: bool
) -> None:
    app, url = canned
    listing(app, [order("API-5", created="2020-01-01T00:00:00Z")])
    page = app.routes[("GET", "/api/v1/orders")]
    app.set("GET", "/api/v1/orders", page.body, headers=[("Date", server_now)])
    with face.client(api_key="k", base_url=url, max_retries=0) as client:
        report = client.sweep(older_than=3600, dry_run=True)
    assert bool(report.cancelled) is swept  # the local clock says six years old: swept both


def test_sweep_without_a_date_uses_the_local_clock_with_one_warning(
    face: Face, canned: tuple[Canned, str], caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.WARNING, logger="kopechka")
    app, url = canned
    listing(app, [order("API-5", created="2020-01-01T00:00:00Z")])
    with face.client(api_key="k", base_url=url, max_retries=0) as client:
        report = client.sweep(older_than=3600, dry_run=True)
    assert [o.order_id for o in report.cancelled] == ["API-5"]
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "no Date header" in line
