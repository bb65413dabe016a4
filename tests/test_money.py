"""The money rules as tables: which failures leave a purchase unknown, which orders are candidates,
spend guards and the budget ledger, and each flow (purchase, sweep, mailbox exit) driven by a
scripted server, with fake clocks. No sockets here: tests/test_lost_answers.py shows the same rules
through the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from kopechka import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    Cancellation,
    Domain,
    InternalServerError,
    KopechkaError,
    Message,
    MessageList,
    NotFoundError,
    Order,
    OrderOutcomeUnknownError,
    OrderPage,
    RateLimitError,
    SpendLimitError,
    _flow,
)
from kopechka import _money as money
from kopechka._ledger import KEEP_RETURNED, PRICE_TTL, Ledger

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def order(
    order_id: str = "API-1",
    *,
    domain: str = "example.com",
    site: str = "x.com",
    status: str = "active",
    created: datetime = T0,
    price: str = "5.00",
) -> Order:
    return Order(
        order_id=order_id, email=f"{order_id}@{domain}", domain=domain, site=site, status=status,
        price=Decimal(price), created_at=created,
    )  # fmt: skip


def connection_error(reached: bool) -> APIConnectionError:
    error = APIConnectionError("POST /orders failed on the network")
    error.may_have_reached_server = reached
    return error


# --- which failures leave the purchase unknown -------------------------------------------------

UNKNOWN = [
    ("dropped connection", connection_error(True), True),
    ("connection refused", connection_error(False), False),
    ("read timeout", APITimeoutError("timed out waiting for the answer"), True),
    ("500", InternalServerError("x", status_code=500), True),
    ("503", InternalServerError("x", status_code=503), True),
    ("HTML 200", APIResponseValidationError("html", status_code=200), True),
    ("400 insufficient balance", BadRequestError("x", status_code=400), False),
    ("404", NotFoundError("x", status_code=404), False),
    ("429 after retries", RateLimitError("x"), False),
    ("redirect not followed", APIStatusError("x", status_code=307), False),
    ("success false with 200", APIStatusError("x", status_code=200), False),
    ("a spend guard", SpendLimitError("x", price=Decimal(1), cap=Decimal(0)), False),
    ("Ctrl-C while waiting", KeyboardInterrupt(), True),
    ("SIGTERM while waiting", SystemExit(143), True),
    ("a failure of our own", RuntimeError("bug"), True),
]


@pytest.mark.parametrize(("name", "error", "unknown"), UNKNOWN, ids=[u[0] for u in UNKNOWN])
def test_outcome_unknown(name: str, error: BaseException, unknown: bool) -> None:
    assert money.outcome_unknown(error) is unknown


# --- candidates ---------------------------------------------------------------------------------

SENT = T0 + timedelta(minutes=5)
CANDIDATES = [
    ("active, just after sending", order(created=SENT + timedelta(seconds=1)), True),
    ("pending", order(status="pending", created=SENT), True),
    ("created within the margin before", order(created=SENT - timedelta(seconds=59)), True),
    ("created before the margin", order(created=SENT - timedelta(seconds=61)), False),
    ("cancelled", order(status="cancelled", created=SENT), False),
    ("expired", order(status="expired", created=SENT), False),
    ("an unknown status", order(status="frozen", created=SENT), False),
    ("another domain", order(domain="inbox.test", created=SENT), False),
    ("the domain in capitals", order(domain="Example.COM", created=SENT), True),
    ("another site", order(site="y.com", created=SENT), False),
    ("returned to a caller", order("API-9", created=SENT), False),
]


@pytest.mark.parametrize(("name", "listed", "chosen"), CANDIDATES, ids=[c[0] for c in CANDIDATES])
def test_candidates(name: str, listed: Order, chosen: bool) -> None:
    found = money.candidates(
        [listed], domain="example.com", site="x.com", sent_at=SENT, returned={"API-9"}
    )
    assert found == ([listed] if chosen else [])


AGES = [(299.0, "young"), (300.0, "old"), (301.0, "old"), (-30.0, "young")]


@pytest.mark.parametrize(("age", "verdict"), AGES)
def test_split_by_age(age: float, verdict: str) -> None:
    listed = order(created=T0 - timedelta(seconds=age))
    young, old = money.split_by_age([listed], now=T0, older_than=300.0)
    assert (young, old) == (([listed], []) if verdict == "young" else ([], [listed]))


EXITS = [
    (True, None, "keep"),
    (True, "expired", "keep"),
    (False, "expired", "nothing"),
    (False, "cancelled", "nothing"),
    (False, "completed", "nothing"),
    (False, "active", "cancel"),
    (False, "pending", "cancel"),
    (False, None, "cancel"),
    (False, "frozen", "cancel"),
]


@pytest.mark.parametrize(("got_mail", "status", "verdict"), EXITS)
def test_exit_decision(got_mail: bool, status: str | None, verdict: str) -> None:
    assert money.exit_decision(got_mail=got_mail, status=status) == verdict


CAPS: list[tuple[object, Decimal | None]] = [
    (None, None),
    (Decimal("5.00"), Decimal("5.00")),
    (5, Decimal(5)),
    ("12.5", Decimal("12.5")),
    (0, Decimal(0)),
]


@pytest.mark.parametrize(("value", "cap"), CAPS)
def test_check_cap(value: object, cap: Decimal | None) -> None:
    assert money.check_cap("max_price", value) == cap


@pytest.mark.parametrize("value", [5.0, True, "abc", "-1", "NaN", "Infinity", Decimal(-1), [5]])
def test_check_cap_refuses(value: object) -> None:
    with pytest.raises(ValueError, match="max_price"):
        money.check_cap("max_price", value)


# --- the ledger -----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_budget_refuses_what_would_pass_it_and_refunds_give_back() -> None:
    ledger = Ledger(Decimal("12"))
    for n in (1, 2):
        assert (
            ledger.bought(ledger.begin("example.com", "x", Decimal("5")), order(f"A-{n}")) is None
        )
    with pytest.raises(SpendLimitError) as info:
        ledger.begin("example.com", "x", Decimal("5"))
    assert (info.value.price, info.value.cap, info.value.order) == (Decimal(5), Decimal(2), None)
    ledger.refunded("A-1", Decimal("5.00"))
    assert ledger.spent == Decimal(5)
    ledger.refunded("A-1", Decimal("5.00"))  # once only
    ledger.refunded("NOT-OURS", Decimal("50"))  # another client's order gives nothing back
    assert ledger.spent == Decimal(5)
    ledger.begin("example.com", "x", Decimal("5"))


def test_budget_counts_purchases_in_flight() -> None:
    ledger = Ledger(Decimal("10"))
    ledger.begin("example.com", "x", Decimal("5"))
    ledger.begin("example.com", "x", Decimal("5"))
    with pytest.raises(SpendLimitError):
        ledger.begin("example.com", "x", Decimal("0.01"))


def test_budget_overrun_by_a_higher_charge_is_reported() -> None:
    ledger = Ledger(Decimal("10"))
    ledger.bought(ledger.begin("d", "s", Decimal("6")), order("A-1", price="6"))
    token = ledger.begin("d", "s", Decimal("3"))
    assert ledger.bought(token, order("A-2", price="7")) == Decimal(4)  # 4 was left before it


def test_unknown_outcome_stays_spent_until_found() -> None:
    ledger = Ledger(Decimal("10"))
    lost = ledger.begin("d", "s", Decimal("5"))
    ledger.failed(lost, unknown=True)
    assert ledger.spent == Decimal(5)
    ledger.attribute(lost, "API-7")
    ledger.refunded("API-7", Decimal("5"))
    assert ledger.spent == 0
    gone = ledger.begin("d", "s", Decimal("5"))
    ledger.failed(gone, unknown=True)
    ledger.not_bought(gone)
    assert ledger.spent == 0
    refused = ledger.begin("d", "s", Decimal("5"))
    ledger.failed(refused, unknown=False)
    assert ledger.spent == 0


def test_budget_is_shared_by_threads() -> None:
    ledger = Ledger(Decimal("50"))
    outcomes: list[str] = []
    start = threading.Barrier(20)

    def buy(n: int) -> None:
        start.wait(timeout=10)
        try:
            token = ledger.begin("d", "s", Decimal("5"))
        except SpendLimitError:
            outcomes.append("refused")
            return
        ledger.bought(token, order(f"A-{n}"))
        outcomes.append("bought")

    threads = [threading.Thread(target=buy, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(outcomes) == ["bought"] * 10 + ["refused"] * 10
    assert ledger.spent == Decimal(50)


def test_returned_ids_are_forgotten_after_an_hour() -> None:
    clock = Clock()
    ledger = Ledger(None, clock=clock)
    ledger.bought(ledger.begin("d", "s", None), order("A-1"))
    clock.now += KEEP_RETURNED - 1
    ledger.bought(ledger.begin("d", "s", None), order("A-2"))
    assert ledger.returned() == {"A-1", "A-2"}
    clock.now += 2
    assert ledger.returned() == {"A-2"}


def test_wall_clock_follows_a_given_clock() -> None:
    clock = Clock()
    ledger = Ledger(None, clock=clock)
    made = ledger.wall()
    clock.now += 90.5
    assert ledger.wall() - made == timedelta(seconds=90.5)
    assert made.tzinfo is timezone.utc


def test_wall_clock_is_the_systems_by_default() -> None:
    before = datetime.now(timezone.utc)
    assert Ledger(None).wall() >= before


def test_in_flight_and_settling() -> None:
    ledger = Ledger(None)
    mine = ledger.begin("example.com", "x.com", None)
    other_site = ledger.begin("example.com", "y.com", None)
    flying = ledger.in_flight("EXAMPLE.com", "x.com")
    assert flying == {mine}
    assert not ledger.settled(flying)
    assert ledger.wait_settled(flying, 0.01) is False
    finisher = threading.Timer(0.05, lambda: ledger.bought(mine, order("A-1")))
    finisher.start()
    assert ledger.wait_settled(flying, 10.0) is True
    assert ledger.settled(flying)
    ledger.failed(other_site, unknown=False)
    finisher.join()


FORK_WHILE_LOCKED = """
import os, signal, sys, threading, warnings
from decimal import Decimal
from kopechka._ledger import Ledger
warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: that is the point
ledger = Ledger(Decimal("10"))
spent = ledger.begin("d", "s", Decimal("3"))
held, release = threading.Event(), threading.Event()
def hold():
    with ledger._lock:
        held.set()
        release.wait(30)
threading.Thread(target=hold, daemon=True).start()
held.wait(30)
pid = os.fork()
if pid == 0:  # the child: the holder thread is gone, its lock must not be
    signal.alarm(20)  # a deadlocked child must not outlive the test
    token = ledger.begin("d", "s", Decimal("7"))
    os._exit(0 if ledger.in_flight("d", "s") == {token} else 1)
release.set()
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_forked_child_gets_fresh_locks_and_no_purchase_in_flight() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FORK_WHILE_LOCKED],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_price_cache_lives_for_its_ttl() -> None:
    ledger = Ledger(None)
    assert ledger.price("example.com", 0.0) == (False, None)
    ledger.store_prices([Domain(id="d", name="Example.com", price=Decimal("5.00"))], 0.0)
    assert ledger.price("example.COM", PRICE_TTL - 1) == (True, Decimal("5.00"))
    assert ledger.price("inbox.test", 1.0) == (True, None)
    assert ledger.price("example.com", PRICE_TTL) == (False, None)


# --- flows, driven by a scripted server ---------------------------------------------------------


@dataclass
class Server:
    """Answers the flows' requests from a list of orders; scripted failures per request kind."""

    orders: list[Order] = field(default_factory=list)
    mail: dict[str, int] = field(default_factory=dict)
    prices: dict[str, str] = field(default_factory=lambda: {"example.com": "5.00"})
    charge: str | None = None  # what POST /orders charges, if not the listed price
    fail: dict[str, BaseException] = field(default_factory=dict)  # request kind -> error
    lose_answer: bool = False  # POST /orders buys, then raises fail["PostOrder"]
    settles: bool = True
    log: list[str] = field(default_factory=list)

    def __call__(self, op: money.Op) -> Any:
        kind = type(op).__name__
        self.log.append(f"{kind} {getattr(op, 'order_id', '')}".strip())
        error = self.fail.get(kind)
        if isinstance(op, money.PostOrder) and (error is None or self.lose_answer):
            bought = self._buy(op)
            if error is None:
                return bought
        if error is not None:
            raise error
        return self._answer(op)

    def _buy(self, op: money.PostOrder) -> Order:
        price = self.charge or self.prices[op.domain]
        bought = order(f"API-{len(self.orders) + 1}", domain=op.domain, site=op.site, price=price)
        bought = bought.model_copy(update={"created_at": SENT + timedelta(seconds=1)})
        self.orders.append(bought)
        return bought

    def _answer(self, op: money.Op) -> Any:
        if isinstance(op, money.GetDomains):
            return [Domain(id=n, name=n, price=Decimal(p)) for n, p in self.prices.items()]
        if isinstance(op, money.ListOrders):
            return (self._page(op), None) if op.dated else self._page(op)
        if isinstance(op, money.GetMessages):
            return self._messages(op.order_id)
        if isinstance(op, money.CancelOrder):
            return self._cancel(op.order_id)
        if isinstance(op, money.GetOrder):
            return self.orders[self._find(op.order_id)]
        assert isinstance(op, money.Settle)
        return self.settles

    def _page(self, op: money.ListOrders) -> OrderPage:
        chosen = [
            o
            for o in self.orders
            if str(o.status) == op.status and (op.domain is None or o.domain == op.domain)
        ]
        window = chosen[(op.page - 1) * 2 : op.page * 2]  # two per page: paging is exercised
        pages = max(1, -(-len(chosen) // 2))
        return OrderPage.model_validate(
            {
                "orders": window,
                "pagination": {"page": op.page, "limit": 2, "total": len(chosen), "pages": pages},
            }
        )

    def _find(self, order_id: str) -> int:
        return next(i for i, o in enumerate(self.orders) if o.order_id == order_id)

    def _messages(self, order_id: str) -> MessageList:
        found = self.orders[self._find(order_id)]
        messages = [
            Message(id=f"m{n}", sender="a@b", received_at=T0)
            for n in range(self.mail.get(order_id, 0))
        ]
        summary = {
            "id": "x",
            "email": found.email,
            "domain": found.domain,
            "status": found.status,
            "created_at": T0,
        }
        return MessageList.model_validate({"messages": messages, "order": summary})

    def _cancel(self, order_id: str) -> Cancellation:
        i = self._find(order_id)
        self.orders[i] = self.orders[i].model_copy(update={"status": "cancelled"})
        refund = Decimal(0) if self.mail.get(order_id) else self.orders[i].price
        return Cancellation(message="ok", refund_amount=refund)


def buy(
    server: Server,
    ledger: Ledger | None = None,
    *,
    max_price: str | None = None,
    for_mailbox: bool = False,
    now: float = 0.0,
) -> Order:
    flow = money.purchase(
        ledger or Ledger(None), "example.com", "x.com",
        max_price=None if max_price is None else Decimal(max_price),
        wall=lambda: SENT, now=now, settle_timeout=1.0, for_mailbox=for_mailbox,
    )  # fmt: skip
    return _flow.run(flow, server)


def lost_answer(**kwargs: Any) -> Server:
    return Server(fail={"PostOrder": connection_error(True)}, lose_answer=True, **kwargs)


def test_purchase_returns_the_order_and_remembers_it() -> None:
    server, ledger = Server(), Ledger(None)
    bought = buy(server, ledger)
    assert server.log == ["PostOrder"]  # no guard: no price list
    assert ledger.returned() == {bought.order_id}


def test_refused_purchase_is_raised_as_is() -> None:
    server = Server(fail={"PostOrder": BadRequestError("Insufficient balance", status_code=400)})
    with pytest.raises(BadRequestError):
        buy(server)
    assert server.log == ["PostOrder"]


def test_lost_answer_names_the_candidate_and_create_order_leaves_it() -> None:
    server = lost_answer()
    with pytest.raises(OrderOutcomeUnknownError) as info:
        buy(server)
    error = info.value
    assert [o.order_id for o in error.candidates] == ["API-1"]
    assert (error.domain, error.site, error.sent_at) == ("example.com", "x.com", SENT)
    assert isinstance(error.__cause__, APIConnectionError)
    assert "CancelOrder API-1" not in server.log
    assert "do not simply retry" in str(error)


@pytest.mark.parametrize(
    "setup",
    [
        lambda s: None,
        lambda s: s.orders.append(order("API-0", created=SENT)),
        lambda s: s.mail.update({"API-1": 1}),
    ],
    ids=["one candidate", "two candidates", "candidate has mail"],
)
def test_a_lost_mailbox_purchase_cancels_no_candidate(setup: Callable[[Server], object]) -> None:
    """The farm rule: a lone candidate may be another process's live order (nothing the API
    echoes tells this client's own apart), so it is named for the sweep, never cancelled."""
    server = lost_answer()
    setup(server)
    with pytest.raises(OrderOutcomeUnknownError, match=r"none cancelled .*kopechka sweep"):
        buy(server, for_mailbox=True)
    assert not any(entry.startswith(("CancelOrder", "GetMessages")) for entry in server.log)
    assert not any(o.status == "cancelled" for o in server.orders)


def test_candidates_exclude_orders_this_client_returned() -> None:
    server, ledger = Server(), Ledger(None)
    first = buy(server, ledger)
    server.fail, server.lose_answer = {"PostOrder": connection_error(True)}, True
    with pytest.raises(OrderOutcomeUnknownError) as info:
        buy(server, ledger, for_mailbox=True)
    assert [o.order_id for o in info.value.candidates] == ["API-2"]
    assert first.order_id == "API-1"
    assert "CancelOrder API-1" not in server.log


def test_candidates_wait_for_another_threads_purchase_to_return() -> None:
    server, ledger = lost_answer(), Ledger(None)
    other = ledger.begin("example.com", "x.com", None)
    server.orders.append(order("API-0", created=SENT))  # bought by the other purchase, unanswered

    def other_returns(op: money.Op) -> Any:
        if isinstance(op, money.Settle):
            assert op.tokens == {other}
            ledger.bought(other, server.orders[0])
        return server(op)

    with pytest.raises(OrderOutcomeUnknownError) as info:
        _flow.run(
            money.purchase(
                ledger, "example.com", "x.com", max_price=None, wall=lambda: SENT, now=0.0,
                settle_timeout=1.0, for_mailbox=True,
            ),
            other_returns,
        )  # fmt: skip
    assert [o.order_id for o in info.value.candidates] == ["API-2"]
    assert not any(entry.startswith("CancelOrder") for entry in server.log)


def test_candidates_that_cannot_be_listed() -> None:
    server = lost_answer()
    server.fail["ListOrders"] = connection_error(True)
    with pytest.raises(OrderOutcomeUnknownError, match="could not be listed") as info:
        buy(server, for_mailbox=True)
    assert info.value.candidates == []


@pytest.mark.parametrize(
    "refusal",
    [RuntimeError("the client is closed: create another one"), KeyError("a bug of a session")],
    ids=["closed", "a bug"],
)
def test_a_refused_listing_is_still_an_unknown_outcome(refusal: Exception) -> None:
    server = lost_answer()
    server.fail["ListOrders"] = refusal
    with pytest.raises(OrderOutcomeUnknownError, match="run `kopechka sweep`") as info:
        buy(server)
    assert info.value.candidates == []
    assert type(refusal).__name__ in str(info.value)


def test_listing_reads_every_page_of_both_statuses() -> None:
    server = lost_answer()
    server.orders += [order(f"API-0{n}", created=SENT, status="pending") for n in range(3)]
    server.orders += [order(f"API-1{n}", created=SENT) for n in range(3)]
    with pytest.raises(OrderOutcomeUnknownError) as info:
        buy(server)
    assert len(info.value.candidates) == 7
    assert server.log.count("ListOrders") == 4  # 2 pages each (the bought one is the 7th)


def test_listing_misses_nothing_when_another_thread_cancels_meanwhile() -> None:
    server = lost_answer()
    server.orders += [order(f"API-0{n}", created=SENT) for n in range(1, 5)]

    def cancel_after_first_page(op: money.Op) -> Any:
        answer = server(op)
        if isinstance(op, money.ListOrders) and op.status == "active" and op.page == 1:
            server.orders[0] = server.orders[0].model_copy(update={"status": "cancelled"})
        return answer

    flow = money.purchase(
        Ledger(None), "example.com", "x.com", max_price=None, wall=lambda: SENT, now=0.0,
        settle_timeout=1.0, for_mailbox=False,
    )  # fmt: skip
    with pytest.raises(OrderOutcomeUnknownError) as info:
        _flow.run(flow, cancel_after_first_page)
    assert "API-03" in {o.order_id for o in info.value.candidates}  # moved up a page meanwhile


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), SystemExit(143)])
def test_interrupted_purchase_in_a_mailbox_goes_on_at_once(interrupt: BaseException) -> None:
    server = Server(fail={"PostOrder": interrupt}, lose_answer=True)
    with pytest.raises(type(interrupt)):
        buy(server, for_mailbox=True)
    assert server.log == ["PostOrder"]  # the sweep finds what it may have bought


def test_interrupted_create_order_goes_on_at_once() -> None:
    server = Server(fail={"PostOrder": KeyboardInterrupt()}, lose_answer=True)
    with pytest.raises(KeyboardInterrupt):
        buy(server)
    assert server.log == ["PostOrder"]


def test_max_price_refuses_before_buying() -> None:
    server = Server(prices={"example.com": "5.01"})
    with pytest.raises(SpendLimitError) as info:
        buy(server, max_price="5.00")
    assert (info.value.price, info.value.cap, info.value.order) == (
        Decimal("5.01"), Decimal("5.00"), None,
    )  # fmt: skip
    assert server.log == ["GetDomains"]


def test_max_price_at_the_listed_price_buys() -> None:
    server = Server()
    assert buy(server, max_price="5.00").price == Decimal("5.00")
    assert server.log == ["GetDomains", "PostOrder"]


def test_charged_above_max_price_is_cancelled_and_raised() -> None:
    server = Server(charge="9.00")
    with pytest.raises(SpendLimitError, match=r"charged 9\.00.*cancelled, 9\.00 refunded") as info:
        buy(server, max_price="5.00")
    assert info.value.order is not None
    assert info.value.order.order_id == "API-1"
    assert server.orders[0].status == "cancelled"


def test_charged_above_max_price_and_the_cancel_fails() -> None:
    server = Server(charge="9.00", fail={"CancelOrder": InternalServerError("x", status_code=500)})
    with pytest.raises(SpendLimitError, match="cancelling it failed") as info:
        buy(server, max_price="5.00")
    assert isinstance(info.value.__cause__, InternalServerError)


def test_an_unlisted_domain_is_left_to_the_server() -> None:
    server = Server(prices={"other.test": "1.00"}, charge="5.00")
    assert buy(server, max_price="6.00").order_id == "API-1"


def test_price_list_is_cached_then_refreshed() -> None:
    server, ledger = Server(), Ledger(None)
    buy(server, ledger, max_price="10", now=0.0)
    buy(server, ledger, max_price="10", now=PRICE_TTL - 1)
    buy(server, ledger, max_price="10", now=PRICE_TTL)
    assert server.log.count("GetDomains") == 2


def test_budget_refuses_before_buying() -> None:
    server, ledger = Server(), Ledger(Decimal("7"))
    buy(server, ledger)
    with pytest.raises(SpendLimitError, match="budget"):
        buy(server, ledger)
    assert server.log.count("PostOrder") == 1


def test_failing_price_list_buys_nothing() -> None:
    server = Server(fail={"GetDomains": connection_error(True)})
    with pytest.raises(APIConnectionError):
        buy(server, max_price="5")
    assert "PostOrder" not in server.log


# --- sweep ----------------------------------------------------------------------------------------


def sweep(server: Server, *, dry_run: bool = False, older_than: float = 300.0) -> money.SweepReport:
    flow = money.sweep(older_than=older_than, dry_run=dry_run, wall=lambda: T0)
    return _flow.run(flow, server)


def swept_server() -> Server:
    old = T0 - timedelta(minutes=6)
    return Server(
        orders=[
            order("OLD-UNUSED", created=old),
            order("OLD-PENDING", created=old, status="pending"),
            order("OLD-MAIL", created=old),
            order("YOUNG", created=T0 - timedelta(minutes=1)),
            order("GONE", created=old, status="cancelled"),
        ],
        mail={"OLD-MAIL": 1},
    )


def test_sweep_cancels_old_unused_orders_only() -> None:
    server = swept_server()
    report = sweep(server)
    assert sorted(o.order_id for o in report.cancelled) == ["OLD-PENDING", "OLD-UNUSED"]
    assert report.refunded == Decimal("10.00")
    assert sorted(o.order_id for o in report.kept) == ["OLD-MAIL", "YOUNG"]
    assert (report.failed, report.dry_run) == ([], False)
    assert "PostOrder" not in server.log
    assert "GetMessages YOUNG" not in server.log


def test_sweep_dry_run_cancels_nothing() -> None:
    server = swept_server()
    report = sweep(server, dry_run=True)
    assert sorted(o.order_id for o in report.cancelled) == ["OLD-PENDING", "OLD-UNUSED"]
    assert report.refunded == Decimal("10.00")
    assert report.dry_run
    assert not any(line.startswith("CancelOrder") for line in server.log)


def test_sweep_reports_failures_and_goes_on() -> None:
    server = swept_server()
    server.fail = {"CancelOrder": NotFoundError("Order not found", status_code=404)}
    report = sweep(server)
    assert report.cancelled == []
    assert report.refunded == 0
    assert sorted(o.order_id for o, _ in report.failed) == ["OLD-PENDING", "OLD-UNUSED"]
    assert all(isinstance(e, NotFoundError) for _, e in report.failed)


def test_sweep_reports_an_order_it_could_not_check() -> None:
    server = swept_server()
    server.fail = {"GetMessages": InternalServerError("x", status_code=502)}
    report = sweep(server)
    assert report.cancelled == []
    assert len(report.failed) == 3


@pytest.mark.parametrize("older_than", [-1.0, float("nan"), float("inf"), True])
def test_sweep_refuses_a_bad_age(older_than: float) -> None:
    server = swept_server()
    with pytest.raises(ValueError, match="older_than"):
        sweep(server, older_than=older_than)
    assert server.log == []


# --- the mailbox's exit ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Exit:
    name: str
    got_mail: bool = False
    status: str | None = None
    listed_status: str = "active"
    mail: int = 0
    fail: dict[str, KopechkaError] = field(default_factory=dict)
    fail_times: int | None = None  # the failures end after this many
    after_failure: str | None = None  # the status GET /orders/{id} shows after a failed cancel
    requests: tuple[str, ...] = ()
    outcome: str = "cancelled"  # cancelled | learned | nothing | failed


REFUSED = BadRequestError("Order cannot be cancelled", status_code=400)
FAILED = InternalServerError("x", status_code=500)
EXIT_CASES = [
    Exit("unused", requests=("GetMessages", "CancelOrder")),
    Exit("mail seen in the block", got_mail=True, outcome="nothing"),
    Exit("a wait saw it expire", status="expired", outcome="nothing"),
    Exit("mail seen at the exit", mail=1, requests=("GetMessages",), outcome="nothing"),
    Exit(
        "expired meanwhile", listed_status="expired", requests=("GetMessages",), outcome="nothing"
    ),
    Exit(
        "cannot check: cancels anyway",
        fail={"GetMessages": FAILED},
        requests=("GetMessages", "CancelOrder"),
    ),
    Exit(
        "cancel fails every time: tried three times, its status read after each",
        fail={"CancelOrder": FAILED},
        requests=("GetMessages", *("CancelOrder", "GetOrder") * money.CANCEL_TRIES),
        outcome="failed",
    ),
    Exit(
        "cancel fails once, then goes through",
        fail={"CancelOrder": FAILED},
        fail_times=1,
        requests=("GetMessages", "CancelOrder", "GetOrder", "CancelOrder"),
    ),
    Exit(
        "cancel went through, its answer lost: learned from the status",
        fail={"CancelOrder": FAILED},
        after_failure="cancelled",
        requests=("GetMessages", "CancelOrder", "GetOrder"),
        outcome="learned",
    ),
    Exit(
        "cancel refused: it expired in between",
        fail={"CancelOrder": REFUSED},
        after_failure="expired",
        requests=("GetMessages", "CancelOrder", "GetOrder"),
        outcome="nothing",
    ),
    Exit(
        "cancel refused while still active: not repeated",
        fail={"CancelOrder": REFUSED},
        requests=("GetMessages", "CancelOrder", "GetOrder"),
        outcome="failed",
    ),
]


@pytest.mark.parametrize("case", EXIT_CASES, ids=[c.name for c in EXIT_CASES])
def test_mailbox_exit(case: Exit) -> None:
    server = Server(orders=[order(status=case.listed_status)], mail={"API-1": case.mail})
    server.fail = dict(case.fail)
    failures = dict.fromkeys(case.fail, case.fail_times)

    def script(op: money.Op) -> Any:
        kind = type(op).__name__
        if failures.get(kind) == 0:
            server.fail.pop(kind, None)
        elif failures.get(kind) is not None:
            failures[kind] -= 1  # type: ignore[operator]
        if isinstance(op, money.GetOrder) and case.after_failure:
            server.log.append("GetOrder API-1")
            return server.orders[0].model_copy(update={"status": case.after_failure})
        return server(op)

    outcome = _flow.run(
        money.mailbox_exit("API-1", got_mail=case.got_mail, status=case.status), script
    )
    assert tuple(line.split()[0] for line in server.log) == case.requests
    kind = "cancelled" if outcome.cancellation else "failed" if outcome.error else "nothing"
    if outcome.learned:
        kind = "learned"
        assert outcome.cancellation is not None
        assert outcome.cancellation.refund_amount == Decimal("5.00")
    assert kind == case.outcome
    assert (outcome.check_error is not None) == ("GetMessages" in case.fail)


def test_drive_hands_failures_to_the_flow() -> None:
    def flow() -> money.Flow[str]:
        try:
            yield money.GetDomains()
        except RuntimeError as exc:
            return f"handled {exc}"
        return "not reached"

    def boom(op: money.Op) -> Any:
        raise RuntimeError("x")

    assert _flow.run(flow(), boom) == "handled x"
