"""kopechka: a typed client for the Kopechka temporary-email API.

The public API is exactly ``__all__`` (plus the ``kopechka.testing`` package, the offline sandbox).
Importing this package does not import the command line or the sandbox.
"""

from __future__ import annotations

import logging

from ._client import KopechkaClient
from ._config import DEFAULT_BASE_URL, DEFAULT_MAX_RETRIES, DEFAULT_MAX_RETRY_WAIT, DEFAULT_TIMEOUT
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    KopechkaError,
    NotFoundError,
    OrderClosedError,
    PermissionDeniedError,
    RateLimitError,
    WaitTimeoutError,
)
from ._mail import Mailbox
from ._models import (
    Cancellation,
    Domain,
    Message,
    MessageList,
    Order,
    OrderPage,
    OrderStatus,
    OrderSummary,
    Pagination,
    PollingStatus,
    Profile,
)
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_RETRY_WAIT",
    "DEFAULT_TIMEOUT",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "Cancellation",
    "Domain",
    "InternalServerError",
    "KopechkaClient",
    "KopechkaError",
    "Mailbox",
    "Message",
    "MessageList",
    "NotFoundError",
    "Order",
    "OrderClosedError",
    "OrderPage",
    "OrderStatus",
    "OrderSummary",
    "Pagination",
    "PermissionDeniedError",
    "PollingStatus",
    "Profile",
    "RateLimitError",
    "WaitTimeoutError",
    "__version__",
]

logging.getLogger("kopechka").addHandler(logging.NullHandler())
