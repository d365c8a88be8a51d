"""Function invocations as spans: Invoke API (X-Ray and W3C headers), the gateway, the worker."""

from __future__ import annotations

import json
import re
from types import MappingProxyType
from typing import Any

import aiohttp

from stackyard.gateway import Gateway, RouteSpec, RouteTable
from stackyard.gateway.tracing import Sampler
from stackyard.serving import AsgiServer, free_port
from stackyard.telemetry import Span

from .conftest import Factory, fn

TRACE = "5759e988bd862e3fe1be46a994272793"
PARENT = "53995c3f42cd8ad8"
XRAY = re.compile(r"^Root=1-([0-9a-f]{8})-([0-9a-f]{24});Parent=([0-9a-f]{16});Sampled=([01])$")


class SpanList:
    """A SpanRecorder (a one-method protocol) that keeps what it is given."""

    def __init__(self) -> None:
        self.spans: list[Span] = []

    def record_span(self, span: Span) -> None:
        self.spans.append(span)


def xray_of(payload: dict[str, Any]) -> tuple[str, str, str]:
    seen = json.loads(payload["body"])["xray"]
    match = XRAY.match(seen)
    assert match, seen
    return match.group(1) + match.group(2), match.group(3), match.group(4)


async def invoke_with_header(served: Any, name: str, header: str, value: str) -> dict[str, Any]:
    def add(request: Any, **_: Any) -> None:
        request.headers[header] = value

    served.client.meta.events.register("before-sign.lambda.Invoke", add)
    try:
        answer = await served.call("invoke", FunctionName=name, Payload=b"{}")
    finally:
        served.client.meta.events.unregister("before-sign.lambda.Invoke", add)
    return json.loads(answer["Payload"].read())  # type: ignore[no-any-return]


async def test_invoke_api_continues_an_xray_trace(serve: Factory) -> None:
    spans = SpanList()
    served = await serve({"tracefn": fn("handlers.trace")}, spans=spans)
    header = f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent={PARENT};Sampled=1"
    payload = await invoke_with_header(served, "tracefn", "X-Amzn-Trace-Id", header)
    [span] = spans.spans
    assert (span.trace_id, span.parent_id) == (TRACE, PARENT)
    assert span.kind == "SERVER" and span.name == "tracefn" and span.service == "tracefn"
    assert span.tags["faas.invocation_id"] and "error" not in span.tags
    assert span.duration is not None and span.duration > 0
    assert xray_of(payload) == (TRACE, span.span_id, "1")


async def test_invoke_api_takes_traceparent(serve: Factory) -> None:
    spans = SpanList()
    served = await serve({"tracefn": fn("handlers.trace")}, spans=spans)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{served.url}/2015-03-31/functions/tracefn/invocations",
            data=b"{}",
            headers={"traceparent": f"00-{TRACE}-{PARENT}-01"},
        ) as resp,
    ):
        assert resp.status == 200
        payload = await resp.json(content_type=None)
    [span] = spans.spans
    assert (span.trace_id, span.parent_id) == (TRACE, PARENT)
    assert xray_of(payload) == (TRACE, span.span_id, "1")


async def test_invoke_without_context_starts_a_trace(serve: Factory) -> None:
    spans = SpanList()
    served = await serve(
        {"tracefn": fn("handlers.trace"), "boom": fn("handlers.boom")}, spans=spans
    )
    answer = await served.call("invoke", FunctionName="tracefn", Payload=b"{}")
    payload = json.loads(answer["Payload"].read())
    [span] = spans.spans
    assert span.parent_id is None and len(span.trace_id) == 32
    assert xray_of(payload) == (span.trace_id, span.span_id, "1")
    failed = await served.call("invoke", FunctionName="boom", Payload=b"{}")
    assert failed["FunctionError"] == "Unhandled"
    assert spans.spans[-1].name == "boom" and spans.spans[-1].tags["error"] == "Unhandled"


async def test_unsampled_caller_records_nothing(serve: Factory) -> None:
    spans = SpanList()
    served = await serve({"tracefn": fn("handlers.trace")}, spans=spans)
    header = f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent={PARENT};Sampled=0"
    payload = await invoke_with_header(served, "tracefn", "X-Amzn-Trace-Id", header)
    assert spans.spans == []
    trace_id, _, sampled = xray_of(payload)
    assert (trace_id, sampled) == (TRACE, "0")


async def test_runtime_without_recorder_still_gives_a_trace_id(serve: Factory) -> None:
    served = await serve({"tracefn": fn("handlers.trace")})
    answer = await served.call("invoke", FunctionName="tracefn", Payload=b"{}")
    _, _, sampled = xray_of(json.loads(answer["Payload"].read()))
    assert sampled == "0"


async def test_gateway_to_function_is_one_trace(serve: Factory) -> None:
    spans = SpanList()
    served = await serve({"tracefn": fn("handlers.trace")}, spans=spans)
    gateway = Gateway(functions=served.runtime, spans=spans)
    routes = (
        RouteSpec("/v2/trace", methods=frozenset({"GET"}), integration="function",
                  function="tracefn", payload_version="2.0", resource="/v2/trace"),
        RouteSpec("/dev/v1/trace", methods=frozenset({"GET"}), integration="function",
                  function="tracefn", payload_version="1.0", stage="dev", resource="/v1/trace"),
    )  # fmt: skip
    gateway.update(RouteTable(1, routes, MappingProxyType({})))
    await gateway.start()
    server = AsgiServer(gateway, "127.0.0.1", free_port())
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            for path in ("/v2/trace", "/dev/v1/trace"):
                spans.spans.clear()
                async with session.get(
                    server.url + path,
                    headers={"traceparent": f"00-{TRACE}-{PARENT}-01", "b3": "ignored"},
                ) as resp:
                    assert resp.status == 200, await resp.text()
                    seen = await resp.json(content_type=None)
                    assert resp.headers["x-trace-id"] == TRACE
                by_kind: dict[tuple[str, str], Span] = {
                    (s.service, s.kind or ""): s for s in spans.spans
                }
                assert len(spans.spans) == 3
                server_span = by_kind[("gateway", "SERVER")]
                client = by_kind[("gateway", "CLIENT")]
                function = by_kind[("tracefn", "SERVER")]
                assert server_span.parent_id == PARENT
                assert client.parent_id == server_span.span_id
                assert function.parent_id == client.span_id
                assert {s.trace_id for s in spans.spans} == {TRACE}
                assert client.name == "invoke tracefn" and client.remote_service == "tracefn"
                assert client.tags["http.status_code"] == "200"
                assert server_span.name == f"GET {path}"
                assert seen["traceparent"] == f"00-{TRACE}-{client.span_id}-01"
                assert seen["b3"] is None  # the client's malformed b3 is not passed on
                assert xray_of({"body": json.dumps(seen)}) == (TRACE, function.span_id, "1")
    finally:
        await server.stop()
        await gateway.stop()


async def test_invocations_that_start_a_trace_follow_the_sampler(serve: Factory) -> None:
    """With a sampler (a node gives it its stack's rule), an Invoke without a trace context is
    recorded only when the sampler takes its new trace: here the first two of each second. A
    caller's sampled context is recorded whatever the sampler says."""
    spans = SpanList()
    sampler = Sampler(sample_ratio=0.0, reservoir=2)
    served = await serve({"tracefn": fn("handlers.trace")}, spans=spans, sampler=sampler)
    flags = []
    for _ in range(6):
        answer = await served.call("invoke", FunctionName="tracefn", Payload=b"{}")
        flags.append(xray_of(json.loads(answer["Payload"].read()))[2])
    recorded = len(spans.spans)
    assert 2 <= recorded <= 4 and recorded < 6  # 4 when a second ended during the six calls
    assert flags.count("1") == recorded and flags.count("0") == 6 - recorded
    before = len(spans.spans)
    answer = await invoke_with_header(
        served, "tracefn", "X-Amzn-Trace-Id", f"Root=1-{TRACE[:8]}-{TRACE[8:]};Sampled=1"
    )
    assert len(spans.spans) == before + 1 and spans.spans[-1].trace_id == TRACE


async def test_unsampled_gateway_request_to_a_function(serve: Factory) -> None:
    """A request the gateway does not sample: the function gets the trace unsampled, in the
    event's traceparent (the gateway's span as parent) and in ``_X_AMZN_TRACE_ID``; no span of
    the gateway or the invocation is recorded."""
    spans = SpanList()
    served = await serve({"tracefn": fn("handlers.trace")}, spans=spans)
    gateway = Gateway(functions=served.runtime, spans=spans, sample_ratio=0.0)
    route = RouteSpec("/v2/trace", methods=frozenset({"GET"}), integration="function",
                      function="tracefn", payload_version="2.0", resource="/v2/trace")  # fmt: skip
    gateway.update(RouteTable(1, (route,), MappingProxyType({})))
    await gateway.start()
    server = AsgiServer(gateway, "127.0.0.1", free_port())
    await server.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.url + "/v2/trace") as resp,
        ):
            assert resp.status == 200, await resp.text()
            seen = await resp.json(content_type=None)
            assert "x-trace-id" not in resp.headers  # no trace stored to look up
        _, trace_id, parent, flags = seen["traceparent"].split("-")
        assert len(trace_id) == 32 and flags == "00" and parent != "0" * 16
        assert xray_of({"body": json.dumps(seen)})[::2] == (trace_id, "0")
        assert spans.spans == []
    finally:
        await server.stop()
        await gateway.stop()


async def test_async_invocations_continue_the_callers_trace(serve: Factory) -> None:
    """An ``Event`` invocation keeps the caller's context with the stored event: its delivery
    is a span of the caller's trace (W3C and X-Ray headers alike)."""
    import asyncio

    spans = SpanList()
    served = await serve({"tracefn": fn("handlers.trace")}, spans=spans)
    xray_trace = "6a1b2c3d4e5f60718293a4b5c6d7e8f9"
    headers = [
        {"traceparent": f"00-{TRACE}-{PARENT}-01"},
        {"X-Amzn-Trace-Id": f"Root=1-{xray_trace[:8]}-{xray_trace[8:]};Parent={PARENT};Sampled=1"},
    ]
    async with aiohttp.ClientSession() as session:
        for extra in headers:
            async with session.post(
                f"{served.url}/2015-03-31/functions/tracefn/invocations",
                data=b"{}",
                headers={"X-Amz-Invocation-Type": "Event", **extra},
            ) as resp:
                assert resp.status == 202
    for _ in range(200):
        if len(spans.spans) == 2:
            break
        await asyncio.sleep(0.05)
    assert sorted((s.trace_id, s.parent_id) for s in spans.spans) == sorted(
        [(TRACE, PARENT), (xray_trace, PARENT)]
    )


async def test_an_event_store_without_trace_contexts_is_upgraded(
    serve: Factory, tmp_path: Any
) -> None:
    """Events accepted by a node whose store had no trace column are still delivered."""
    import asyncio
    import sqlite3
    import time

    data = tmp_path / "old"
    data.mkdir()
    db = sqlite3.connect(data / "functions.sqlite3")
    db.executescript(
        "CREATE TABLE events (id TEXT PRIMARY KEY, function TEXT NOT NULL, payload BLOB NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0, next_attempt REAL NOT NULL, created REAL NOT NULL,"
        " last_error TEXT);"
    )
    now = time.time()
    db.execute("INSERT INTO events VALUES ('e1', 'tracefn', ?, 0, ?, ?, NULL)", (b"{}", now, now))
    db.commit()
    db.close()
    spans = SpanList()
    served = await serve({"tracefn": fn("handlers.trace")}, spans=spans, data_dir=data)
    for _ in range(200):
        if spans.spans and served.runtime.dispatcher.pending == 0:
            break
        await asyncio.sleep(0.05)
    [span] = spans.spans
    assert span.parent_id is None  # no context was kept: a trace of its own
