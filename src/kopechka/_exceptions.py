"""Every error a public call of kopechka can raise, and nothing else.

The tree, drawn once (the docs repeat it)::

    KopechkaError
    ├── APIError                       message; the server's "message" when there is one
    │   ├── APIStatusError             status_code, body, response
    │   │   ├── BadRequestError        400
    │   │   ├── AuthenticationError    401
    │   │   ├── PermissionDeniedError  403
    │   │   ├── NotFoundError          404
    │   │   ├── RateLimitError         429, retry_after (float seconds or None)
    │   │   └── InternalServerError    >= 500
    │   ├── APIConnectionError         network failure, nothing usable came back
    │   │   └── APITimeoutError
    │   └── APIResponseValidationError a 2xx answer that is not the documented JSON
    └── WaitTimeoutError               also a builtin TimeoutError; carries the messages seen
        └── OrderClosedError           the order was cancelled or expired while waiting

This module owns the classes only. It must not decide which class a status maps to (that table is in
``_wire``) and must not import requests: ``response`` is carried as an opaque object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import Message

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "InternalServerError",
    "KopechkaError",
    "NotFoundError",
    "OrderClosedError",
    "PermissionDeniedError",
    "RateLimitError",
    "WaitTimeoutError",
]


class KopechkaError(Exception):
    """Base class of every error raised by kopechka."""


class APIError(KopechkaError):
    """A call to the Kopechka API failed.

    Attributes:
        message: What went wrong; the server's own ``message`` when it sent one.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class APIStatusError(APIError):
    """The server answered with an error status, or with ``"success": false``.

    Attributes:
        status_code: The HTTP status of the answer.
        body: The decoded JSON body, or the text when it was not JSON (``None`` when empty).
        response: The underlying HTTP response object, for inspection.
    """

    def __init__(self, message: str, *, status_code: int, body: Any = None, response: Any = None):
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.response = response

    def __str__(self) -> str:
        return f"{self.status_code}: {self.message}"


class BadRequestError(APIStatusError):
    """400: the server refused the request (unknown domain, insufficient balance, ...)."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or invalid."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this."""


class NotFoundError(APIStatusError):
    """404: no such order (or resource)."""


class RateLimitError(APIStatusError):
    """429: too many requests, and retrying did not help (or the wait was too long).

    Attributes:
        retry_after: Seconds the server asked to wait, or ``None`` when it did not say.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 429,
        body: Any = None,
        response: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, body=body, response=response)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """A 5xx answer: the service failed."""


class APIConnectionError(APIError):
    """The request failed on the network and nothing usable came back."""


class APITimeoutError(APIConnectionError):
    """The request timed out (connecting, or waiting for the answer)."""


class APIResponseValidationError(APIError):
    """A successful (2xx) answer that is not the documented JSON.

    Attributes:
        status_code: The HTTP status of the answer.
        body: The raw text of the answer (cut to 2,000 characters).
    """

    def __init__(self, message: str, *, status_code: int, body: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class WaitTimeoutError(KopechkaError, TimeoutError):
    """No matching message arrived before the deadline.

    Attributes:
        messages: Every message seen on the order while waiting, matching or not.
    """

    def __init__(self, message: str, *, messages: Sequence[Message] = ()) -> None:
        super().__init__(message)
        self.messages: list[Message] = list(messages)


class OrderClosedError(WaitTimeoutError):
    """The order was cancelled or expired while waiting: no mail will come.

    Attributes:
        status: The order's final status (``cancelled``, ``expired``, ...).
    """

    def __init__(self, message: str, *, status: str, messages: Sequence[Message] = ()) -> None:
        super().__init__(message, messages=messages)
        self.status = status
