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
from dataclasses import dataclass

from kopechka.testing import Sandbox

LINE_TIMEOUT = 30.0  # generous: the machine is shared; a healthy child answers in well under 1 s


@dataclass
class Child:
    proc: subprocess.Popen[str]

    def line(self, timeout: float = LINE_TIMEOUT) -> str:
        """The child's next stdout line (its own progress marker), or fail after ``timeout``."""
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise self._stuck(f"no line from the child within {timeout} s")
        return self.proc.stdout.readline().strip()

    def stderr_line(self, timeout: float = LINE_TIMEOUT) -> str:
        """The child's next stderr line, or fail after ``timeout``."""
        assert self.proc.stderr is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stderr, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise self._stuck(f"no stderr line from the child within {timeout} s")
        return self.proc.stderr.readline().strip()

    def finish(self, timeout: float = LINE_TIMEOUT) -> tuple[int, str, str]:
        """Wait for the child to end: its exit code, the rest of stdout and of stderr."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise self._stuck(f"the child did not end within {timeout} s") from None
        return self.proc.returncode, out, err

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
        return AssertionError(f"{what}; its stderr ends:\n{(err or '')[-4000:]}")


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
