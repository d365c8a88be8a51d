"""The gateway's spans: one SERVER span per request, one CLIENT span per upstream try.

Tracing is on when the gateway is given a :class:`~stackyard.telemetry.instruments.SpanRecorder`
(``Gateway(spans=...)``); then :class:`TracedCorrelation` replaces the plain correlation step
(it does the correlation work too, in the same header loop) and puts a :class:`RequestTrace`
in ``scope["state"]["trace"]``. With tracing off none of this exists: no step, no state, no
span objects, and the client's trace headers go to the upstream unchanged.

- The request's context comes from ``traceparent``/``tracestate``/``b3``/``X-B3-*``
  (:mod:`.tracecontext`); a request without a valid one starts a new trace. Sampling: the
  caller's decision when it sent one, else ``sample_ratio`` of the traces (by trace id, as
  OpenTelemetry's ratio sampler does; 1.0 = all, the default). Unsampled requests still
  propagate their context (flag 0) but record nothing.
- SERVER span: name ``<METHOD> <route template>`` (just the method when no route matched),
  local service ``service`` (``gateway``), parent = the caller's span, tags ``http.method``,
  ``http.route``, ``http.target`` (path and query as sent), ``http.status_code``,
  ``correlation.id``, ``stackyard.route``, ``stackyard.stage`` (when the route has one),
  ``error`` (status ≥ 500, or the exception that ended the request).
- CLIENT spans (see :meth:`RequestTrace.finish_client`) are children of the SERVER span; the
  upstream request carries ``traceparent`` naming the CLIENT span as its parent (plus
  ``tracestate`` as received and, when the caller spoke B3, a ``b3`` header).
- The response carries ``x-trace-id: <trace id>`` so a user can look the trace up
  (``GET /api/v2/trace/{id}`` on the control port); W3C defines no response header for it.

Timestamps are epoch microseconds, durations microseconds (at least 1). A recorder that fails
(full queue, stopped store) costs the span, never the request.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..asgi import ASGIApp, Message, Receive, Scope, Send
from ..telemetry.model import Endpoint, Span
from .steps import CORRELATION_COUNTER, CORRELATION_ID, correlate
from .tracecontext import (
    B3,
    TRACE_HEADERS,
    TRACEPARENT,
    TRACESTATE,
    format_b3,
    format_traceparent,
    from_headers,
    new_span_id,
    new_trace_id,
)

if TYPE_CHECKING:
    from ..telemetry.instruments import SpanRecorder
    from .router import RouteMatch

logger = logging.getLogger(__name__)

TRACE_ID_HEADER = b"x-trace-id"
DEFAULT_SERVICE = "gateway"
_MAX_ID = 1 << 64
_KIND_SERVER = "SERVER"
_KIND_CLIENT = "CLIENT"


class Tracer:
    """Where the gateway's spans go, its service name and its sampling ratio."""

    def __init__(
        self, recorder: SpanRecorder, *, service: str = DEFAULT_SERVICE, sample_ratio: float = 1.0
    ) -> None:
        if not 0.0 <= sample_ratio <= 1.0:
            raise ValueError(f"sample_ratio must be within [0, 1], got {sample_ratio}")
        self.recorder = recorder
        self.service = service
        self.sample_ratio = sample_ratio
        self._bound = int(sample_ratio * _MAX_ID)
        self.local = Endpoint(service_name=service)
        self.dropped = 0

    def sample(self, trace_id: str) -> bool:
        """The sampling decision for a new trace (the lower 64 bits of the id vs the ratio)."""
        if self.sample_ratio >= 1.0:
            return True
        return int(trace_id[16:], 16) < self._bound

    def record(self, span: Span) -> None:
        try:
            self.recorder.record_span(span)
        except Exception as exc:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                logger.warning("gateway spans dropped (%d so far): %r", self.dropped, exc)


class RequestTrace:
    """The trace state of one request (``scope["state"]["trace"]``)."""

    __slots__ = ("b3", "parent_id", "sampled", "span_id", "trace_id", "tracer", "tracestate")

    def __init__(
        self,
        tracer: Tracer,
        trace_id: str,
        parent_id: str | None,
        sampled: bool,
        tracestate: bytes | None,
        b3: bool,
    ) -> None:
        self.tracer = tracer
        self.trace_id = trace_id
        self.span_id = new_span_id()
        self.parent_id = parent_id
        self.sampled = sampled
        self.tracestate = tracestate
        self.b3 = b3

    def outbound(self, span_id: str) -> list[tuple[bytes, bytes]]:
        """The trace headers of a call whose CLIENT span is ``span_id``."""
        out = [(TRACEPARENT, format_traceparent(self.trace_id, span_id, self.sampled).encode())]
        if self.tracestate:
            out.append((TRACESTATE, self.tracestate))
        if self.b3:
            out.append((B3, format_b3(self.trace_id, span_id, self.sampled, self.span_id).encode()))
        return out

    def outbound_fields(self, span_id: str) -> bytes:
        """:meth:`outbound` as header lines for the upstream request head."""
        return b"".join(b"%s: %s\r\n" % pair for pair in self.outbound(span_id))

    def finish_client(
        self,
        span_id: str,
        name: str,
        start_us: int,
        began: float,
        remote: Endpoint,
        tags: dict[str, str],
    ) -> None:
        """Record a CLIENT span (child of the request's SERVER span) that began at ``began``
        (``time.perf_counter()``) and ends now."""
        if not self.sampled:
            return
        self.tracer.record(
            Span(
                self.trace_id,
                span_id,
                name,
                self.span_id,
                _KIND_CLIENT,
                start_us,
                max(1, int((time.perf_counter() - began) * 1e6)),
                self.tracer.local,
                remote,
                tags,
            )
        )


def start_us() -> int:
    return time.time_ns() // 1000


class TracedCorrelation:
    """The correlation step with tracing (see the module docstring and ``steps.Correlation``)."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_id: bytes | None = None
        counter = 0
        traceparent: bytes | None = None
        states: list[bytes] = []
        b3: bytes | None = None
        multi: dict[bytes, bytes] | None = None
        trace_names = TRACE_HEADERS
        for name, value in scope["headers"]:
            if name == CORRELATION_ID:
                raw_id = value
            elif name == CORRELATION_COUNTER:
                if value.isdigit() and len(value) < 16:
                    counter = int(value)
            elif name in trace_names:
                if name == TRACEPARENT:
                    traceparent = value if traceparent is None else b""
                elif name == TRACESTATE:
                    states.append(value)
                elif name == B3:
                    b3 = value
                else:
                    if multi is None:
                        multi = {}
                    multi[name] = value
        state, id_header = correlate(scope, raw_id, counter)
        tracer = self.tracer
        if traceparent is None and b3 is None and multi is None:
            trace_id = new_trace_id()
            trace = RequestTrace(tracer, trace_id, None, tracer.sample(trace_id), None, False)
        else:
            found = from_headers(traceparent, states, b3, multi)
            trace_id = found.trace_id or new_trace_id()
            sampled = found.sampled if found.sampled is not None else tracer.sample(trace_id)
            trace = RequestTrace(
                tracer, trace_id, found.parent_id, sampled, found.tracestate, found.b3
            )
        state["trace"] = trace
        extra = (id_header, (TRACE_ID_HEADER, trace_id.encode()))
        status = 0

        async def send_with_ids(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers")
                if isinstance(headers, list):
                    headers.extend(extra)
                else:
                    message["headers"] = [*(headers or ()), *extra]
            await send(message)

        if not trace.sampled:
            await self.app(scope, receive, send_with_ids)
            return
        timestamp = start_us()
        began = time.perf_counter()
        error: str | None = None
        try:
            await self.app(scope, receive, send_with_ids)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            duration = max(1, int((time.perf_counter() - began) * 1e6))
            tracer.record(_server_span(scope, state, trace, status, error, timestamp, duration))


def _server_span(
    scope: Scope,
    state: dict[str, object],
    trace: RequestTrace,
    status: int,
    error: str | None,
    timestamp: int,
    duration: int,
) -> Span:
    method: str = scope["method"]
    raw = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string")
    target = (raw + b"?" + query if query and b"?" not in raw else raw).decode("latin-1")
    tags = {
        "http.method": method,
        "http.target": target,
        "correlation.id": str(state["correlation_id"]),
    }
    match: RouteMatch[object] | None = state.get("route")  # type: ignore[assignment]
    if match is not None:
        route = match.route
        name = f"{method} {route.path}"
        tags["http.route"] = route.path
        tags["stackyard.route"] = route.service or route.function
        if route.stage:
            tags["stackyard.stage"] = route.stage
    else:
        name = method
    if status:
        tags["http.status_code"] = str(status)
    if error is not None:
        tags["error"] = error
    elif status >= 500:
        tags["error"] = str(status)
    tracer = trace.tracer
    return Span(
        trace.trace_id,
        trace.span_id,
        name,
        trace.parent_id,
        _KIND_SERVER,
        timestamp,
        duration,
        tracer.local,
        None,
        tags,
    )
