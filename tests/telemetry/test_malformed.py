"""Malformed ingest bodies get 400/413/415 (never 5xx) and never lose what was stored."""

from __future__ import annotations

import gzip
import json
import os

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from .conftest import TelemetryServer

GOOD = {
    "traceId": "5" * 32,
    "id": "6" * 16,
    "name": "kept",
    "timestamp": 1_700_000_000_000_000,
    "duration": 5,
    "localEndpoint": {"serviceName": "keeper"},
}
PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}


@pytest.fixture
def seeded(served: TelemetryServer) -> TelemetryServer:
    assert served.post("/api/v2/spans", json.dumps([GOOD]).encode(), **JS).status_code == 202
    served.flush()
    return served


def still_there(server: TelemetryServer) -> None:
    server.flush()
    assert server.get("/api/v2/trace/" + "5" * 32).json()[0]["name"] == "kept"


def otlp_span(trace_id: str, span_id: str, name: str = "s") -> dict[str, object]:
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": 2,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000005000000",
    }


def otlp_body(*spans: dict[str, object]) -> bytes:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]}
    doc = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": list(spans)}]}]}
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/v1/traces", os.urandom(512) + b"\xff\xff", PB),
        ("/v1/traces", b"{not json", JS),
        ("/v1/traces", b"[1, 2]", JS),
        ("/v1/traces", b'{"resourceSpans": 7}', JS),
        ("/v1/logs", b"\x0a\xff\xff\xff\xff\x0f", PB),
        ("/v1/logs", b"nope", JS),
        ("/api/v2/spans", b"{not json", JS),
        ("/api/v2/spans", b'{"traceId": "1"}', JS),
        ("/api/v2/spans", json.dumps([{**GOOD, "id": "xyz"}]).encode(), JS),
        ("/api/v2/spans", json.dumps([{**GOOD, "traceId": "0" * 32}]).encode(), JS),
        ("/api/v2/spans", json.dumps([{**GOOD, "kind": "SIDEWAYS"}]).encode(), JS),
        ("/api/v2/spans", json.dumps([{**GOOD, "timestamp": -1}]).encode(), JS),
        ("/v1/traces", b"\x1f\x8b garbage", {**JS, "Content-Encoding": "gzip"}),
    ],
)
def test_malformed_gets_400(
    seeded: TelemetryServer, path: str, body: bytes, headers: dict[str, str]
) -> None:
    response = seeded.post(path, body, **headers)
    assert response.status_code == 400, response.text
    if headers is JS or path == "/api/v2/spans":
        assert "message" in response.json()["error"]
    still_there(seeded)


def test_unsupported_media_types(seeded: TelemetryServer) -> None:
    assert seeded.post("/v1/traces", b"x", **{"Content-Type": "text/plain"}).status_code == 415
    assert seeded.post("/api/v2/spans", b"x", **PB).status_code == 415
    response = seeded.post("/v1/traces", b"{}", **{**JS, "Content-Encoding": "br"})
    assert response.status_code == 415


def test_gzip_bomb_and_oversize_get_413(seeded: TelemetryServer) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 1024 * 1024
    response = seeded.post("/v1/traces", bomb, **{**PB, "Content-Encoding": "gzip"})
    assert response.status_code == 413
    response = seeded.post("/api/v2/spans", bomb, **{**JS, "Content-Encoding": "gzip"})
    assert response.status_code == 413
    big = b" " * (20 * 1024 * 1024 + 1)
    assert seeded.post("/v1/traces", big, **JS).status_code == 413
    still_there(seeded)


def test_partial_success_rejects_only_bad_spans(seeded: TelemetryServer) -> None:
    good = otlp_span("7" * 32, "8" * 16, "good")
    base64_ids = otlp_span("q6urq6urq6urq6urq6urqw==", "zc3Nzc3Nzc0=", "b64")  # 16 and 8 bytes
    bad_id = otlp_span("zz", "8" * 16)
    bad_time = {**otlp_span("7" * 32, "9" * 16), "startTimeUnixNano": "soon"}
    huge_time = {**otlp_span("7" * 32, "a" * 16), "endTimeUnixNano": str(2**70)}
    body = otlp_body(good, bad_id, base64_ids, bad_time, huge_time)
    response = seeded.post("/v1/traces", body, **JS)
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "3" and "span 1" in partial["errorMessage"]
    seeded.flush()
    assert seeded.get("/api/v2/trace/" + "7" * 32).json()[0]["name"] == "good"
    b64 = seeded.get("/api/v2/trace/" + "ab" * 16).json()[0]
    assert b64["id"] == "cd" * 8 and b64["name"] == "b64"

    ok = seeded.post("/v1/traces", otlp_body(good), **JS)
    assert ok.status_code == 200 and ok.json() == {}
    still_there(seeded)


def test_protobuf_answers_in_protobuf(seeded: TelemetryServer) -> None:
    response = seeded.post("/v1/traces", b"", **PB)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()
