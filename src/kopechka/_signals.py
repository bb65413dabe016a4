"""SIGTERM and SIGHUP as an orderly exit: ``exit_on_signals()``, for the CLI and for bots.

systemd, ``docker stop``, Kubernetes, ``timeout(1)`` and a closed SSH session end a process with
SIGTERM or SIGHUP, whose default action kills it on the spot: no ``finally`` runs, no mailbox
refunds. Under ``exit_on_signals()`` the first such signal sets a ``stop`` event (waits in worker
threads given ``stop=`` end promptly) and unwinds the main thread as Ctrl-C would: a ``SystemExit``
with code 128 + the signal number in plain code, the cancellation of the task that entered it in a
running event loop. Further signals are ignored so the refunds can finish (SIGKILL still ends the
process at once: then ``sweep``).

This module owns signal handlers only; it must not import the client, and imports asyncio only if
the program already did.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from contextlib import AbstractContextManager
from types import FrameType, TracebackType
from typing import Any

__all__ = ["Terminated", "exit_on_signals"]

logger = logging.getLogger("kopechka")

DEFAULT_SIGNALS: tuple[int, ...] = tuple(
    int(s) for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s
)


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15, and so on (the number itself for an unknown one)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Terminated(SystemExit):
    """The main thread's exit on a signal under ``exit_on_signals()``: code 128 + the number."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.signum,))

    def __str__(self) -> str:
        return f"stopped by {signal_name(self.signum)}"


def _running_loop() -> Any:
    asyncio = sys.modules.get("asyncio")  # no loop can run if the program never imported it
    if asyncio is None:
        return None
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _ExitOnSignals:
    """The context manager behind ``exit_on_signals()``."""

    def __init__(self, signals: tuple[int, ...], stop: threading.Event | None) -> None:
        self.signals = signals
        self.stop = stop if stop is not None else threading.Event()
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        self._loop: Any = None
        self._task: Any = None

    def __enter__(self) -> threading.Event:
        if threading.current_thread() is not threading.main_thread():
            raise ValueError("exit_on_signals() must be entered in the main thread")
        self._loop = _running_loop()
        if self._loop is not None:
            self._task = sys.modules["asyncio"].current_task()
        for signum in self.signals:
            self._previous[signum] = signal.getsignal(signum)
            if self._loop is not None:
                self._loop.add_signal_handler(signum, self._on_signal_in_loop, signum)
            else:
                signal.signal(signum, self._on_signal)
        return self.stop

    def _first(self, signum: int) -> bool:
        if self.received is not None:
            logger.warning("%s ignored: already stopping", signal_name(signum))
            return False
        self.received = signum
        self.stop.set()
        return True

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._first(signum):
            raise Terminated(signum)

    def _on_signal_in_loop(self, signum: int) -> None:
        if self._first(signum) and self._task is not None:
            self._task.cancel()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.received is None:  # after a signal the handlers stay: refunds may still run
            self._restore()
        elif self._loop is not None and exc_type is sys.modules["asyncio"].CancelledError:
            uncancel = getattr(self._task, "uncancel", None)  # Python 3.11+
            if uncancel is not None:
                uncancel()
            raise Terminated(self.received) from None

    def _restore(self) -> None:
        for signum, previous in self._previous.items():
            if self._loop is not None:
                self._loop.remove_signal_handler(signum)
            if previous is not None:  # None: set from C, cannot be put back from Python
                signal.signal(signum, previous)


def exit_on_signals(
    *signals: int, stop: threading.Event | None = None
) -> AbstractContextManager[threading.Event]:
    """Turn SIGTERM and SIGHUP into an orderly exit, as Ctrl-C is: mailboxes refund, blocks unwind.

    One line in a bot:

    ```python
    with kopechka.exit_on_signals() as stop:
        run_bot(stop)  # pass stop= to waits running in worker threads
    ```

    On the first signal the ``stop`` event is set (a wait given ``stop=`` ends within 100 ms plus
    one request), and the main thread unwinds: in plain code with a ``SystemExit`` whose code is 128
    plus the signal number (143 for SIGTERM); entered inside a coroutine, by cancelling its task,
    which then leaves the block with that ``SystemExit``. Later signals are ignored, so the refunds
    finish (the handlers then stay in place); without a signal, the previous handlers come back on
    leaving the block.

    Args:
        *signals: The signals to handle; SIGTERM and SIGHUP by default.
        stop: An event of yours to set; a new one by default.

    Returns:
        A context manager; entering it installs the handlers and gives the ``stop`` event.

    Raises:
        ValueError: Entered outside the main thread (only it may handle signals).
    """
    return _ExitOnSignals(tuple(signals) or DEFAULT_SIGNALS, stop)
