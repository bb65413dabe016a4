"""kopechka: a typed client for the Kopechka temporary-email API.

The public API is exactly ``__all__`` (plus the ``kopechka.testing`` package, the offline sandbox).
Names load on first access (PEP 562, as pydantic does): ``import kopechka`` stays cheap, and
importing it never loads the command line or the sandbox. Public classes say they come from
``kopechka`` (``__module__``), as httpx's do: tracebacks, reprs and pickles name
``kopechka.NotFoundError``, never a private module. The error classes are set at import (a
small module, and what pickles and tracebacks name most); the others when first loaded. Importing
a client declares no model: the models load on its first decode, and publish themselves then.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import TYPE_CHECKING, Any

from . import (
    _exceptions,  # noqa: F401 - loaded now so its classes are published at once
    _scrub,
)
from ._version import __version__

if TYPE_CHECKING:
    from ._async_client import AsyncKopechkaClient
    from ._async_mail import AsyncMailbox
    from ._client import KopechkaClient
    from ._config import (
        DEFAULT_BASE_URL,
        DEFAULT_MAX_RETRIES,
        DEFAULT_MAX_RETRY_WAIT,
        DEFAULT_TIMEOUT,
    )
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
        OrderOutcomeUnknownError,
        PermissionDeniedError,
        RateLimitError,
        SpendLimitError,
        WaitCancelledError,
        WaitTimeoutError,
    )
    from ._limits import Limiter, Slot
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
    from ._money import SweepReport
    from ._signals import exit_on_signals

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
    "AsyncKopechkaClient",
    "AsyncMailbox",
    "AuthenticationError",
    "BadRequestError",
    "Cancellation",
    "Domain",
    "InternalServerError",
    "KopechkaClient",
    "KopechkaError",
    "Limiter",
    "Mailbox",
    "Message",
    "MessageList",
    "NotFoundError",
    "Order",
    "OrderClosedError",
    "OrderOutcomeUnknownError",
    "OrderPage",
    "OrderStatus",
    "OrderSummary",
    "Pagination",
    "PermissionDeniedError",
    "PollingStatus",
    "Profile",
    "RateLimitError",
    "Slot",
    "SpendLimitError",
    "SweepReport",
    "WaitCancelledError",
    "WaitTimeoutError",
    "__version__",
    "exit_on_signals",
]

# Where each public name lives; kept equal to __all__ by tests/test_exported_members.py.
_MODULES: dict[str, tuple[str, ...]] = {
    "._async_client": ("AsyncKopechkaClient",),
    "._async_mail": ("AsyncMailbox",),
    "._client": ("KopechkaClient",),
    "._limits": ("Limiter", "Slot"),
    "._mail": ("Mailbox",),
    "._money": ("SweepReport",),
    "._signals": ("exit_on_signals",),
    "._config": (
        "DEFAULT_BASE_URL", "DEFAULT_MAX_RETRIES", "DEFAULT_MAX_RETRY_WAIT", "DEFAULT_TIMEOUT",
    ),
    "._exceptions": (
        "APIConnectionError", "APIError", "APIResponseValidationError", "APIStatusError",
        "APITimeoutError", "AuthenticationError", "BadRequestError", "InternalServerError",
        "KopechkaError", "NotFoundError", "OrderClosedError", "OrderOutcomeUnknownError",
        "PermissionDeniedError", "RateLimitError", "SpendLimitError", "WaitCancelledError",
        "WaitTimeoutError",
    ),
    "._models": (
        "Cancellation", "Domain", "Message", "MessageList", "Order", "OrderPage", "OrderStatus",
        "OrderSummary", "Pagination", "PollingStatus", "Profile",
    ),
}  # fmt: skip
_HOMES = {name: module for module, names in _MODULES.items() for name in names}


def _publish() -> None:
    """Give every public class of the loaded modules ``__module__ = "kopechka"``."""
    for home, names in _MODULES.items():
        module = sys.modules.get(__name__ + home)
        for name in names if module is not None else ():
            value = getattr(module, name, None)  # None: that module is still being imported
            if isinstance(value, type):
                value.__module__ = __name__


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'kopechka' has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    _publish()  # importing one module may have loaded others (the client loads them all)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


_publish()
logging.getLogger("kopechka").addHandler(_scrub.ScrubHandler())  # no record shows a live key
logging.getLogger("kopechka").addHandler(logging.NullHandler())
