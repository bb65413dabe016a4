"""Table tests of the sandbox's pure state machine, on a fake clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from kopechka.testing._state import SandboxError, SandboxState

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def make(**kwargs) -> SandboxState:
    return SandboxState(clock=lambda: T0, **kwargs)


def test_create_charges_and_answers_without_id() -> None:
    state = make()
    body = state.create_order("example.com", "instagram.com")
    assert "id" not in body
    assert body["status"] == "pending"
    assert body["email"].endswith("@example.com")
    assert body["createdAt"] == "2024-01-01T00:00:00Z"
    assert state.balance == Decimal("95.00")


@pytest.mark.parametrize(
    ("domain", "site", "status", "message"),
    [
        ("nope.com", "x", 400, "not available"),
        ("", "x", 400, "required"),
        ("example.com", None, 400, "required"),
        ("premium.example", "x", 400, "Insufficient"),
    ],
)
def test_create_refusals(domain, site, status, message) -> None:
    state = make(balance=Decimal("10"))
    with pytest.raises(SandboxError, match=message) as info:
        state.create_order(domain, site)
    assert info.value.status == status
    assert state.balance == Decimal("10")


@pytest.mark.parametrize(
    ("minutes", "status"),
    [(0, "active"), (9.99, "active"), (10, "expired"), (60, "expired")],
)
def test_lifecycle_on_the_virtual_clock(minutes: float, status: str) -> None:
    state = make()
    order_id = state.create_order("example.com", "x")["orderId"]
    state.advance(minutes * 60)
    assert state.get_order(order_id)["status"] == status


def test_get_order_details() -> None:
    state = make()
    order_id = state.create_order("example.com", "x")["orderId"]
    body = state.get_order(order_id)
    assert body["duration"] == 10
    assert body["endTime"] == "2024-01-01T00:10:00Z"
    assert body["id"].startswith("ord_")


@pytest.mark.parametrize(
    ("mail", "refund", "balance"),
    [(0, Decimal("5.00"), Decimal("100")), (1, Decimal("0"), Decimal("95"))],
)
def test_cancel_refunds_only_without_mail(mail: int, refund: Decimal, balance: Decimal) -> None:
    state = make()
    order_id = state.create_order("example.com", "x")["orderId"]
    for _ in range(mail):
        state.deliver(order_id, "a@b", "s", "c")
    assert state.cancel_order(order_id)[0] == refund
    assert state.balance == balance
    with pytest.raises(SandboxError, match="cancelled") as info:
        state.cancel_order(order_id)
    assert info.value.status == 400


def test_expired_and_cancelled_orders_stay_listed_and_refuse_mail() -> None:
    state = make()
    first = state.create_order("example.com", "x")["orderId"]
    second = state.create_order("example.com", "y")["orderId"]
    state.cancel_order(second)
    state.advance(3600)
    orders, pagination = state.list_orders(1, 10, None, None)
    assert {o["orderId"]: o["status"] for o in orders} == {first: "expired", second: "cancelled"}
    assert pagination == {"page": 1, "limit": 10, "total": 2, "pages": 1}
    with pytest.raises(SandboxError, match="receives no mail"):
        state.deliver(first, "a", "b", "c")


def test_mail_after_the_first_needs_start_polling() -> None:
    state = make()
    order_id = state.create_order("example.com", "x")["orderId"]
    with pytest.raises(SandboxError, match="at least one"):
        state.start_polling(order_id)
    state.deliver(order_id, "a@b", "first", "1111")
    state.deliver(order_id, "a@b", "second", "2222")
    messages, order = state.messages(order_id)
    assert [m["subject"] for m in messages] == ["first"]
    assert set(order) == {"id", "email", "domain", "status", "created_at"}
    assert state.start_polling(order_id) == {"orderId": order_id, "pollingStatus": "active"}
    assert [m["subject"] for m in state.messages(order_id)[0]] == ["first", "second"]
    state.deliver(order_id, "a@b", "third", "3333")
    assert len(state.messages(order_id)[0]) == 3
    assert set(messages[0]) == {"id", "from", "subject", "content", "receivedAt"}


def test_start_polling_only_for_active_orders() -> None:
    state = make()
    order_id = state.create_order("example.com", "x")["orderId"]
    state.deliver(order_id, "a", "b", "c")
    state.advance(601)
    with pytest.raises(SandboxError, match="only available for active"):
        state.start_polling(order_id)


@pytest.mark.parametrize(
    ("page", "limit", "status", "domain", "expected", "pages"),
    [
        (1, 2, None, None, ["API-1234567894", "API-1234567893"], 3),
        (3, 2, None, None, ["API-1234567890"], 3),
        (4, 2, None, None, [], 3),
        (1, 10, "cancelled", None, ["API-1234567891"], 1),
        (1, 10, None, "inbox.test", ["API-1234567894", "API-1234567892", "API-1234567890"], 1),
        (1, 10, "expired", None, [], 0),
    ],
)
def test_pagination_and_filters(page, limit, status, domain, expected, pages) -> None:
    state = make()
    for i in range(5):
        state.create_order("inbox.test" if i % 2 == 0 else "example.com", f"s{i}")
    state.cancel_order("API-1234567891")
    orders, pagination = state.list_orders(page, limit, status, domain)
    assert [o["orderId"] for o in orders] == expected
    assert pagination["pages"] == pages


@pytest.mark.parametrize(
    ("key", "message"), [(None, "required"), ("", "required"), ("bad", "Invalid")]
)
def test_authentication(key, message) -> None:
    with pytest.raises(SandboxError, match=message) as info:
        make().authenticate(key)
    assert info.value.status == 401


def test_unknown_order_is_404() -> None:
    with pytest.raises(SandboxError) as info:
        make().get_order("API-404")
    assert info.value.status == 404


@pytest.mark.parametrize("seconds", [-1, float("nan"), float("inf")])
def test_advance_rejects_bad_values(seconds: float) -> None:
    with pytest.raises(SandboxError):
        make().advance(seconds)


def test_clock_is_real_time_plus_offset() -> None:
    state = make()
    state.advance(90)
    assert state.now() == T0 + timedelta(seconds=90)


def test_spent_accounts_for_refunds() -> None:
    state = make()
    a = state.create_order("example.com", "x")["orderId"]
    b = state.create_order("example.com", "y")["orderId"]
    state.deliver(b, "s", "s", "c")
    state.cancel_order(a)
    state.cancel_order(b)
    assert state.spent() == Decimal("5.00")
    assert state.balance + state.spent() == Decimal("100")
