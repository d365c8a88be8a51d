"""Zipkin v2 ingest and query semantics: filters, 404s, and dependency links computed as
spans arrive (in any order, Zipkin shared ids, uninstrumented back ends)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from .conftest import TelemetryServer

NOW = int(time.time() * 1_000_000)


def span(
    trace: str,
    sid: str,
    service: str,
    *,
    parent: str | None = None,
    kind: str | None = None,
    name: str = "op",
    ts: int = NOW,
    duration: int = 100,
    **extra: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": trace,
        "id": sid,
        "name": name,
        "timestamp": ts,
        "duration": duration,
        "localEndpoint": {"serviceName": service},
        **extra,
    }
    if parent:
        out["parentId"] = parent
    if kind:
        out["kind"] = kind
    return out


def post(server: TelemetryServer, spans: list[dict[str, Any]]) -> None:
    response = server.post(
        "/api/v2/spans", json.dumps(spans).encode(), **{"Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.text


def links(server: TelemetryServer) -> list[dict[str, Any]]:
    server.flush()
    result: list[dict[str, Any]] = server.get("/api/v2/dependencies").json()
    return result


T1, T2, T3 = "1" * 32, "2" * 16, "3" * 32


@pytest.mark.parametrize("order", ["parents-first", "children-first", "one-batch"])
def test_dependencies_any_arrival_order(served: TelemetryServer, order: str) -> None:
    spans = [
        span(T1, "a" * 16, "web", kind="SERVER"),
        span(
            T1,
            "b" * 16,
            "web",
            parent="a" * 16,
            kind="CLIENT",
            remoteEndpoint={"serviceName": "api"},
        ),
        span(T1, "c" * 16, "api", parent="b" * 16, kind="SERVER"),
        span(
            T1,
            "d" * 16,
            "api",
            parent="c" * 16,
            kind="CLIENT",
            remoteEndpoint={"serviceName": "postgres"},
        ),
        span(T1, "e" * 16, "api", parent="c" * 16, kind="CLIENT", tags={"error": "timeout"}),
        span(T1, "f" * 16, "auth", parent="e" * 16, kind="SERVER"),
    ]
    if order == "one-batch":
        post(served, spans)
    else:
        for item in spans if order == "parents-first" else reversed(spans):
            post(served, [item])
            served.flush()
    assert links(served) == [
        {"parent": "api", "child": "auth", "callCount": 1, "errorCount": 1},
        {"parent": "api", "child": "postgres", "callCount": 1},
        {"parent": "web", "child": "api", "callCount": 1},
    ]


def test_shared_client_server_pair_counts_once(served: TelemetryServer) -> None:
    client = span(T2, "a" * 16, "front", kind="CLIENT", remoteEndpoint={"serviceName": "back"})
    server = span(T2, "a" * 16, "back", kind="SERVER", shared=True, tags={"error": ""})
    post(served, [server])
    post(served, [client])
    post(served, [client, server])  # re-sent: replaces, does not double count
    assert links(served) == [{"parent": "front", "child": "back", "callCount": 1, "errorCount": 1}]
    assert len(served.get(f"/api/v2/trace/{T2}").json()) == 2


def test_query_filters_and_lookups(served: TelemetryServer) -> None:
    old = NOW - 3_600_000_000  # an hour ago
    post(
        served,
        [
            span(
                T1,
                "a" * 16,
                "Shop",
                name="GET /cart",
                kind="SERVER",
                duration=5_000,
                tags={"http.method": "GET"},
            ),
            span(
                T1,
                "b" * 16,
                "shop",
                parent="a" * 16,
                name="SELECT",
                kind="CLIENT",
                remoteEndpoint={"serviceName": "db"},
                duration=3_000,
                annotations=[{"timestamp": NOW, "value": "retry"}],
            ),
            span(
                T3,
                "c" * 16,
                "shop",
                name="POST /pay",
                kind="SERVER",
                ts=old,
                duration=90_000,
                tags={"http.method": "POST", "error": "declined"},
            ),
        ],
    )
    served.flush()
    get = served.get
    assert get("/api/v2/services").json() == ["shop"]
    assert get("/api/v2/spans", serviceName="shop").json() == ["get /cart", "post /pay", "select"]
    assert get("/api/v2/remoteServices", serviceName="shop").json() == ["db"]

    def ids(**params: Any) -> list[str]:
        return [t[0]["traceId"] for t in get("/api/v2/traces", **params).json()]

    assert ids() == [T1, T3]  # newest first
    assert ids(limit=1) == [T1]
    assert ids(serviceName="shop", remoteServiceName="db") == [T1]
    assert ids(spanName="POST /pay") == [T3]
    assert ids(annotationQuery="error") == [T3]
    assert ids(annotationQuery="retry") == [T1]
    assert ids(annotationQuery="http.method=GET and retry") == []  # per span
    assert ids(annotationQuery="http.method=POST and error") == [T3]
    assert ids(minDuration=50_000) == [T3]
    assert ids(minDuration=1_000, maxDuration=4_000) == [T1]
    end = (NOW - 1_800_000_000) // 1000
    assert ids(endTs=end, lookback=3_600_000) == [T3]
    assert ids(endTs=end, lookback=60_000) == []

    trace = get(f"/api/v2/trace/{T1}").json()
    assert [s["id"] for s in trace] == ["a" * 16, "b" * 16]
    assert trace[1]["annotations"] == [{"timestamp": NOW, "value": "retry"}]
    assert get(f"/api/v2/trace/{T1.upper()}").status_code == 200

    missing = get("/api/v2/trace/" + "9" * 32)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "TraceNotFound"
    assert get("/api/v2/trace/nothex").status_code == 400
    assert get("/api/v2/spans").status_code == 400
    bad = get("/api/v2/traces", limit="ten")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "InvalidParameter"
    window = get("/api/v2/dependencies", endTs=end, lookback=3_600_000).json()
    assert window == []
    assert get("/api/v2/dependencies").json() == [{"parent": "shop", "child": "db", "callCount": 1}]


async def test_record_span_in_process(tmp_path: Any) -> None:
    from stackyard.telemetry import Telemetry, new_span

    telemetry = Telemetry(tmp_path)
    await telemetry.start()
    try:
        telemetry.record_span(new_span(T1, "a" * 16, "GET /x", service="gateway", kind="SERVER"))
        telemetry.record_span(
            new_span(
                T1,
                "b" * 16,
                "proxy",
                service="gateway",
                parent_id="a" * 16,
                kind="CLIENT",
                remote_service="api",
                duration=10,
            )
        )
        await telemetry.flush()
        text = await telemetry.spans.trace_json(T1)
        assert text is not None and len(json.loads(text)) == 2
        assert await telemetry.spans.dependencies(None, None) == [
            {"parent": "gateway", "child": "api", "callCount": 1}
        ]
        with pytest.raises(ValueError):
            new_span("0" * 32, "a" * 16, "x", service="s")
    finally:
        await telemetry.stop()
