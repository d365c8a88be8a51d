"""A B3 *extracting* propagator (single ``b3`` and multi ``X-B3-*`` headers) for OpenTelemetry.

Inbound B3 is accepted so a Zipkin-instrumented caller's trace continues; outbound the SDK
speaks W3C ``traceparent`` (the gateway answers B3 callers in B3 itself). ``inject`` therefore
writes nothing. A deferred or absent sampling decision counts as sampled (as the gateway does).
A 64-bit trace id is left-padded to 128 bits. Only imported when ``opentelemetry-api`` is.
"""

from __future__ import annotations

import re

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

_TRACE = re.compile(r"[0-9a-f]{16}|[0-9a-f]{32}")
_SPAN = re.compile(r"[0-9a-f]{16}")
_FIELDS = {"b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags"}


def _first(getter: Getter[CarrierT], carrier: CarrierT, name: str) -> str | None:
    values = getter.get(carrier, name)
    return values[0].strip().lower() if values else None


def _context(trace_id: str, span_id: str, sampled: bool, context: Context | None) -> Context:
    if not _TRACE.fullmatch(trace_id) or not _SPAN.fullmatch(span_id):
        return context if context is not None else Context()
    if int(trace_id, 16) == 0 or int(span_id, 16) == 0:
        return context if context is not None else Context()
    span_context = trace.SpanContext(
        trace_id=int(trace_id, 16),
        span_id=int(span_id, 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED if sampled else 0),
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context), context)


class B3Extractor(TextMapPropagator):
    """Reads ``b3`` (preferred) or ``X-B3-TraceId``/``X-B3-SpanId``/``X-B3-Sampled``/
    ``X-B3-Flags``; leaves the context unchanged when neither is valid."""

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        single = _first(getter, carrier, "b3")
        if single:
            parts = single.split("-")
            if len(parts) >= 2:
                sampled = parts[2] not in ("0", "false") if len(parts) >= 3 else True
                return _context(parts[0], parts[1], sampled, context)
        trace_id = _first(getter, carrier, "x-b3-traceid")
        span_id = _first(getter, carrier, "x-b3-spanid")
        if trace_id and span_id:
            flag = _first(getter, carrier, "x-b3-sampled")
            debug = _first(getter, carrier, "x-b3-flags") == "1"
            sampled = debug or flag not in ("0", "false")
            return _context(trace_id, span_id, sampled, context)
        return context if context is not None else Context()

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        return None

    @property
    def fields(self) -> set[str]:
        return set(_FIELDS)
