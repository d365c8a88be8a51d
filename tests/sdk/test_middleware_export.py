"""WSGI/ASGI middleware open SERVER spans, and the spans reach a real node-like endpoint over
OTLP/HTTP (protobuf), where the Zipkin query API finds them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from stackyard import sdk
from stackyard.testing import wait_until

from .conftest import SERVICE, TelemetryEndpoint

TRACE = "5b8aa5a2d2c872e8321cf37308d69df2"
PARENT = "051581bf3cb55c13"
log = logging.getLogger("tests.sdk.middleware")

pytestmark = pytest.mark.usefixtures("configured")


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    log.info("wsgi handling")
    body = json.dumps(sdk.outbound_headers()).encode()
    status = "500 Internal Server Error" if environ["PATH_INFO"] == "/fail" else "200 OK"
    start_response(status, [("content-type", "application/json")])
    return [body]


def call_wsgi(path: str, headers: dict[str, str]) -> tuple[str, bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path, "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    got: list[str] = []
    result = sdk.WsgiMiddleware(wsgi_app)(environ, lambda status, h, *e: got.append(status))
    body = b"".join(result)
    result.close()
    return got[0], body


def test_wsgi(spans: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]) -> None:
    status, body = call_wsgi(
        "/orders", {"traceparent": f"00-{TRACE}-{PARENT}-01", "x-correlation-id": "w-1"}
    )
    assert status == "200 OK"
    [span] = spans.get_finished_spans()
    assert span.name == "GET /orders" and span.kind == SpanKind.SERVER
    assert span.parent is not None and f"{span.parent.span_id:016x}" == PARENT
    assert span.attributes is not None and span.attributes["http.status_code"] == 200
    sent = json.loads(body)
    assert sent["traceparent"] == f"00-{TRACE}-{span.context.span_id:016x}-01"
    assert sent["x-correlation-id"] == "w-1"
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["trace_id"] == TRACE and line["correlation_id"] == "w-1"


def test_wsgi_5xx_is_an_error(spans: InMemorySpanExporter) -> None:
    status, _ = call_wsgi("/fail", {})
    assert status.startswith("500")
    [span] = spans.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR


async def test_asgi(spans: InMemorySpanExporter) -> None:
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = json.dumps(sdk.outbound_headers()).encode()
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/items",
        "query_string": b"a=1",
        "headers": [(b"traceparent", f"00-{TRACE}-{PARENT}-01".encode()), (b"b3", b"0")],
    }
    await sdk.AsgiMiddleware(app)(scope, receive, send)
    [span] = spans.get_finished_spans()
    assert span.name == "POST /items"
    assert span.attributes is not None and span.attributes["http.target"] == "/items?a=1"
    assert span.attributes["http.status_code"] == 201
    assert json.loads(sent[1]["body"])["traceparent"].startswith(f"00-{TRACE}-")


def test_spans_reach_the_node_over_otlp(
    endpoint: TelemetryEndpoint, configured: tuple[sdk.Sdk, InMemorySpanExporter]
) -> None:
    handle = configured[0]
    assert handle.tracing == "otlp" and handle.service_name == SERVICE
    inbound = {"traceparent": f"00-{TRACE}-{PARENT}-01"}
    with (
        sdk.server_span(inbound, "GET /exported") as request,
        sdk.client_span("GET", "http://127.0.0.1:9/next"),
    ):
        pass
    assert handle.flush()

    def stored() -> Any:
        code, spans = endpoint.get_json(f"/api/v2/trace/{TRACE}")
        names = {s["name"].lower() for s in spans or ()}
        return spans if code == 200 and {"get /exported", "get /next"} <= names else None

    spans = wait_until(stored, 10, 0.05, "the exported spans")
    by_name = {s["name"].lower(): s for s in spans}
    server, client = by_name["get /exported"], by_name["get /next"]
    assert server["parentId"] == PARENT and server["kind"] == "SERVER"
    assert client["parentId"] == server["id"] and client["kind"] == "CLIENT"
    assert server["localEndpoint"]["serviceName"] == SERVICE
    assert server["tags"]["correlation.id"] == request.correlation_id
    code, services = endpoint.get_json("/api/v2/services")
    assert code == 200 and SERVICE in services
