"""Outbound hooks against a real HTTP server that echoes the headers it got: urllib, requests,
aiohttp (and httpx when installed) send the context, each call under a CLIENT span."""

from __future__ import annotations

import importlib.util
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import pytest
import requests
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from stackyard import sdk

TRACE = "0af7651916cd43dd8448eb211c80319c"
INBOUND = {"traceparent": f"00-{TRACE}-b7ad6b7169203331-01", "x-correlation-id": "out-1"}

pytestmark = pytest.mark.usefixtures("configured")


class Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/echo"
    server.shutdown()
    server.server_close()


def check(got: dict[str, Any], spans: InMemorySpanExporter, request: sdk.RequestSpan) -> None:
    """The call went out under one CLIENT span, child of the request's span."""
    client = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CLIENT]
    assert len(client) == 1, client
    [span] = client
    assert request.span is not None
    assert span.parent is not None
    assert span.parent.span_id == request.span.get_span_context().span_id
    assert got["traceparent"] == f"00-{TRACE}-{span.context.span_id:016x}-01"
    assert got["x-correlation-id"] == "out-1" and got["x-correlation-counter"] == "1"
    assert span.name == "GET /echo"
    assert span.attributes is not None and span.attributes["http.status_code"] == 200


def test_urlopen(echo: str, spans: InMemorySpanExporter) -> None:
    with sdk.server_span(INBOUND, "GET /in") as request, sdk.urlopen(echo, timeout=5) as response:
        got = json.loads(response.read())
    check(got, spans, request)


def test_plain_urllib_gets_the_headers_from_the_installed_opener(
    echo: str, spans: InMemorySpanExporter
) -> None:
    with (
        sdk.server_span(INBOUND, "GET /in") as request,
        urllib.request.urlopen(echo, timeout=5) as response,
    ):
        got = json.loads(response.read())
    assert request.span is not None
    assert got["traceparent"] == f"00-{TRACE}-{request.span.get_span_context().span_id:016x}-01"
    assert got["x-correlation-counter"] == "1"


def test_headers_the_caller_set_are_kept(echo: str, spans: InMemorySpanExporter) -> None:
    with sdk.server_span(INBOUND, "GET /in"):
        mine = urllib.request.Request(echo, headers={"X-Correlation-Id": "mine"})
        with sdk.urlopen(mine, timeout=5) as response:
            got = json.loads(response.read())
    assert got["x-correlation-id"] == "mine" and "traceparent" in got


def test_requests_globally(echo: str, spans: InMemorySpanExporter) -> None:
    with sdk.server_span(INBOUND, "GET /in") as request:
        got = requests.get(echo, timeout=5).json()
    check(got, spans, request)


def test_requests_session_does_not_double(echo: str, spans: InMemorySpanExporter) -> None:
    with sdk.server_span(INBOUND, "GET /in") as request, sdk.requests_session() as session:
        got = session.get(echo, timeout=5).json()
    check(got, spans, request)


async def test_aiohttp_globally(echo: str, spans: InMemorySpanExporter) -> None:
    with sdk.server_span(INBOUND, "GET /in") as request:
        async with aiohttp.ClientSession() as session, session.get(echo) as response:
            got = await response.json()
    check(got, spans, request)


async def test_aiohttp_explicit_trace_config(echo: str, spans: InMemorySpanExporter) -> None:
    sdk.uninstrument()
    try:
        with sdk.server_span(INBOUND, "GET /in") as request:
            config = sdk.aiohttp_trace_config()
            async with (
                aiohttp.ClientSession(trace_configs=[config]) as session,
                session.get(echo) as response,
            ):
                got = await response.json()
    finally:
        sdk.instrument()
    check(got, spans, request)


def test_uninstrument_removes_the_patches(echo: str, spans: InMemorySpanExporter) -> None:
    sdk.uninstrument()
    try:
        with sdk.server_span(INBOUND, "GET /in"):
            got = requests.get(echo, timeout=5).json()
    finally:
        sdk.instrument()
    assert "traceparent" not in got
    assert not [s for s in spans.get_finished_spans() if s.kind == SpanKind.CLIENT]


@pytest.mark.skipif(importlib.util.find_spec("httpx") is None, reason="httpx not installed")
def test_httpx(echo: str, spans: InMemorySpanExporter) -> None:
    httpx = importlib.import_module("httpx")
    with sdk.server_span(INBOUND, "GET /in") as request, httpx.Client() as client:
        got = client.get(echo).json()
    check(got, spans, request)
    with (
        sdk.server_span(INBOUND, "GET /in"),
        httpx.Client(event_hooks=sdk.httpx_event_hooks()) as client,
    ):
        assert "traceparent" in client.get(echo).json()


@pytest.mark.skipif(importlib.util.find_spec("httpx") is None, reason="httpx not installed")
async def test_httpx_async(echo: str, spans: InMemorySpanExporter) -> None:
    httpx = importlib.import_module("httpx")
    with sdk.server_span(INBOUND, "GET /in") as request:
        async with httpx.AsyncClient() as client:
            got = (await client.get(echo)).json()
    check(got, spans, request)
