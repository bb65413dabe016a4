"""Sending one call under the retry policy: the only module that imports requests and tenacity.

The policy (the docs explain the why):

* 429 is retried for every method, after ``Retry-After`` when given (a wait beyond
  ``max_retry_wait`` is not waited: the 429 is returned at once), else after jittered
  exponential backoff.
* GET is also retried after connection errors, timeouts and 500/502/503/504.
* POST and DELETE spend or return money: besides 429 they are retried only when the request surely
  never reached the server (connection refused, name not resolved, connect timeout). Never after a
  read timeout, a dropped connection or a 5xx: no order is ever bought twice by a retry.
* No retry or wait may run past a caller's deadline; read timeouts shrink to the time left.

This module returns the final ``requests.Response`` whatever its status; turning it into a model or
a typed error is ``_wire``'s job. It raises only ``APIConnectionError``/``APITimeoutError``.
Redirects are followed only for GET and only within ``base_url``'s origin: the key never leaves it.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests
import tenacity
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from ._config import DEFAULT_POOL_SIZE, MAX_REDIRECTS, USER_AGENT
from ._exceptions import APIConnectionError, APITimeoutError
from ._wire import header, origin, parse_retry_after

__all__ = ["RetryPolicy", "Transport", "backoff_delay"]

logger = logging.getLogger("kopechka")

Timeout = float | tuple[float, float]

_GET_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_UNSAFE_RETRY_STATUSES = frozenset({429})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0


def backoff_delay(retries_done: int, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... capped at 8 s, each cut by up to 25%."""
    delay = min(INITIAL_RETRY_DELAY * 2.0**retries_done, MAX_RETRY_DELAY)
    return delay * (1.0 - 0.25 * rand())


@dataclass(frozen=True)
class RetryPolicy:
    """What is retried, how many times and how long a server may ask us to wait."""

    max_retries: int
    max_retry_wait: float

    def delay(
        self,
        *,
        idempotent: bool,
        retries_done: int,
        response: requests.Response | None = None,
        reached_server: bool = True,
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when there is none to make."""
        if retries_done >= self.max_retries:
            return None
        if response is None:  # a network failure
            return backoff_delay(retries_done) if idempotent or not reached_server else None
        allowed = _GET_RETRY_STATUSES if idempotent else _UNSAFE_RETRY_STATUSES
        if response.status_code not in allowed:
            return None
        asked = parse_retry_after(response.headers) if response.status_code == 429 else None
        if asked is None:
            return backoff_delay(retries_done)
        return asked if asked <= self.max_retry_wait else None


class _AttemptError(Exception):
    """One attempt's network failure, and whether the request may have reached the server."""

    def __init__(self, error: APIConnectionError, *, reached_server: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.reached_server = reached_server


def _never_connected(exc: requests.RequestException) -> bool:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason: Any = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError)


def _network_error(exc: requests.RequestException, method: str, path: str) -> _AttemptError:
    never = _never_connected(exc)
    if isinstance(exc, requests.Timeout):
        phase = "connecting" if never else "waiting for the answer"
        error: APIConnectionError = APITimeoutError(f"{method} {path} timed out {phase}")
    else:
        cause = type(exc).__name__
        what = "could not connect" if never else "failed on the network"
        error = APIConnectionError(f"{method} {path} {what} ({cause})")
    return _AttemptError(error, reached_server=not never)


class Transport:
    """A session, the key header and the retry policy: sends calls and returns final answers."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: Timeout,
        policy: RetryPolicy,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.policy = policy
        self.owns_session = session is None
        self.session = session if session is not None else _new_session(base_url)
        self._origin = origin(base_url)
        self._headers = {
            "X-API-Key": api_key,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        self._sleep = sleep
        self._clock = clock

    def close(self) -> None:
        """Close the session if this transport created it."""
        if self.owns_session:
            self.session.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, str] | None = None,
        idempotent: bool,
        deadline: float | None = None,
    ) -> requests.Response:
        """Send one call, retrying as the policy allows; return the final answer.

        Raises:
            APIConnectionError: The network failed and retrying did not help (or was not allowed).
            APITimeoutError: Likewise, for a timeout, or the deadline passed.
        """

        waits: dict[int, float | None] = {}

        def delay(state: tenacity.RetryCallState) -> float | None:
            if state.attempt_number not in waits:
                waits[state.attempt_number] = self._delay(state, idempotent, deadline)
            return waits[state.attempt_number]

        retrying = tenacity.Retrying(
            retry=lambda state: delay(state) is not None,
            wait=lambda state: delay(state) or 0.0,
            stop=tenacity.stop_never,
            sleep=self._sleep,
            reraise=True,
        )
        attempts = itertools.count(1)
        try:
            response: requests.Response = retrying(
                lambda: self._attempt(
                    method, path, params, json, deadline, idempotent, next(attempts)
                )
            )
        except _AttemptError as failed:
            failed.error.may_have_reached_server = failed.reached_server
            raise failed.error from None
        return response

    def _delay(
        self, state: tenacity.RetryCallState, idempotent: bool, deadline: float | None
    ) -> float | None:
        outcome = state.outcome
        assert outcome is not None
        failure = outcome.exception()
        if failure is not None and not isinstance(failure, _AttemptError):
            return None  # not a network failure: a bug is raised at once, never retried
        wait = self.policy.delay(
            idempotent=idempotent,
            retries_done=state.attempt_number - 1,
            response=None if failure else outcome.result(),
            reached_server=failure.reached_server if isinstance(failure, _AttemptError) else True,
        )
        if wait is not None and deadline is not None and self._clock() + wait >= deadline:
            return None
        return wait

    def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        json: Mapping[str, str] | None,
        deadline: float | None,
        follow: bool,
        attempt: int,
    ) -> requests.Response:
        url = self.base_url + path
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send_once(method, url, path, params, json, deadline, attempt)
            target = header(response.headers, "location") if follow else None
            if response.status_code not in _REDIRECTS or not target:
                return response
            target = urljoin(url, target)
            if origin(target) != self._origin:
                return response  # never follow the key to another origin
            url, params = target, None
        return response

    def _send_once(
        self,
        method: str,
        url: str,
        path: str,
        params: Mapping[str, str] | None,
        json: Mapping[str, str] | None,
        deadline: float | None,
        attempt: int,
    ) -> requests.Response:
        started = time.perf_counter()
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                json=json,
                headers=self._headers,
                timeout=self._timeout(deadline),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            failed = _network_error(exc, method, path)
            _log(method, path, type(exc).__name__, attempt, started)
            raise failed from None
        _log(method, path, response.status_code, attempt, started)
        return response

    def _timeout(self, deadline: float | None) -> Timeout:
        if deadline is None:
            return self.timeout
        left = deadline - self._clock()
        if left <= 0:
            raise _AttemptError(
                APITimeoutError("the deadline passed before the request"), reached_server=False
            )
        connect, read = self.timeout if isinstance(self.timeout, tuple) else (self.timeout,) * 2
        return (min(connect, left), min(read, left))


def _log(method: str, path: str, outcome: object, attempt: int, started: float) -> None:
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


def _new_session(base_url: str) -> requests.Session:
    """The client's own session: a pool for 32 threads, no retries of its own, and the
    environment (proxies, CA bundle) read once here instead of on every request.

    With ``trust_env`` on, requests scans the whole environment for proxy settings on every
    request (about a third of a call's CPU on a machine with many variables). All requests go to
    ``base_url``'s origin, so its proxy settings are resolved once. netrc credentials are not
    wanted: the key travels as ``X-API-Key``.
    """
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=DEFAULT_POOL_SIZE, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.proxies = dict(requests.utils.get_environ_proxies(base_url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False
    return session
