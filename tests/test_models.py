"""The models: both spellings, exact money, aware times, tolerated unknowns, immutability."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from kopechka import Cancellation, Message, Order, OrderPage, OrderStatus, OrderSummary, Profile

ORDER = {
    "orderId": "API-1",
    "email": "[email protected]",
    "domain": "example.com",
    "site": "instagram.com",
    "status": "active",
    "price": 150.75,
    "createdAt": "2024-01-01T00:00:00Z",
}


def test_vendor_and_attribute_spellings_validate_alike() -> None:
    by_alias = Message.model_validate(
        {
            "id": "m",
            "from": "a@b",
            "subject": "s",
            "content": "c",
            "receivedAt": "2024-01-01T00:00:00Z",
        }
    )
    by_name = Message.model_validate(
        {
            "id": "m",
            "sender": "a@b",
            "subject": "s",
            "content": "c",
            "received_at": "2024-01-01T00:00:00Z",
        }
    )
    assert by_alias == by_name
    assert by_alias.sender == "a@b"


def test_money_is_exact_decimal() -> None:
    order = Order.model_validate_json(
        b'{"orderId":"A","email":"e","domain":"d","site":"s","status":"active",'
        b'"price":150.75,"createdAt":"2024-01-01T00:00:00Z"}'
    )
    assert order.price == Decimal("150.75")
    assert isinstance(order.price, Decimal)
    assert Cancellation.model_validate({"refundAmount": 0.1}).refund_amount == Decimal("0.1")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-01-01T00:00:00Z", datetime(2024, 1, 1, tzinfo=timezone.utc)),
        ("2024-01-01T03:00:00+03:00", datetime(2024, 1, 1, tzinfo=timezone.utc)),
        ("2024-01-01T00:00:00", datetime(2024, 1, 1, tzinfo=timezone.utc)),
        ("2024-01-01T00:00:00.123Z", datetime(2024, 1, 1, 0, 0, 0, 123000, tzinfo=timezone.utc)),
    ],
)
def test_times_are_aware(raw: str, expected: datetime) -> None:
    order = Order.model_validate({**ORDER, "createdAt": raw})
    assert order.created_at.tzinfo is not None
    assert order.created_at == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("active", OrderStatus.ACTIVE),
        ("pending", OrderStatus.PENDING),
        ("expired", OrderStatus.EXPIRED),
    ],
)
def test_known_status_becomes_enum(raw: str, expected: OrderStatus) -> None:
    status = Order.model_validate({**ORDER, "status": raw}).status
    assert status is expected
    assert status == raw


def test_unknown_status_kept_as_str() -> None:
    status = Order.model_validate({**ORDER, "status": "on_hold"}).status
    assert status == "on_hold"
    assert not isinstance(status, OrderStatus)


def test_unknown_fields_tolerated_and_optional_fields_default() -> None:
    order = Order.model_validate({**ORDER, "brandNew": [1, 2]})
    assert order.id is None
    assert order.duration is None
    assert order.end_time is None


def test_models_are_immutable() -> None:
    order = Order.model_validate(ORDER)
    with pytest.raises(ValidationError):
        order.price = Decimal(0)  # type: ignore[misc]


def test_order_summary_accepts_snake_and_camel_created_at() -> None:
    base = {"id": "o", "email": "e", "domain": "d", "status": "active"}
    snake = OrderSummary.model_validate({**base, "created_at": "2024-01-01T00:00:00Z"})
    camel = OrderSummary.model_validate({**base, "createdAt": "2024-01-01T00:00:00Z"})
    assert snake == camel


def test_order_page_from_data_or_orders() -> None:
    pagination = {"page": 1, "limit": 10, "total": 1, "pages": 1}
    assert OrderPage.model_validate(
        {"data": [ORDER], "pagination": pagination}
    ) == OrderPage.model_validate({"orders": [ORDER], "pagination": pagination})


def test_missing_required_field_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        Profile.model_validate({"id": "x"})


def test_message_extract_helpers_delegate() -> None:
    message = Message.model_validate(
        {
            "id": "m",
            "from": "a",
            "subject": "Your code",
            "content": "Use 4821 <https://x.io/a>",
            "receivedAt": "2024-01-01T00:00:00Z",
        }
    )
    assert message.extract_code() == "4821"
    assert message.extract_code(r"Use (\d)") == "4"
    assert message.extract_links() == ["https://x.io/a"]
