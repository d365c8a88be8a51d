"""Real OpenTelemetry SDK clients (OTLP protobuf, OTLP JSON, Zipkin JSON exporters) send a
two-service trace; the Zipkin v2 query API gives it back with the right links and dependencies.
Logs go through the SDK's OTLP log exporters and are found by trace id."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.json.http._log_exporter import (
    OTLPLogExporter as JsonLogExporter,
)
from opentelemetry.exporter.otlp.json.http.trace_exporter import (
    OTLPSpanExporter as JsonSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import (
    OTLPLogExporter as ProtoLogExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as ProtoSpanExporter,
)
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from .conftest import TelemetryServer

Exporter = Callable[[str], Any]

EXPORTERS: dict[str, Exporter] = {
    "otlp-protobuf": lambda url: ProtoSpanExporter(endpoint=url + "/v1/traces"),
    "otlp-protobuf-gzip": lambda url: ProtoSpanExporter(
        endpoint=url + "/v1/traces", compression=Compression.Gzip
    ),
    "otlp-json": lambda url: JsonSpanExporter(endpoint=url + "/v1/traces"),
    "zipkin-json": lambda url: ZipkinExporter(endpoint=url + "/api/v2/spans"),
}


def _provider(service: str, exporter: SpanExporter) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _send_trace(url: str, make: Exporter, a: str, b: str) -> str:
    """Service ``a`` serves a request and calls ``b``, which fails. Returns the trace id."""
    tracer_a = _provider(a, make(url)).get_tracer("test-a")
    tracer_b = _provider(b, make(url)).get_tracer("test-b")
    with tracer_a.start_as_current_span("GET /orders", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.method", "GET")
        with tracer_a.start_as_current_span("call b", kind=SpanKind.CLIENT) as client:
            client.set_attribute("peer.service", b)
            parent = trace.set_span_in_context(trace.NonRecordingSpan(client.get_span_context()))
            with tracer_b.start_as_current_span(
                "handle", kind=SpanKind.SERVER, context=parent
            ) as server:
                server.add_event("db.retry")
                server.set_status(Status(StatusCode.ERROR, "boom"))
                with tracer_b.start_as_current_span("query db"):
                    pass
    return format(root.get_span_context().trace_id, "032x")


@pytest.mark.parametrize("exporter", sorted(EXPORTERS))
def test_sdk_trace_roundtrip(served: TelemetryServer, exporter: str) -> None:
    a, b = f"orders-{exporter}", f"billing-{exporter}"
    trace_id = _send_trace(served.url, EXPORTERS[exporter], a, b)
    served.flush()

    spans = served.get(f"/api/v2/trace/{trace_id}").json()
    assert len(spans) == 4
    by_name = {s["name"].lower(): s for s in spans}
    root, client = by_name["get /orders"], by_name["call b"]
    server, db = by_name["handle"], by_name["query db"]
    assert "parentId" not in root
    assert client["parentId"] == root["id"]
    assert server["parentId"] == client["id"]
    assert db["parentId"] == server["id"]
    assert root["kind"] == "SERVER" and client["kind"] == "CLIENT" and server["kind"] == "SERVER"
    assert root["localEndpoint"]["serviceName"] == a
    assert server["localEndpoint"]["serviceName"] == b
    assert "error" in server["tags"]
    # the Zipkin exporter encodes an event as JSON ``{"name": {attributes}}``
    [annotation] = server["annotations"]
    assert "db.retry" in annotation["value"]
    assert all(s["timestamp"] > 0 and s["duration"] >= 1 for s in spans)

    assert {a, b} <= set(served.get("/api/v2/services").json())
    assert "call b" in served.get("/api/v2/spans", serviceName=a).json()
    if exporter.startswith("otlp"):  # the Zipkin exporter leaves peer.service a plain tag
        assert served.get("/api/v2/remoteServices", serviceName=a).json() == [b]

    found = served.get("/api/v2/traces", serviceName=b, annotationQuery="error").json()
    assert [t[0]["traceId"] for t in found] == [trace_id]
    found = served.get("/api/v2/traces", serviceName=a, annotationQuery="http.method=GET").json()
    assert len(found) == 1 and len(found[0]) == 4
    assert (
        served.get("/api/v2/traces", serviceName=a, annotationQuery="http.method=PUT").json() == []
    )
    assert served.get("/api/v2/traces", spanName="query db").json()[0][0]["traceId"] == trace_id
    assert served.get("/api/v2/traces", minDuration=10**9).json() == []

    links = served.get("/api/v2/dependencies").json()
    assert links == [{"parent": a, "child": b, "callCount": 1, "errorCount": 1}]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("exporter", ["protobuf", "json"])
def test_sdk_logs_found_by_trace_id(served: TelemetryServer, exporter: str) -> None:
    make = ProtoLogExporter if exporter == "protobuf" else JsonLogExporter
    provider = LoggerProvider(resource=Resource.create({"service.name": f"logger-{exporter}"}))
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(make(endpoint=served.url + "/v1/logs"))
    )
    logger = logging.getLogger(f"test.sdk.{exporter}")
    logger.propagate = False
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    tracer = TracerProvider().get_tracer("t")
    try:
        with tracer.start_as_current_span("work") as span:
            logger.warning("payment declined for order %s", 42, extra={"correlation_id": "c-1"})
        logger.error("unrelated failure")
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    served.flush()
    trace_id = format(span.get_span_context().trace_id, "032x")
    records = served.get("/_stackyard/logs/search", trace_id=trace_id).json()
    assert len(records) == 1
    record = records[0]
    assert record["message"] == "payment declined for order 42"
    assert record["service"] == f"logger-{exporter}"
    assert record["level"] == "warn"
    assert record["correlation_id"] == "c-1"
    assert record["span_id"] == format(span.get_span_context().span_id, "016x")
    assert served.get("/_stackyard/logs/search", q="declined").json() == records
    assert len(served.get("/_stackyard/logs/search", level="error").json()) == 1
