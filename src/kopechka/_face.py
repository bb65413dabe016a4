"""What the sync and async faces share: everything about a client and a mailbox that sends nothing.

``BaseClient`` is generic over the transport (``Transport`` on requests, ``AsyncTransport`` on
httpx): it checks the constructor's arguments and keeps the key, the budget and the base URL, hands
the face the checked transport settings, derives ``with_options`` clients, prints the repr and
prepares the purchase flow. ``BaseMailbox`` keeps what a mailbox learns from its waits and reports
how leaving it went. Each face (``_client``/``_async_client``, ``_mail``/``_async_mail``) keeps its
public methods and their docstrings, and only what differs: plain calls there, awaited calls here.

This module must not send a request, sleep, or import httpx (``import kopechka`` works without it).
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypedDict, TypeVar

from . import _money, _wire
from ._exceptions import OrderClosedError
from ._hooks import ENV_LOG, Hook, check_hooks, configure_logging
from ._limits import Limiter
from ._policy import RetryPolicy, Timeout, check_timeout
from ._settings import (
    check_base_url,
    check_key,
    check_limiter,
    check_max_body,
    check_retries,
    check_wait,
)

if TYPE_CHECKING:
    from ._models import Cancellation, Message, Order

__all__ = ["BaseClient", "BaseMailbox", "TransportOptions"]

logger = logging.getLogger("kopechka")

T = TypeVar("T", bound="_Transport")
C = TypeVar("C", bound="BaseClient[Any]")


class _Transport(Protocol):
    """What ``BaseClient`` reads of a transport (``Transport`` and ``AsyncTransport`` alike)."""

    timeout: Timeout
    policy: RetryPolicy

    def derive(self: T, *, timeout: Timeout, policy: RetryPolicy) -> T: ...


class TransportOptions(TypedDict):
    """The checked settings both transports take; a face adds its session and its sleep."""

    base_url: str
    api_key: str
    timeout: Timeout
    policy: RetryPolicy
    clock: Callable[[], float]
    max_body: int
    limiter: Limiter
    hooks: dict[str, tuple[Hook, ...]]


class BaseClient(Generic[T]):
    """The configuration of a client, its settings and its repr; no I/O (see the module)."""

    _public_name: ClassVar[str]
    _transport: T

    def _configure(
        self,
        api_key: str | None,
        *,
        base_url: str | None,
        timeout: float | tuple[float, float],
        max_retries: int,
        max_retry_wait: float,
        clock: Callable[[], float],
        max_body: int,
        rate_limit: float | Limiter | None,
        event_hooks: Mapping[str, Sequence[Hook]] | None,
        budget: Decimal | int | str | None,
    ) -> TransportOptions:
        """Check the constructor's arguments (the key first), keep the key, budget and base URL,
        and return the settings of the transport the face creates.

        Raises:
            KopechkaError: No usable API key.
            ValueError: Any other argument is out of range or unsafe (see the faces).
        """
        configure_logging(os.environ.get(ENV_LOG))
        self._api_key = _wire.Secret(check_key(api_key))
        self._ledger = _money.Ledger(_money.check_cap("budget", budget), clock=clock)
        self.base_url = check_base_url(base_url)
        self._clock = clock
        policy = RetryPolicy(
            max_retries=check_retries(max_retries), max_retry_wait=check_wait(max_retry_wait)
        )
        return TransportOptions(
            base_url=self.base_url, api_key=self._api_key.reveal(), timeout=check_timeout(timeout),
            policy=policy, clock=clock, max_body=check_max_body(max_body),
            limiter=check_limiter(rate_limit), hooks=check_hooks(event_hooks),
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"{self._public_name}(base_url={self.base_url!r}, api_key='***')"

    __str__ = __repr__

    def _derive(
        self: C,
        timeout: float | tuple[float, float] | None,
        max_retries: int | None,
        max_retry_wait: float | None,
    ) -> C:
        """``with_options``: a shallow copy on a derived transport (same pool, limiter, hooks).

        Raises:
            ValueError: An argument is out of range.
        """
        policy = self._transport.policy
        retries = policy.max_retries if max_retries is None else check_retries(max_retries)
        longest = policy.max_retry_wait if max_retry_wait is None else check_wait(max_retry_wait)
        derived = copy.copy(self)
        derived._transport = self._transport.derive(
            timeout=self._transport.timeout if timeout is None else check_timeout(timeout),
            policy=RetryPolicy(max_retries=retries, max_retry_wait=longest),
        )
        return derived

    def _purchase(
        self, domain: str, site: str, max_price: object, *, for_mailbox: bool
    ) -> _money.Flow[Order]:
        """The flow of one purchase (``_money.purchase``), its arguments checked first.

        Raises:
            ValueError: ``domain`` or ``site`` is empty, or ``max_price`` is not an amount >= 0.
        """
        _wire.create_order(domain, site)  # the arguments are checked before any request
        connect, read = self._transport.timeout
        retries = self._transport.policy.max_retries
        longest = (connect + read) * (retries + 1) + 1.0  # another purchase's attempts
        return _money.purchase(
            self._ledger, domain, site,
            max_price=_money.check_cap("max_price", max_price),
            wall=self._ledger.wall, now=self._clock(), settle_timeout=longest,
            for_mailbox=for_mailbox,
        )  # fmt: skip

    def _sweep(self, older_than: float, dry_run: bool) -> _money.Flow[_money.SweepReport]:
        return _money.sweep(older_than=older_than, dry_run=dry_run, wall=self._ledger.wall)


class BaseMailbox:
    """What a mailbox learns from its waits, and the report of leaving it; no I/O."""

    def _start(self) -> None:
        """Set the state every mailbox starts with."""
        self.cancellation: Cancellation | None = None
        self.cancel_error: BaseException | None = None
        self._got_mail = False
        self._status: str | None = None  # known closed (expired, cancelled) from a wait

    def _saw(self, found: list[Message]) -> None:
        """Note the messages a look at the mailbox returned."""
        self._got_mail = self._got_mail or bool(found)

    @contextmanager
    def _waiting(self) -> Iterator[None]:
        """Around a wait: a closed order is remembered (not cancelled on exit), a result is mail."""
        try:
            yield
        except OrderClosedError as exc:
            self._status = exc.status
            raise
        self._got_mail = True

    def _exit_flow(self, order_id: str) -> _money.Flow[_money.ExitOutcome]:
        return _money.mailbox_exit(order_id, got_mail=self._got_mail, status=self._status)

    def _left(self, order_id: str, outcome: _money.ExitOutcome) -> None:
        """Keep and log what leaving the block did (``_money.mailbox_exit``'s outcome)."""
        if outcome.check_error is not None:
            logger.warning("could not check order %s for mail: %s", order_id, outcome.check_error)
        if outcome.cancellation is not None:
            self.cancellation = outcome.cancellation
            logger.info(
                "cancelled unused order %s, refunded %s",
                order_id, outcome.cancellation.refund_amount,
            )  # fmt: skip
        elif outcome.error is not None:
            self.cancel_error = outcome.error
            logger.warning("could not cancel unused order %s: %s", order_id, outcome.error)
        else:
            logger.debug("order %s not cancelled: %s", order_id, outcome.reason)
