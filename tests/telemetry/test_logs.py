"""The log store: the supervisor sink, parsing of JSON and plain lines, full-text search with
filters, cursor paging, OTLP/JSON log ingest."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from stackyard.telemetry.logs import fts_query, parse_line

from .conftest import TelemetryServer

TRACE = "ab" * 16


def record(
    service: str, message: str, *, stream: str = "stdout", time: str = "2024-05-01T12:00:00.000Z"
) -> dict[str, str]:
    return {
        "time": time,
        "service": service,
        "instance": f"{service}-1",
        "stream": stream,
        "message": message,
    }


def search(server: TelemetryServer, **params: Any) -> list[dict[str, Any]]:
    response = server.get("/_stackyard/logs/search", **params)
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def test_parse_line() -> None:
    line = json.dumps(
        {"levelname": "WARNING", "msg": "slow", "traceId": TRACE, "correlation_id": "c9"}
    )
    message, level, fields, trace_id, span_id, corr = parse_line(line, "stdout")
    assert (message, level, trace_id, span_id, corr) == ("slow", "warn", TRACE, None, "c9")
    assert json.loads(fields)["msg"] == "slow"
    assert parse_line("INFO:root:started", "stderr")[1] == "info"
    assert parse_line("Traceback (most recent call last):", "stderr")[1] == "error"
    assert parse_line("plain", "stdout")[1] == "info"
    assert parse_line(f"done trace_id={TRACE} correlation_id=req-7", "stdout")[3:] == (
        TRACE,
        None,
        "req-7",
    )
    assert fts_query('say "hi" pay*') == '"say" """hi""" "pay"*'


def test_sink_and_search(served: TelemetryServer) -> None:
    sink = served.telemetry.log_sink
    sink(
        record(
            "orders",
            json.dumps(
                {
                    "level": "info",
                    "msg": "order created",
                    "trace_id": TRACE,
                    "correlation_id": "req-1",
                }
            ),
            time="2024-05-01T12:00:01.000Z",
        )
    )
    sink(
        record(
            "orders",
            "ERROR payment gateway timeout",
            stream="stderr",
            time="2024-05-01T12:00:02.000Z",
        )
    )
    sink(
        record(
            "billing",
            json.dumps({"level": "warn", "message": "invoice delayed", "correlation_id": "req-1"}),
            time="2024-05-01T12:00:03.000Z",
        )
    )
    sink(record("billing", "debug: cache warm", time="2024-05-01T12:00:04.000Z"))
    served.flush()

    assert [r["message"] for r in search(served)] == [
        "debug: cache warm",
        "invoice delayed",
        "ERROR payment gateway timeout",
        "order created",
    ]
    assert [r["service"] for r in search(served, q="payment timeout")] == ["orders"]
    assert search(served, q="paym*")[0]["level"] == "error"
    assert search(served, q="nothing-like-this") == []
    assert [r["message"] for r in search(served, service="billing")] == [
        "debug: cache warm",
        "invoice delayed",
    ]
    assert [r["level"] for r in search(served, level="warn")] == ["warn", "error"]
    assert [r["message"] for r in search(served, trace_id=TRACE.upper())] == ["order created"]
    assert {r["service"] for r in search(served, correlation_id="req-1")} == {"orders", "billing"}
    assert len(search(served, since="2024-05-01T12:00:02Z", until="2024-05-01T12:00:03Z")) == 2
    assert len(search(served, since="1714564803000")) == 2  # epoch ms
    first = search(served, q="order")[0]
    assert first["fields"]["trace_id"] == TRACE and first["instance"] == "orders-1"
    # quotes and FTS operators in q are plain words, not syntax errors
    assert search(served, q='"AND OR NEAR( *') == []

    response = served.get("/_stackyard/logs/search", limit=3)
    page = response.json()
    assert len(page) == 3
    rest = search(served, limit=3, cursor=response.headers["X-Next-Cursor"])
    assert [r["message"] for r in rest] == ["order created"]
    assert "X-Next-Cursor" not in served.get("/_stackyard/logs/search", limit=4).headers

    for params in ({"level": "loud"}, {"since": "yesterday"}, {"limit": "0"}, {"cursor": "x"}):
        bad = served.get("/_stackyard/logs/search", **params)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "InvalidParameter"


def test_otlp_json_logs(served: TelemetryServer) -> None:
    resource = {
        "attributes": [
            {"key": "service.name", "value": {"stringValue": "worker"}},
            {"key": "service.instance.id", "value": {"stringValue": "w-3"}},
        ]
    }
    records = [
        {
            "timeUnixNano": "1714564800000000000",
            "severityNumber": 17,
            "body": {"stringValue": "job failed"},
            "traceId": TRACE,
            "spanId": "cd" * 8,
            "attributes": [{"key": "correlation_id", "value": {"stringValue": "req-9"}}],
        },
        {"timeUnixNano": "later", "body": {"stringValue": "bad time"}},
        {
            "severityText": "WARN",
            "body": {"kvlistValue": {"values": [{"key": "k", "value": {"intValue": "5"}}]}},
        },
    ]
    doc = {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": records}]}]}
    response = served.post(
        "/v1/logs", json.dumps(doc).encode(), **{"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedLogRecords"] == "1"
    served.flush()
    [failed] = search(served, correlation_id="req-9")
    assert failed["message"] == "job failed" and failed["level"] == "error"
    assert failed["instance"] == "w-3" and failed["stream"] == "otlp"
    assert failed["trace_id"] == TRACE and failed["span_id"] == "cd" * 8
    [structured] = search(served, level="warn", service="worker", q="k")
    assert structured["fields"] == {"k": 5}


async def test_sink_never_raises_when_stopped(tmp_path: Any) -> None:
    from stackyard.telemetry import Telemetry

    telemetry = Telemetry(tmp_path)
    telemetry.log_sink(record("x", "before start"))  # dropped, not raised
    assert telemetry.logs.dropped == 1
    await telemetry.start()
    # dated now: the retention pass inside start() removes records older than max_age
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    telemetry.log_sink(record("x", "kept", time=now))
    await telemetry.stop()  # flushes
    await telemetry.start()
    from stackyard.telemetry import LogQuery

    records, _ = await telemetry.logs.search(LogQuery())
    assert [r["message"] for r in records] == ["kept"]
    await telemetry.stop()
