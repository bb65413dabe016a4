"""The key, echoed as an order's id or in a mail, never leaves the process in an error's ``args``
(pickle, Celery's JSON results), while the error's own models keep the real id in the process;
and the log scrub covers every ``kopechka.*`` logger and tracebacks, and never raises."""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from celery import Celery

from kopechka import (
    KopechkaClient,
    KopechkaError,
    Message,
    Order,
    OrderClosedError,
    OrderOutcomeUnknownError,
    RateLimitError,
    SpendLimitError,
    WaitCancelledError,
    WaitTimeoutError,
)

from ..test_pickle import SENT_AT

KEY = "sk_live_" + "A1b2C3d4" * 3


def _order() -> Order:
    return Order.model_validate(
        {
            "orderId": KEY,
            "email": "kp7@example.com",
            "domain": "example.com",
            "site": "x.com",
            "status": "active",
            "price": "5.00",
            "createdAt": "2024-01-01T00:00:00Z",
        }
    )


def _message() -> Message:
    return Message.model_validate(
        {
            "id": KEY,
            "from": "a@x.com",
            "subject": "Code",
            "content": f"code 123456 for {KEY}",
            "receivedAt": "2024-01-01T00:01:00Z",
        }
    )


MAKERS: dict[str, Callable[[], KopechkaError]] = {
    "unknown": lambda: OrderOutcomeUnknownError(
        f"lost; candidates {KEY}", "example.com", "x.com", SENT_AT, [_order()]
    ),
    "spend": lambda: SpendLimitError("too dear", Decimal("12.00"), Decimal("5.00"), _order()),
    "timeout": lambda: WaitTimeoutError("no mail", [_message()]),
    "closed": lambda: OrderClosedError("closed", "expired", [_message()]),
    "cancelled": lambda: WaitCancelledError("stopped", [_message()]),
}


@pytest.fixture
def live_key() -> Iterator[None]:
    with KopechkaClient(KEY, base_url="http://127.0.0.1:9"):
        yield


def _models(error: Any) -> list[Any]:
    found = getattr(error, "candidates", None) or getattr(error, "messages", None)
    return found if found is not None else [error.order]


@pytest.mark.parametrize("name", list(MAKERS))
def test_the_key_is_in_no_args_nor_pickle(live_key: None, name: str) -> None:
    error = MAKERS[name]()
    assert KEY not in json.dumps(error.args, default=str)
    assert KEY.encode() not in pickle.dumps(error)
    assert (
        _models(error)[0].model_dump()["order_id" if name in ("unknown", "spend") else "id"] == KEY
    )
    back = pickle.loads(pickle.dumps(error))
    again = type(error)(*error.args)
    for rebuilt in (back, again):
        model = _models(rebuilt)[0]  # still a model, with everything but the key
        assert isinstance(model, (Order, Message))
        assert "***" in json.dumps(model.model_dump(mode="json"))
        assert KEY not in json.dumps(model.model_dump(mode="json"))
        assert str(rebuilt) == str(error)


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery("key-json", backend="cache+memory://", set_as_current=False)
    yield app
    app.close()


@pytest.mark.parametrize("name", list(MAKERS))
def test_the_key_is_not_in_a_celery_json_result(live_key: None, app: Celery, name: str) -> None:
    error = MAKERS[name]()
    app.backend.mark_as_failure(f"task-{name}", error)
    stored = app.backend.get(app.backend.get_key_for_task(f"task-{name}"))
    assert KEY not in str(stored)
    back: Any = app.AsyncResult(f"task-{name}").result
    assert type(back) is type(error)
    assert isinstance(_models(back)[0], (Order, Message))


def test_retry_after_set_later_is_in_args() -> None:
    error = RateLimitError("slow down", retry_after=2.5)
    error.retry_after = 7.0
    again = RateLimitError(*error.args)
    assert (error.args[3], again.retry_after) == (7.0, 7.0)


# --- the log ------------------------------------------------------------------------------------


def test_a_bad_format_does_not_raise_into_the_caller(
    live_key: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging, "raiseExceptions", False)  # logging's own report of the bad format
    caplog.set_level(logging.DEBUG, logger="kopechka")
    logging.getLogger("kopechka").warning("%d " + KEY, "x")  # logging reports it; no TypeError
    logging.getLogger("kopechka").warning("after")
    assert caplog.records[-2].msg == "%d ***"
    assert caplog.records[-1].getMessage() == "after"


@pytest.mark.parametrize("name", ["kopechka", "kopechka.testing", "kopechka.mine.deep"])
def test_every_kopechka_logger_is_scrubbed(
    live_key: None, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger(name).warning("order %s", KEY)
    assert caplog.records[-1].getMessage() == "order ***"


def test_a_traceback_is_scrubbed(live_key: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    try:
        raise ValueError(f"boom {KEY}")
    except ValueError:
        logging.getLogger("kopechka").exception("failed")
    assert KEY not in caplog.text
    assert "ValueError: boom ***" in caplog.text


def test_no_scrub_when_no_handler_shows_the_record(
    live_key: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    from kopechka import _scrub

    monkeypatch.setattr(_scrub, "scrub_record", calls.append)
    top = logging.getLogger("kopechka")
    monkeypatch.setattr(top, "propagate", False)  # kopechka's own handlers only: none shows it
    monkeypatch.setattr(top, "level", logging.DEBUG)
    logging.getLogger("kopechka.quiet").debug("GET %s", KEY)  # nothing is done
    assert calls == []
