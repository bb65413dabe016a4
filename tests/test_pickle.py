"""Every public error survives pickle (process pools, Celery result backends) with its message and
attributes, minus the live response; in another process too."""

from __future__ import annotations

import base64
import pickle
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

import kopechka
from kopechka import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    KopechkaClient,
    KopechkaError,
    Message,
    NotFoundError,
    Order,
    OrderClosedError,
    OrderOutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    SpendLimitError,
    WaitCancelledError,
    WaitTimeoutError,
)

ORDER = Order.model_validate(
    {
        "orderId": "API-7",
        "email": "kp7@example.com",
        "domain": "example.com",
        "site": "x.com",
        "status": "active",
        "price": "5.00",
        "createdAt": "2024-01-01T00:00:00Z",
    }
)
MESSAGE = Message.model_validate(
    {
        "id": "m1",
        "from": "a@x.com",
        "subject": "Code",
        "content": "code 123456",
        "receivedAt": "2024-01-01T00:01:00Z",
    }
)
SENT_AT = datetime(2024, 1, 1, tzinfo=timezone.utc)


class LiveResponse:
    """Stands for a requests.Response: it must not travel (it holds a socket and the request)."""

    def __reduce__(self) -> Any:
        raise TypeError("a live response cannot be pickled")


def _status(cls: type[APIStatusError], code: int) -> Callable[[], KopechkaError]:
    return lambda: cls("refused", status_code=code, body={"message": "refused"}, response=LIVE)


LIVE = LiveResponse()

# every error class with every attribute it has, set to a value that differs from its default
MAKERS: dict[type[KopechkaError], Callable[[], KopechkaError]] = {
    KopechkaError: lambda: KopechkaError("no API key"),
    APIError: lambda: APIError("failed"),
    APIStatusError: _status(APIStatusError, 418),
    BadRequestError: _status(BadRequestError, 400),
    AuthenticationError: _status(AuthenticationError, 401),
    PermissionDeniedError: _status(PermissionDeniedError, 403),
    NotFoundError: _status(NotFoundError, 404),
    InternalServerError: _status(InternalServerError, 502),
    RateLimitError: lambda: RateLimitError(
        "slow down", body={"message": "slow down"}, response=LIVE, retry_after=2.5
    ),
    APIConnectionError: lambda: APIConnectionError("connection refused"),
    APITimeoutError: lambda: APITimeoutError("read timed out"),
    APIResponseValidationError: lambda: APIResponseValidationError(
        "not JSON", status_code=200, body="<html>"
    ),
    OrderOutcomeUnknownError: lambda: OrderOutcomeUnknownError(
        "lost", domain="example.com", site="x.com", sent_at=SENT_AT, candidates=[ORDER]
    ),
    SpendLimitError: lambda: SpendLimitError(
        "too dear", price=Decimal("12.00"), cap=Decimal("5.00"), order=ORDER
    ),
    WaitTimeoutError: lambda: WaitTimeoutError("no mail", messages=[MESSAGE]),
    OrderClosedError: lambda: OrderClosedError("closed", status="expired", messages=[MESSAGE]),
    WaitCancelledError: lambda: WaitCancelledError("stopped", messages=[MESSAGE]),
}


def _public_errors() -> set[type[KopechkaError]]:
    values = (getattr(kopechka, name) for name in kopechka.__all__)
    return {v for v in values if isinstance(v, type) and issubclass(v, KopechkaError)}


def _attributes(error: BaseException) -> dict[str, Any]:
    return {k: v for k, v in vars(error).items() if k != "response"}


def test_every_public_error_is_covered() -> None:
    assert set(MAKERS) == _public_errors()


@pytest.mark.parametrize("cls", list(MAKERS), ids=lambda c: c.__name__)
def test_error_survives_pickle_with_its_attributes(cls: type[KopechkaError]) -> None:
    error = MAKERS[cls]()
    assert type(error) is cls
    copy: Any = pickle.loads(pickle.dumps(error))
    assert copy.__class__ is cls
    assert copy.args == error.args
    assert str(copy) == str(error)
    assert _attributes(copy) == _attributes(error)
    assert len(_attributes(error)) >= (1 if isinstance(error, APIError) else 0)
    if isinstance(error, APIStatusError):
        assert error.response is LIVE  # the original keeps it
        assert vars(copy)["response"] is None  # the copy never carries it


def test_the_promised_attributes_come_back() -> None:
    def roundtrip(error: KopechkaError) -> Any:
        return pickle.loads(pickle.dumps(error))

    limited = roundtrip(MAKERS[RateLimitError]())
    assert (limited.retry_after, limited.status_code) == (2.5, 429)
    unknown = roundtrip(MAKERS[OrderOutcomeUnknownError]())
    assert unknown.candidates == [ORDER]
    assert (unknown.domain, unknown.site, unknown.sent_at) == ("example.com", "x.com", SENT_AT)
    timeout = roundtrip(MAKERS[OrderClosedError]())
    assert (timeout.messages, timeout.status) == ([MESSAGE], "expired")
    assert isinstance(timeout, TimeoutError)
    spend = roundtrip(MAKERS[SpendLimitError]())
    assert (spend.price, spend.cap, spend.order) == (Decimal("12.00"), Decimal("5.00"), ORDER)


def test_a_real_status_error_pickles_without_its_response(client: KopechkaClient) -> None:
    with pytest.raises(NotFoundError) as info:
        client.get_order("API-0")
    assert info.value.response is not None  # a live requests.Response, with the request on it
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.status_code, copy.message, copy.body) == (
        404,
        info.value.message,
        info.value.body,
    )
    assert copy.response is None


_LOAD = """
import base64, pickle, sys
error = pickle.loads(base64.b64decode(sys.argv[1]))
print(type(error).__module__, type(error).__name__, error.candidates[0].order_id, error.sent_at.year)
"""


def test_an_error_crosses_to_another_process() -> None:
    payload = pickle.dumps(MAKERS[OrderOutcomeUnknownError]())
    assert b"kopechka._models" not in payload  # the order's class is named by its public home
    out = subprocess.run(
        [sys.executable, "-c", _LOAD, base64.b64encode(payload).decode()],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["kopechka", "OrderOutcomeUnknownError", "API-7", "2024"]
