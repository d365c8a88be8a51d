"""The gateway's spans: one SERVER span per request, one CLIENT span per upstream try.

Tracing is on when the gateway is given a :class:`~stackyard.telemetry.instruments.SpanRecorder`
(``Gateway(spans=...)``); then :class:`TracedCorrelation` replaces the plain correlation step
(it does the correlation work too, in the same header loop) and puts a :class:`RequestTrace`
in ``scope["state"]["trace"]``. With tracing off none of this exists: no step, no state, no
span objects, and the client's trace headers go to the upstream unchanged.

- The request's context comes from ``traceparent``/``tracestate``/``b3``/``X-B3-*``
  (:mod:`.tracecontext`); a request without a valid one starts a new trace. Sampling: the
  caller's decision when it sent one, else the tracer's rule, shaped like X-Ray's: the first
  ``reservoir`` new traces of each second, then ``sample_ratio`` of the others (by trace id, as
  OpenTelemetry's ratio sampler does). ``Tracer``'s defaults, ``reservoir=0`` and
  ``sample_ratio=1.0``, trace every request; a node uses its stack's ``tracing`` settings.
  Unsampled requests still propagate their context (flag 0, the SERVER span's id as parent),
  but make and record no span and answer no ``x-trace-id`` (there is no trace to look up; the
  ``x-correlation-id`` they answer finds their log lines, which keep the trace id): they cost
  little more than an untraced request.
- SERVER span: name ``<METHOD> <route template>`` (just the method when no route matched),
  local service ``service`` (``gateway``), parent = the caller's span, tags ``http.method``,
  ``http.route``, ``http.target`` (path and query as sent), ``http.status_code``,
  ``correlation.id``, ``stackyard.route``, ``stackyard.stage`` (when the route has one),
  ``error`` (status ≥ 500, or the exception that ended the request).
- CLIENT spans (see :meth:`RequestTrace.finish_client`) are children of the SERVER span; the
  upstream request carries ``traceparent`` naming the CLIENT span as its parent (plus
  ``tracestate`` as received and, when the caller spoke B3, a ``b3`` header).
- The response of a recorded request carries ``x-trace-id: <trace id>`` so a user can look
  the trace up (``GET /api/v2/trace/{id}`` on the control port); W3C defines no response
  header for it. Each header costs every request the server's, the network's and the client's
  work (measured: this one, on every response, ≈ 3 % of the gateway's requests/s), so an
  unsampled request, whose trace is not stored, goes without.

Timestamps are epoch microseconds, durations microseconds (at least 1). A recorder that fails
(full queue, stopped store) costs the span, never the request.

What the request path pays is kept small: the CLIENT spans' raw fields are appended to the
request's :class:`RequestTrace` and, when the request ends, the SERVER span's raw fields and
those go to the recorder as one tuple (``stackyard.telemetry.gateway_spans``). A recorder with
``record_gateway_request`` (``Telemetry``) takes the tuple and its span store's writer process
builds the spans; for any other ``SpanRecorder`` the tracer builds them and calls
``record_span`` for each.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..asgi import ASGIApp, Receive, Scope, Send
from ..telemetry.gateway_spans import FUNCTION_CALL, HTTP_TRY, REQUEST, GatewayRecord, spans_of
from .answer import Answer, observe
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
_time_ns = time.time_ns
_perf_ns = time.perf_counter_ns


class Sampler:
    """The sampling decision for traces that start here, shaped like X-Ray's rule: the first
    ``reservoir`` new traces of each second (by ``clock``, seconds), then ``sample_ratio`` of
    the others, by trace id (the lower 64 bits vs the ratio, as OpenTelemetry's ratio sampler
    decides). Calling it decides for one new trace, given its id as 32 lowercase hex digits
    (as every id the gateway makes or parses is)."""

    def __init__(
        self,
        sample_ratio: float = 1.0,
        reservoir: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 <= sample_ratio <= 1.0:
            raise ValueError(f"sample_ratio must be within [0, 1], got {sample_ratio}")
        if reservoir < 0:
            raise ValueError(f"reservoir must be 0 or more, got {reservoir}")
        self.sample_ratio = sample_ratio
        self.reservoir = reservoir
        self._clock = clock
        self._next_second = -math.inf  # when the reservoir is next refilled
        self._left = 0  # traces the reservoir still takes in this second
        bound = int(sample_ratio * _MAX_ID)
        self._every = bound >= _MAX_ID
        # the bound on the lower 64 bits as 16 hex digits: trace ids are lowercase hex, so
        # comparing the digits as text orders them as the numbers they spell
        self._bound = "" if self._every else f"{bound:016x}"

    def __call__(self, trace_id: str) -> bool:
        if self.reservoir:
            now = self._clock()
            if now >= self._next_second or now < self._next_second - 1.0:  # a new second
                self._next_second, self._left = math.floor(now) + 1.0, self.reservoir
            if self._left:
                self._left -= 1
                return True
        return self._every or trace_id[16:] < self._bound


class Tracer:
    """Where the gateway's spans go, its service name and its sampling rule (a
    :class:`Sampler` of ``sample_ratio``, ``reservoir`` and ``clock``)."""

    def __init__(
        self,
        recorder: SpanRecorder,
        *,
        service: str = DEFAULT_SERVICE,
        sample_ratio: float = 1.0,
        reservoir: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.recorder = recorder
        self.service = service
        self.sample = Sampler(sample_ratio, reservoir, clock)
        """The sampling decision for a new trace (see :class:`Sampler`)."""
        self.dropped = 0
        take = getattr(recorder, "record_gateway_request", None)
        self._take: Callable[[GatewayRecord], None] = take if callable(take) else self._as_spans

    def _as_spans(self, record: GatewayRecord) -> None:
        for span in spans_of(record):
            self.recorder.record_span(span)

    def record(self, record: GatewayRecord) -> None:
        """Hand over one request's spans (a ``gateway_spans`` record)."""
        try:
            self._take(record)
        except Exception as exc:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                logger.warning("gateway spans dropped (%d so far): %r", self.dropped, exc)


class RequestTrace:
    """The trace state of one request (``scope["state"]["trace"]``)."""

    __slots__ = (
        "b3",
        "clients",
        "parent_id",
        "sampled",
        "span_id",
        "trace_id",
        "tracer",
        "tracestate",
    )

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
        self.clients: list[tuple[object, ...]] | None = None

    def outbound(self, span_id: str) -> list[tuple[bytes, bytes]]:
        """The trace headers of a call whose CLIENT span is ``span_id``, ``traceparent`` first."""
        out = [(TRACEPARENT, format_traceparent(self.trace_id, span_id, self.sampled).encode())]
        if self.tracestate:
            out.append((TRACESTATE, self.tracestate))
        if self.b3:
            out.append((B3, format_b3(self.trace_id, span_id, self.sampled, self.span_id).encode()))
        return out

    def outbound_fields(self, span_id: str) -> bytes:
        """:meth:`outbound` as header lines for the upstream request head (an unsampled
        request passes its SERVER span's id: it makes no CLIENT span)."""
        if self.tracestate or self.b3:
            return b"".join(b"%s: %s\r\n" % pair for pair in self.outbound(span_id))
        flags = "01" if self.sampled else "00"
        return f"traceparent: 00-{self.trace_id}-{span_id}-{flags}\r\n".encode()

    def client_try(
        self,
        span_id: str,
        name: str,
        start_ns: int,
        began_ns: int,
        service: str,
        address: str,
        port: int,
        attempt: int,
        status: int | None,
        error: str | None,
    ) -> None:
        """Note a CLIENT span (an upstream try, child of the request's SERVER span) that began
        at ``start_ns`` (``time.time_ns()``) / ``began_ns`` (``time.perf_counter_ns()``) and
        ends now; it is recorded with the request."""
        if not self.sampled:
            return
        item = (
            HTTP_TRY,
            span_id,
            name,
            start_ns,
            _perf_ns() - began_ns,
            service,
            address,
            port,
            attempt,
            status,
            error,
        )
        if self.clients is None:
            self.clients = [item]
        else:
            self.clients.append(item)

    def client_call(
        self,
        span_id: str,
        function: str,
        start_ns: int,
        began_ns: int,
        status: int,
        error: str | None,
    ) -> None:
        """Note the CLIENT span of a function call (``invoke <function>``), like
        :meth:`client_try`."""
        if not self.sampled:
            return
        item = (
            FUNCTION_CALL,
            span_id,
            f"invoke {function}",
            start_ns,
            _perf_ns() - began_ns,
            function,
            status,
            error,
        )
        if self.clients is None:
            self.clients = [item]
        else:
            self.clients.append(item)


class TracedCorrelation:
    """The correlation step with tracing (see the module docstring and ``steps.Correlation``)."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self.tracer = tracer

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        raw_id: bytes | None = None
        counter = 0
        traceparent: bytes | None = None
        states: list[bytes] | None = None
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
                    if states is None:
                        states = []
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
            found = from_headers(traceparent, states or [], b3, multi)
            trace_id = found.trace_id or new_trace_id()
            sampled = found.sampled if found.sampled is not None else tracer.sample(trace_id)
            trace = RequestTrace(
                tracer, trace_id, found.parent_id, sampled, found.tracestate, found.b3
            )
        state["trace"] = trace
        answer, send = observe(scope, send)
        if not trace.sampled:  # propagated, not recorded
            answer.headers = (*answer.headers, id_header)
            return self.app(scope, receive, send)
        answer.headers = (*answer.headers, id_header, (TRACE_ID_HEADER, trace_id.encode()))
        return self._recorded(scope, receive, send, trace, answer)

    async def _recorded(
        self, scope: Scope, receive: Receive, send: Send, trace: RequestTrace, answer: Answer
    ) -> None:
        """The rest of a sampled request: its SERVER span, recorded when it ends."""
        state = scope["state"]
        tracer = self.tracer
        trace_id = trace.trace_id
        timestamp = _time_ns()
        began = _perf_ns()
        error: str | None = None
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            duration = _perf_ns() - began
            match: RouteMatch[object] | None = state.get("route")
            if match is None:
                path = name = stage = None
            else:
                route = match.route
                path, name, stage = route.path, route.service or route.function, route.stage
            tracer.record(
                (
                    REQUEST,
                    trace_id,
                    trace.span_id,
                    trace.parent_id,
                    tracer.service,
                    timestamp,
                    duration,
                    scope["method"],
                    scope.get("raw_path") or scope["path"].encode(),
                    scope.get("query_string"),
                    path,
                    name,
                    stage,
                    answer.status,
                    error,
                    state["correlation_id"],
                    trace.clients,
                )
            )
