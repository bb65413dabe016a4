"""Sending one call with httpx2 (or httpx), under the pure policy of ``_policy``: the async driver.

The only module that sends with the HTTP stack ``_httpx`` chose. It sends an attempt, reads the
answer within the body cap (``_attempt.BodyReader``) and the attempt's wall-clock budget, classifies
network failures, and asks ``_policy`` whether and when to try again, in a loop of a few lines: the
same decisions as the sync driver, awaited. It returns the final ``Answer`` whatever its status, and
raises only ``APIConnectionError``/``APITimeoutError`` (network) and ``APIResponseValidationError``
(an answer too large to read). Cancelling the task cancels the attempt at once.

What it guarantees against a hostile server, proxy or environment:

* redirects are never followed (``follow_redirects=False`` on every request, whatever the client);
* its own ``httpx.AsyncClient`` ignores the environment (``trust_env=False``) and reads the proxy
  and CA settings once, at construction; a loopback ``base_url`` never goes through a proxy. A
  caller's ``http_client`` is used as the caller configured it (proxies, certificates, mounts),
  except that one which would send a loopback ``base_url`` through a proxy (the environment's,
  or its own) is refused at construction: the key would reach the proxy in clear text;
* an attempt lasts at most its connect + read timeout in wall-clock time (and never past the
  caller's deadline), however slowly the body drips;
* the limiter (``rate_limit=``, the shared cooldown after a 429) and the event hooks work as in
  the sync client, through the same ``_attempt`` pieces; a limiter other than the in-process one
  (``RedisLimiter``, or yours) is called from a few threads of the client's own, so the loop never
  waits on its round trips, nor do they queue behind the program's work in the default executor
  (a slot it grants to a task cancelled meanwhile is given back);
* no more than ``max_body`` bytes are kept, after decompression.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import functools
import logging
import sys
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from types import ModuleType
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from . import _flow
from ._attempt import (
    CALL_IDS,
    MAX_ADMISSIONS,
    AdmissionOp,
    Admit,
    BodyReader,
    Call,
    GiveBack,
    LimiterCall,
    Reserve,
    Sleep,
    admission,
    consult,
    ended,
    log_attempt,
    network_error,
    report,
    settle,
    unclaimed,
    voided,
)
from ._config import USER_AGENT
from ._face import CLOSED
from ._hooks import Hook, await_hooks, run_hooks
from ._httpx import httpx, network_errors, stack_of
from ._limits import IN_PROCESS, Limiter, RateLimiter, Slot
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
from ._wire import is_loopback

__all__ = ["ASYNC_POOL_SIZE", "AsyncTransport"]

logger = logging.getLogger("kopechka")

ASYNC_POOL_SIZE = 32
"""Requests in flight at once, and connections kept open, by the async client's own pool: hundreds
of concurrent waits share them (httpcore's pool does work in proportion to its connections on every
request, so more is slower on a busy loop). A request waits for its turn within its timeout."""

LIMITER_THREADS = 4
"""Threads per client that call a limiter other than the in-process one (``RedisLimiter``, or
yours): each call is one short round trip, so a few carry a crowd of requests."""

T = TypeVar("T")


class AsyncTransport:
    """An ``httpx.AsyncClient``, the key header and the retry policy: sends calls, returns final
    answers."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: Timeout,
        policy: RetryPolicy,
        http_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_body: int = DEFAULT_MAX_BODY,
        limiter: Limiter | None = None,
        hooks: Mapping[str, tuple[Hook, ...]] | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.policy = policy
        self.max_body = max_body
        self.owns_client = http_client is None
        # The own client's one transport (the proxy, if any, inside it), sent to directly: see
        # ``_exchange``. A caller's client is sent through, as the caller configured it.
        self._direct: httpx.AsyncHTTPTransport | None = None
        if http_client is None:
            self._direct = new_transport(base_url)
            http_client = new_client(self._direct)
        else:
            check_route(http_client, base_url)
        self.client = http_client
        # a caller's client may be of the other stack (httpx beside httpx2): its own timeouts
        # and exceptions, so that either stack's failures map to the same kopechka errors
        self._stack = stack_of(http_client)
        self._errors = network_errors(self._stack)
        self._headers = {
            "X-API-Key": api_key,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
        }
        # The own client has nothing to merge per request (no base URL, cookies, params or auth):
        # requests are built from its headers merged with ours once, here. A caller's client
        # builds them (``build_request``), applying whatever the caller configured.
        self._direct_headers = httpx.Headers(self.client.headers if self._direct else None)
        self._direct_headers.update(self._headers)
        self._sleep = sleep
        self._clock = clock
        self._timeouts = {timeout: _httpx_timeout(self._stack, timeout)}
        # at most a pool's worth of requests inside httpx at once: httpcore matches every queued
        # request against every connection each time one starts or ends (quadratic); waiting
        # here is a plain queue (500 concurrent waits: 3 s instead of 30)
        self._gate = asyncio.Semaphore(ASYNC_POOL_SIZE)
        self._in_flight = [0]  # requests inside ``_exchange``, derived clients' included
        self._use(limiter if limiter is not None else RateLimiter())
        self.hooks: Mapping[str, tuple[Hook, ...]] = hooks or {"request": (), "response": ()}

    def _use(self, limiter: Limiter) -> None:
        """Take ``limiter``: the in-process ones only take a lock and are called in place; any
        other may do I/O, and is called from threads of this transport's own (the default
        executor may be busy with the program's blocking work: a request must not queue
        behind it)."""
        self.limiter = limiter
        self._offload = not isinstance(limiter, IN_PROCESS)
        self._executor: ThreadPoolExecutor | None = None
        if self._offload:
            self._executor = ThreadPoolExecutor(LIMITER_THREADS, "kopechka-limiter")
        self.owns_executor = self._offload

    def derive(
        self, *, timeout: Timeout, policy: RetryPolicy, limiter: Limiter | None = None
    ) -> AsyncTransport:
        """The same key, client, gate, limiter (unless given) and hooks with other settings; it
        never closes the httpx client (its owner does)."""
        derived = copy.copy(self)
        derived.timeout, derived.policy, derived.owns_client = timeout, policy, False
        derived.owns_executor = False
        derived._timeouts = {timeout: _httpx_timeout(self._stack, timeout)}
        if limiter is not None:
            derived._use(limiter)
        return derived

    async def aclose(self) -> None:
        """Close the client, and the limiter's threads, if this transport created them (what
        those threads were handed is still done; a limiter call after this runs in a thread of
        its own)."""
        if self.owns_client:
            await self.client.aclose()
        if self.owns_executor and self._executor is not None:
            self._executor.shutdown(wait=False)

    async def send(
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
            RuntimeError: The client was closed.
        """
        if self.client.is_closed:
            raise RuntimeError(CLOSED)
        policy = (
            self.policy if max_retries is None else replace(self.policy, max_retries=max_retries)
        )
        call = Call(method, path, params, json, idempotent, deadline, policy, next(CALL_IDS))
        attempt = 1
        try:
            while True:  # each attempt decides its own wait (None: stop); an exception ends it
                outcome = await self._attempt(call, attempt)
                wait = call.waits.get(attempt)
                if wait is None:
                    break
                await self._sleep(wait)
                attempt += 1
        except BaseException as exc:  # no final answer (the limiter refused, a cancellation...)
            await await_hooks(ended(call, exc, self.hooks))
            raise
        if isinstance(outcome, Failure):
            raise network_error(outcome, method, path)
        return outcome

    async def _attempt(self, call: Call, attempt: int) -> Outcome:
        told = False
        for again in range(MAX_ADMISSIONS, 0, -1):
            slot = await self._admit(call)  # the limiter: a slot of the shared pace
            if isinstance(slot, Failure):
                return await self._settle(call, slot, attempt, None, None)
            now = self._clock()
            timeout = attempt_timeout(self.timeout, now=now, deadline=call.deadline)
            if timeout is None:
                passed = Failure(timed_out=True, reached_server=False, detail="the deadline passed")
                return await self._settle(call, passed, attempt, slot, None)
            if self.hooks["request"] and not told:  # an event costs a few microseconds
                await await_hooks(run_hooks(self.hooks["request"], call.event(attempt)))
                told = True
            if again > 1 and voided(self.limiter, slot):  # a 429 came: wait with the others
                self._spent(call.now(self._clock()), slot)
                continue
            outcome = await self._send(call, attempt, slot, timeout, now, check=again > 1)
            if outcome is not None:
                return outcome
        raise AssertionError("unreachable: the last admission sends")  # pragma: no cover

    async def _send(
        self, call: Call, attempt: int, slot: Slot, timeout: Timeout, now: float, *, check: bool
    ) -> Outcome | None:
        """Send the attempt in ``slot``; ``None`` if a 429 voided the slot while the request
        waited for a connection (``check``: it is looked at when the request's head goes)."""
        started, sending = time.perf_counter(), [False]
        budget = attempt_budget(timeout, now=now, deadline=call.deadline)
        budget = max(0.0, budget - call.limiter_time)  # the limiter's round trips count
        url = self.base_url + call.path
        guard = slot if check and hasattr(self.limiter, "valid") else None
        exchange = self._exchange(call.method, url, call.params, call.json, timeout, sending, guard)
        failure: Failure | None = None
        try:
            if sys.version_info >= (3, 11):
                async with asyncio.timeout(budget):
                    answer = await exchange
            else:  # pragma: no cover - Python 3.10 has no asyncio.timeout
                answer = await _within(exchange, budget)
        except self._errors as exc:
            failure = _classify(self._stack, exc)
        except asyncio.TimeoutError:  # the wall-clock budget ran out (queued, or a dripping answer)
            failure = Failure(timed_out=True, reached_server=sending[0], detail="TimeoutError")
        except _Voided:  # nothing of it was sent
            self._spent(call.now(self._clock()), slot)
            return None
        except BaseException:  # an answer too large, a cancellation: the slot is spent
            self._spent(call.now(self._clock()), slot)
            raise
        outcome: Outcome = answer if failure is None else failure
        detail = outcome.status_code if isinstance(outcome, Answer) else outcome.detail
        log_attempt(call.method, call.path, detail, attempt, started)
        return await self._settle(call, outcome, attempt, slot, started)

    async def _admit(self, call: Call) -> Slot | Failure:
        """Wait for a slot of the limiter (``_attempt.admission``), awaiting each sleep.

        Raises:
            RateLimitError: The wait is longer than ``max_retry_wait`` (nothing is sent).
        """
        step = functools.partial(self._admission_step, call)
        return await _flow.arun(admission(call, self._clock), step)

    async def _admission_step(self, call: Call, op: AdmissionOp) -> object:
        """Carry out one operation of ``call``'s admission: a sleep, awaited, or a limiter call
        (in the limiter's threads, unless it is the in-process one)."""
        if isinstance(op, Sleep):
            return await self._sleep(op.seconds)
        if not self._offload:
            return consult(self.limiter, op)
        return await self._offloaded(call, op)

    async def _offloaded(self, call: Call, op: LimiterCall) -> object:
        """Run a limiter call in the limiter's threads. If the task is cancelled meanwhile, the
        call still ends there, and the admission goes on from its answer in that thread up to
        its next sleep, as if the task were still there; the slot it would have sent with is
        given back (even if the event loop is gone by then)."""
        future = self._submit(consult, self.limiter, op)
        try:
            return await asyncio.shield(asyncio.wrap_future(future))
        except asyncio.CancelledError:
            if not isinstance(op, GiveBack):  # a give-back has nothing to follow
                future.add_done_callback(functools.partial(self._give_back, call, op))
            raise

    def _give_back(
        self, call: Call, op: Reserve | Admit, future: concurrent.futures.Future[Any]
    ) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        slot = unclaimed(call, self._clock, self.limiter, op, future.result())
        if slot is not None:
            self._spent(self._clock(), slot)

    def _spent(self, now: float, slot: Slot) -> None:
        """Tell the limiter that ``slot`` went unanswered (status 0), without waiting for it."""
        if not self._offload:
            self.limiter.feedback(now, 0, None, slot)
            return
        self._submit(self.limiter.feedback, now, 0, None, slot).add_done_callback(_log_failure)

    def _submit(self, fn: Callable[..., T], *args: object) -> concurrent.futures.Future[T]:
        """Call ``fn`` in the limiter's threads; once the client is closed (they are told to
        end), in a thread of its own: a slot is always told about, a call in flight ends."""
        assert self._executor is not None
        try:
            return self._executor.submit(fn, *args)
        except RuntimeError:  # shut down
            future: concurrent.futures.Future[T] = concurrent.futures.Future()

            def run() -> None:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args))
                    except BaseException as exc:  # handed to whoever waits on the future
                        future.set_exception(exc)

            threading.Thread(target=run, name="kopechka-limiter-late", daemon=True).start()
            return future

    async def _settle(
        self, call: Call, outcome: Outcome, attempt: int, slot: Slot | None, started: float | None
    ) -> Outcome:
        feedback = settle(call, outcome, attempt, slot, self._clock)
        try:
            if feedback is not None and not self._offload:
                self.limiter.feedback(*feedback)
            elif feedback is not None:
                done = self._submit(self.limiter.feedback, *feedback)
                await asyncio.shield(asyncio.wrap_future(done))
        finally:  # a cancellation while the limiter is told still reaches the hooks
            await await_hooks(report(call, outcome, attempt, started, self.hooks))
        return outcome

    async def _exchange(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        json: Mapping[str, str] | None,
        timeout: Timeout,
        sending: list[bool],
        guard: Slot | None = None,
    ) -> Answer:
        limits = self._timeouts.get(timeout) or _httpx_timeout(self._stack, timeout)
        # while others are in flight (a 429 may come while this one queues for a connection or
        # connects), or through a caller's client (its pool may be smaller than our gate), the
        # request is looked at again when its head goes; alone, once inside the gate (the trace
        # costs ~2% of a request's CPU)
        extensions: dict[str, object] = {}
        if guard is not None and (self._direct is None or self._in_flight[0]):
            extensions["trace"] = self._guard(guard)
        self._in_flight[0] += 1
        try:
            return await self._exchange_gated(
                method, url, params, json, limits, sending, guard, extensions
            )
        finally:
            self._in_flight[0] -= 1

    async def _exchange_gated(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        json: Mapping[str, str] | None,
        limits: httpx.Timeout,
        sending: list[bool],
        guard: Slot | None,
        extensions: dict[str, object],
    ) -> Answer:
        async with self._gate:
            if guard is not None and voided(self.limiter, guard):
                raise _Voided
            sending[0] = True
            if self._direct is None:
                request = self.client.build_request(
                    method, url, params=params, json=json, headers=self._headers, timeout=limits,
                    extensions=extensions,
                )  # fmt: skip
                response = await self.client.send(request, stream=True, follow_redirects=False)
            else:
                response = await self._send_direct(method, url, params, json, limits, extensions)
            try:
                # a plain dict, names lowercased: every look-up is one dict get (httpx.Headers
                # decodes each name again on each access)
                headers = {
                    name.decode("latin-1").lower(): value.decode("latin-1")
                    for name, value in response.headers.raw
                }
                reader = BodyReader(headers, self.max_body)
                async for chunk in response.aiter_raw():
                    reader.feed(chunk)
                return Answer(response.status_code, headers, reader.body())
            finally:
                await response.aclose()

    async def _send_direct(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        json: Mapping[str, str] | None,
        limits: httpx.Timeout,
        extensions: dict[str, object],
    ) -> httpx.Response:
        """Send through the own client's transport, past ``AsyncClient.send``: what that adds
        (auth and redirect flows, event hooks, cookie extraction through ``http.cookiejar``)
        has nothing to do for a client that has no auth or hooks, follows no redirect and
        keeps no cookie, and cost about a fifth of a request's CPU.

        Raises:
            RuntimeError: The client was closed (as ``AsyncClient.send`` would say).
        """
        if self.client.is_closed:
            raise RuntimeError(CLOSED)
        request = httpx.Request(
            method, url, params=params, json=json, headers=self._direct_headers,
            extensions={"timeout": limits.as_dict(), **extensions},
        )  # fmt: skip
        assert self._direct is not None
        return await self._direct.handle_async_request(request)

    def _guard(self, slot: Slot) -> Callable[[str, object], Awaitable[None]]:
        """An httpcore trace that stops the request before its head is sent if a 429 voided
        ``slot`` meanwhile (while it queued for a connection, or connected)."""

        async def trace(event: str, info: object) -> None:
            if event.endswith("send_request_headers.started") and voided(self.limiter, slot):
                raise _Voided

        return trace


class _Voided(Exception):  # noqa: N818 - not an error: a slot a 429 voided before it went
    """The request was stopped before it was sent: its slot was voided by a 429."""


async def _within(exchange: Awaitable[T], budget: float) -> T:  # pragma: no cover - 3.10
    """``asyncio.wait_for`` without its loss of a cancellation: before 3.12 it returns the result
    of a call that ended as the task was cancelled, and the cancellation is gone.

    Raises:
        asyncio.TimeoutError: ``budget`` seconds passed (the call is cancelled first).
    """
    inner = asyncio.ensure_future(exchange)
    try:
        done, _ = await asyncio.wait({inner}, timeout=budget)
    except asyncio.CancelledError:
        inner.cancel()
        await asyncio.wait({inner})  # it ends before the cancellation goes on
        raise
    if done:
        return inner.result()
    inner.cancel()
    await asyncio.wait({inner})
    if not inner.cancelled():  # it ended meanwhile
        return inner.result()
    raise asyncio.TimeoutError


def _log_failure(future: concurrent.futures.Future[None]) -> None:
    """A feedback nobody awaits: its failure is logged, not left "never retrieved"."""
    if not future.cancelled() and future.exception() is not None:
        logger.warning("the rate limiter's feedback failed: %r", future.exception())


def _httpx_timeout(stack: ModuleType, timeout: Timeout) -> httpx.Timeout:
    connect, read = timeout
    return cast(
        "httpx.Timeout", stack.Timeout(connect=connect, read=read, write=read, pool=connect)
    )


def _classify(stack: ModuleType, exc: BaseException) -> Failure:
    """The same ``Failure`` for the same failure on either stack (tested on both)."""
    timed_out = isinstance(exc, (stack.TimeoutException, TimeoutError))
    never_sent = isinstance(exc, (stack.ConnectError, stack.ConnectTimeout, stack.PoolTimeout))
    return Failure(timed_out=timed_out, reached_server=not never_sent, detail=type(exc).__name__)


# --- the client's own httpx client -------------------------------------------------------------


def new_transport(base_url: str) -> httpx.AsyncHTTPTransport:
    """The async client's own transport (its connection pool): the environment read once, here.

    Proxies come from ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` and ``NO_PROXY`` as for any
    program, but never for a loopback ``base_url``; a CA bundle as ``_tls.ca_bundle`` reads it
    (the sync client's variables and order). Nothing is read on each request.

    Raises:
        ValueError: A CA bundle variable names a file that does not exist, a directory, or a
            file ``ssl`` cannot load.
    """
    host = urlsplit(base_url).hostname or ""
    bundle = ca_bundle(base_url=base_url)  # the sync client's variables, in its order
    return httpx.AsyncHTTPTransport(
        verify=True if bundle is None else bundle.context,
        trust_env=False,
        proxy=None if is_loopback(host) else _environ_proxy(base_url, host),
        limits=httpx.Limits(
            max_connections=ASYNC_POOL_SIZE, max_keepalive_connections=ASYNC_POOL_SIZE
        ),
    )


def new_client(transport: httpx.AsyncHTTPTransport) -> httpx.AsyncClient:
    """The async client's own ``httpx.AsyncClient`` over ``transport``: it owns and closes the
    transport. Requests go to the transport directly (``_send_direct``), so no cookie a server
    sets is ever read into its jar."""
    return httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False)


def check_route(client: httpx.AsyncClient, base_url: str) -> None:
    """Refuse a caller's client that would send requests for a loopback ``base_url`` anywhere
    but straight to it: through a proxy (``HTTP_PROXY``/``ALL_PROXY``... read by a client built
    with ``trust_env``, or its own ``proxy=``) or another mounted transport. The key would
    reach the proxy in clear text; the sync client sends past its session's proxies instead.

    Raises:
        ValueError: The client routes ``base_url`` to a mount (a proxy) of its own.
    """
    host = urlsplit(base_url).hostname or ""
    if not is_loopback(host):
        return
    pick = getattr(client, "_transport_for_url", None)
    if pick is not None:  # httpx's own choice: a mount, else the client's transport
        routed = pick(httpx.URL(base_url)) is not getattr(client, "_transport", None)
    else:  # pragma: no cover - an httpx without it: judge from the environment it trusts
        routed = client.trust_env and _environ_proxy(base_url, host) is not None
    if routed:
        raise ValueError(
            f"http_client would send requests for {base_url} through a proxy (or another "
            "mounted transport), and the API key with them: a loopback base_url is reached "
            "directly. Build it with trust_env=False, or set NO_PROXY to include "
            f"{host}, or leave http_client out"
        )


def _environ_proxy(base_url: str, host: str) -> str | None:
    proxies = urllib.request.getproxies_environment()
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not proxies or bypass(host, proxies):
        return None
    scheme = urlsplit(base_url).scheme
    return proxies.get(scheme) or proxies.get("all")
