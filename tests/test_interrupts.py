"""Ctrl-C inside ``with client.mailbox()`` against a server that stopped answering: the refund on
the way out is bounded (a few seconds in all, each request tried once, no backoff), and a second
Ctrl-C abandons it at once with one line naming the order to sweep. Real child processes."""

from __future__ import annotations

import signal
import time

from kopechka.testing import Sandbox

from . import children

STUCK = """
    import logging, kopechka
    logging.basicConfig(format="%(levelname)s %(message)s")
    with kopechka.KopechkaClient() as client, client.mailbox("example.com", "x.com") as box:
        print(box.order_id, flush=True)
        box.wait_for_code(timeout=600, poll_interval=0.2)
"""
EXIT_BOUND = 3.0  # mail.INTERRUPTED_EXIT


def looks(sandbox: Sandbox, since: float) -> bool:
    """Whether a look for mail reached the sandbox after ``since`` (recorded before its delay)."""
    return any(r.path.endswith("/messages") and r.at > since for r in sandbox.requests)


def stuck_child(sandbox: Sandbox) -> tuple[children.Child, str]:
    child = children.python(sandbox, STUCK)
    order_id = child.line()
    children.wait_until(lambda: looks(sandbox, since=0.0))
    hanging = time.monotonic()
    sandbox.fail(delay=30.0, times=None)  # every request from now on hangs
    children.wait_until(lambda: looks(sandbox, since=hanging))  # the child's next look is stuck
    return child, order_id


def test_ctrl_c_in_a_mailbox_against_a_stuck_server_ends_within_its_bound(
    sandbox: Sandbox,
) -> None:
    child, order_id = stuck_child(sandbox)
    pressed = time.monotonic()
    child.proc.send_signal(signal.SIGINT)
    code, _, err = child.finish()
    took = time.monotonic() - pressed
    assert code != 0
    assert "KeyboardInterrupt" in err
    assert took < EXIT_BOUND + 4.0, took  # not 4 attempts + backoff + a DELETE (minutes)
    warned = [line for line in err.splitlines() if "kopechka sweep" in line]
    assert len(warned) == 1
    assert order_id in warned[0]


def test_a_second_ctrl_c_abandons_the_refund_at_once(sandbox: Sandbox) -> None:
    child, order_id = stuck_child(sandbox)
    first = time.monotonic()
    child.proc.send_signal(signal.SIGINT)
    # inside the bounded exit: its first request is held by the sandbox
    children.wait_until(lambda: any(r.at > first for r in sandbox.requests))
    pressed = time.monotonic()
    child.proc.send_signal(signal.SIGINT)
    code, _, err = child.finish()
    assert time.monotonic() - pressed < EXIT_BOUND  # not the rest of the bounded exit
    assert code != 0
    lines = [line for line in err.splitlines() if "abandoned" in line and order_id in line]
    assert lines, err
    assert all("kopechka sweep" in line for line in lines)
    assert "could not cancel" not in err  # the exit was cut short, not run to its end
