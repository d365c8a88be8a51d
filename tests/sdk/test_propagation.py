"""Propagation round trips: inbound headers → the request context → outbound headers → the
next hop's context keeps the trace (parent = the caller's span) and the correlation."""

from __future__ import annotations

import re
import uuid

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from stackyard import sdk
from stackyard.sdk import tracing

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")

pytestmark = pytest.mark.usefixtures("configured")


def span_hex(request: sdk.RequestSpan) -> str:
    assert request.span is not None
    return f"{request.span.get_span_context().span_id:016x}"


def test_outside_a_request_there_is_nothing_to_send() -> None:
    assert sdk.outbound_headers() == {}
    assert sdk.correlation_id() is None
    assert sdk.current_ids() == (None, None)


def test_round_trip_keeps_trace_and_correlation(spans: InMemorySpanExporter) -> None:
    inbound = {
        "traceparent": f"00-{TRACE}-{PARENT}-01",
        "tracestate": "vendor=1",
        "x-correlation-id": "corr-7",
        "x-correlation-counter": "3",
    }
    with sdk.server_span(inbound, "GET /a") as first:
        out = sdk.outbound_headers()
        assert sdk.correlation_id() == "corr-7"
    assert out["traceparent"] == f"00-{TRACE}-{span_hex(first)}-01"
    assert out["tracestate"] == "vendor=1"
    assert out["x-correlation-id"] == "corr-7"
    assert out["x-correlation-counter"] == "4"

    with sdk.server_span(out, "GET /b") as second:
        again = sdk.outbound_headers()
    assert second.trace_id == TRACE and second.correlation_id == "corr-7"
    assert again["x-correlation-counter"] == "5"

    by_name = {span.name: span for span in spans.get_finished_spans()}
    a, b = by_name["GET /a"], by_name["GET /b"]
    assert a.kind == SpanKind.SERVER and a.parent is not None
    assert f"{a.parent.span_id:016x}" == PARENT
    assert b.parent is not None and b.parent.span_id == a.context.span_id
    assert a.attributes is not None and a.attributes["correlation.id"] == "corr-7"
    assert b.resource.attributes["service.name"] == "sdk-tests"
    assert b.resource.attributes["deployment.environment"] == "test"


def test_a_request_without_context_starts_a_trace_and_a_correlation() -> None:
    with sdk.server_span({}, "GET /new") as request:
        out = sdk.outbound_headers()
    uuid.UUID(request.correlation_id)
    found = TRACEPARENT.fullmatch(out["traceparent"])
    assert found is not None and found.group(1) == request.trace_id
    assert out["x-correlation-counter"] == "1"


def test_an_invalid_correlation_id_is_replaced() -> None:
    with sdk.server_span({"x-correlation-id": "bad id with spaces"}, "GET /bad") as request:
        pass
    assert request.correlation_id != "bad id with spaces"


@pytest.mark.parametrize(
    "headers",
    [
        {"b3": "a3ce929d0e0e4736-00f067aa0ba902b7-1"},
        {
            "X-B3-TraceId": "a3ce929d0e0e4736",
            "X-B3-SpanId": "00f067aa0ba902b7",
            "X-B3-Sampled": "1",
        },
        [(b"b3", b"0000000000000000a3ce929d0e0e4736-00f067aa0ba902b7")],
    ],
)
def test_b3_in_w3c_out(headers: object, spans: InMemorySpanExporter) -> None:
    with sdk.server_span(headers, "GET /b3") as request:
        out = sdk.outbound_headers()
    assert request.trace_id == "0000000000000000a3ce929d0e0e4736"
    assert out["traceparent"] == f"00-{request.trace_id}-{span_hex(request)}-01"
    assert "b3" not in out
    [span] = spans.get_finished_spans()
    assert span.parent is not None and f"{span.parent.span_id:016x}" == "00f067aa0ba902b7"


def test_traceparent_wins_over_b3() -> None:
    headers = {"traceparent": f"00-{TRACE}-{PARENT}-01", "b3": "a3ce929d0e0e4736-00f067aa0ba902b7"}
    with sdk.server_span(headers, "GET /both") as request:
        pass
    assert request.trace_id == TRACE


def test_without_opentelemetry_the_context_is_forwarded_as_it_came(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tracing.state, "api", False)
    inbound = {"traceparent": f"00-{TRACE}-{PARENT}-01", "x-correlation-id": "c-9"}
    with sdk.server_span(inbound, "GET /plain") as request:
        assert request.span is None
        assert sdk.current_ids() == (TRACE, None)
        out = sdk.outbound_headers()
    assert out == {
        "traceparent": f"00-{TRACE}-{PARENT}-01",
        "x-correlation-id": "c-9",
        "x-correlation-counter": "1",
    }


def test_function_span_continues_the_invocation_span(
    monkeypatch: pytest.MonkeyPatch, spans: InMemorySpanExporter
) -> None:
    invocation = "1111111111111111"
    monkeypatch.setenv(
        "_X_AMZN_TRACE_ID", f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent={invocation};Sampled=1"
    )
    event = {"headers": {"traceparent": f"00-{TRACE}-{PARENT}-01", "x-correlation-id": "fn-1"}}
    with sdk.function_span(event, "relay") as request:
        assert sdk.correlation_id() == "fn-1"
    [span] = spans.get_finished_spans()
    assert span.kind == SpanKind.INTERNAL and request.trace_id == TRACE
    assert span.parent is not None and f"{span.parent.span_id:016x}" == invocation


def test_function_span_without_the_runtime_uses_the_event_headers(
    monkeypatch: pytest.MonkeyPatch, spans: InMemorySpanExporter
) -> None:
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    event = {"headers": {"traceparent": f"00-{TRACE}-{PARENT}-01"}}
    with sdk.function_span(event, "relay"):
        pass
    [span] = spans.get_finished_spans()
    assert span.kind == SpanKind.SERVER
    assert span.parent is not None and f"{span.parent.span_id:016x}" == PARENT
