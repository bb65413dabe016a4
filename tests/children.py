"""Child processes for the signal and crash tests: a Python program or the ``kopechka`` command,
talking to a sandbox served by the test process, with every wait bounded."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field

from kopechka.testing import Sandbox

LINE_TIMEOUT = 30.0  # generous: the machine is shared; a healthy child answers in well under 1 s


@dataclass
class Child:
    """A running child. Its lines are read straight from the pipes' descriptors into buffers of
    our own: a buffered ``readline`` may take two lines in one read, and a wait on the descriptor
    would then never see the second, already read (the child printed it while the test was not
    yet reading: a loaded machine makes that common)."""

    proc: subprocess.Popen[str]
    _unread: dict[str, bytes] = field(default_factory=dict)  # read past the lines taken

    def line(self, timeout: float = LINE_TIMEOUT) -> str:
        """The child's next stdout line (its own progress marker), or fail after ``timeout``."""
        assert self.proc.stdout is not None
        return self._next_line("stdout", self.proc.stdout.fileno(), timeout)

    def stderr_line(self, timeout: float = LINE_TIMEOUT) -> str:
        """The child's next stderr line, or fail after ``timeout``."""
        assert self.proc.stderr is not None
        return self._next_line("stderr", self.proc.stderr.fileno(), timeout)

    def _next_line(self, name: str, fd: int, timeout: float) -> str:
        """The next line on the child's ``name`` (``fd``), or what is left if it closed it."""
        unread = self._unread.get(name, b"")
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in unread:
                if not selector.select(max(0.0, deadline - time.monotonic())):
                    self._unread[name] = unread
                    raise self._stuck(f"no {name} line from the child within {timeout} s")
                chunk = os.read(fd, 65536)
                if not chunk:  # the child closed it
                    break
                unread += chunk
        line, _, self._unread[name] = unread.partition(b"\n")
        return line.decode().strip()

    def finish(self, timeout: float = LINE_TIMEOUT) -> tuple[int, str, str]:
        """Wait for the child to end: its exit code, the rest of stdout and of stderr."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise self._stuck(f"the child did not end within {timeout} s") from None
        return self.proc.returncode, self._rest("stdout", out), self._rest("stderr", err)

    def _rest(self, name: str, tail: str | None) -> str:
        """All the child wrote on ``name`` past the lines taken: what we read, then ``tail``."""
        return _text(self._unread.pop(name, b"")) + (tail or "")

    def _stuck(self, what: str) -> AssertionError:
        """End a child that stopped answering, reaped and its pipes closed (nothing left for a
        later test's collector), with where its threads stood: SIGABRT makes the fault handler
        print every thread's stack on stderr."""
        self.proc.send_signal(signal.SIGABRT)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        err = self._rest("stderr", err)
        return AssertionError(f"{what}; its stderr ends:\n{err[-4000:]}")


def environment(sandbox: Sandbox) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOPECHKA_")}
    env.update(KOPECHKA_API_KEY=sandbox.api_key, KOPECHKA_BASE_URL=sandbox.url)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONFAULTHANDLER"] = "1"  # a stuck child shows where it stood (Child._stuck)
    return env


def python(sandbox: Sandbox, code: str) -> Child:
    """Run ``code`` in a new interpreter whose environment points kopechka at the sandbox."""
    return _spawn([sys.executable, "-c", textwrap.dedent(code)], sandbox)


def command(sandbox: Sandbox, *argv: str) -> Child:
    """Run ``kopechka ARGV...`` against the sandbox."""
    return _spawn([sys.executable, "-m", "kopechka", *argv], sandbox)


def _spawn(argv: list[str], sandbox: Sandbox) -> Child:
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(sandbox),
    )
    return Child(proc)


def wait_until(check: object, timeout: float = LINE_TIMEOUT) -> None:
    """Poll ``check()`` until true (bounded), for state the sandbox reaches asynchronously."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s")
        time.sleep(0.01)


def _text(data: bytes) -> str:
    """Bytes from a pipe as ``communicate()`` gives text: decoded, universal newlines."""
    return data.decode().replace("\r\n", "\n").replace("\r", "\n")
