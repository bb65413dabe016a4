"""The settings both clients take, checked once, in their constructors.

This module owns the checks of the key (or ``KOPECHKA_API_KEY``), the base URL (or
``KOPECHKA_BASE_URL``), the timeout, the retry limits and the body cap, and the errors they raise,
so that ``KopechkaClient`` and ``AsyncKopechkaClient`` refuse exactly the same things. It reads the
environment only when a constructor calls it, and imports no HTTP library.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from . import _wire
from ._config import DEFAULT_BASE_URL, ENV_API_KEY, ENV_BASE_URL
from ._exceptions import KopechkaError
from ._policy import MAX_TIMEOUT, RetryPolicy, Timeout, check_timeout

__all__ = ["Settings", "check_key", "settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    """A client's checked settings."""

    api_key: str
    base_url: str
    timeout: Timeout
    policy: RetryPolicy
    max_body: int

    def __repr__(self) -> str:
        return f"Settings(base_url={self.base_url!r}, api_key='***')"


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


def settings(
    api_key: object,
    *,
    base_url: object,
    timeout: object,
    max_retries: object,
    max_retry_wait: object,
    max_body: object,
) -> Settings:
    """Check a client's constructor arguments.

    Raises:
        KopechkaError: No usable API key.
        ValueError: An argument out of range, or an unsafe or malformed base URL.
    """
    key = check_key(api_key)
    url = base_url if base_url is not None else os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    url = _wire.normalize_base_url(url)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
    if (
        isinstance(max_retry_wait, bool)
        or not isinstance(max_retry_wait, (int, float))
        or not 0 <= max_retry_wait <= MAX_TIMEOUT
    ):
        raise ValueError(
            f"max_retry_wait must be from 0 to {MAX_TIMEOUT:g}, got {max_retry_wait!r}"
        )
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
        raise ValueError(f"max_body must be an integer >= 1, got {max_body!r}")
    return Settings(
        api_key=key,
        base_url=url,
        timeout=check_timeout(timeout),
        policy=RetryPolicy(max_retries=max_retries, max_retry_wait=float(max_retry_wait)),
        max_body=max_body,
    )
