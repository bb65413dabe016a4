"""The one endpoint table (``kopechka._endpoints``) drives the client methods' tests for both faces:
every row answered with the vendor documentation's example on both clients, both clients with
the same public methods and parameters, and every ``_wire`` request builder a row. A new endpoint
added to one face only, or to no table, fails here."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from kopechka import _wire
from kopechka._async_client import AsyncKopechkaClient
from kopechka._async_mail import AsyncMailbox
from kopechka._client import KopechkaClient
from kopechka._endpoints import ENDPOINTS, HELPERS, Endpoint
from kopechka._mail import Mailbox

from . import vendor_examples as ex
from .conftest import Canned
from .faces import Face

ORDER_ID = "API-1234567890"  # the id in the documentation's examples

EXAMPLES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "get_profile": (ex.PROFILE, lambda r: r.username == "username"),
    "get_balance": (ex.BALANCE, lambda r: r == Decimal("150.75")),
    "get_domains": (ex.DOMAINS, lambda r: r[0].price == Decimal("5")),
    "list_orders": (ex.ORDERS, lambda r: r.pagination.total == 25),
    "get_order": (ex.ORDER, lambda r: r.duration == 10),
    "create_order": (ex.CREATED, lambda r: r.order_id == ORDER_ID and r.id is None),
    "cancel_order": (ex.CANCELLED, lambda r: r.refund_amount == Decimal("5.00")),
    "get_messages": (ex.MESSAGES, lambda r: r.messages[0].extract_code() == "123456"),
    "start_polling": (ex.POLLING, lambda r: r.order_id == ORDER_ID),
}
ASYNC_ONLY = {"aclose"}  # httpx's spelling of close(), an alias


def test_every_row_has_a_vendor_example() -> None:
    assert set(EXAMPLES) == {e.name for e in ENDPOINTS}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_endpoint_on_vendor_example(
    face: Face, canned: tuple[Canned, str], endpoint: Endpoint
) -> None:
    app, url = canned
    path = "/api/v1" + endpoint.url_path(ORDER_ID)
    body, check = EXAMPLES[endpoint.name]
    app.set(endpoint.method, path, body)
    with face.client(api_key="test-key", base_url=url, timeout=(2.0, 5.0)) as client:
        result = getattr(client, endpoint.name)(*endpoint.arguments(ORDER_ID), **endpoint.kwargs)
    assert isinstance(result, endpoint.returns)
    assert check(result)
    sent_method, target, headers, sent_body = app.received[-1]
    assert (sent_method, target.split("?")[0]) == (endpoint.method, path)
    headers = {k.lower(): v for k, v in headers.items()}
    assert headers["x-api-key"] == "test-key"
    if endpoint.name == "create_order":
        assert json.loads(sent_body) == {"domain": "example.com", "site": "x.com"}
        assert headers["content-type"] == "application/json"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_row_matches_its_request_builder(endpoint: Endpoint) -> None:
    call = endpoint.build(*endpoint.arguments("API-7"), **endpoint.kwargs)
    assert (call.method, call.path) == (endpoint.method, endpoint.url_path("API-7"))
    assert call.idempotent is endpoint.idempotent


def test_every_request_builder_is_a_row() -> None:
    builders = {
        name
        for name, fn in inspect.getmembers(_wire, inspect.isfunction)
        if str(inspect.signature(fn).return_annotation).startswith("Call[")
    }
    assert builders == {e.build.__name__ for e in ENDPOINTS}


def _public(cls: type) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and inspect.isfunction(member)
    }


def _parameters(fn: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_both_faces_have_every_endpoint_and_nothing_else() -> None:
    expected = {e.name for e in ENDPOINTS} | HELPERS
    assert _public(KopechkaClient) == expected
    assert _public(AsyncKopechkaClient) == expected | ASYNC_ONLY


@pytest.mark.parametrize("name", sorted({e.name for e in ENDPOINTS} | HELPERS))
def test_both_faces_take_the_same_parameters(name: str) -> None:
    sync, asynchronous = getattr(KopechkaClient, name), getattr(AsyncKopechkaClient, name)
    assert _parameters(sync) == _parameters(asynchronous)
    if name not in {"iter_orders", "mailbox", "with_options"}:  # no I/O when called
        assert inspect.iscoroutinefunction(asynchronous), name


def test_constructors_differ_only_in_the_connection_argument() -> None:
    sync = [p for p in _parameters(KopechkaClient.__init__) if p[0] != "session"]
    asynchronous = [p for p in _parameters(AsyncKopechkaClient.__init__) if p[0] != "http_client"]
    assert [p[:2] for p in sync] == [p[:2] for p in asynchronous]
    differs = {"sleep"}  # time.sleep and asyncio.sleep
    assert [p for p in sync if p[0] not in differs] == [
        p for p in asynchronous if p[0] not in differs
    ]


def test_both_mailboxes_offer_the_same_waits() -> None:
    for name in ("wait_for_message", "wait_for_code"):
        assert _parameters(getattr(Mailbox, name)) == _parameters(getattr(AsyncMailbox, name))
        client_side = _parameters(getattr(KopechkaClient, name))
        assert _parameters(getattr(Mailbox, name))[1:] == client_side[2:]  # all but order_id
    for name in ("messages", "cancel", "wait_for_message", "wait_for_code"):
        assert inspect.iscoroutinefunction(getattr(AsyncMailbox, name)), name
