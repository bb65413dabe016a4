"""Table tests of the sandbox's pure state machine, on a fake clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from kopechka.testing._state import SandboxDomain, SandboxError, SandboxState, amount

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def make(**kwargs: Any) -> SandboxState:
    return SandboxState(clock=lambda: T0, ticker=lambda: 0.0, **kwargs)


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
def test_create_refusals(domain: str, site: str | None, status: int, message: str) -> None:
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
def test_pagination_and_filters(
    page: int, limit: int, status: str | None, domain: str | None, expected: list[str], pages: int
) -> None:
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
def test_authentication(key: str | None, message: str) -> None:
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


@pytest.mark.parametrize("seconds", [3e11, 1e308, 100 * 365.25 * 86400 + 1, True, "5"])
def test_advance_refuses_absurd_values_and_stays_usable(seconds: object) -> None:
    state = make()
    with pytest.raises(SandboxError, match="advance") as info:
        state.advance(seconds)  # type: ignore[arg-type]
    assert info.value.status == 400
    assert state.now() == T0
    state.advance(60)
    assert state.now() == T0 + timedelta(seconds=60)


def test_advance_is_bounded_in_total() -> None:
    state = make()
    state.advance(99 * 365.25 * 86400)
    with pytest.raises(SandboxError):
        state.advance(2 * 365.25 * 86400)
    state.create_order("example.com", "x")  # still a valid clock for every operation
    assert state.monotonic() == 99 * 365.25 * 86400  # fake ticker at 0: elapsed only


def test_money_stays_as_written() -> None:
    state = make(balance=Decimal("12345678901234.56"))
    state.create_order("example.com", "x")
    assert str(state.balance) == "12345678901229.56"
    assert str(state.profile()["balance"]) == "12345678901229.56"
    assert [str(d["price"]) for d in state.domain_list()] == ["5.00", "3.50", "1.25", "12.00"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("5.00", "5.00"), (5, "5"), (Decimal("0.10"), "0.10"), (0.1, "0.1"), ("1e3", "1E+3")],
)
def test_amount_keeps_the_digits(value: object, expected: str) -> None:
    assert str(amount(value, "balance")) == expected


@pytest.mark.parametrize(
    "value", ["abc", "", "-1", "NaN", "Infinity", "1e15", "0.000000001", True, None, [1]]
)
def test_amount_refuses(value: object) -> None:
    with pytest.raises(ValueError, match="balance"):
        amount(value, "balance")


@pytest.mark.parametrize(
    "kwargs",
    [{"balance": "abc"}, {"order_duration": 0}, {"order_duration": 10**9}, {"order_duration": 1.5},
     {"api_key": ""}, {"domains": (SandboxDomain("", Decimal("1")),)},
     {"domains": (SandboxDomain("x.test", Decimal("-1")),)}],
)  # fmt: skip
def test_bad_construction_is_a_value_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make(**kwargs)


def test_scheduled_mail_lands_on_the_clock() -> None:
    state = make()
    order_id = state.create_order("example.com", "x")["orderId"]
    later = state.deliver(order_id, "a@b", "later", "2222", after=90)
    sooner = state.deliver(order_id, "a@b", "sooner", "1111", after=30)
    assert later["receivedAt"] == "2024-01-01T00:01:30Z"
    assert state.messages(order_id)[0] == []
    state.advance(29)
    assert state.messages(order_id)[0] == []
    state.advance(1)
    assert [m["id"] for m in state.messages(order_id)[0]] == [sooner["id"]]
    state.advance(120)
    state.start_polling(order_id)
    assert [m["subject"] for m in state.messages(order_id)[0]] == ["sooner", "later"]


def test_scheduled_mail_after_the_end_never_lands_and_cancel_drops_it() -> None:
    state = make()
    late = state.create_order("example.com", "x")["orderId"]
    state.deliver(late, "a@b", "too late", "1", after=600)  # the order ends at 600 s
    dropped = state.create_order("example.com", "y")["orderId"]
    state.deliver(dropped, "a@b", "never", "2", after=10)
    assert state.cancel_order(dropped)[0] == Decimal("5.00")  # no mail yet: full refund
    state.advance(3600)
    assert state.messages(late) == ([], state.messages(late)[1])
    assert state.get_order(late)["status"] == "expired"
    assert state.messages(dropped)[0] == []


def test_scheduled_mail_that_landed_before_cancel_keeps_the_money() -> None:
    state = make()
    order_id = state.create_order("example.com", "x")["orderId"]
    state.deliver(order_id, "a@b", "code", "1", after=5)
    state.advance(6)
    assert state.cancel_order(order_id)[0] == Decimal("0")
    assert state.spent() == Decimal("5.00")


def test_order_by_email_and_reset() -> None:
    state = make()
    order_id = state.create_order("example.com", "x")["orderId"]
    assert state.order_by_email(" KP1234567890@Example.com ") == order_id
    with pytest.raises(SandboxError) as info:
        state.order_by_email("nobody@example.com")
    assert info.value.status == 404
    state.advance(30)
    state.reset()
    assert (state.order_count(), state.balance) == (0, Decimal("100.00"))
    assert state.now() == T0 + timedelta(seconds=30)  # the clock keeps its time
    assert state.create_order("example.com", "x")["orderId"] == order_id
