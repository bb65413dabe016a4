"""The child-process harness itself (``tests/children.py``): each line a child printed is read
once and in order, however the lines arrive, so a test waiting for a child's sign never waits for
a line it already took from the pipe."""

from __future__ import annotations

import signal

import pytest

from kopechka.testing import Sandbox

from . import children

TWO_AT_ONCE = """
    import sys, time
    sys.stdout.write("used 1\\nready\\n")   # one write: the lines reach the pipe together
    sys.stdout.flush()
    sys.stderr.write("first\\nsecond\\n")
    sys.stderr.flush()
    time.sleep(60)   # ended by the test
"""


def test_lines_that_arrive_together_are_each_read(sandbox: Sandbox) -> None:
    child = children.python(sandbox, TWO_AT_ONCE)
    try:
        assert child.line() == "used 1"
        assert child.line(timeout=5) == "ready"  # already read from the pipe with the first
        assert child.stderr_line() == "first"
        assert child.stderr_line(timeout=5) == "second"
    finally:
        child.proc.send_signal(signal.SIGKILL)
        child.finish()


def test_what_follows_the_lines_taken_is_in_the_rest(sandbox: Sandbox) -> None:
    child = children.python(sandbox, 'print("one\\ntwo\\nthree", end="", flush=True)')
    assert child.line() == "one"
    code, out, err = child.finish()
    assert (code, out, err) == (0, "two\nthree", "")


def test_a_child_that_prints_no_line_is_ended_with_its_stacks(sandbox: Sandbox) -> None:
    child = children.python(sandbox, "import time; time.sleep(60)")
    with pytest.raises(AssertionError, match="from the child within 3 s") as info:
        child.line(timeout=3)
    assert 'File "<string>", line 1' in str(info.value)  # the fault handler's dump: where it stood
    assert child.proc.returncode == -signal.SIGABRT
