"""``client.sweep()`` through the sandbox: old unused orders cancelled, the rest kept, failures
reported, never a purchase; and the crash it exists for, a process killed inside a mailbox."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterable
from decimal import Decimal

import pytest

from kopechka import InternalServerError, KopechkaClient, Order, SweepReport
from kopechka.testing import Sandbox

from . import children


def ids(orders: Iterable[Order]) -> list[str]:
    return sorted(o.order_id for o in orders)


def test_dry_run_by_default_lists_and_cancels_nothing(
    sandbox: Sandbox, client: KopechkaClient
) -> None:
    unused = client.create_order("example.com", "x.com")
    report = client.sweep(older_than=0)
    assert isinstance(report, SweepReport)
    assert report.dry_run
    assert ids(report.cancelled) == [unused.order_id]
    assert report.refunded == Decimal("5.00")
    assert not any(r.method == "DELETE" for r in sandbox.requests)
    assert sandbox.balance == Decimal("95")


def test_commit_cancels_unused_orders_and_keeps_the_rest(
    sandbox: Sandbox, client: KopechkaClient
) -> None:
    unused = [client.create_order("example.com", "x.com") for _ in range(2)]
    used = client.create_order("inbox.test", "x.com")
    sandbox.deliver(used.order_id, content="code 123456")
    closed = client.create_order("example.com", "x.com")
    client.cancel_order(closed.order_id)
    report = client.sweep(older_than=0, dry_run=False)
    assert ids(report.cancelled) == ids(unused)
    assert ids(report.kept) == [used.order_id]
    assert report.refunded == Decimal("10.00")
    assert (report.failed, report.dry_run) == ([], False)
    assert sandbox.balance == Decimal("100") - Decimal("1.25")
    assert not any(r.method == "POST" for r in sandbox.requests[4:])  # never buys


def test_young_orders_are_kept(sandbox: Sandbox, client: KopechkaClient) -> None:
    young = client.create_order("example.com", "x.com")
    report = client.sweep(dry_run=False)  # older_than=300 by default
    assert (report.cancelled, ids(report.kept)) == ([], [young.order_id])
    assert client.get_order(young.order_id).status == "active"


def test_age_is_read_on_the_sandboxs_clock() -> None:
    with Sandbox(virtual_time=True) as sandbox, sandbox.client() as client:
        order = client.create_order("example.com", "x.com")
        sandbox.advance(minutes=4)
        assert ids(client.sweep(dry_run=False).kept) == [order.order_id]  # 240 s old
        sandbox.advance(minutes=1)
        report = client.sweep(dry_run=False)  # 300 s old
        assert ids(report.cancelled) == [order.order_id]
        assert sandbox.balance == Decimal("100")


def test_a_failed_cancel_is_reported_not_raised(sandbox: Sandbox, client: KopechkaClient) -> None:
    stuck, other = (client.create_order("example.com", "x.com") for _ in range(2))
    sandbox.fail(500, method="DELETE", path=f"/orders/{stuck.order_id}", times=10)
    report = client.sweep(older_than=0, dry_run=False)
    assert ids(report.cancelled) == [other.order_id]
    ((order, error),) = report.failed
    assert order.order_id == stuck.order_id
    assert isinstance(error, InternalServerError)


def test_an_unlistable_account_raises_before_cancelling(
    sandbox: Sandbox, client: KopechkaClient
) -> None:
    client.create_order("example.com", "x.com")
    sandbox.fail(500, method="GET", path="/orders", times=100)
    with pytest.raises(InternalServerError):
        client.sweep(older_than=0, dry_run=False)
    assert not any(r.method == "DELETE" for r in sandbox.requests)


def test_expired_orders_are_not_touched(sandbox: Sandbox, client: KopechkaClient) -> None:
    client.create_order("example.com", "x.com")
    sandbox.advance(minutes=11)
    report = client.sweep(older_than=0, dry_run=False)
    assert (report.cancelled, report.kept, report.failed) == ([], [], [])


def test_every_page_is_swept() -> None:
    with Sandbox(balance=Decimal("1000")) as sandbox, sandbox.client() as client:
        bought = [client.create_order("inbox.test", "x.com") for _ in range(130)]
        report = client.sweep(older_than=0, dry_run=False)
        assert ids(report.cancelled) == ids(bought)
        assert sandbox.balance == Decimal("1000")


@pytest.mark.parametrize("older_than", [-1, float("nan"), float("inf"), True])
def test_bad_ages_are_refused_before_any_request(
    sandbox: Sandbox, client: KopechkaClient, older_than: float
) -> None:
    with pytest.raises(ValueError, match="older_than"):
        client.sweep(older_than=older_than)
    assert sandbox.requests == []


CRASHING_BOT = """
    import time
    from kopechka import KopechkaClient
    with KopechkaClient() as client:
        used = client.mailbox("inbox.test", "x.com").__enter__()
        print("used", used.order_id, flush=True)
        boxes = [client.mailbox("example.com", "x.com").__enter__() for _ in range(3)]
        print("ready", flush=True)
        time.sleep(60)   # SIGKILL arrives here: no exit handler runs
"""


def test_sigkill_inside_mailboxes_then_sweep_refunds_every_unused_order(
    sandbox: Sandbox, client: KopechkaClient
) -> None:
    bot = children.python(sandbox, CRASHING_BOT)
    used = bot.line().split()[1]
    sandbox.deliver(used, content="Your code is 424242")
    assert bot.line() == "ready"
    bot.proc.send_signal(signal.SIGKILL)
    code, _, _ = bot.finish()
    assert code == -signal.SIGKILL
    assert sandbox.balance == Decimal("100") - Decimal("1.25") - 3 * Decimal("5.00")
    sweep = children.command(sandbox, "sweep", "--older-than", "0", "--commit", "--json")
    code, out, err = sweep.finish()
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert len(report["cancelled"]) == 3
    assert [o["order_id"] for o in report["kept"]] == [used]
    assert report["refunded"] == "15.00"
    assert sandbox.balance == Decimal("100") - Decimal("1.25")  # only the used order is paid
