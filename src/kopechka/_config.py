"""Named defaults and the names of the environment variables kopechka reads.

Constants only. The environment is read in one place, ``_settings``, from the clients'
constructors; nothing here reads it.
"""

from __future__ import annotations

from ._version import __version__

__all__ = [
    "CLOSED",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_RETRY_WAIT",
    "DEFAULT_POOL_SIZE",
    "DEFAULT_TIMEOUT",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "USER_AGENT",
]

DEFAULT_BASE_URL = "https://api.kopechka.com/api/v1"
"""Where the service lives, as the vendor documentation gives it."""
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 30.0)
"""``(connect, read)`` seconds, in the sense of ``requests``."""
DEFAULT_MAX_RETRIES = 3
"""Extra attempts after the first."""
DEFAULT_MAX_RETRY_WAIT = 60.0
"""A ``Retry-After`` longer than this fails at once with ``RateLimitError``."""
DEFAULT_POOL_SIZE = 64
"""Connections kept per host by a client's own session: 32 threads share one client without
"connection pool is full" discards."""

ENV_API_KEY = "KOPECHKA_API_KEY"
"""The environment variable read for the key when ``api_key`` is not given."""
ENV_BASE_URL = "KOPECHKA_BASE_URL"
"""The environment variable read for the API root when ``base_url`` is not given."""

USER_AGENT = f"kopechka-python/{__version__}"

CLOSED = frozenset({"cancelled", "canceled", "expired"})
"""Order statuses after which no mail will come (``canceled``: the spelling some servers use).
Defined here, not in ``_models`` (which re-exports it), so that the money layer and the waits
read it without declaring a model."""
