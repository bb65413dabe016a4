"""kopechka.contrib.otel with the OpenTelemetry SDK's in-memory exporter, and the requests
instrumentation's setting that keeps X-API-Key out of exported spans."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kopechka import APIResponseValidationError, NotFoundError, RateLimitError
from kopechka._limits import Slot
from kopechka.testing import Sandbox

from .conftest import Sleeps

sdk = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

from kopechka.contrib.otel import instrument  # noqa: E402


@pytest.fixture
def exported() -> Iterator[tuple[Any, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def test_one_span_per_call_with_its_attempts(
    sandbox: Sandbox, sleeps: Sleeps, exported: tuple[Any, InMemorySpanExporter]
) -> None:
    provider, exporter = exported
    with sandbox.client(sleep=sleeps) as client:
        instrument(client, provider)
        order = client.create_order("example.com", "x.com")
        sandbox.fail(429, retry_after=1, times=1)
        client.get_messages(order.order_id)
        with pytest.raises(NotFoundError):
            client.get_order("API-missing")
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == [
        "kopechka create_order",
        "kopechka get_messages",
        "kopechka get_order",
    ]
    messages = spans[1]
    assert messages.attributes is not None
    assert messages.attributes["url.template"] == "/orders/{orderId}/messages"
    assert messages.attributes["http.response.status_code"] == 200
    assert messages.attributes["http.request.resend_count"] == 1
    assert [e.attributes["http.response.status_code"] for e in messages.events] == [429, 200]  # type: ignore[index]
    failed = spans[2]
    assert failed.attributes is not None
    assert failed.attributes["error.type"] == "404"
    assert failed.status.status_code.name == "ERROR"
    dumped = "".join(s.to_json() for s in spans)
    for secret in (sandbox.api_key, order.order_id, order.email):
        assert secret not in dumped


def test_requests_instrumentation_redacts_the_key(
    sandbox: Sandbox, exported: tuple[Any, InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented setting: capture request headers, but sanitize X-API-Key."""
    requests_instrumentation = pytest.importorskip("opentelemetry.instrumentation.requests")
    provider, exporter = exported
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", ".*")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS", "x-api-key")
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    instrumentor = requests_instrumentation.RequestsInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with sandbox.client() as client:
            instrument(client, provider)
            client.get_balance()
    finally:
        instrumentor.uninstrument()
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["GET", "kopechka get_balance"]
    http, ours = spans
    assert http.parent is not None
    assert http.parent.span_id == ours.context.span_id  # the HTTP span is the call's child
    assert http.attributes is not None
    assert http.attributes["http.request.header.x_api_key"] == ("[REDACTED]",)
    assert sandbox.api_key not in "".join(s.to_json() for s in spans)


class _RefusesTheRetry:
    """A limiter that grants the first slot and then asks for a wait past ``max_retry_wait``,
    as a shared cooldown set by another worker would."""

    def __init__(self) -> None:
        self.reserved = 0

    def reserve(self, now: float, max_wait: float) -> Slot:
        self.reserved += 1
        wait = 0.0 if self.reserved == 1 else 100.0
        return Slot(wait=wait, epoch=0, at=now + wait, granted=wait <= max_wait)

    def admit(self, slot: Slot, now: float) -> float | None:
        return 0.0

    def feedback(self, now: float, status: int, retry_after: float | None, slot: Slot) -> None:
        return None


def test_a_call_refused_by_the_limiter_ends_its_span(
    sandbox: Sandbox, sleeps: Sleeps, exported: tuple[Any, InMemorySpanExporter]
) -> None:
    provider, exporter = exported
    sandbox.fail(429, retry_after=1, times=1)
    with sandbox.client(sleep=sleeps, rate_limit=_RefusesTheRetry()) as client:
        instrument(client, provider)
        with pytest.raises(RateLimitError):
            client.get_balance()  # 429, then the retry is refused before it is sent
        assert trace.get_current_span() is trace.INVALID_SPAN  # the call's context is detached
    (span,) = exporter.get_finished_spans()
    assert span.name == "kopechka get_balance"
    assert span.attributes is not None
    assert span.attributes["error.type"] == "RateLimitError"
    assert span.attributes["http.request.resend_count"] == 1
    assert span.status.status_code.name == "ERROR"
    assert [e.attributes["will_retry"] for e in span.events] == [True, False]  # type: ignore[index]


def test_a_call_that_raises_while_reading_ends_its_span(
    sandbox: Sandbox, exported: tuple[Any, InMemorySpanExporter]
) -> None:
    provider, exporter = exported
    with sandbox.client(max_body=10) as client:
        instrument(client, provider)
        with pytest.raises(APIResponseValidationError):
            client.get_balance()  # the answer is larger than max_body
        assert trace.get_current_span() is trace.INVALID_SPAN
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["error.type"] == "APIResponseValidationError"
