"""What both transports do with one attempt, whatever library sent it.

This module owns reading a body within the cap (gzip and deflate decoded by hand with a bounded
``zlib``, so a bomb stops at ``max_body``), the typed error for a classified network failure, and
the one DEBUG line logged per attempt. The sync driver (``_transport``, requests) and the async
one (``_async_transport``, httpx) feed it raw bytes and plain values. It imports no HTTP library
and does no I/O but that log line.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from ._exceptions import APIConnectionError, APIResponseValidationError, APITimeoutError
from ._policy import Failure, body_too_large
from ._wire import header

__all__ = ["BodyReader", "log_attempt", "network_error"]

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
