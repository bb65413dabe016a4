"""Mailbox: buy, wait, and refund what went unused — also when the block raised."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from kopechka import (
    Cancellation,
    InternalServerError,
    KopechkaClient,
    Mailbox,
    MessageList,
    OrderClosedError,
)
from kopechka.testing import Sandbox


def test_unused_order_is_cancelled_and_refunded(sandbox: Sandbox, client: KopechkaClient) -> None:
    with client.mailbox("example.com", "instagram.com") as box:
        assert isinstance(box, Mailbox)
        assert box.email == box.order.email
        assert box.email.endswith("@example.com")
        assert client.get_balance() == Decimal("95")
    assert box.cancellation is not None
    assert box.cancellation.refund_amount == Decimal("5.00")
    assert client.get_balance() == Decimal("100")
    assert client.get_order(box.order_id).status == "cancelled"


def test_order_with_mail_is_kept(sandbox: Sandbox, client: KopechkaClient) -> None:
    with client.mailbox("example.com", "instagram.com") as box:
        sandbox.deliver(box.order_id, content="Your code is 246810")
        assert box.wait_for_code(timeout=5, poll_interval=0.05) == "246810"
    assert box.cancellation is None
    assert client.get_order(box.order_id).status == "active"
    assert client.get_balance() == Decimal("95")


def test_mail_seen_only_at_exit_keeps_the_order(sandbox: Sandbox, client: KopechkaClient) -> None:
    with client.mailbox("example.com", "x.com") as box:
        sandbox.deliver(box.order_id, content="hello")
    assert box.cancellation is None
    assert not any(r.method == "DELETE" for r in sandbox.requests)


def test_exception_in_block_still_refunds_and_propagates(client: KopechkaClient) -> None:
    with (
        pytest.raises(KeyError, match="signup failed"),
        client.mailbox("example.com", "x.com") as box,
    ):
        raise KeyError("signup failed")
    assert box.cancellation is not None
    assert client.get_balance() == Decimal("100")


def test_failed_cancel_is_logged_and_never_hides_the_error(
    sandbox: Sandbox, client: KopechkaClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kopechka")
    with pytest.raises(RuntimeError, match="boom"), client.mailbox("example.com", "x.com") as box:
        sandbox.fail(500, method="DELETE", times=5)
        raise RuntimeError("boom")
    assert box.cancellation is None
    assert isinstance(box.cancel_error, InternalServerError)  # visible in code, not only in the log
    assert any("could not cancel unused order" in r.getMessage() for r in caplog.records)


def test_unknown_mail_state_still_cancels(
    sandbox: Sandbox, client: KopechkaClient, caplog: pytest.LogCaptureFixture
) -> None:
    with client.mailbox("example.com", "x.com") as box:
        sandbox.fail(500, path=f"/orders/{box.order_id}/messages", times=10)
    assert box.cancellation is not None
    assert any("could not check" in r.getMessage() for r in caplog.records)


def test_explicit_cancel_happens_once(sandbox: Sandbox, client: KopechkaClient) -> None:
    with client.mailbox("example.com", "x.com") as box:
        first = box.cancel()
        assert box.cancel() is first
    assert sum(1 for r in sandbox.requests if r.method == "DELETE") == 1


def test_messages_and_wait_for_message(sandbox: Sandbox, client: KopechkaClient) -> None:
    with client.mailbox("inbox.test", "x.com") as box:
        assert box.messages() == []
        sandbox.deliver(box.order_id, subject="Hi", content="hello")
        assert box.wait_for_message(timeout=5, poll_interval=0.05).subject == "Hi"
        assert [m.subject for m in box.messages()] == ["Hi"]
    assert "Mailbox(order_id=" in repr(box)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_failed_refund_after_a_clean_block_is_kept_on_the_box(
    sandbox: Sandbox, client: KopechkaClient
) -> None:
    with client.mailbox("example.com", "x.com") as box:
        sandbox.fail(500, method="DELETE", times=5)
    assert box.cancellation is None
    assert isinstance(box.cancel_error, InternalServerError)
    assert sandbox.balance == Decimal("95")


def test_expired_order_is_neither_cancelled_nor_warned_about(
    sandbox: Sandbox, client: KopechkaClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kopechka")
    with client.mailbox("example.com", "x.com") as box:
        sandbox.advance(minutes=11)
    assert not any(r.method == "DELETE" for r in sandbox.requests)
    assert (box.cancellation, box.cancel_error) == (None, None)
    assert warnings(caplog) == []


def test_a_wait_that_saw_the_order_expire_leaves_it_alone(
    sandbox: Sandbox, client: KopechkaClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kopechka")
    with pytest.raises(OrderClosedError), client.mailbox("example.com", "x.com") as box:
        sandbox.advance(minutes=11)
        try:
            box.wait_for_code(timeout=5, poll_interval=0.05)
        finally:
            count = len(sandbox.requests)
    assert len(sandbox.requests) == count  # the exit sent nothing: nothing to refund
    assert warnings(caplog) == []


def test_order_cancelled_elsewhere_is_left_alone(
    sandbox: Sandbox, client: KopechkaClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kopechka")
    with client.mailbox("example.com", "x.com") as box:
        client.cancel_order(box.order_id)  # e.g. by a sweep, or another worker
    assert sum(1 for r in sandbox.requests if r.method == "DELETE") == 1
    assert warnings(caplog) == []


@pytest.mark.parametrize("ending", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_interrupts_refund_and_propagate(
    sandbox: Sandbox, client: KopechkaClient, ending: type[BaseException]
) -> None:
    with pytest.raises(ending), client.mailbox("example.com", "x.com") as box:
        raise ending()
    assert box.cancellation is not None
    assert sandbox.balance == Decimal("100")


def test_hostile_answers_during_the_exit_never_replace_the_blocks_error(
    sandbox: Sandbox, client: KopechkaClient
) -> None:
    with (
        pytest.raises(RuntimeError, match="signup failed"),
        client.mailbox("example.com", "x.com") as box,
    ):
        sandbox.fail(200, body="html", path=f"/orders/{box.order_id}/messages", times=5)
        sandbox.fail(200, body="malformed", method="DELETE", execute=True)
        raise RuntimeError("signup failed")
    # the refund went through, only its answer was bad: the order's status says so
    assert box.cancellation is not None
    assert "learned from its status" in box.cancellation.message
    assert box.cancel_error is None
    assert sandbox.balance == Decimal("100")


class InterruptedCancel:
    """A client whose cancel is interrupted (a second Ctrl-C during the refund)."""

    def __init__(self, client: KopechkaClient, interrupt: BaseException) -> None:
        self.client, self.interrupt = client, interrupt
        self._book, self._clock = client._book, client._clock

    def _exit_call(self, op: object, deadline: float | None) -> object:
        if type(op).__name__ == "CancelOrder":
            raise self.interrupt
        return self.client._exit_call(op, deadline)  # type: ignore[arg-type]

    def get_messages(self, order_id: str) -> MessageList:
        return self.client.get_messages(order_id)

    def cancel_order(self, order_id: str) -> Cancellation:
        raise self.interrupt

    def wait_for_message(self, order_id: str, **kwargs: object) -> object:
        raise NotImplementedError

    wait_for_code = wait_for_message


def test_an_interrupt_during_the_exit_keeps_the_blocks_own_exception(
    client: KopechkaClient,
) -> None:
    order = client.create_order("example.com", "x.com")
    box = Mailbox(InterruptedCancel(client, KeyboardInterrupt()), order)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="the block's"), box:
        raise ValueError("the block's")
    assert isinstance(box.cancel_error, KeyboardInterrupt)


def test_an_interrupt_during_a_clean_exit_propagates(client: KopechkaClient) -> None:
    order = client.create_order("example.com", "x.com")
    box = Mailbox(InterruptedCancel(client, KeyboardInterrupt()), order)  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt), box:
        pass
