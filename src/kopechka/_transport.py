"""Sending one call with requests, under the pure policy of ``_policy``: the sync driver.

The only module that imports requests. It sends an attempt, reads the answer within the body cap
and the attempt's wall-clock bound, classifies network failures, and asks ``_policy`` whether and
when to try again (a loop of a few lines, the async driver's twin). It returns the final ``Answer``
whatever its status: turning it into a model or a typed error is ``_wire``'s job. It raises only
``APIConnectionError``/``APITimeoutError`` (network), ``APIResponseValidationError`` (an answer
too large to read) and ``RateLimitError`` (a shared cooldown longer than ``max_retry_wait``).

What it guarantees against a hostile server, proxy or environment:

* redirects are never followed (``allow_redirects=False``): the key goes to ``base_url`` only;
* a loopback ``base_url`` never goes through a proxy, whatever the environment says;
* an attempt lasts at most its connect + read timeout in wall-clock time (``_watchdog``);
* no more than ``max_body`` bytes are kept, after decompression (bombs stop at the cap);
* after ``os.fork()`` the child opens connections of its own (never one of the parent's).
"""

from __future__ import annotations

import copy
import functools
import http.client
import http.cookiejar
import itertools
import json as jsonlib
import os
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from . import _flow
from ._attempt import (
    CALL_IDS,
    MAX_ADMISSIONS,
    AdmissionOp,
    BodyReader,
    Call,
    Sleep,
    admission,
    consult,
    ended,
    log_attempt,
    network_error,
    report,
    settle,
    voided,
)
from ._config import DEFAULT_POOL_SIZE, USER_AGENT
from ._hooks import Hook, run_hooks
from ._limits import Limiter, RateLimiter, Slot
from ._policy import (
    DEFAULT_MAX_BODY,
    Answer,
    Failure,
    Outcome,
    RetryPolicy,
    Timeout,
    attempt_budget,
    attempt_timeout,
)
from ._tls import ca_bundle
from ._watchdog import Bound, current_bound
from ._wire import is_loopback

__all__ = ["Transport"]


_CHUNK = 64 * 1024
# None removes a proxy setting, the session's and the environment's alike (requests' merge rule)
_NO_PROXY: Any = {"http": None, "https": None, "all": None}
_NETWORK_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
    ValueError,  # urllib3 and http.client raise it for some malformed answers
)


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
        max_body: int = DEFAULT_MAX_BODY,
        limiter: Limiter | None = None,
        hooks: Mapping[str, tuple[Hook, ...]] | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.policy = policy
        self.max_body = max_body
        self.owns_session = session is None
        self.session = session if session is not None else _new_session(base_url)
        loopback = is_loopback(_host(base_url))
        self._proxies = _NO_PROXY if loopback else None
        self._headers = {
            "X-API-Key": api_key,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
        }
        # The client's own session has nothing to merge per request (no cookies, auth, params
        # or hooks; its proxies were resolved at construction): a request is prepared from
        # settings merged once here. A caller's session goes through ``Session.request``, which
        # applies whatever the caller configured.
        self._direct: _Direct | None = None
        if session is None:
            merged = CaseInsensitiveDict(self.session.headers)
            merged.update(self._headers)
            proxies = {} if loopback else dict(self.session.proxies)
            headers = {name: value for name, value in merged.items() if isinstance(value, str)}
            self._direct = _Direct(_prefix(base_url), headers, proxies)
        self._sleep = sleep
        self._clock = clock
        self._forked = False
        self.limiter: Limiter = limiter if limiter is not None else RateLimiter()
        self.hooks: Mapping[str, tuple[Hook, ...]] = hooks or {"request": (), "response": ()}
        _TRANSPORTS.add(self)

    def derive(
        self, *, timeout: Timeout, policy: RetryPolicy, limiter: Limiter | None = None
    ) -> Transport:
        """The same key, session, limiter (unless given) and hooks with other settings; it never
        closes the session (its owner does)."""
        derived = copy.copy(self)
        derived.timeout, derived.policy, derived.owns_session = timeout, policy, False
        derived.limiter = limiter if limiter is not None else self.limiter
        _TRANSPORTS.add(derived)
        return derived

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
        max_retries: int | None = None,
    ) -> Answer:
        """Send one call, retrying as the policy allows; return the final answer.

        Raises:
            APIConnectionError: The network failed and retrying did not help (or was not allowed).
            APITimeoutError: Likewise, for a timeout, or the deadline passed.
            APIResponseValidationError: The answer is larger than ``max_body``.
            RateLimitError: The limiter's wait (a shared cooldown) is longer than
                ``max_retry_wait``: nothing was sent.
        """
        policy = (
            self.policy if max_retries is None else replace(self.policy, max_retries=max_retries)
        )
        call = Call(method, path, params, json, idempotent, deadline, policy, next(CALL_IDS))
        try:
            outcome = self._attempt(call, 1)
            if call.waits.get(1) is not None:  # a retry is due: tenacity drives the rest
                outcome = self._retry(call)
        except BaseException as exc:  # no final answer (the limiter refused, an interrupt...)
            ended(call, exc, self.hooks)
            raise
        if isinstance(outcome, Failure):
            raise network_error(outcome, method, path)
        return outcome

    def _retry(self, call: Call) -> Outcome:
        """Attempts 2, 3, ... after the first asked for a retry, each after the wait the policy
        set for the one before it (``call.waits``; tenacity's attempt n is our n + 1); an
        exception ends them at once.

        tenacity runs the loop; the decisions are the pure policy's, made in ``_attempt``. The
        first attempt goes straight (building a ``Retrying`` costs more than most calls' parsing).
        """
        import tenacity  # noqa: PLC0415 - loaded on first use: the first retry imports it

        attempts = itertools.count(2)
        retrying = tenacity.Retrying(
            sleep=self._sleep,
            before_sleep=None,
            wait=lambda state: call.waits.get(state.attempt_number + 1) or 0.0,
            retry=lambda state: (
                not state.outcome.failed  # type: ignore[union-attr]
                and call.waits.get(state.attempt_number + 1) is not None
            ),
            stop=tenacity.stop_never,
            reraise=True,
        )
        self._sleep(call.waits.get(1) or 0.0)
        return retrying(lambda: self._attempt(call, next(attempts)))

    def _attempt(self, call: Call, attempt: int) -> Outcome:
        told = False
        for again in range(MAX_ADMISSIONS, 0, -1):
            slot = self._admit(call)  # the limiter: a slot of the shared pace, after a cooldown
            if isinstance(slot, Failure):
                return self._settle(call, slot, attempt, None, None)
            now = self._clock()
            timeout = attempt_timeout(self.timeout, now=now, deadline=call.deadline)
            if timeout is None:
                passed = Failure(timed_out=True, reached_server=False, detail="the deadline passed")
                return self._settle(call, passed, attempt, slot, None)
            if self._forked:
                self._after_fork()
            if self.hooks["request"] and not told:  # an event costs a few microseconds
                run_hooks(self.hooks["request"], call.event(attempt))
                told = True
            if again == 1 or not voided(self.limiter, slot):
                break
            self.limiter.feedback(call.now(self._clock()), 0, None, slot)  # a 429 came: wait
        assert isinstance(slot, Slot) and timeout is not None  # noqa: PT018 - for the type checker
        started = time.perf_counter()
        failure: Failure | None = None
        budget = attempt_budget(timeout, now=now, deadline=call.deadline)
        with Bound(max(0.0, budget - call.limiter_time)) as bound:  # the limiter's time counts
            try:
                answer = self._exchange(
                    call.method, call.path, call.params, call.json, timeout, bound
                )
            except _NETWORK_ERRORS as exc:
                failure = _classify(exc, timed_out=bound.fired)
            except BaseException:  # an answer too large, an interrupt: the slot is spent
                self.limiter.feedback(call.now(self._clock()), 0, None, slot)
                raise
        outcome: Outcome = answer if failure is None else failure
        detail = outcome.status_code if isinstance(outcome, Answer) else outcome.detail
        log_attempt(call.method, call.path, detail, attempt, started)
        return self._settle(call, outcome, attempt, slot, started)

    def _admit(self, call: Call) -> Slot | Failure:
        """Wait for a slot of the limiter (``_attempt.admission``), sleeping in this thread.

        Raises:
            RateLimitError: The wait is longer than ``max_retry_wait`` (nothing is sent).
        """
        return _flow.run(admission(call, self._clock), self._admission_step)

    def _admission_step(self, op: AdmissionOp) -> object:
        """Carry out one operation of the admission: a sleep, or a limiter call, in this thread."""
        if isinstance(op, Sleep):
            return self._sleep(op.seconds)
        return consult(self.limiter, op)

    def _settle(
        self, call: Call, outcome: Outcome, attempt: int, slot: Slot | None, started: float | None
    ) -> Outcome:
        feedback = settle(call, outcome, attempt, slot, self._clock)
        if feedback is not None:
            self.limiter.feedback(*feedback)
        report(call, outcome, attempt, started, self.hooks)
        return outcome

    def _exchange(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        json: Mapping[str, str] | None,
        timeout: Timeout,
        bound: Bound,
    ) -> Answer:
        direct = self._direct
        if direct is None:
            # the session's own response hooks, then ours (a request's list replaces the
            # session's): a redirect is read here, within the cap, before requests reads it whole
            guard = functools.partial(_read_redirect, self.session, self.max_body, bound)
            try:
                response = self.session.request(
                    method,
                    self.base_url + path,
                    params=params,
                    json=json,
                    headers=self._headers,
                    hooks={"response": [*self.session.hooks.get("response", ()), guard]},
                    timeout=timeout,
                    allow_redirects=False,
                    stream=True,
                    proxies=self._proxies,
                )
            except _Redirected as redirected:
                return redirected.answer
        else:
            response = self.session.send(
                direct.prepare(method, path, params, json),
                timeout=timeout,
                allow_redirects=False,
                stream=True,
                proxies=direct.proxies,
                verify=self.session.verify,
                cert=None,
            )
        return _answer(response, self.max_body, bound)

    def _after_fork(self) -> None:
        """In a fork's child: drop the parent's pooled connections without touching them."""
        self._forked = False
        if self.owns_session:
            self.session = _new_session(self.base_url)
            return
        for adapter in self.session.adapters.values():
            if isinstance(adapter, HTTPAdapter):  # new pools; the parent's stay untouched
                saved: Any = adapter
                adapter.proxy_manager = {}
                adapter.init_poolmanager(
                    saved._pool_connections, saved._pool_maxsize, block=saved._pool_block
                )


@dataclass(frozen=True, slots=True)
class _Direct:
    """The own session's settings, merged once: what ``Session.request`` would merge each time
    (the session's default headers under ours; the proxies read from the environment)."""

    prefix: str
    """``base_url`` as requests writes it in a request (host IDNA-encoded, path requoted)."""
    headers: dict[str, str]
    proxies: dict[str, str]

    def prepare(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        json: Mapping[str, str] | None,
    ) -> requests.PreparedRequest:
        """The request ``PreparedRequest.prepare`` would build, byte for byte, from parts that
        need none of its checks: the base URL was prepared once (``_prefix``), ``_wire``'s paths
        are quoted already, the headers are ours. ``prepare`` costs 25-50 µs a call (a cookie jar
        built and asked for a header; the query's parameters run through ``isinstance`` checks
        against typing protocols), a third of a request's own CPU.
        """
        request = requests.PreparedRequest()
        request.method = method
        request.url = self.prefix + path + ("?" + urlencode(params) if params else "")
        request.headers = CaseInsensitiveDict(self.headers)
        if json is not None:
            body = jsonlib.dumps(json, allow_nan=False).encode("utf-8")
            request.headers["Content-Length"] = str(len(body))
            request.headers["Content-Type"] = "application/json"
            request.body = body
        elif method not in ("GET", "HEAD"):
            request.headers["Content-Length"] = "0"
        # no cookie to send; and on a redirect (never followed) requests reads this jar
        request.prepare_cookies(_NO_COOKIES)
        return request


_NO_COOKIES = RequestsCookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
"""An empty jar that takes no cookie: the one every request the own session prepares carries."""


def _prefix(base_url: str) -> str:
    """``base_url`` as ``PreparedRequest.prepare_url`` writes it (without its trailing slash).

    Raises:
        ValueError: requests cannot write it (a host IDNA refuses, say).
    """
    probe = requests.PreparedRequest()
    try:
        probe.prepare_url(base_url + "/", None)
    except requests.RequestException as exc:
        raise ValueError(f"base_url is not a valid URL: {base_url!r} ({exc})") from None
    return str(probe.url).removesuffix("/")


_TRANSPORTS: weakref.WeakSet[Transport] = weakref.WeakSet()


def _mark_forked() -> None:
    for transport in list(_TRANSPORTS):
        transport._forked = True


os.register_at_fork(after_in_child=_mark_forked)


# --- reading an answer -------------------------------------------------------------------------


class _Redirected(Exception):  # noqa: N818 - not an error: it carries the answer out of requests
    """A redirect answer read by ``_read_redirect``, carried out of ``Session.send``."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status_code)
        self.answer = answer


def _read_redirect(
    session: requests.Session, max_body: int, bound: Bound, response: requests.Response, **_: Any
) -> None:
    """A response hook for a caller's session: ``Session.send`` reads the whole body of a
    redirect (decompressed, uncapped) to build ``Response.next``, even one it does not follow.
    Read it first, within the cap and the attempt's bound, and leave with it.

    Raises:
        _Redirected: The answer is a redirect (its body read).
        APIResponseValidationError: Its body is larger than ``max_body``.
    """
    if session.get_redirect_target(response) is not None:
        raise _Redirected(_answer(response, max_body, bound))


class _InterimAnswer(http.client.HTTPException):
    """An interim status (1xx) taken for the final answer: a caller's session reads no further
    (only the own session's connections skip interim answers, ``_FinalResponse``), and a ``101``
    was never asked for. No answer was delivered: a failure on the network, which the request
    may have reached (a purchase's outcome is unknown; a GET is tried again)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"an interim answer (HTTP {status}) and no final one")


def _answer(response: requests.Response, max_body: int, bound: Bound) -> Answer:
    """The response as plain values, its body read within the cap and the bound; closed after.

    Raises:
        _InterimAnswer: Its status is below 200. Its connection is closed, never pooled again:
            the final answer may still come on it and would be read as the next request's.
    """
    if response.status_code < 200:
        response.close()  # unread: urllib3 closes the connection instead of pooling it
        raise _InterimAnswer(response.status_code)
    with response:
        headers = dict(response.headers)
        content = _read_body(response.raw, headers, max_body, bound)
        return Answer(response.status_code, headers, content)


def _read_body(raw: Any, headers: Mapping[str, str], max_body: int, bound: Bound) -> bytes:
    """Read and decompress a body within ``max_body`` bytes and the attempt's wall-clock bound.

    Raises:
        APIResponseValidationError: The body (or its declared length) is over ``max_body``, or
            its encoding is one the client did not ask for.
    """
    reader = BodyReader(headers, max_body)
    for chunk in raw.stream(_CHUNK, decode_content=False):
        reader.feed(chunk)
        if time.monotonic() > bound.deadline:
            raise TimeoutError("the answer took longer than the timeout")
    return reader.body()


# --- failures ----------------------------------------------------------------------------------


def _classify(exc: BaseException, *, timed_out: bool) -> Failure:
    never = _never_connected(exc)
    timeouts = (requests.Timeout, TimeoutError, urllib3.exceptions.TimeoutError)
    timed_out = timed_out or isinstance(exc, timeouts)
    detail = str(exc) if isinstance(exc, _InterimAnswer) else type(exc).__name__
    return Failure(timed_out=timed_out, reached_server=not never, detail=detail)


def _never_connected(exc: BaseException) -> bool:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason: Any = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError)


# --- the client's own session ------------------------------------------------------------------


class _FinalResponse(http.client.HTTPResponse):
    """A response that reads past interim answers: every 1xx but 101 (``103 Early Hints``,
    ``102 Processing``) is followed by the final one (RFC 9110, section 15.2); http.client skips
    only ``100 Continue``, and would take a 103 before a purchase's 200 for the answer."""

    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not (100 <= status < 200) or status == 101:
                return version, status, reason
            http.client._read_headers(self.fp)  # type: ignore[attr-defined]


class _BoundedHTTPConnection(HTTPConnection):
    """A connection that registers with the running attempt's wall-clock bound (and reads past
    interim answers)."""

    response_class = _FinalResponse

    def connect(self) -> None:
        _attach(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)
        super().request(*args, **kwargs)


class _BoundedHTTPSConnection(HTTPSConnection):
    response_class = _FinalResponse

    def connect(self) -> None:
        _attach(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)
        super().request(*args, **kwargs)


def _attach(conn: HTTPConnection) -> None:
    bound = current_bound()
    if bound is not None:
        bound.attach(conn)


class _BoundedPool(HTTPConnectionPool):
    ConnectionCls = _BoundedHTTPConnection


class _BoundedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _BoundedHTTPSConnection


class _Adapter(HTTPAdapter):
    """Pools whose connections the watchdog can cut, and no retries of urllib3's own."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        pools = {"http": _BoundedPool, "https": _BoundedHTTPSPool}
        self.poolmanager.pool_classes_by_scheme = pools


class _Session(requests.Session):
    """The own session: it follows no redirect, not even to build ``Response.next`` (which
    ``Session.send`` does for every 3xx with a ``Location``, reading the whole body first,
    decompressed and uncapped: a compressed bomb in a 302 would have exhausted memory)."""

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None


def _new_session(base_url: str) -> requests.Session:
    """The client's own session: a pool for 32 threads, no retries of its own, and the
    environment (proxies, CA bundle) read once here instead of on every request.

    With ``trust_env`` on, requests scans the whole environment for proxy settings on every
    request (about a third of a call's CPU on a machine with many variables). All requests go to
    ``base_url``'s origin, so its proxy settings are resolved once (``send`` ignores them for
    loopback). The CA bundle comes from ``_tls.ca_bundle``, checked here. netrc credentials are
    not wanted: the key travels as ``X-API-Key``. Cookies are refused: the API sets none, and a
    server's would only accumulate.
    """
    session = _Session()
    adapter = _Adapter(pool_connections=4, pool_maxsize=DEFAULT_POOL_SIZE, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.proxies = dict(requests.utils.get_environ_proxies(base_url))
    bundle = ca_bundle(base_url=base_url)  # the async client's variables, in its order
    if bundle is not None:
        session.verify = bundle.path
    session.trust_env = False
    # the API sets no cookie; a server's would grow the jar for the life of the client
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""
