"""Fault injection: what a queued fault is, which request it hits, and the bodies it serves.

Owns the ``Fault`` record and its checks (every value a socket will act on is bounded: a delay is
finite and at most an hour, a ``Retry-After`` cannot carry a line break), the queue that matches
faults to requests (first queued first; a fault with a ``probability`` fires on a draw from the
sandbox's seeded random generator, so a seed replays the same faults), and the canned bodies. It
must not do I/O or touch the service's state.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ._state import SandboxError

__all__ = ["BODY_KINDS", "Fault", "FaultQueue", "fault_from_json"]

BODY_KINDS = frozenset({"json", "html", "empty", "malformed", "truncated"})
MAX_DELAY = 3600.0
MAX_RETRY_AFTER = 10**9
_HEADER_TEXT = re.compile(r"[\x20-\x7e]{1,200}")
_METHOD = re.compile(r"[A-Za-z]{1,20}")


@dataclass
class Fault:
    """What the next ``times`` matching requests get instead of (or besides) their answer.

    Attributes:
        status: Answer with this status instead of the real answer (``None``: the real one).
        times: How many requests it applies to; ``None`` for every matching request until reset.
        retry_after: A ``Retry-After`` header to add: seconds, or text such as an HTTP date.
        path: Only requests to this path below ``/api/v1`` (or below it, by segment).
        method: Only requests with this method.
        body: ``json``, ``html``, ``empty``, ``malformed`` or ``truncated``.
        delay: Seconds (real time) to wait before answering.
        drop: Close the connection without answering.
        execute: Carry the request out first (the money moves), then misbehave.
        probability: Fire on each matching request with this chance (seeded); ``None``: always.
        interim: Send this interim answer (``103`` Early Hints, ``102`` Processing) before the
            answer, as a server may (RFC 9110, section 15.2).
    """

    status: int | None = None
    times: int | None = 1
    retry_after: float | str | None = None
    path: str | None = None
    method: str | None = None
    body: str = "json"
    delay: float = 0.0
    drop: bool = False
    execute: bool = False
    probability: float | None = None
    interim: int | None = None

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault is aimed at ``method`` on ``path`` (below ``/api/v1``)."""
        return (self.method is None or self.method.upper() == method) and (
            self.path is None or path == self.path or path.startswith(self.path.rstrip("/") + "/")
        )

    def check(self) -> None:
        """Refuse values a server cannot act on.

        Raises:
            SandboxError: 400, naming the value.
        """
        for problem in _problems(self):
            raise SandboxError(400, f"bad fault: {problem}")

    def retry_after_text(self) -> str | None:
        """The ``Retry-After`` header value, or ``None``."""
        value = self.retry_after
        if value is None or isinstance(value, str):
            return value
        return str(int(value)) if float(value).is_integer() else repr(float(value))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _problems(fault: Fault) -> list[str]:
    problems = []
    if fault.status is not None and not (
        isinstance(fault.status, int) and not isinstance(fault.status, bool)
        and 100 <= fault.status <= 599
    ):  # fmt: skip
        problems.append("status must be an HTTP status from 100 to 599")
    if fault.times is not None and not (
        isinstance(fault.times, int) and not isinstance(fault.times, bool) and fault.times >= 1
    ):
        problems.append("times must be an integer >= 1, or None for every request")
    if not (
        _is_number(fault.delay) and math.isfinite(fault.delay) and 0 <= fault.delay <= MAX_DELAY
    ):
        problems.append(f"delay must be 0 to {MAX_DELAY:g} seconds")
    if fault.body not in BODY_KINDS:
        problems.append(f"body must be one of {', '.join(sorted(BODY_KINDS))}")
    problems.extend(_header_problems(fault))
    if fault.probability is not None and not (
        _is_number(fault.probability) and 0 < float(fault.probability) <= 1
    ):
        problems.append("probability must be above 0 and at most 1")
    if not isinstance(fault.drop, bool) or not isinstance(fault.execute, bool):
        problems.append("drop and execute must be true or false")
    if fault.interim is not None and not (
        isinstance(fault.interim, int) and not isinstance(fault.interim, bool)
        and 102 <= fault.interim <= 199
    ):  # fmt: skip
        problems.append("interim must be an interim status from 102 to 199")
    return problems


def _header_problems(fault: Fault) -> list[str]:
    problems = []
    after = fault.retry_after
    if isinstance(after, str):
        if not _HEADER_TEXT.fullmatch(after):
            problems.append("retry_after text must be 1 to 200 printable ASCII characters")
    elif after is not None and not (
        _is_number(after) and math.isfinite(after) and 0 <= after <= MAX_RETRY_AFTER
    ):
        problems.append(f"retry_after must be 0 to {MAX_RETRY_AFTER} seconds, or text")
    if fault.path is not None and not (isinstance(fault.path, str) and len(fault.path) <= 2048):
        problems.append("path must be a string of at most 2048 characters")
    if fault.method is not None and not (
        isinstance(fault.method, str) and _METHOD.fullmatch(fault.method)
    ):
        problems.append("method must be an HTTP method name")
    return problems


@dataclass
class FaultQueue:
    """The queued faults, matched first-queued first; random draws from ``rng``."""

    rng: random.Random = field(default_factory=random.Random)
    faults: list[Fault] = field(default_factory=list)

    def add(self, fault: Fault) -> None:
        """Queue a checked fault.

        Raises:
            SandboxError: 400, the fault has a value a server cannot act on.
        """
        fault.check()
        self.faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        """The fault this request gets, counting it down; ``None`` when none fires."""
        for fault in self.faults:
            if not fault.matches(method, path):
                continue
            if fault.probability is not None and self.rng.random() >= fault.probability:
                continue
            if fault.times is not None:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
            return fault
        return None

    def clear(self) -> None:
        """Forget every queued fault."""
        self.faults.clear()


_FIELDS = {"status", "times", "retry_after", "path", "method", "body", "delay", "drop",
           "execute", "probability", "interim"}  # fmt: skip


def fault_from_json(data: dict[str, Any]) -> Fault:
    """A fault from the admin route's JSON body (unknown fields refused).

    Raises:
        SandboxError: 400, an unknown field or a value of the wrong type.
    """
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise SandboxError(400, f"bad fault: unknown field(s) {', '.join(unknown)}")
    values = dict(data)
    for name in ("delay", "probability", "retry_after"):
        if isinstance(values.get(name), Decimal):
            values[name] = float(values[name])
    fault = Fault(**values)
    fault.check()
    return fault
