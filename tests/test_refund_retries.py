"""A mailbox's refund that fails once: the cancel is safe to repeat, so it is sent again; a cancel
whose answer is lost is learned from the order's status; what still fails is on ``cancel_error``
with one WARNING naming the order and ``kopechka sweep``. Through the sandbox's fault injection, on
both faces."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from kopechka import InternalServerError
from kopechka.testing import Sandbox

from .faces import Face


def deletes(sandbox: Sandbox) -> int:
    return sum(1 for r in sandbox.requests if r.method == "DELETE")


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("fault", [{"status": 503}, {"drop": True}], ids=["503", "dropped"])
def test_a_refund_that_fails_once_is_sent_again(
    face: Face, sandbox: Sandbox, fault: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    with face.sandbox_client(sandbox, max_retries=0) as client:
        with client.mailbox("example.com", "x.com") as box:
            sandbox.fail(method="DELETE", **fault)  # type: ignore[arg-type]
        assert box.cancellation is not None
        assert box.cancel_error is None
    assert deletes(sandbox) == 2
    assert sandbox.balance == Decimal("100")
    assert warnings(caplog) == []


def test_a_refund_whose_answer_is_lost_is_learned_from_the_status(
    face: Face, sandbox: Sandbox
) -> None:
    with face.sandbox_client(sandbox, max_retries=0, budget=10) as client:
        with client.mailbox("example.com", "x.com") as box:
            sandbox.fail(503, method="DELETE", execute=True)  # refunded, the answer lost
        assert box.cancellation is not None
        assert "learned from its status" in box.cancellation.message
        assert client._ledger.spent == 0  # the budget got it back
    assert deletes(sandbox) == 1
    assert sandbox.balance == Decimal("100")


def test_a_refund_that_keeps_failing_is_named_once_for_the_sweep(
    face: Face, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kopechka")
    with face.sandbox_client(sandbox, max_retries=0) as client:
        with client.mailbox("example.com", "x.com") as box:
            sandbox.fail(503, method="DELETE", times=None)
        assert box.cancellation is None
        assert isinstance(box.cancel_error, InternalServerError)
    assert deletes(sandbox) == 3  # bounded: CANCEL_TRIES
    (line,) = warnings(caplog)
    assert box.order_id in line
    assert "kopechka sweep" in line


def test_a_bot_with_random_503s_on_refunds_loses_nothing(sandbox: Sandbox) -> None:
    """Thirty sign-ups without mail, 5% of the refunds answered 503 (seeded)."""
    sandbox.app.fault_queue.rng.seed(21)
    sandbox.fail(503, method="DELETE", times=None, probability=0.05)
    with sandbox.client(max_retries=0) as client:
        for _ in range(30):
            with client.mailbox("example.com", "x.com"):
                pass
    assert sandbox.balance == Decimal("100")
