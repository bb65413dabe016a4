"""A wall-clock bound on blocking socket I/O: one daemon thread that cuts attempts past their time.

A socket timeout bounds each ``recv``, not an answer: a server that drips one byte every half
second keeps a blocking call alive forever. The sync transport opens a ``Bound`` around each
attempt; the connections the attempt uses register with it (see ``_transport``'s connection
classes), and when its time is up this module's thread shuts their sockets down, so that the
blocked call returns at once with an error the transport reads as a timeout.

This module owns the thread and the bounds only. It must not import requests or know about HTTP.
The async client needs none of it (a task is cancelled by its event loop instead).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from types import TracebackType
from typing import Any, Protocol

__all__ = ["Bound", "current_bound"]


class _HasSocket(Protocol):
    sock: Any


_local = threading.local()


def current_bound() -> Bound | None:
    """The bound of the attempt running in this thread, if any."""
    return getattr(_local, "bound", None)


class Bound:
    """The time limit of one attempt, as a context manager in the thread that makes it."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.fired = False
        self._conns: list[_HasSocket] = []
        self._lock = threading.Lock()
        self._done = False

    def attach(self, conn: _HasSocket) -> None:
        """Cut ``conn``'s socket when the time is up (at once if it already is)."""
        with self._lock:
            if self.fired:
                _cut(conn)
            elif not self._done:
                self._conns.append(conn)

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            for conn in self._conns:
                _cut(conn)

    def __enter__(self) -> Bound:
        _local.bound = self
        _watchdog().watch(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _local.bound = None
        with self._lock:
            self._done = True
            self._conns.clear()


def _cut(conn: _HasSocket) -> None:
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    with contextlib.suppress(OSError):  # already closed: nothing to cut
        sock.shutdown(socket.SHUT_RDWR)


_BATCH = 0.05
"""The longest a bound may fire late; the watchdog wakes at most 1/_BATCH times a second."""


class _Watchdog:
    """The thread: sleeps until the earliest deadline, fires the bounds that are past it."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._heap: list[tuple[float, int, Bound]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        threading.Thread(target=self._run, name="kopechka-watchdog", daemon=True).start()

    def watch(self, bound: Bound) -> None:
        with self._wake:
            first = not self._heap or bound.deadline < self._heap[0][0]
            heapq.heappush(self._heap, (bound.deadline, next(self._order), bound))
            if first:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._wake.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                now, due = time.monotonic(), []
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
            for bound in due:  # most finished long ago: firing them does nothing
                bound._fire()
            # every attempt leaves a deadline behind: waking once per attempt would cost a busy
            # client a thread switch per request; waking at most every _BATCH seconds costs a
            # bound that much lateness at worst
            time.sleep(_BATCH)


_instance: _Watchdog | None = None
_instance_lock = threading.Lock()


def _watchdog() -> _Watchdog:
    global _instance  # noqa: PLW0603 - one thread per process, made on first use
    instance = _instance
    if instance is None or instance.pid != os.getpid():  # none yet, or a fork's child
        with _instance_lock:
            if _instance is None or _instance.pid != os.getpid():
                _instance = _Watchdog()
            instance = _instance
    return instance


def _reset_after_fork() -> None:
    global _instance_lock  # noqa: PLW0603 - a lock held by another thread at fork time stays held
    _instance_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)
