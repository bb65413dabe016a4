"""Mailbox: buy, wait, and refund what went unused — also when the block raised."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from kopechka import KopechkaClient, Mailbox
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
    assert any("could not cancel unused order" in r.getMessage() for r in caplog.records)


def test_unknown_mail_state_still_cancels(sandbox: Sandbox, client: KopechkaClient, caplog) -> None:
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
