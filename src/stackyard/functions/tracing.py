"""The span of one function invocation and the trace context its worker gets.

An invocation continues its caller's trace: the span context the gateway passed (parsed), else
the ``traceparent`` an Invoke API caller passed, else an X-Ray ``X-Amzn-Trace-Id``
(``Root=1-<8 hex>-<24 hex>;Parent=...``), else it starts a new trace. Its span is a SERVER
span named after the function, local service = the function name, parent = the caller's span,
tags ``faas.invocation_id`` (the request id), ``faas.name`` and ``error`` (the function error
kind, ``Unhandled``, or the exception that ended the invocation). Sampling: the caller's
decision when it made one; an invocation that starts a trace is recorded when the runtime has a
span recorder and its sampler (if any: a node gives it its stack's ``tracing`` rule, as the
gateway's) takes the new trace.

The worker gets the same trace in Lambda's form, ``Lambda-Runtime-Trace-Id:
Root=1-<first 8 hex of the trace id>-<other 24>;Parent=<this span's id>;Sampled=<0|1>``, which
the Python bootstrap puts in ``_X_AMZN_TRACE_ID`` while the handler runs (as on AWS), so a
handler's own spans and calls become children of the invocation's span.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..gateway.tracecontext import (
    SpanContext,
    format_xray,
    new_span_id,
    new_trace_id,
    parse_traceparent,
    parse_xray,
)
from ..telemetry.model import Endpoint, Span

if TYPE_CHECKING:
    from ..telemetry.instruments import SpanRecorder

logger = logging.getLogger(__name__)


class InvocationSpan:
    """Ids and start time of one invocation's span (see the module docstring)."""

    __slots__ = ("began", "function", "parent_id", "sampled", "span_id", "start_us", "trace_id")

    def __init__(self, function: str, trace_id: str, parent_id: str | None, sampled: bool) -> None:
        self.function = function
        self.trace_id = trace_id
        self.span_id = new_span_id()
        self.parent_id = parent_id
        self.sampled = sampled
        self.start_us = time.time_ns() // 1000
        self.began = time.perf_counter()

    @classmethod
    def begin(
        cls,
        function: str,
        traceparent: str | None,
        amzn_trace_id: str | None,
        recording: bool,
        sampler: Callable[[str], bool] | None = None,
        context: SpanContext | None = None,
    ) -> InvocationSpan:
        """The span of an invocation called from ``context`` or with these headers (any may be
        None); a new trace is sampled by ``sampler`` (every one without)."""
        if context is not None:
            return cls(function, *context)
        found: tuple[str, str | None, bool | None] | None = None
        if traceparent:
            found = parse_traceparent(traceparent.encode("latin-1", "replace"))
        if found is None and amzn_trace_id:
            found = parse_xray(amzn_trace_id)
        if found is None:
            new_id = new_trace_id()
            return cls(function, new_id, None, recording and (sampler is None or sampler(new_id)))
        trace_id, parent_id, sampled = found
        return cls(function, trace_id, parent_id, recording if sampled is None else sampled)

    def xray_header(self) -> str:
        """The ``Lambda-Runtime-Trace-Id`` value for the worker."""
        return format_xray(self.trace_id, self.span_id, self.sampled)

    def finish(self, recorder: SpanRecorder, request_id: str, error: str | None) -> None:
        """Record the span (ending now) unless unsampled; a failing recorder loses only it."""
        if not self.sampled:
            return
        tags = {"faas.invocation_id": request_id, "faas.name": self.function}
        if error is not None:
            tags["error"] = error
        try:  # the ids are valid by construction (parsed and checked, or made here)
            recorder.record_span(
                Span(
                    trace_id=self.trace_id,
                    span_id=self.span_id,
                    name=self.function,
                    parent_id=self.parent_id,
                    kind="SERVER",
                    timestamp=self.start_us,
                    duration=max(1, int((time.perf_counter() - self.began) * 1e6)),
                    local_endpoint=Endpoint(service_name=self.function),
                    tags=tags,
                )
            )
        except Exception as exc:
            logger.warning("span of function %s dropped: %r", self.function, exc)
