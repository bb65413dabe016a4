"""Observability: the event a request or response hook receives, and calling hooks safely.

This module owns ``AttemptEvent`` (what the hooks see of one attempt), the path template and the
operation name an attempt is reported under, ``KOPECHKA_LOG`` (turned into a stderr handler on the
logger ``kopechka``, attached once per process), and ``run_hooks``, which calls hooks so that a
raising hook never breaks a call. It must not put into an event anything secret or personal: never
the key, a body, a code, an e-mail or an order id (paths are templates: ``/orders/{orderId}``).
It does no I/O but the log handler's, and imports no HTTP library.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "ENV_LOG",
    "AttemptEvent",
    "Hook",
    "await_hooks",
    "check_hooks",
    "configure_logging",
    "operation",
    "path_template",
    "run_hooks",
]

logger = logging.getLogger("kopechka")

ENV_LOG = "KOPECHKA_LOG"
"""The environment variable that turns logging on: ``debug``, ``info`` or ``warning``."""
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_HOOK_STAGES = frozenset({"request", "response"})


@dataclass(frozen=True, slots=True)
class AttemptEvent:
    """One attempt of one API call, as request and response hooks see it.

    A request hook gets it before the attempt is sent (``status``, ``error``, ``will_retry`` and
    ``elapsed`` are ``None``); a response hook after its answer or network failure, and once more
    when a call ends by an exception before its last answer came (``error`` names it, e.g.
    ``RateLimitError`` when the limiter's wait is past ``max_retry_wait``; ``will_retry`` is
    false): every call's last response event has ``will_retry`` false. It never holds the key, a
    body, a code, an e-mail or an order id.

    Attributes:
        method: The HTTP method, ``"GET"``.
        path: The path template below the base URL, ``"/orders/{orderId}/messages"``.
        operation: The client method that makes this call, ``"get_messages"``.
        call_id: The same for every attempt of one call (unique in the process).
        attempt: 1 for the first attempt, 2 for the first retry...
        status: The answer's HTTP status; ``None`` before it, or when the network failed.
        error: The kind of network failure (``"ReadTimeout"``...), or of the exception that
            ended the call before an answer; else ``None``.
        will_retry: Whether the client will try again after this answer.
        elapsed: Seconds the attempt took, from sending to the end of the answer.
    """

    method: str
    path: str
    operation: str
    call_id: int
    attempt: int
    status: int | None = None
    error: str | None = None
    will_retry: bool | None = None
    elapsed: float | None = None


Hook = Callable[[AttemptEvent], object]
"""A hook: called with the event; on the async face a coroutine function too (awaited), else
its return value is ignored."""


def path_template(path: str) -> str:
    """``/orders/API-123/messages`` -> ``/orders/{orderId}/messages``: no id leaves the client."""
    parts = path.split("/")
    if len(parts) >= 3 and parts[1] == "orders" and parts[2]:
        parts[2] = "{orderId}"
    return "/".join(parts)


_OPERATIONS: dict[tuple[str, str], str] = {}
"""The client method behind each documented operation, from the one endpoint table: filled on
the first call, since the table names the models (importing a client declares no model)."""


def _operations() -> dict[tuple[str, str], str]:
    from ._endpoints import ENDPOINTS  # noqa: PLC0415 - names the models: loaded on first use

    table = {(e.method, path_template(e.path.format(id="x"))): e.name for e in ENDPOINTS}
    _OPERATIONS.update(table)
    return table


def operation(method: str, template: str) -> str:
    """The client method behind a call: ``("GET", "/balance")`` -> ``"get_balance"``."""
    return (_OPERATIONS or _operations()).get((method, template), f"{method} {template}")


def check_hooks(hooks: object, *, awaited: bool = False) -> dict[str, tuple[Hook, ...]]:
    """Return ``event_hooks`` as ``{"request": (...), "response": (...)}``.

    Args:
        hooks: What the constructor was given.
        awaited: Whether the face awaits a hook's coroutine (the async face); the sync face
            refuses a coroutine function, which it would call without ever running its body.

    Raises:
        ValueError: Not a mapping of ``"request"``/``"response"`` to lists of callables, or a
            coroutine function given to the sync face.
    """
    if hooks is None:
        return {"request": (), "response": ()}
    if not isinstance(hooks, Mapping) or not set(hooks) <= _HOOK_STAGES:
        raise ValueError(
            f"event_hooks must map 'request' and/or 'response' to lists of callables, got {hooks!r}"
        )
    checked: dict[str, tuple[Hook, ...]] = {}
    for stage in sorted(_HOOK_STAGES):
        given = hooks.get(stage, ())
        if not isinstance(given, Sequence) or not all(callable(hook) for hook in given):
            raise ValueError(f"event_hooks[{stage!r}] must be a list of callables")
        if not awaited and any(_is_async(hook) for hook in given):
            raise ValueError(
                f"event_hooks[{stage!r}] holds an async def hook: KopechkaClient would never run "
                "it; give a plain function, or use AsyncKopechkaClient, which awaits it"
            )
        checked[stage] = tuple(given) if awaited else tuple(_never_awaited(h) for h in given)
    return checked


def _never_awaited(hook: Hook) -> Hook:
    """A sync face's hook: a plain callable that hands back something to await (a lambda around
    an ``async def``) is caught when it does. What it gave is closed, not left to Python's "never
    awaited" warning, and a WARNING (once per hook) says why its body did not run."""
    said: list[bool] = []

    def call(event: AttemptEvent) -> None:
        result = hook(event)
        if inspect.isawaitable(result):
            close = getattr(result, "close", None)
            if callable(close):
                close()
            if said:
                return
            said.append(True)
            logger.warning(
                "a kopechka event hook returned an awaitable on %s %s: KopechkaClient does not "
                "await hooks, so its body never ran (give a plain function, or use "
                "AsyncKopechkaClient, which awaits it)",
                event.method,
                event.path,
            )

    return call


def _is_async(hook: object) -> bool:
    call = getattr(hook, "__call__", None)  # noqa: B004 - an object whose __call__ is async
    return inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(call)


def run_hooks(hooks: Sequence[Hook], event: AttemptEvent) -> list[Awaitable[None]]:
    """Call each hook; one that raises is logged (its exception type only) and skipped. Return
    what the hooks gave to await (a coroutine function's coroutine), each guarded the same way:
    the async driver awaits them (``await_hooks``); the sync face accepts no such hook."""
    pending: list[Awaitable[None]] = []
    for hook in hooks:
        try:
            result = hook(event)
        except Exception as exc:  # a hook must never break a call
            _log_failure(exc, event)
            continue
        if inspect.isawaitable(result):
            pending.append(_guarded(result, event))
    return pending


async def _guarded(result: Awaitable[object], event: AttemptEvent) -> None:
    try:
        await result
    except Exception as exc:  # a hook must never break a call
        _log_failure(exc, event)


async def await_hooks(pending: Sequence[Awaitable[None]]) -> None:
    """Await, in order, what ``run_hooks`` handed back (each one is guarded)."""
    for item in pending:
        await item


def _log_failure(exc: Exception, event: AttemptEvent) -> None:
    logger.warning(
        "a kopechka event hook raised %s on %s %s (ignored)",
        type(exc).__name__,
        event.method,
        event.path,
    )


_handlers: list[logging.Handler] = []  # the one stderr handler, once attached


def configure_logging(value: str | None) -> None:
    """Apply ``KOPECHKA_LOG``: set the logger's level and attach one stderr handler per process.

    Raises:
        ValueError: The value is not ``debug``, ``info`` or ``warning`` (any case).
    """
    if value is None or not value.strip():
        return
    level = _LEVELS.get(value.strip().lower())
    if level is None:
        raise ValueError(f"{ENV_LOG} must be debug, info or warning, got {value[:40]!r}")
    if not _handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        _handlers.append(handler)
    logger.setLevel(level)
