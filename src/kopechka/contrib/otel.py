"""OpenTelemetry spans for kopechka: one span per API call, built on the client's event hooks.

``pip install "kopechka[otel]"`` (the OpenTelemetry API; your application brings the SDK), then::

    from kopechka.contrib.otel import instrument
    client = instrument(KopechkaClient())

Each call (``get_balance``, ``create_order``...) gets one CLIENT span named
``kopechka get_balance``, current while the call runs (so the span of
``opentelemetry-instrumentation-requests``, if you use it too, is its child), with
``http.request.method``, ``url.template``, ``http.response.status_code``,
``http.request.resend_count`` and ``error.type``, and one event per attempt (status, will-retry,
elapsed). This module owns the mapping from ``AttemptEvent`` to spans; it sees only what the hooks
see: never the key, a body, a code, an e-mail or an order id.
"""

from __future__ import annotations

import threading
from typing import Any

from .._client import KopechkaClient
from .._hooks import AttemptEvent

try:
    from opentelemetry import context, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError(
        'kopechka.contrib.otel needs OpenTelemetry: pip install ".[otel]" from a checkout, '
        'pip install "kopechka[otel]" from PyPI'
    ) from exc

__all__ = ["instrument"]


class _Spans:
    """Starts a span at a call's first attempt and ends it at its last answer."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        self._open: dict[int, tuple[trace.Span, object]] = {}
        self._lock = threading.Lock()

    def request(self, event: AttemptEvent) -> None:
        if event.attempt != 1:
            return
        span = self._tracer.start_span(
            f"kopechka {event.operation}",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": event.method,
                "url.template": event.path,
                "kopechka.operation": event.operation,
            },
        )
        token = context.attach(trace.set_span_in_context(span))
        with self._lock:
            self._open[event.call_id] = (span, token)

    def response(self, event: AttemptEvent) -> None:
        with self._lock:
            held = self._open.get(event.call_id)
            if held is not None and not event.will_retry:
                del self._open[event.call_id]
        if held is None:
            return
        span, token = held
        span.add_event("attempt", _attempt_attributes(event))
        if event.will_retry:
            return
        _finish(span, event)
        context.detach(token)  # type: ignore[arg-type]
        span.end()


def _attempt_attributes(event: AttemptEvent) -> dict[str, Any]:
    attributes: dict[str, Any] = {"attempt": event.attempt, "will_retry": bool(event.will_retry)}
    if event.status is not None:
        attributes["http.response.status_code"] = event.status
    if event.error is not None:
        attributes["error.type"] = event.error
    if event.elapsed is not None:
        attributes["elapsed_s"] = event.elapsed
    return attributes


def _finish(span: trace.Span, event: AttemptEvent) -> None:
    if event.attempt > 1:
        span.set_attribute("http.request.resend_count", event.attempt - 1)
    if event.status is not None:
        span.set_attribute("http.response.status_code", event.status)
    failed = event.error or (str(event.status) if event.status and event.status >= 400 else None)
    if failed:
        span.set_attribute("error.type", failed)
        span.set_status(Status(StatusCode.ERROR))


def instrument(
    client: KopechkaClient, tracer_provider: trace.TracerProvider | None = None
) -> KopechkaClient:
    """Add OpenTelemetry spans to a client's calls (and to clients it derives afterwards).

    Args:
        client: The client to instrument.
        tracer_provider: Where spans go; the global provider by default.

    Returns:
        The same client.
    """
    spans = _Spans(trace.get_tracer("kopechka", tracer_provider=tracer_provider))
    transport = client._transport
    transport.hooks = {
        "request": (*transport.hooks["request"], spans.request),
        "response": (*transport.hooks["response"], spans.response),
    }
    return client
