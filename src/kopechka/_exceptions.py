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
    │   ├── APIResponseValidationError a 2xx answer that is not the documented JSON
    │   └── OrderOutcomeUnknownError   POST /orders may have bought an order whose answer was lost
    ├── SpendLimitError                a price above max_price=, or a purchase past budget=
    ├── WaitTimeoutError               also a builtin TimeoutError; carries the messages seen
    │   └── OrderClosedError           the order was cancelled or expired while waiting
    └── WaitCancelledError             a wait stopped by its ``stop`` event

Every error survives ``pickle`` (process pools) with its message and attributes; the live
``response`` is dropped. Every error is also rebuilt by ``cls(*exc.args)``, as Celery's JSON
result serializer does: ``args`` holds the message, then the attributes in the order of the
constructor's parameters, each as JSON can carry it (an ``Order`` or ``Message`` as its JSON
fields, which the constructor validates back into the model).

Every message, and every text of ``args``, is scrubbed of the key of any live client
(``_scrub.scrub_known``) when the error is made: a server that names an order by the key cannot
make an error print it, nor put it in what leaves the process. The models an error carries as
attributes (``candidates``, ``order``, ``messages``) keep their real ids, so that the caller can
act on them (cancel the order); ``pickle`` carries them as ``args`` does, scrubbed, rebuilt as
models (an id that was the key reads ``***``).

This module owns the classes only. It must not decide which class a status maps to (that table is in
``_wire``) and must not import requests: ``response`` is carried as an opaque object.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ._lazy import lazy
from ._scrub import scrub_known, scrub_known_value

if TYPE_CHECKING:
    from . import _models
    from ._models import Message, Order
else:  # loaded on first use: import kopechka stays without pydantic (see _lazy)
    _models = lazy("kopechka._models", __name__)

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
    "OrderOutcomeUnknownError",
    "PermissionDeniedError",
    "RateLimitError",
    "SpendLimitError",
    "WaitCancelledError",
    "WaitTimeoutError",
]


def _rebuild(cls: type[KopechkaError], args: tuple[Any, ...]) -> KopechkaError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    return error


def _as_json(models: Sequence[Any]) -> list[Any]:
    return [model.model_dump(mode="json", by_alias=True) for model in models]


def _outbound(value: Any) -> Any:
    """``value`` as it may leave the process: the key of any live client scrubbed from its
    texts, a model rebuilt from its scrubbed JSON fields."""
    from pydantic import BaseModel  # noqa: PLC0415 - as in _messages

    if isinstance(value, BaseModel):
        return type(value).model_validate(scrub_known_value(_as_json([value])[0]))
    if isinstance(value, (list, tuple)):
        return type(value)(_outbound(item) for item in value)
    return scrub_known_value(value)


def _messages(given: Sequence[Any]) -> list[Message]:
    """Messages as given, or rebuilt from their JSON fields (``cls(*args)``)."""
    return [
        _models.Message.model_validate(item) if isinstance(item, dict) else item for item in given
    ]


def _order(given: Any) -> Order:
    """An order as given, or rebuilt from its JSON fields."""
    return _models.Order.model_validate(given) if isinstance(given, dict) else given


class KopechkaError(Exception):
    """Base class of every error raised by kopechka."""

    def __init__(self, message: str = "", *state: Any) -> None:
        message = scrub_known(str(message))
        super().__init__(message)
        self.args = (
            message,
            *scrub_known_value(state),
        )  # what ``cls(*args)`` rebuilds it from (see the module)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __repr__(self) -> str:  # the message only, as before ``args`` carried the attributes
        return f"{type(self).__name__}({(self.args[0] if self.args else '')!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its args and attributes, not by calling __init__ (whose keywords differ
        # per class); the live response cannot cross a process boundary and is dropped.
        # The models keep their real ids in this process only: what is pickled is scrubbed.
        state = {k: (None if k == "response" else _outbound(v)) for k, v in self.__dict__.items()}
        return (_rebuild, (type(self), self.args), state)


class APIError(KopechkaError):
    """A call to the Kopechka API failed.

    Attributes:
        message: What went wrong; the server's own ``message`` when it sent one.
    """

    def __init__(self, message: str, *state: Any) -> None:
        super().__init__(message, *state)
        self.message: str = self.args[0]


class APIStatusError(APIError):
    """The server answered with an error status, or with ``"success": false``.

    Attributes:
        status_code: The HTTP status of the answer.
        body: The decoded JSON body, or the text when it was not JSON (``None`` when empty).
        response: A plain copy of the answer (``status_code``, ``headers``, the first 2,000
            characters of the body), the key scrubbed from it; never the requests or httpx
            response, so it holds no request and no headers sent.
    """

    def __init__(
        self, message: str, status_code: int, body: Any = None, *, response: Any = None
    ) -> None:
        super().__init__(message, status_code, body)
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
        status_code: int = 429,
        body: Any = None,
        retry_after: float | None = None,
        *,
        response: Any = None,
    ) -> None:
        super().__init__(message, status_code, body, response=response)
        self.args = (*self.args, retry_after)

    @property
    def retry_after(self) -> float | None:
        return self.args[3] if len(self.args) > 3 else None

    @retry_after.setter
    def retry_after(self, value: float | None) -> None:
        self.args = (*self.args[:3], value)


class InternalServerError(APIStatusError):
    """A 5xx answer: the service failed."""


class APIConnectionError(APIError):
    """The request failed on the network and nothing usable came back.

    Attributes:
        may_have_reached_server: ``False`` only when the request surely never reached the server
            (connection refused, connect timeout): sending it again cannot do anything twice.
    """

    def __init__(self, message: str, may_have_reached_server: bool = True) -> None:
        super().__init__(message, bool(may_have_reached_server))

    @property
    def may_have_reached_server(self) -> bool:
        return bool(self.args[1]) if len(self.args) > 1 else True

    @may_have_reached_server.setter
    def may_have_reached_server(self, value: bool) -> None:
        self.args = (self.args[0], bool(value))


class APITimeoutError(APIConnectionError):
    """The request timed out (connecting, or waiting for the answer)."""


class APIResponseValidationError(APIError):
    """A successful (2xx) answer that is not the documented JSON.

    Attributes:
        status_code: The HTTP status of the answer.
        body: The raw text of the answer (cut to 2,000 characters).
    """

    def __init__(self, message: str, status_code: int, body: str | None = None) -> None:
        super().__init__(message, status_code, body)
        self.status_code = status_code
        self.body = body


class WaitTimeoutError(KopechkaError, TimeoutError):
    """No matching message arrived before the deadline.

    Attributes:
        messages: Every message seen on the order while waiting, matching or not.
    """

    def __init__(self, message: str, messages: Sequence[Message] = ()) -> None:
        found = _messages(messages)
        super().__init__(message, _as_json(found))
        self.messages: list[Message] = found


class OrderClosedError(WaitTimeoutError):
    """The order was cancelled or expired while waiting: no mail will come.

    Attributes:
        status: The order's final status (``cancelled``, ``expired``, ...).
    """

    def __init__(self, message: str, status: str, messages: Sequence[Message] = ()) -> None:
        super().__init__(message, messages)
        self.status = status
        self.args = (self.args[0], status, *self.args[1:])


class OrderOutcomeUnknownError(APIError):
    """``POST /orders`` may have bought an order, but no usable answer came back.

    The request may have reached the server (a read timeout, a dropped connection, a 5xx, or a 2xx
    that is not the documented JSON). Do not simply retry: that may buy a second order. Look at
    ``candidates``, or run ``client.sweep()`` later. ``__cause__`` is the original failure.

    Attributes:
        domain: The domain asked for.
        site: The site asked for.
        sent_at: When the request was sent (an aware ``datetime``).
        candidates: Pending or active orders on that domain and site created since just before
            the request, which this client has returned to no caller: the order that may have
            been bought (empty when none was found, or when they could not be listed).
    """

    def __init__(
        self,
        message: str,
        domain: str,
        site: str,
        sent_at: datetime,
        candidates: Sequence[Order] = (),
    ) -> None:
        if isinstance(sent_at, str):  # as JSON carries it
            sent_at = datetime.fromisoformat(sent_at)
        found = [_order(order) for order in candidates]
        super().__init__(message, domain, site, sent_at, _as_json(found))
        self.domain = domain
        self.site = site
        self.sent_at = sent_at
        self.candidates: list[Order] = found

    _counted = True
    """Whether the client's ledger still counts this purchase as spent (``False`` once a complete
    listing showed it bought nothing); set where the loss is resolved, for ``kopechka mcp``."""


class SpendLimitError(KopechkaError):
    """A purchase was refused by a spend guard (``max_price=`` or the client's ``budget=``).

    Attributes:
        price: The price that was listed, or charged; ``None`` when the domain is not listed
            (a budget cannot hold against an unknown price).
        cap: The cap it would have passed (``max_price``, or what is left of ``budget``).
        order: The order when the server charged more than ``max_price`` anyway (it was then
            cancelled for a full refund), else ``None``.
    """

    def __init__(
        self, message: str, price: Decimal | None, cap: Decimal, order: Order | None = None
    ) -> None:
        # a str or float as JSON carries it
        price = None if price is None else Decimal(str(price))
        cap = Decimal(str(cap))
        self.order = None if order is None else _order(order)
        shown = None if self.order is None else _as_json([self.order])[0]
        super().__init__(message, price, cap, shown)
        self.price = price
        self.cap = cap


class WaitCancelledError(KopechkaError):
    """A wait was stopped by its ``stop`` event. (Cancelling the task of an async wait raises
    ``asyncio.CancelledError`` as asyncio expects: ``asyncio.timeout`` and task groups rely on it.)

    Attributes:
        messages: Every message seen on the order while waiting.
    """

    def __init__(self, message: str, messages: Sequence[Message] = ()) -> None:
        found = _messages(messages)
        super().__init__(message, _as_json(found))
        self.messages: list[Message] = found
