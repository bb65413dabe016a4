"""The sandbox's HTTP semantics without sockets: a request in, a reply out.

Owns the routes (the documented API under ``/api/v1``, checked against ``openapi.json``; the
description itself at ``/openapi.json``; the admin routes under ``/_sandbox/``, in ``_admin``), the
documented bodies and error envelopes, fault injection, the rate limit, automatic mail, the
"order bought" hooks and the log of received requests. It must not do I/O: delays, dropped
connections and truncated bodies are described in the ``Reply`` and carried out by ``_server``.
One lock serialises every change of state; the hooks run outside it.

Order of judgement for an API request: a queued fault; then 404 (no such path) or 405 (method not
documented for it, with ``Allow``); the rate limit (429); the key (401); the description (400);
then the service's own rules (``_state``).
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import _admin, _spec
from ._automail import AutoMail
from ._faults import Fault, FaultQueue
from ._records import RecordedRequest, RequestLog
from ._reply import JSON_TYPE, Reply, error, json_reply
from ._state import SandboxError, SandboxState

__all__ = ["API_PREFIX", "Fault", "RecordedRequest", "Reply", "SandboxApp"]

API_PREFIX = "/api/v1"
ADMIN_PREFIX = "/_sandbox"
OPENAPI_PATH = "/openapi.json"
logger = logging.getLogger("kopechka.testing")
_STATUS_TEXT = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
                429: "Too many requests", 500: "Internal server error", 502: "Bad gateway",
                503: "Service unavailable", 504: "Gateway timeout"}  # fmt: skip
OrderHook = Callable[[dict[str, Any]], None]


def _fault_body(status: int, kind: str) -> Reply:
    if kind == "json":
        return error(status, _STATUS_TEXT.get(status, f"HTTP {status}"))
    if kind == "html":
        text = f"<html><head><title>{status} {_STATUS_TEXT.get(status, 'Error')}</title></head>"
        body = (text + "<body><h1>nginx</h1></body></html>").encode()
        return Reply(status, body, [("Content-Type", "text/html")])
    if kind == "empty":
        return Reply(status, b"", [("Content-Type", "application/json")])
    if kind == "malformed":
        return Reply(
            status, b'{"success": true, "data": {"bal', [("Content-Type", "application/json")]
        )
    reply = json_reply(status, {"success": True, "data": {"balance": 1.0}})  # truncated
    reply.truncate = True
    return reply


def _rate_limit(value: tuple[int, float] | None) -> tuple[int, float] | None:
    if value is None:
        return None
    try:
        count, per = value
    except (TypeError, ValueError):
        raise ValueError(f"rate_limit must be (requests, per_seconds), got {value!r}") from None
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"rate_limit requests must be an integer >= 1, got {count!r}")
    if isinstance(per, bool) or not isinstance(per, (int, float)):
        raise ValueError(f"rate_limit seconds must be a number, got {per!r}")
    if not (math.isfinite(per) and 0 < per <= 86400):
        raise ValueError(f"rate_limit seconds must be above 0 and at most a day, got {per!r}")
    return count, float(per)


class SandboxApp:
    """The emulated API over a ``SandboxState``, with faults, a rate limit and a request log.

    Args:
        state: The service's state.
        rate_limit: ``(requests, per_seconds)`` answered past with 429, or ``None``.
        ticker: The monotonic clock of the rate limit (the state's, by default).
        seed: Seeds the random faults and the automatic mail's codes (``None``: unseeded).
        auto_mail: The mail each new order receives, or ``None``.
        admin_token: When set, the admin routes require it in ``X-Sandbox-Token``.

    Raises:
        ValueError: An argument is out of range.
    """

    def __init__(
        self,
        state: SandboxState,
        *,
        rate_limit: tuple[int, float] | None = None,
        ticker: Callable[[], float] | None = None,
        seed: int | str | None = None,
        auto_mail: AutoMail | None = None,
        admin_token: str | None = None,
    ) -> None:
        self.state = state
        self.lock = threading.RLock()
        self.requests = RequestLog()
        self.rate_limit = _rate_limit(rate_limit)
        self.auto_mail = auto_mail
        self.admin_token = admin_token
        self.on_order: list[OrderHook] = []
        """Called with each order's JSON (as bought) after it is bought, outside the lock and
        before its answer is sent."""
        self._ticker = ticker or state.monotonic
        self._window: deque[float] = deque()
        self._seed = seed
        self.fault_queue = FaultQueue()
        self._codes = random.Random()
        self._reseed()

    def _reseed(self) -> None:
        seed = self._seed
        self.fault_queue.rng.seed(None if seed is None else f"{seed}:faults")
        self._codes.seed(None if seed is None else f"{seed}:mail")

    @property
    def faults(self) -> list[Fault]:
        """The queued faults, first to apply first."""
        return self.fault_queue.faults

    # --- the sandbox's own operations (also reached by the admin routes) ---

    def add_fault(self, fault: Fault) -> None:
        """Queue a fault; faults apply first-queued first.

        Raises:
            SandboxError: 400, a value a server cannot act on.
        """
        with self.lock:
            self.fault_queue.add(fault)

    def reset(self) -> None:
        """Back to as constructed: state, faults, hooks, request log, rate window, random draws.
        The clock keeps its time."""
        with self.lock:
            self.state.reset()
            self.fault_queue.clear()
            self.requests.clear()
            self._window.clear()
            self.on_order.clear()
            self._reseed()

    def deliver(
        self, order_id: str | None, to: str | None, sender: str, subject: str, content: str,
        after: float = 0.0,
    ) -> dict[str, Any]:  # fmt: skip
        """Deliver a mail to an order named by id or by its address (exactly one of them).

        Raises:
            SandboxError: 400 for neither or both, 404 for no such order, 400 for a closed one.
        """
        if (order_id is None) == (to is None):
            raise SandboxError(400, "name the order by exactly one of order_id and to")
        with self.lock:
            target = order_id if order_id is not None else self.state.order_by_email(str(to))
            return self.state.deliver(target, sender, subject, content, after=after)

    def snapshot(self) -> dict[str, Any]:
        """The balance (a decimal string: exact for any JSON reader, none of which reads a number
        as a ``Decimal`` by default), order count and time, for checks and the admin route."""
        with self.lock:
            return {
                "balance": str(self.state.balance),
                "orders": self.state.order_count(),
                "now": self.state.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }

    def _rate_limited(self) -> float | None:
        if self.rate_limit is None:
            return None
        count, per = self.rate_limit
        now = self._ticker()
        while self._window and now - self._window[0] >= per:
            self._window.popleft()
        if len(self._window) >= count:
            return max(0.0, per - (now - self._window[0]))
        self._window.append(now)
        return None

    # --- requests ---

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Answer one request as the service would (never raises for any request)."""
        try:
            path, query = _split_target(target)
        except ValueError:  # more query fields than parse_qs allows
            return error(400, "Too many query parameters")
        lowered = {k.lower(): v for k, v in headers.items()}
        if path == OPENAPI_PATH:
            return self._openapi(method)
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            return _admin.handle(self, method, path[len(ADMIN_PREFIX) :], query, lowered, body)
        with self.lock:
            self.requests.append(
                RecordedRequest(method, path, query, dict(headers), body, time.monotonic())
            )
            reply = self._api(method, path, query, lowered, body)
            # the service's clock, as every HTTP server dates its answers (RFC 9110, 6.6.1):
            # on virtual time the sandbox's own, so ``advance`` ages orders for a sweep
            reply.headers.append(("Date", format_datetime(self.state.now(), usegmt=True)))
        if reply.bought is not None:
            self._announce(reply.bought)
        return reply

    def _openapi(self, method: str) -> Reply:
        if method != "GET":
            return error(405, f"Method {method} not allowed", [("Allow", "GET")])
        return Reply(200, _spec.served(API_PREFIX), [JSON_TYPE])

    def _announce(self, order: dict[str, Any]) -> None:
        for hook in list(self.on_order):
            try:
                hook(dict(order))
            except Exception:  # a test's hook must not take the server down
                logger.exception("an on_order hook raised for %s", order.get("orderId"))

    def _api(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Reply:
        if not path.startswith(API_PREFIX + "/"):
            return error(404, "Route not found")
        route = path[len(API_PREFIX) :]
        fault = self.fault_queue.take(method, route)
        if fault is not None:
            return self._faulted(fault, method, route, query, headers, body)
        return self._serve(method, route, query, headers, body)

    def _faulted(
        self, fault: Fault, method: str, route: str, query: dict[str, str],
        headers: dict[str, str], body: bytes,
    ) -> Reply:  # fmt: skip
        served = None
        if fault.execute or (fault.status is None and not fault.drop):
            served = self._serve(method, route, query, headers, body)  # the state changes
        if fault.drop:
            reply = Reply(0)
        elif fault.status is not None:
            reply = _fault_body(fault.status, fault.body)
        else:
            assert served is not None
            reply = served
        retry_after = fault.retry_after_text()
        if retry_after is not None:
            reply.headers.append(("Retry-After", retry_after))
        reply.delay, reply.drop, reply.interim = float(fault.delay), fault.drop, fault.interim
        reply.bought = served.bought if served is not None else None
        return reply

    def _serve(
        self, method: str, route: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Reply:
        found = _spec.resolve(route)
        if found is None:
            return error(404, "Route not found")
        template, path_params = found
        operation = _spec.operation(method, template)
        if operation is None:
            allowed = ", ".join(_spec.methods_for(template))
            return error(405, f"Method {method} not allowed", [("Allow", allowed)])
        wait = self._rate_limited()
        if wait is not None:
            return error(429, "Rate limit exceeded", [("Retry-After", str(math.ceil(wait)))])
        try:
            self.state.authenticate(headers.get("x-api-key"))
            values, data = _spec.check_request(operation, path_params, query, body)
            return getattr(self, "_op_" + operation.operation_id)(values, data)  # type: ignore[no-any-return]
        except SandboxError as exc:
            return error(exc.status, exc.message)

    # --- the documented operations, by operationId ---

    def _op_getProfile(self, values: dict[str, Any], data: Any) -> Reply:  # noqa: N802
        return json_reply(200, {"success": True, "data": self.state.profile()})

    def _op_getBalance(self, values: dict[str, Any], data: Any) -> Reply:  # noqa: N802
        return json_reply(200, {"success": True, "data": {"balance": self.state.balance}})

    def _op_getDomains(self, values: dict[str, Any], data: Any) -> Reply:  # noqa: N802
        return json_reply(200, {"success": True, "data": self.state.domain_list()})

    def _op_listOrders(self, values: dict[str, Any], data: Any) -> Reply:  # noqa: N802
        orders, pagination = self.state.list_orders(
            values.get("page", 1), values.get("limit", 10),
            values.get("status") or None, values.get("domain") or None,
        )  # fmt: skip
        return json_reply(200, {"success": True, "data": orders, "pagination": pagination})

    def _op_createOrder(self, values: dict[str, Any], data: Any) -> Reply:  # noqa: N802
        order = self.state.create_order(data.get("domain"), data.get("site"))
        if self.auto_mail is not None:
            code = f"{self._codes.randrange(10**6):06d}"
            sender, subject, content = self.auto_mail.render(order, code)
            self.state.deliver(
                order["orderId"], sender, subject, content, after=self.auto_mail.delay
            )
        reply = json_reply(
            200, {"success": True, "message": "Order created successfully", "data": order}
        )
        reply.bought = order
        return reply

    def _op_getOrder(self, values: dict[str, Any], data: Any) -> Reply:  # noqa: N802
        return json_reply(200, {"success": True, "data": self.state.get_order(values["orderId"])})

    def _op_cancelOrder(self, values: dict[str, Any], data: Any) -> Reply:  # noqa: N802
        refund, message = self.state.cancel_order(values["orderId"])
        return json_reply(200, {"success": True, "message": message, "refundAmount": refund})

    def _op_getMessages(self, values: dict[str, Any], data: Any) -> Reply:  # noqa: N802
        messages, order = self.state.messages(values["orderId"])
        return json_reply(200, {"success": True, "messages": messages, "order": order})

    def _op_startPolling(self, values: dict[str, Any], data: Any) -> Reply:  # noqa: N802
        polling = self.state.start_polling(values["orderId"])
        return json_reply(
            200, {"success": True, "message": "Email polling started", "data": polling}
        )


def _split_target(target: str) -> tuple[str, dict[str, str]]:
    """The path (still percent-encoded) and the query (last value of each name) of a target."""
    if target.startswith(("http://", "https://")):  # absolute form, as sent to a proxy
        parts = urlsplit(target)
        path, raw_query = parts.path or "/", parts.query
    else:
        path, _, raw_query = target.partition("#")[0].partition("?")
    pairs = parse_qs(raw_query, keep_blank_values=True, max_num_fields=1000)
    return path, {k: v[-1] for k, v in pairs.items()}
