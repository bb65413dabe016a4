"""Lost purchase answers and spend guards through the sandbox: the order is bought (``execute=True``)
and its answer dropped, failed, cut or late; ``create_order`` names it, ``mailbox()`` refunds it;
``max_price`` and ``budget`` refuse before buying and undo a purchase charged above them."""

from __future__ import annotations

import socket
import threading
from decimal import Decimal
from typing import Any

import pytest

from kopechka import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    BadRequestError,
    InternalServerError,
    KopechkaClient,
    KopechkaError,
    OrderOutcomeUnknownError,
    SpendLimitError,
)
from kopechka.testing import Sandbox
from kopechka.testing._state import SandboxDomain

from . import children
from .conftest import Sleeps
from .faces import Face

READ_TIMEOUT = 1.5  # seconds
SLOW = 3.0  # seconds the "slow" purchase's answer is held: twice the read timeout

LOST = [
    ("dropped", {"drop": True}, APIConnectionError),
    ("500", {"status": 500}, InternalServerError),
    ("502 html", {"status": 502, "body": "html"}, InternalServerError),
    ("truncated 200", {"status": 200, "body": "truncated"}, APIConnectionError),
    ("html 200", {"status": 200, "body": "html"}, APIResponseValidationError),
    ("malformed 200", {"status": 200, "body": "malformed"}, APIResponseValidationError),
    ("slow", {"delay": SLOW}, APITimeoutError),
]
IDS = [name for name, _, _ in LOST]


def lose_next_purchase(sandbox: Sandbox, options: dict[str, Any]) -> None:
    sandbox.fail(**options, path="/orders", method="POST", execute=True)


def sent(sandbox: Sandbox, method: str, path: str = "/orders") -> int:
    return sum(1 for r in sandbox.requests if r.method == method and r.path == "/api/v1" + path)


@pytest.fixture
def fast(sandbox: Sandbox, sleeps: Sleeps) -> Any:
    # a read timeout a loaded machine's answers stay well inside (at 0.3 s, a malformed 200 came
    # too late and was a timeout instead), and well short of the "slow" case's delay
    with sandbox.client(sleep=sleeps, timeout=(2.0, READ_TIMEOUT)) as client:
        yield client


@pytest.mark.parametrize(("name", "options", "cause"), LOST, ids=IDS)
def test_create_order_names_the_order_it_may_have_bought(
    sandbox: Sandbox, fast: KopechkaClient, name: str, options: dict[str, Any], cause: type
) -> None:
    lose_next_purchase(sandbox, options)
    with pytest.raises(OrderOutcomeUnknownError) as info:
        fast.create_order("example.com", "instagram.com")
    error = info.value
    bought = fast.list_orders(status="active").orders
    assert [o.order_id for o in error.candidates] == [o.order_id for o in bought]
    assert len(bought) == 1
    assert isinstance(error.__cause__, cause)
    assert (error.domain, error.site) == ("example.com", "instagram.com")
    assert error.sent_at.tzinfo is not None
    assert sent(sandbox, "POST") == 1  # never bought twice
    assert sent(sandbox, "DELETE", f"/orders/{bought[0].order_id}") == 0  # not ours to cancel
    assert sandbox.balance == Decimal("95")


@pytest.mark.parametrize(("name", "options", "cause"), LOST, ids=IDS)
def test_mailbox_names_the_order_whose_answer_was_lost_for_the_sweep(
    sandbox: Sandbox, fast: KopechkaClient, name: str, options: dict[str, Any], cause: type
) -> None:
    lose_next_purchase(sandbox, options)
    with pytest.raises(OrderOutcomeUnknownError, match=r"none cancelled.*kopechka sweep") as info:
        fast.mailbox("example.com", "instagram.com")
    (candidate,) = info.value.candidates
    assert fast.get_order(candidate.order_id).status == "active"  # could be another worker's
    assert sent(sandbox, "DELETE") == 0
    assert [o.order_id for o in fast.sweep(older_than=0, dry_run=False).cancelled] == [
        candidate.order_id
    ]
    assert sandbox.balance == Decimal("100")
    assert sent(sandbox, "POST") == 1


def test_a_failure_that_bought_nothing_finds_no_candidate(
    sandbox: Sandbox, client: KopechkaClient
) -> None:
    sandbox.fail(500, path="/orders", method="POST")  # answered 500 before buying
    with pytest.raises(OrderOutcomeUnknownError, match="Candidates: none found") as info:
        client.mailbox("example.com", "x.com")
    assert info.value.candidates == []
    assert sent(sandbox, "DELETE") == 0
    assert sandbox.balance == Decimal("100")


def test_a_refusal_is_no_unknown_outcome(sandbox: Sandbox, client: KopechkaClient) -> None:
    with pytest.raises(BadRequestError) as info:
        client.create_order("nowhere.test", "x.com")
    assert not isinstance(info.value, OrderOutcomeUnknownError)
    assert sent(sandbox, "GET") == 0  # nothing to look for


def test_a_request_that_never_left_is_no_unknown_outcome(sleeps: Sleeps) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        KopechkaClient("k", base_url=f"http://127.0.0.1:{port}/api/v1", sleep=sleeps) as client,
        pytest.raises(APIConnectionError) as info,
    ):
        client.create_order("example.com", "x.com")
    assert not isinstance(info.value, OrderOutcomeUnknownError)
    assert info.value.may_have_reached_server is False


def test_two_candidates_are_named_and_none_cancelled(
    sandbox: Sandbox, client: KopechkaClient
) -> None:
    for _ in range(2):
        lose_next_purchase(sandbox, {"drop": True})
        with pytest.raises(OrderOutcomeUnknownError) as info:
            client.create_order("example.com", "x.com")
    assert len(info.value.candidates) == 2  # the first lost one is still a candidate
    lose_next_purchase(sandbox, {"drop": True})
    with pytest.raises(OrderOutcomeUnknownError, match="none cancelled") as info:
        client.mailbox("example.com", "x.com")
    assert len(info.value.candidates) == 3
    assert sent(sandbox, "DELETE") == 0


def test_orders_returned_by_this_client_are_never_candidates(
    sandbox: Sandbox, client: KopechkaClient
) -> None:
    mine = client.create_order("example.com", "x.com")
    with client.mailbox("example.com", "x.com") as box:
        lose_next_purchase(sandbox, {"status": 500})
        with pytest.raises(OrderOutcomeUnknownError) as info:
            client.mailbox("example.com", "x.com")
        (lost,) = info.value.candidates
        assert lost.order_id not in {mine.order_id, box.order_id}
        assert client.get_order(box.order_id).status == "active"  # the other mailbox is untouched
    assert client.get_order(mine.order_id).status == "active"


def test_another_threads_purchase_in_flight_is_not_taken_for_ours(
    sandbox: Sandbox, client: KopechkaClient
) -> None:
    sandbox.fail(path="/orders", method="POST", delay=1.0)  # B: bought at once, answered late
    sandbox.fail(path="/orders", method="POST", drop=True, execute=True)  # A: answer lost
    got: dict[str, Any] = {}
    b = threading.Thread(target=lambda: got.update(b=client.create_order("example.com", "x.com")))
    b.start()
    for _ in range(200):  # B's request is in (bounded wait, no timing assertion)
        if sent(sandbox, "POST"):
            break
        threading.Event().wait(0.01)
    with pytest.raises(OrderOutcomeUnknownError, match="none cancelled") as info:
        client.mailbox("example.com", "x.com")
    b.join(timeout=10)
    (candidate,) = info.value.candidates
    assert candidate.order_id != got["b"].order_id
    assert client.get_order(got["b"].order_id).status == "active"  # B's order is B's


# --- an answer lost while the client closes ------------------------------------------------------


def buy_in_thread(client: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Call ``create_order`` in a thread of its own; what it returned or raised lands in ``got``."""
    got: dict[str, Any] = {}

    def buy() -> None:
        try:
            got["order"] = client.create_order("example.com", "x.com")
        except BaseException as exc:  # whatever it is, the test reads it
            got["error"] = exc

    thread = threading.Thread(target=buy, daemon=True)
    thread.start()
    return thread, got


def close(face: Face, client: Any) -> None:
    if face.is_async:  # the view's own close() also ends its loop
        client.run(client.client.close())
    else:
        client.close()


def bought_ids(sandbox: Sandbox) -> list[str]:
    with sandbox.app.lock:
        return list(sandbox.state._orders)


def test_close_waits_for_a_purchase_whose_answer_is_lost(face: Face, sandbox: Sandbox) -> None:
    """The order is made, and its answer dropped 0.5 s later, while another thread closes the
    client: close() waits for the purchase, whose search names the order."""
    sandbox.fail(path="/orders", method="POST", execute=True, delay=0.5, drop=True)
    with face.sandbox_client(sandbox, timeout=(2.0, 10.0)) as client:
        buyer, got = buy_in_thread(client)
        children.wait_until(lambda: sandbox.state.order_count() == 1)  # its answer is on its way
        close(face, client)
        assert sent(sandbox, "GET") >= 1  # the search for the order ran before close() returned
        buyer.join(timeout=30)
    error = got.get("error")
    assert isinstance(error, OrderOutcomeUnknownError), got
    assert [o.order_id for o in error.candidates] == bought_ids(sandbox)


def test_a_search_refused_after_close_timeout_is_still_an_unknown_outcome(
    face: Face, sandbox: Sandbox
) -> None:
    """close_timeout=0: close() returns at once. The sync face's search still goes out (a
    purchase begun before close() ends as it would have); the async face's closed httpx client
    refuses it, and the error says to sweep: never a bare RuntimeError."""
    sandbox.fail(path="/orders", method="POST", execute=True, delay=0.5, drop=True)
    with face.sandbox_client(sandbox, timeout=(2.0, 10.0), close_timeout=0) as client:
        buyer, got = buy_in_thread(client)
        children.wait_until(lambda: sandbox.state.order_count() == 1)
        close(face, client)
        buyer.join(timeout=30)
    error = got.get("error")
    assert isinstance(error, OrderOutcomeUnknownError), got
    if face.is_async:
        assert error.candidates == []
        assert "run `kopechka sweep`" in str(error)
    else:
        assert [o.order_id for o in error.candidates] == bought_ids(sandbox)


# --- spend guards ---------------------------------------------------------------------------------


def test_max_price_refuses_before_buying(sandbox: Sandbox, client: KopechkaClient) -> None:
    with pytest.raises(SpendLimitError) as info:
        client.create_order("premium.example", "x.com", max_price=Decimal("5"))
    assert (info.value.price, info.value.cap) == (Decimal("12.00"), Decimal("5"))
    assert "listed at 12" in str(info.value)
    assert sent(sandbox, "POST") == 0
    assert client.create_order("example.com", "x.com", max_price="5.00").price == Decimal("5.00")
    with pytest.raises(SpendLimitError):
        client.mailbox("premium.example", "x.com", max_price=5)
    assert sent(sandbox, "GET", "/domains") == 1  # the price list is cached


def test_charged_above_max_price_is_refunded(sandbox: Sandbox, client: KopechkaClient) -> None:
    client.create_order("example.com", "x.com", max_price="6")  # caches the list: 5.00
    sandbox.state.domains["example.com"] = SandboxDomain("example.com", Decimal("9.00"))
    with pytest.raises(SpendLimitError, match=r"charged 9\b.*cancelled") as info:
        client.create_order("example.com", "y.com", max_price="6")
    assert info.value.order is not None
    assert client.get_order(info.value.order.order_id).status == "cancelled"
    assert sandbox.balance == Decimal("95")


def test_budget_caps_the_clients_spend_and_refunds_give_back(sandbox: Sandbox) -> None:
    with sandbox.client(budget=Decimal("12")) as client:
        first = client.create_order("example.com", "x.com")
        with client.mailbox("example.com", "x.com"):
            pass  # refunded on leaving: the budget gets it back
        client.create_order("example.com", "x.com")
        with pytest.raises(SpendLimitError, match="budget") as info:
            client.create_order("example.com", "x.com")
        assert (info.value.price, info.value.cap) == (Decimal("5.00"), Decimal("2.00"))
        client.cancel_order(first.order_id)
        client.create_order("example.com", "x.com")
    assert sandbox.balance == Decimal("90")


def test_budget_is_shared_by_the_clients_threads(sandbox: Sandbox) -> None:
    outcomes: list[str] = []
    start = threading.Barrier(16)
    with sandbox.client(budget=Decimal("40")) as client:

        def buy() -> None:
            start.wait(timeout=10)
            try:
                client.create_order("example.com", "x.com")
                outcomes.append("bought")
            except SpendLimitError:
                outcomes.append("refused")

        threads = [threading.Thread(target=buy) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert sorted(outcomes) == ["bought"] * 8 + ["refused"] * 8
    assert sandbox.balance == Decimal("60")


def test_a_lost_answer_counts_against_the_budget_until_refunded(
    sandbox: Sandbox, sleeps: Sleeps
) -> None:
    with sandbox.client(budget=Decimal("5"), sleep=sleeps) as client:
        lose_next_purchase(sandbox, {"drop": True})
        with pytest.raises(OrderOutcomeUnknownError) as info:
            client.create_order("example.com", "x.com")
        with pytest.raises(SpendLimitError):  # it may have been bought: fail closed
            client.create_order("example.com", "x.com")
        client.cancel_order(info.value.candidates[0].order_id)
        client.create_order("example.com", "x.com")  # the refund gave it back


@pytest.mark.parametrize("value", [-1, 1.5, "abc", float("nan")])
def test_caps_are_checked_before_any_request(
    sandbox: Sandbox, client: KopechkaClient, value: Any
) -> None:
    with pytest.raises(ValueError, match="max_price"):
        client.create_order("example.com", "x.com", max_price=value)
    with pytest.raises(ValueError, match="budget"):
        sandbox.client(budget=value)
    assert sandbox.requests == []


def test_errors_stay_kopechka_errors() -> None:
    assert issubclass(OrderOutcomeUnknownError, KopechkaError)
    assert issubclass(SpendLimitError, KopechkaError)
