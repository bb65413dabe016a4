"""The settings both clients take, checked the same way, in their constructors.

This module owns the checks of the key (or ``KOPECHKA_API_KEY``), the base URL (or
``KOPECHKA_BASE_URL``), the retry limits, the body cap and ``rate_limit=``, and the errors they
raise, so that ``KopechkaClient`` and ``AsyncKopechkaClient`` refuse exactly the same things. It
reads the environment only when a constructor calls it, and imports no HTTP library.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

from . import _wire
from ._config import DEFAULT_BASE_URL, ENV_API_KEY, ENV_BASE_URL
from ._exceptions import KopechkaError
from ._limits import Limiter, NoLimiter, RateLimiter
from ._policy import MAX_TIMEOUT

__all__ = [
    "check_base_url",
    "check_key",
    "check_limiter",
    "check_max_body",
    "check_retries",
    "check_wait",
    "checked_seconds",
    "seconds_argument",
]


def checked_seconds(
    name: str, value: object, *, positive: bool = False, most: float = math.inf
) -> float:
    """A number of seconds a caller gave (a timeout, an age, a wait), as a float: a real number,
    not a bool, finite, >= 0 (> 0 when ``positive``) and at most ``most``.

    Raises:
        ValueError: Anything else, naming ``name`` and what it takes.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not (value > 0 if positive else value >= 0)
        or value > most
    ):
        bound = "> 0" if positive else ">= 0"
        if math.isfinite(most):
            bound += f" and <= {most:g}"
        raise ValueError(f"{name} must be a finite number of seconds {bound}, got {value!r}")
    return float(value)


def seconds_argument(*, positive: bool = False, most: float = math.inf) -> Callable[[str], float]:
    """An argparse ``type=`` reading ``checked_seconds`` from a command line's text."""

    def parse(text: str) -> float:
        import argparse  # noqa: PLC0415 - loaded by then: only a command line parses arguments

        try:
            value = float(text)
        except ValueError:
            value = math.nan
        try:
            return checked_seconds("it", value, positive=positive, most=most)
        except ValueError as exc:
            reason = str(exc).removeprefix("it ").split(", got", 1)[0]
            raise argparse.ArgumentTypeError(f"{reason}, got {text!r}") from None

    return parse


def check_key(api_key: object) -> str:
    """The key given, else the environment's, checked.

    Raises:
        KopechkaError: No key, or one that is not printable ASCII (never quoted).
    """
    key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
    if key is None or (isinstance(key, str) and not key.strip()):
        raise KopechkaError(
            f"no API key: pass api_key= or set the environment variable {ENV_API_KEY}"
        )
    try:
        return _wire.check_api_key(key)
    except ValueError as exc:
        raise KopechkaError(str(exc)) from None


def check_base_url(base_url: object) -> str:
    """The base URL given, else the environment's, else the vendor's; checked.

    Raises:
        ValueError: Not an http(s) URL, or plain ``http://`` to a host that is not loopback.
    """
    url = base_url if base_url is not None else os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    return _wire.normalize_base_url(url)


def check_retries(max_retries: object) -> int:
    """``max_retries``: an integer >= 0.

    Raises:
        ValueError: Anything else.
    """
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
    return max_retries


def check_wait(max_retry_wait: object) -> float:
    """``max_retry_wait``: seconds from 0 to ``MAX_TIMEOUT``.

    Raises:
        ValueError: Anything else.
    """
    if (
        isinstance(max_retry_wait, bool)
        or not isinstance(max_retry_wait, (int, float))
        or not 0 <= max_retry_wait <= MAX_TIMEOUT
    ):
        raise ValueError(
            f"max_retry_wait must be from 0 to {MAX_TIMEOUT:g}, got {max_retry_wait!r}"
        )
    return float(max_retry_wait)


def check_max_body(max_body: object) -> int:
    """``max_body``: an integer >= 1.

    Raises:
        ValueError: Anything else.
    """
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
        raise ValueError(f"max_body must be an integer >= 1, got {max_body!r}")
    return max_body


def check_limiter(rate_limit: object) -> Limiter:
    """``rate_limit=``: None (learn the server's rate), False (no limiter), requests per second,
    or a limiter.

    Raises:
        ValueError: Anything else.
    """
    if rate_limit is False:
        return NoLimiter()
    if rate_limit is None or isinstance(rate_limit, (int, float)):
        return RateLimiter(rate_limit)  # a bool is refused there
    if isinstance(rate_limit, Limiter):
        return rate_limit
    raise ValueError(
        "rate_limit must be None, False, a number of requests per second, or a limiter "
        f"(reserve, admit, feedback), got {rate_limit!r}"
    )
