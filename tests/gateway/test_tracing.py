"""Gateway tracing: SERVER/CLIENT spans, W3C and B3 propagation, sampling, tracing off."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stackyard.gateway import RouteSpec
from stackyard.gateway.tracecontext import new_trace_id
from stackyard.gateway.tracing import Sampler, Tracer
from stackyard.registry.models import Endpoint
from stackyard.serving import free_port
from stackyard.telemetry import Span, Telemetry

from .conftest import make_table

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class SpanList:
    """A SpanRecorder (a one-method protocol) that keeps what it is given."""

    def __init__(self) -> None:
        self.spans: list[Span] = []

    def record_span(self, span: Span) -> None:
        self.spans.append(span)

    def kind(self, kind: str) -> list[Span]:
        return [s for s in self.spans if s.kind == kind]


def seen(body: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in body["headers"] if k.lower() == name]


async def traced(serve, backends, route: RouteSpec | None = None, **options):
    spans = SpanList()
    served = await serve(spans=spans, **options)
    route = route or RouteSpec("/items/{id}", "svc", stage="v1")
    served.gateway.update(make_table(1, [route], {"svc": backends}))
    return served, spans


async def test_traceparent_in_continues_the_trace(make_backend, serve):
    backend = await make_backend("b")
    served, spans = await traced(serve, [backend])
    status, headers, raw = await served.request(
        "GET",
        "/items/7?q=1",
        headers={
            "traceparent": f"00-{TRACE}-{PARENT}-01",
            "tracestate": "vendor=x",
            "x-correlation-id": "corr-1",
        },
    )
    assert status == 200
    body = json.loads(raw)
    assert headers["x-trace-id"] == TRACE
    [server] = spans.kind("SERVER")
    [client] = spans.kind("CLIENT")
    [upstream] = seen(body, "traceparent")
    assert upstream == f"00-{TRACE}-{client.span_id}-01"
    assert seen(body, "tracestate") == ["vendor=x"]
    assert server.trace_id == client.trace_id == TRACE
    assert server.parent_id == PARENT
    assert client.parent_id == server.span_id != client.span_id
    assert server.name == "GET /items/{id}"
    assert server.service == "gateway"
    assert server.tags == {
        "http.method": "GET",
        "http.target": "/items/7?q=1",
        "http.route": "/items/{id}",
        "http.status_code": "200",
        "correlation.id": "corr-1",
        "stackyard.route": "svc",
        "stackyard.stage": "v1",
    }
    assert client.remote_service == "svc"
    assert client.remote_endpoint is not None and client.remote_endpoint.port == backend.port
    assert client.tags["peer.address"] == f"127.0.0.1:{backend.port}"
    assert client.tags["http.status_code"] == "200"
    assert client.tags["retry.attempt"] == "1"
    assert "error" not in server.tags and "error" not in client.tags
    assert server.timestamp is not None and client.timestamp is not None
    assert server.duration is not None and client.duration is not None
    assert server.timestamp <= client.timestamp
    assert client.duration <= server.duration
    assert 1e15 < server.timestamp < 1e17  # microseconds since the epoch


async def test_no_context_starts_a_sampled_trace(make_backend, serve):
    backend = await make_backend("b")
    served, spans = await traced(serve, [backend])
    status, headers, raw = await served.request("GET", "/items/1")
    assert status == 200
    [server] = spans.kind("SERVER")
    [client] = spans.kind("CLIENT")
    assert server.parent_id is None and headers["x-trace-id"] == server.trace_id
    assert seen(json.loads(raw), "traceparent") == [f"00-{server.trace_id}-{client.span_id}-01"]


async def test_invalid_traceparent_starts_a_new_trace(make_backend, serve):
    backend = await make_backend("b")
    served, spans = await traced(serve, [backend])
    _, _, raw = await served.request(
        "GET",
        "/items/1",
        headers={"traceparent": f"00-{'0' * 32}-{PARENT}-01", "tracestate": "a=b"},
    )
    [server] = spans.kind("SERVER")
    assert server.trace_id != "0" * 32 and server.parent_id is None
    body = json.loads(raw)
    assert seen(body, "traceparent")[0].startswith(f"00-{server.trace_id}-")
    assert seen(body, "tracestate") == []  # only forwarded along a valid traceparent


async def test_unsampled_request_propagates_but_records_nothing(make_backend, serve):
    backend = await make_backend("b")
    served, spans = await traced(serve, [backend])
    _, headers, raw = await served.request(
        "GET", "/items/1", headers={"traceparent": f"00-{TRACE}-{PARENT}-00"}
    )
    assert spans.spans == []
    assert "x-trace-id" not in headers  # nothing stored to look up
    [upstream] = seen(json.loads(raw), "traceparent")
    assert upstream.startswith(f"00-{TRACE}-") and upstream.endswith("-00")
    assert upstream != f"00-{TRACE}-{PARENT}-00"


async def test_sample_ratio_zero(make_backend, serve):
    backend = await make_backend("b")
    served, spans = await traced(serve, [backend], sample_ratio=0.0)
    for i in range(5):
        assert (await served.request("GET", f"/items/{i}"))[0] == 200
    assert spans.spans == []
    # the caller's decision wins over the ratio
    await served.request("GET", "/items/1", headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
    assert len(spans.spans) == 2


async def test_reservoir_then_ratio(make_backend, serve):
    """X-Ray's rule shape: the first ``reservoir`` new traces of each second are recorded,
    the others only at the ratio (0 here); an unsampled request passes an unsampled
    traceparent upstream, naming the gateway's span, and answers its correlation id but no
    x-trace-id (its trace is not stored)."""
    backend = await make_backend("b")
    served, spans = await traced(serve, [backend], sample_ratio=0.0, reservoir=3)
    answers = [await served.request("GET", f"/items/{i}") for i in range(10)]
    recorded = {s.trace_id for s in spans.kind("SERVER")}
    assert 3 <= len(recorded) <= 6  # 6 when a second ended during the ten requests
    for status, headers, raw in answers:
        assert status == 200 and headers["x-correlation-id"]
        [upstream] = seen(json.loads(raw), "traceparent")
        _, trace_id, parent, flags = upstream.split("-")
        assert len(trace_id) == 32 and len(parent) == 16 and parent != "0" * 16
        if trace_id in recorded:
            assert flags == "01" and headers["x-trace-id"] == trace_id
        else:
            assert flags == "00" and "x-trace-id" not in headers
    # every recorded trace has its CLIENT span; nothing of the unsampled ones was made
    assert {s.trace_id for s in spans.kind("CLIENT")} == recorded
    assert len(spans.spans) == 2 * len(recorded)


def test_reservoir_refills_each_second():
    clock = [100.2]
    tracer = Tracer(SpanList(), sample_ratio=0.0, reservoir=2, clock=lambda: clock[0])
    ids = [new_trace_id() for _ in range(4)]
    assert [tracer.sample(i) for i in ids] == [True, True, False, False]
    clock[0] = 100.9
    assert tracer.sample(ids[0]) is False
    clock[0] = 101.0
    assert [tracer.sample(i) for i in ids] == [True, True, False, False]
    # beyond the reservoir, the ratio decides by trace id, the same way every time
    both = Tracer(SpanList(), sample_ratio=0.5, reservoir=1, clock=lambda: clock[0])
    low, high = "0" * 16 + "1" * 16, "0" * 16 + "f" * 16
    assert both.sample(high) is True  # the reservoir's one
    assert [both.sample(low), both.sample(high), both.sample(low)] == [True, False, True]


@given(st.floats(min_value=0.0, max_value=1.0), st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_the_ratio_decides_on_the_lower_64_bits(ratio: float, low: int) -> None:
    """As OpenTelemetry's ratio sampler: sampled when the trace id's lower 64 bits are below
    ``ratio * 2**64``."""
    sampler = Sampler(ratio)
    trace_id = f"{(low * 7919) % (1 << 64):016x}{low:016x}"
    assert sampler(trace_id) is (ratio >= 1.0 or low < int(ratio * (1 << 64)))


def test_sampling_settings_are_checked():
    with pytest.raises(ValueError, match="reservoir"):
        Tracer(SpanList(), reservoir=-1)
    with pytest.raises(ValueError, match="sample_ratio"):
        Tracer(SpanList(), sample_ratio=1.5)


async def test_b3_single_in(make_backend, serve):
    backend = await make_backend("b")
    served, spans = await traced(serve, [backend])
    short = TRACE[16:]
    _, headers, raw = await served.request(
        "GET", "/items/1", headers={"b3": f"{short}-{PARENT}-1-{'a' * 16}"}
    )
    padded = "0" * 16 + short
    [server] = spans.kind("SERVER")
    [client] = spans.kind("CLIENT")
    assert server.trace_id == padded and server.parent_id == PARENT
    assert headers["x-trace-id"] == padded
    body = json.loads(raw)
    assert seen(body, "traceparent") == [f"00-{padded}-{client.span_id}-01"]
    assert seen(body, "b3") == [f"{padded}-{client.span_id}-1-{server.span_id}"]


async def test_b3_multi_in(make_backend, serve):
    backend = await make_backend("b")
    served, spans = await traced(serve, [backend])
    _, _, raw = await served.request(
        "GET",
        "/items/1",
        headers={
            "X-B3-TraceId": TRACE,
            "X-B3-SpanId": PARENT,
            "X-B3-ParentSpanId": "a" * 16,
            "X-B3-Sampled": "1",
        },
    )
    [server] = spans.kind("SERVER")
    [client] = spans.kind("CLIENT")
    assert (server.trace_id, server.parent_id) == (TRACE, PARENT)
    body = json.loads(raw)
    assert seen(body, "traceparent") == [f"00-{TRACE}-{client.span_id}-01"]
    assert seen(body, "b3") == [f"{TRACE}-{client.span_id}-1-{server.span_id}"]
    assert not [k for k, _ in body["headers"] if k.lower().startswith("x-b3-")]


async def test_b3_deny(make_backend, serve):
    backend = await make_backend("b")
    served, spans = await traced(serve, [backend])
    _, _, raw = await served.request("GET", "/items/1", headers={"b3": "0"})
    assert spans.spans == []
    [upstream] = seen(json.loads(raw), "traceparent")
    assert upstream.endswith("-00")


async def test_tracing_off_passes_trace_headers_through(make_backend, serve):
    backend = await make_backend("b")
    served = await serve()
    served.gateway.update(make_table(1, [RouteSpec("/items/{id}", "svc")], {"svc": [backend]}))
    sent = {
        "traceparent": f"00-{TRACE}-{PARENT}-01",
        "tracestate": "k=v",
        "b3": f"{TRACE}-{PARENT}-1",
        "x-b3-traceid": TRACE,
    }
    status, headers, raw = await served.request("GET", "/items/1", headers=sent)
    assert status == 200 and "x-trace-id" not in headers
    body = json.loads(raw)
    for name, value in sent.items():
        assert seen(body, name) == [value]
    assert served.gateway.tracer is None


async def test_one_client_span_per_try(make_backend, serve):
    live = await make_backend("live")
    dead = Endpoint("dead-id", "127.0.0.1", free_port())  # nothing listens there
    bad = await make_backend("bad")
    bad.status = 503
    route = RouteSpec("/items/{id}", "svc", retries=2, balancer="round_robin")
    served, spans = await traced(serve, [dead, bad, live], route)
    total = 0
    for i in range(3):  # round robin: the tries start on each endpoint in turn
        spans.spans.clear()
        status, _, raw = await served.request("GET", f"/items/{i}")
        assert status == 200
        [server] = spans.kind("SERVER")
        clients = spans.kind("CLIENT")
        total += len(clients)
        assert [c.tags["retry.attempt"] for c in clients] == [
            str(n) for n in range(1, len(clients) + 1)
        ]
        assert all(c.parent_id == server.span_id for c in clients)
        assert len({c.span_id for c in clients}) == len(clients)
        ports = [c.remote_endpoint.port for c in clients]  # type: ignore[union-attr]
        assert ports[-1] == live.port and live.port not in ports[:-1]
        errors = {c.remote_endpoint.port: c.tags.get("error") for c in clients}  # type: ignore
        assert errors.get(dead.port, "UpstreamUnavailable") == "UpstreamUnavailable"
        assert errors.get(bad.port, "503") == "503"
        assert errors[live.port] is None
        ok = clients[-1]
        assert seen(json.loads(raw), "traceparent") == [f"00-{server.trace_id}-{ok.span_id}-01"]
        assert "error" not in server.tags
    assert total >= 5


async def test_failed_request_marks_errors(serve):
    dead = Endpoint("dead-id", "127.0.0.1", free_port())
    served, spans = await traced(serve, [dead], RouteSpec("/items/{id}", "svc", retries=0))
    status, _, _ = await served.request("GET", "/items/1")
    assert status == 502
    [server] = spans.kind("SERVER")
    [client] = spans.kind("CLIENT")
    assert server.tags["http.status_code"] == "502" and server.tags["error"] == "502"
    assert client.tags["error"] == "UpstreamUnavailable" and "http.status_code" not in client.tags


async def test_unmatched_request_is_named_by_method(make_backend, serve):
    backend = await make_backend("b")
    served, spans = await traced(serve, [backend])
    status, headers, _ = await served.request("DELETE", "/nowhere")
    assert status == 404
    [server] = spans.spans
    assert server.name == "DELETE" and "http.route" not in server.tags
    assert server.tags["http.status_code"] == "404" and "error" not in server.tags
    assert headers["x-trace-id"] == server.trace_id


async def test_spans_reach_a_real_telemetry_store(make_backend, serve, tmp_path: Path):
    backend = await make_backend("b")
    telemetry = Telemetry(tmp_path)
    await telemetry.start()
    try:
        served = await serve(spans=telemetry)
        served.gateway.update(make_table(1, [RouteSpec("/items/{id}", "svc")], {"svc": [backend]}))
        status, _, _ = await served.request(
            "GET", "/items/3", headers={"traceparent": f"00-{TRACE}-{PARENT}-01"}
        )
        assert status == 200
        await telemetry.flush()
        stored = await telemetry.spans.trace_json(TRACE)
        assert stored is not None
        by_kind = {span["kind"]: span for span in json.loads(stored)}
        server, client = by_kind["SERVER"], by_kind["CLIENT"]
        assert server["parentId"] == PARENT and client["parentId"] == server["id"]
        assert server["localEndpoint"]["serviceName"] == "gateway"
        assert client["remoteEndpoint"]["serviceName"] == "svc"
        links = await telemetry.spans.dependencies(None, None)
        assert any((link["parent"], link["child"]) == ("gateway", "svc") for link in links)
    finally:
        await telemetry.stop()
