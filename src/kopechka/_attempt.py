"""What both transports do around one attempt, whatever library sends it.

This module owns a call's state across its attempts (``Call``), the wait for the limiter's slot as
a flow (``admission``, ``_flow``'s convention: it yields the limiter's calls and its sleeps, which
``consult`` and each transport carry out: the sync one in its thread, the async one awaited;
``unclaimed`` finishes, in the limiter's thread, the step of a task cancelled meanwhile),
settling an outcome (``settle``: the retry decision and the limiter's feedback, which each driver
delivers; then ``report`` to the response hooks), reading a body within the cap (gzip and deflate
decoded by hand with a bounded ``zlib``, so a bomb stops at ``max_body``), the typed error for a
classified network failure, and the one DEBUG line logged per attempt. The sync driver
(``_transport``, requests) and the async one (``_async_transport``, httpx) feed it plain values.
It imports no HTTP library, and neither sleeps nor sends.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
import zlib
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import _flow
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    RateLimitError,
)
from ._hooks import AttemptEvent, Hook, operation, path_template, run_hooks
from ._limits import START_POLL, START_SPAN, Limiter, Slot
from ._policy import Answer, Failure, Outcome, RetryPolicy, body_too_large
from ._wire import header, parse_retry_after

__all__ = [
    "CALL_IDS",
    "Admit",
    "BodyReader",
    "Call",
    "Feedback",
    "GiveBack",
    "Reserve",
    "Sleep",
    "admission",
    "checked_wait",
    "consult",
    "ended",
    "log_attempt",
    "network_error",
    "report",
    "settle",
    "unclaimed",
    "voided",
]

logger = logging.getLogger("kopechka")


class _TooLargeError(Exception):
    pass


def _too_large(max_body: int) -> APIResponseValidationError:
    return APIResponseValidationError(
        f"the answer is larger than {max_body} bytes: not read", status_code=0
    )


class BodyReader:
    """A body, fed raw (still encoded) chunk by chunk; never more than ``max_body`` bytes kept.

    Raises (from the constructor and ``feed``):
        APIResponseValidationError: The body, decoded, or its declared length is over
            ``max_body``; or it is encoded in a way the client did not ask for, or brokenly.
    """

    __slots__ = ("_chunks", "_decode", "_headers", "_max_body", "_size")

    def __init__(self, headers: Mapping[str, str], max_body: int) -> None:
        self._decode = _decoder(header(headers, "content-encoding"))
        if body_too_large(headers, 0, max_body):
            raise _too_large(max_body)
        self._headers, self._max_body = headers, max_body
        self._chunks: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        """Add a raw chunk of the body."""
        try:
            data = chunk if self._decode is None else self._decode(chunk, self._room())
        except _TooLargeError:
            raise _too_large(self._max_body) from None
        self._chunks.append(data)
        self._size += len(data)
        if body_too_large(self._headers, self._size, self._max_body):
            raise _too_large(self._max_body)

    def body(self) -> bytes:
        """The decoded body read so far."""
        return self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)

    def _room(self) -> int:
        return self._max_body + 1 - self._size


def _decoder(encoding: str | None) -> Callable[[bytes, int], bytes] | None:
    """``None`` for an identity body, else a function from a raw chunk and the room left to
    the decoded bytes (raising ``_TooLargeError`` past the room)."""
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return None
    if name not in {"gzip", "x-gzip", "deflate"}:
        raise APIResponseValidationError(
            f"the answer is encoded as {name[:40]!r}, which the client did not ask for",
            status_code=0,
        )
    gzip = name != "deflate"
    engine: list[Any] = []

    def decode(chunk: bytes, limit: int) -> bytes:
        if not engine:  # deflate is zlib-wrapped by the standard, raw by some servers
            raw_deflate = not gzip and bool(chunk) and (chunk[0] & 0x0F) != 8
            wbits = -zlib.MAX_WBITS if raw_deflate else zlib.MAX_WBITS
            engine.append(zlib.decompressobj(16 + zlib.MAX_WBITS if gzip else wbits))
        try:
            data = engine[0].decompress(chunk, max(limit, 1))
        except zlib.error as exc:
            raise APIResponseValidationError(
                f"the answer's {name} encoding is broken", status_code=0
            ) from exc
        if engine[0].unconsumed_tail:  # more would come out than the cap allows
            raise _TooLargeError
        return bytes(data)

    return decode


def network_error(failure: Failure, method: str, path: str) -> APIConnectionError:
    """The typed error for a network failure that retrying did not (or could not) overcome."""
    if failure.timed_out:
        phase = "connecting" if not failure.reached_server else "waiting for the answer"
        error: APIConnectionError = APITimeoutError(f"{method} {path} timed out {phase}")
    else:
        what = "failed on the network" if failure.reached_server else "could not connect"
        error = APIConnectionError(f"{method} {path} {what} ({failure.detail})")
    error.may_have_reached_server = failure.reached_server
    return error


def log_attempt(method: str, path: str, outcome: object, attempt: int, started: float) -> None:
    """The funnel's one DEBUG line per attempt, on logger ``kopechka``."""
    if logger.isEnabledFor(logging.DEBUG):
        elapsed = (time.perf_counter() - started) * 1000.0
        logger.debug(
            "%s %s -> %s (attempt %d, %.1f ms)",
            method,
            path,
            outcome,
            attempt,
            elapsed,
            extra={
                "method": method,
                "path": path,
                "status": outcome,
                "attempt": attempt,
                "elapsed_ms": elapsed,
            },
        )


# --- a call across its attempts: the limiter, the retry decision, the hooks -------------------

CALL_IDS = itertools.count(1)
MAX_ADMISSIONS = 16
"""Times a slot may be voided by new 429s before the attempt goes anyway (the policy bounds it)."""
MAX_LOOKS = MAX_ADMISSIONS + math.ceil(START_SPAN / START_POLL) + 1
"""Looks at a slot before it goes anyway: the window guard's, and the start window's every
``START_POLL`` seconds for as long as it lasts (it holds no request longer)."""


@dataclass(slots=True)
class Call:
    """One call's parts and the state of its attempts."""

    method: str
    path: str
    params: Mapping[str, str] | None
    json: Mapping[str, str] | None
    idempotent: bool
    deadline: float | None
    policy: RetryPolicy
    call_id: int
    waits: dict[int, float | None] = field(default_factory=dict)
    floor: float = -math.inf
    """The time this call has surely reached: the end of its last sleep, even a recorded one."""
    limiter_time: float = 0.0
    """Real seconds the last admission spent in the limiter's calls (round trips to a store, not
    its sleeps): they count against the attempt's wall-clock budget."""

    def now(self, clock: float) -> float:
        """The clock's reading, never before the end of this call's last sleep."""
        return max(clock, self.floor)

    def event(
        self,
        attempt: int,
        outcome: Outcome | None = None,
        wait: float | None = None,
        elapsed: float | None = None,
    ) -> AttemptEvent:
        """What the hooks are told of an attempt (never the key, a body, a code, an e-mail)."""
        template = path_template(self.path)
        return AttemptEvent(
            method=self.method, path=template, operation=operation(self.method, template),
            call_id=self.call_id, attempt=attempt,
            status=outcome.status_code if isinstance(outcome, Answer) else None,
            error=outcome.detail if isinstance(outcome, Failure) else None,
            will_retry=None if outcome is None else wait is not None, elapsed=elapsed,
        )  # fmt: skip


def checked_wait(wait: object) -> float:
    """A limiter's wait as seconds to sleep: negative is 0; what is not a number (NaN, a
    string) is endless, so that no limiter can make a call sleep past its bounds."""
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or math.isnan(wait):
        return math.inf
    return max(0.0, float(wait))


@dataclass(frozen=True, slots=True)
class Reserve:
    """``limiter.reserve(now, max_wait)``; answered with the ``Slot`` and the real seconds spent.
    ``turn`` counts the admission's reservations (at most ``MAX_ADMISSIONS``)."""

    now: float
    max_wait: float
    turn: int = 1


@dataclass(frozen=True, slots=True)
class Admit:
    """``limiter.admit(slot, now)``; answered with its wait (or ``None``) and the seconds spent.
    ``look`` counts the looks at this slot (at most ``MAX_LOOKS``), ``turn`` as ``Reserve``'s."""

    slot: Slot
    now: float
    look: int = 1
    turn: int = 1


@dataclass(frozen=True, slots=True)
class GiveBack:
    """``limiter.feedback(now, 0, None, slot)``: the slot is not used; answered with ``None``."""

    now: float
    slot: Slot


@dataclass(frozen=True, slots=True)
class Sleep:
    """Pause this many seconds."""

    seconds: float


LimiterCall = Reserve | Admit | GiveBack
AdmissionOp = LimiterCall | Sleep


def consult(limiter: Limiter, op: LimiterCall) -> Any:
    """Carry out one of the admission's limiter calls in this thread: a ``Reserve`` or an
    ``Admit`` is answered with ``(the limiter's answer, the real seconds it took)``, a
    ``GiveBack`` with ``None``."""
    asked = time.monotonic()
    if isinstance(op, Reserve):
        return limiter.reserve(op.now, op.max_wait), time.monotonic() - asked
    if isinstance(op, Admit):
        return limiter.admit(op.slot, op.now), time.monotonic() - asked
    limiter.feedback(op.now, 0, None, op.slot)
    return None


class _AsleepError(Exception):
    """The admission reached a sleep: where an abandoned one stops."""


def unclaimed(
    call: Call, clock: Callable[[], float], limiter: Limiter, op: Reserve | Admit, answer: Any
) -> Slot | None:
    """What a task gone while ``op`` ran in the limiter's thread leaves behind, once ``answer``
    came: the admission goes on from it in this thread (its limiter calls in place, a slot it
    refuses given back) up to its next sleep, where it stops; the slot it would have sent with
    is returned, for the caller to give back (``None``: it stopped asleep, or was refused)."""

    def until_asleep(step: AdmissionOp) -> Any:
        if isinstance(step, Sleep):
            raise _AsleepError
        return consult(limiter, step)

    try:
        ended = _flow.run(_answered(call, clock, op, answer), until_asleep)
    except Exception:  # asleep, refused, or a limiter call failed: nothing to give back
        return None
    return ended if isinstance(ended, Slot) else None


def admission(
    call: Call, clock: Callable[[], float]
) -> Generator[AdmissionOp, Any, Slot | Failure]:
    """Wait for a slot of the limiter, bounded by the deadline and ``max_retry_wait``: yields the
    limiter's calls and the sleeps, returns the slot (or the deadline's failure).

    Whatever the limiter answers (ours, a user's, a broken store), no sleep is longer than
    ``max_retry_wait`` (the start window's short holds aside) nor ends past the deadline: a
    wait beyond them is not waited, and the slot goes back to the limiter (status 0).

    Raises:
        RateLimitError: The wait is longer than ``max_retry_wait`` (nothing is sent).
    """
    call.limiter_time = 0.0
    ask = _reserve(call, clock, 1)
    return (yield from _answered(call, clock, ask, (yield ask)))


def _reserve(call: Call, clock: Callable[[], float], turn: int) -> Reserve:
    now = call.now(clock())
    left = math.inf if call.deadline is None else call.deadline - now
    return Reserve(now, min(call.policy.max_retry_wait, left), turn)


def _answered(
    call: Call, clock: Callable[[], float], op: Reserve | Admit, answer: Any
) -> Generator[AdmissionOp, Any, Slot | Failure]:
    """The admission from ``op``'s ``answer`` on (``admission``'s rules; a task gone meanwhile
    runs it up to its next sleep, see ``unclaimed``)."""
    bound = call.policy.max_retry_wait
    slot: Slot
    wait: float | None
    while True:
        call.limiter_time += answer[1]
        if isinstance(op, Reserve):
            slot, look, first = answer[0], 0, checked_wait(answer[0].wait)
            if not slot.granted or first > max(op.max_wait, START_POLL):
                if slot.granted:  # a wait it should not have granted: not taken
                    yield GiveBack(op.now, slot)
                return _refused(call, first, bound)
            wait = first
        else:
            slot, look = op.slot, op.look
            wait = None if answer[0] is None else checked_wait(answer[0])
        if wait is None:  # voided (a 429 came): reserve again
            if op.turn >= MAX_ADMISSIONS:
                return slot
            op = _reserve(call, clock, op.turn + 1)
            answer = yield op
            continue
        if wait <= 0 or look >= MAX_LOOKS:
            return slot
        asleep = call.now(clock())
        if wait > max(bound, START_POLL) or (
            call.deadline is not None and asleep + wait > call.deadline
        ):
            yield GiveBack(asleep, slot)
            return _refused(call, wait, bound)
        yield Sleep(wait)
        call.floor = asleep + wait
        op = Admit(slot, call.now(clock()), look + 1, op.turn)
        answer = yield op


def _refused(call: Call, wait: float, bound: float) -> Failure:
    """A wait that is not waited: the deadline's failure, or ``RateLimitError`` past the bound.

    Raises:
        RateLimitError: ``wait`` is longer than ``max_retry_wait``.
    """
    if wait <= bound:  # the deadline binds
        return Failure(timed_out=True, reached_server=False, detail="the deadline passed")
    raise _cooldown_error(call, wait, bound)


def voided(limiter: Limiter, slot: Slot) -> bool:
    """Whether a 429 came since ``slot`` was granted (a limiter that can tell: the in-process
    one). Asked at the last moment before sending: a request that took its slot before the 429
    but was held since (a busy loop, a queue for a connection) waits out the cooldown with the
    others instead of going in the middle of it."""
    valid = getattr(limiter, "valid", None)
    return valid is not None and not valid(slot)


Feedback = tuple[float, int, float | None, Slot]
"""What the limiter is told of a slot that went: ``(now, status, retry_after, slot)``, the
arguments of ``Limiter.feedback`` (status 0: no answer)."""


def settle(
    call: Call, outcome: Outcome, attempt: int, slot: Slot | None, clock: Callable[[], float]
) -> Feedback | None:
    """Decide on a retry (``call.waits``); return what the limiter is to be told of the slot,
    if one went (each driver delivers it: in place, or from an executor), before ``report``."""
    now = call.now(clock())
    wait = call.policy.wait(
        outcome, idempotent=call.idempotent, retries_done=attempt - 1, now=now,
        deadline=call.deadline,
    )  # fmt: skip
    call.waits[attempt] = wait
    call.floor = now + (wait or 0.0)  # the end of the retry's sleep, even a recorded one
    if slot is None:
        return None
    status, retry_after = 0, None
    if isinstance(outcome, Answer):
        status = outcome.status_code
        retry_after = parse_retry_after(outcome.headers) if status == 429 else None
    return (now, status, retry_after, slot)  # every slot that went gets one feedback


def report(
    call: Call,
    outcome: Outcome,
    attempt: int,
    started: float | None,
    hooks: Mapping[str, tuple[Hook, ...]],
) -> list[Awaitable[None]]:
    """Tell the response hooks how a settled attempt went, and whether it will be retried;
    return what async hooks gave to await (``run_hooks``)."""
    if hooks["response"]:
        elapsed = None if started is None else time.perf_counter() - started
        event = call.event(attempt, outcome, call.waits[attempt], elapsed)
        return run_hooks(hooks["response"], event)
    return []


def ended(
    call: Call, exc: BaseException, hooks: Mapping[str, tuple[Hook, ...]]
) -> list[Awaitable[None]]:
    """A call that ends without a final answer (the limiter refused, an interrupt, a
    cancellation) still tells the response hooks, so that a span opened for it always ends."""
    if hooks["response"]:
        failure = Failure(timed_out=False, reached_server=False, detail=type(exc).__name__)
        return run_hooks(hooks["response"], call.event(len(call.waits) + 1, failure))
    return []


def _cooldown_error(call: Call, wait: float, bound: float) -> RateLimitError:
    return RateLimitError(
        f"{call.method} {path_template(call.path)} not sent: the client's rate limit (a shared "
        f"cooldown after a 429) asks to wait {wait:.1f} s, more than max_retry_wait ({bound:g} s)",
        retry_after=wait if math.isfinite(wait) else None,
    )
