"""Trace context for user code: OpenTelemetry set-up, server/client/function spans, outbound
headers.

Three levels, chosen once by :func:`configure` (called by :func:`stackyard.sdk.setup`):

- ``opentelemetry-sdk`` importable: a ``TracerProvider`` (resource from ``OTEL_SERVICE_NAME``/
  ``OTEL_RESOURCE_ATTRIBUTES``) with a ``BatchSpanProcessor`` and the OTLP/HTTP protobuf
  exporter (``OTEL_EXPORTER_OTLP_ENDPOINT`` + ``/v1/traces``; ``OTEL_BSP_*`` tune batching).
  A provider an application already installed is kept as it is.
- only ``opentelemetry-api``: spans are non-recording, but the context still flows through them,
  so outbound calls carry the caller's trace on.
- neither: a request's ``traceparent``/``tracestate`` is kept in a contextvar and forwarded as
  is (like an uninstrumented service that copies the header), and logs still get its trace id.

The global propagator becomes W3C tracecontext + baggage + a B3 extractor (:mod:`.b3`): B3 in,
W3C out. The correlation id (``x-correlation-id``/``x-correlation-counter``) is handled here too,
with or without OpenTelemetry (:mod:`.context`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .context import (
    Correlation,
    Passthrough,
    carrier,
    correlation_from,
    correlation_headers,
    correlation_var,
    parse_passthrough,
    passthrough_var,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

logger = logging.getLogger("stackyard.sdk")

INSTRUMENTATION_NAME = "stackyard.sdk"


class _State:
    api = False  # opentelemetry-api importable (and the propagator installed)
    provider: TracerProvider | None = None  # the SDK provider when tracing records
    owned = False  # the provider was made by configure() (so flush/shutdown are ours)
    service_name = ""


state = _State()


def service_name_from_env(explicit: str | None = None) -> str:
    """``explicit`` > ``OTEL_SERVICE_NAME`` > ``STACKYARD_SERVICE`` > the script's name."""
    if explicit:
        return explicit
    for name in ("OTEL_SERVICE_NAME", "STACKYARD_SERVICE"):
        if value := os.environ.get(name, "").strip():
            return value
    return Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "python"


def configure(service_name: str) -> str | None:
    """Set up OpenTelemetry as the module docstring says; returns a warning to log (why traces
    will not be recorded) or None. Idempotent."""
    state.service_name = service_name
    try:
        from opentelemetry import propagate, trace
        from opentelemetry.baggage.propagation import W3CBaggagePropagator
        from opentelemetry.propagators.composite import CompositePropagator
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        from .b3 import B3Extractor
    except ImportError:
        return (
            "opentelemetry-api is not installed: traces are not recorded, trace context is only"
            " forwarded (pip install 'stackyard[sdk]')"
        )
    if not state.api:
        # B3 first: a valid traceparent, extracted after it, wins (as in the gateway)
        propagate.set_global_textmap(
            CompositePropagator(
                [B3Extractor(), TraceContextTextMapPropagator(), W3CBaggagePropagator()]
            )
        )
        state.api = True
    if state.provider is not None:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        return (
            "opentelemetry-sdk or opentelemetry-exporter-otlp-proto-http is not installed:"
            " spans are not recorded, trace context is still propagated"
            " (pip install 'stackyard[sdk]')"
        )
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):  # the application set one up itself: keep it
        state.provider = current
        return None
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() != "none":
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    state.provider = provider
    state.owned = True
    return None


def force_flush(timeout_millis: int = 5000) -> bool:
    """Export the spans ended so far (True when done in time, or nothing to do)."""
    if state.provider is None:
        return True
    return bool(state.provider.force_flush(timeout_millis))


def shutdown() -> None:
    """Flush and stop the provider configure() made (exporting what is left)."""
    if state.provider is not None and state.owned:
        state.provider.shutdown()


def suppressed() -> bool:
    """True while OpenTelemetry suppresses instrumentation (e.g. inside an exporter's own HTTP
    call: tracing it would make spans about exporting spans, forever)."""
    if not state.api:
        return False
    from opentelemetry import context

    for name in ("_SUPPRESS_INSTRUMENTATION_KEY", "_SUPPRESS_HTTP_INSTRUMENTATION_KEY"):
        key = getattr(context, name, None)
        if key is not None and context.get_value(key):
            return True
    return False


def current_ids() -> tuple[str | None, str | None]:
    """``(trace_id, span_id)`` as lower-case hex for log lines; ``(None, None)`` outside a
    trace. Without OpenTelemetry: the forwarded context's trace id and no span id."""
    if state.api:
        from opentelemetry import trace

        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            return f"{context.trace_id:032x}", f"{context.span_id:016x}"
        return None, None
    found = passthrough_var.get()
    return (found.trace_id, None) if found is not None else (None, None)


def outbound_headers() -> dict[str, str]:
    """Headers that carry the current context to the next hop: ``traceparent`` (+
    ``tracestate``/``baggage`` when there are any) and ``x-correlation-id`` with
    ``x-correlation-counter`` one more than the request arrived with. Empty outside a request
    and a span."""
    headers: dict[str, str] = {}
    if state.api:
        from opentelemetry import propagate

        propagate.inject(headers)
    else:
        found = passthrough_var.get()
        if found is not None:
            headers["traceparent"] = f"00-{found.trace_id}-{found.parent_id}-{found.flags}"
            if found.tracestate:
                headers["tracestate"] = found.tracestate
    headers.update(correlation_headers())
    return headers


class RequestSpan:
    """What :func:`server_span` yields: the span (None without OpenTelemetry) and the ids."""

    __slots__ = ("correlation", "span")

    def __init__(self, span: Span | None, correlation: Correlation) -> None:
        self.span = span
        self.correlation = correlation

    @property
    def correlation_id(self) -> str:
        return self.correlation.id

    @property
    def trace_id(self) -> str | None:
        if self.span is None:
            return current_ids()[0]
        context = self.span.get_span_context()
        return f"{context.trace_id:032x}" if context.is_valid else None

    def set_status_code(self, status: int) -> None:
        """Record the HTTP status of the response (5xx marks the span as an error)."""
        if self.span is None:
            return
        from opentelemetry.trace import Status, StatusCode

        self.span.set_attribute("http.status_code", status)
        if status >= 500:
            self.span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))

    def set_attribute(self, key: str, value: str | int | float | bool) -> None:
        if self.span is not None:
            self.span.set_attribute(key, value)


@contextmanager
def _passthrough(found: Passthrough | None) -> Iterator[None]:
    token = passthrough_var.set(found)
    try:
        yield
    finally:
        passthrough_var.reset(token)


@contextmanager
def server_span(
    headers: Any,
    name: str,
    *,
    attributes: Mapping[str, str | int | float | bool] | None = None,
    kind: str = "SERVER",
) -> Iterator[RequestSpan]:
    """The span of one inbound request: continues the trace of ``headers`` (``traceparent``,
    ``b3``, ``X-B3-*``) and sets the correlation (``x-correlation-id`` kept or made,
    ``x-correlation-counter``) for the code inside, e.g. in an ``http.server`` handler::

        with sdk.server_span(self.headers, f"GET {path}") as request:
            ...
            request.set_status_code(200)

    ``headers``: any mapping, ``email.message.Message`` or ``(name, value)`` pairs. An exception
    leaving the block is recorded on the span and re-raised.
    """
    lower = carrier(headers)
    correlation = correlation_from(lower)
    token = correlation_var.set(correlation)
    try:
        if not state.api:
            with _passthrough(parse_passthrough(lower)):
                yield RequestSpan(None, correlation)
            return
        from opentelemetry import propagate, trace

        parent = propagate.extract(lower)
        tracer = trace.get_tracer(INSTRUMENTATION_NAME)
        tags: dict[str, str | int | float | bool] = {"correlation.id": correlation.id}
        tags.update(attributes or {})
        with tracer.start_as_current_span(
            name, context=parent, kind=getattr(trace.SpanKind, kind), attributes=tags
        ) as span:
            yield RequestSpan(span, correlation)
    finally:
        correlation_var.reset(token)


def _xray_traceparent(value: str) -> str | None:
    """``_X_AMZN_TRACE_ID`` (``Root=1-<8>-<24>;Parent=<16>;Sampled=<0|1>``) as a traceparent."""
    parts = dict(part.strip().split("=", 1) for part in value.split(";") if "=" in part)
    root = parts.get("Root", "").split("-")
    parent = parts.get("Parent", "")
    if len(root) != 3 or root[0] != "1" or len(root[1]) != 8 or len(parent) != 16:
        return None
    flags = "01" if parts.get("Sampled", "1") != "0" else "00"
    return f"00-{root[1]}{root[2]}-{parent}-{flags}".lower()


@contextmanager
def function_span(
    event: Any, name: str | None = None, *, flush: bool = True
) -> Iterator[RequestSpan]:
    """The span of one function invocation's handler code, in the invocation's trace::

        def handler(event, context):
            with sdk.function_span(event):
                ...

    Parent: the invocation's own span (``_X_AMZN_TRACE_ID``, set by the runtime while the
    handler runs) when it belongs to the trace of the event's ``traceparent`` (or the event has
    none) — the span is then INTERNAL, a child of the runtime's SERVER span; otherwise the
    event headers' ``traceparent``/B3 (an API Gateway event), and the span is a SERVER span.
    The correlation comes from the event's ``x-correlation-id``/``x-correlation-counter``.
    ``flush``: export the spans before returning (a function's worker may be frozen or stopped
    between invocations, as on AWS Lambda).
    """
    headers = carrier(event.get("headers") or {}) if isinstance(event, Mapping) else {}
    kind = "SERVER"
    xray = _xray_traceparent(os.environ.get("_X_AMZN_TRACE_ID", ""))
    if xray is not None:
        event_trace = parse_passthrough(headers)
        if event_trace is None or event_trace.trace_id == xray[3:35]:
            headers = {k: v for k, v in headers.items() if not k.startswith(("b3", "x-b3-"))}
            if event_trace is None:
                headers.pop("tracestate", None)
            headers["traceparent"] = xray
            kind = "INTERNAL"
    span_name = name or os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or state.service_name
    attributes: dict[str, str | int | float | bool] = {"faas.trigger": "http"} if headers else {}
    try:
        with server_span(headers, span_name, kind=kind, attributes=attributes) as request:
            yield request
    finally:
        if flush:
            force_flush()
