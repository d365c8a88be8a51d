"""Retention removes old spans (and their derived rows) and old log records, by age and count."""

from __future__ import annotations

import time
from pathlib import Path

from stackyard.telemetry import LogQuery, RetentionSettings, Telemetry, TraceQuery, new_span


def _ts(seconds_ago: float) -> int:
    return int((time.time() - seconds_ago) * 1_000_000)


async def test_retention_by_age_and_count(tmp_path: Path) -> None:
    retention = RetentionSettings(max_age=3600, max_spans=3, max_log_records=2, interval=3600)
    telemetry = Telemetry(tmp_path, retention=retention)
    await telemetry.start()
    try:
        old_trace, new_trace = "1" * 32, "2" * 32
        telemetry.record_span(
            new_span(
                old_trace,
                "a" * 16,
                "old",
                service="ancient",
                timestamp=_ts(7200),
                kind="CLIENT",
                remote_service="gone",
            )
        )
        for i in range(5):
            telemetry.record_span(
                new_span(
                    new_trace, f"{i + 1:016x}", f"op{i}", service="fresh", timestamp=_ts(10 - i)
                )
            )
        sink = telemetry.log_sink
        sink(
            {
                "time": "2000-01-01T00:00:00.000Z",
                "service": "s",
                "instance": "i",
                "stream": "stdout",
                "message": "very old",
            }
        )
        for i in range(3):
            sink(
                {
                    "time": f"2099-01-01T00:00:0{i}.000Z",
                    "service": "s",
                    "instance": "i",
                    "stream": "stdout",
                    "message": f"line {i}",
                }
            )
        await telemetry.flush()
        assert await telemetry.spans.dependencies(None, 10**10) != []

        await telemetry.enforce_retention()

        assert await telemetry.spans.trace_json(old_trace) is None
        assert "ancient" not in await telemetry.spans.services()
        assert await telemetry.spans.remote_services("ancient") == []
        assert await telemetry.spans.dependencies(None, 10**10) == []
        assert await telemetry.spans.count() == 3
        names = await telemetry.spans.span_names("fresh")
        assert names == ["op2", "op3", "op4"]
        assert await telemetry.spans.traces_json(TraceQuery(span_name="op0")) == "[]"
        records, _ = await telemetry.logs.search(LogQuery())
        assert [r["message"] for r in records] == ["line 2", "line 1"]
    finally:
        await telemetry.stop()


async def test_retention_by_size(tmp_path: Path) -> None:
    telemetry = Telemetry(tmp_path, retention=RetentionSettings(max_bytes=256 * 1024))
    await telemetry.start()
    try:
        for i in range(3000):
            telemetry.log_sink(
                {
                    "time": "2099-01-01T00:00:00.000Z",
                    "service": "s",
                    "instance": "i",
                    "stream": "stdout",
                    "message": f"line {i} " + "x" * 200,
                }
            )
        await telemetry.flush()
        await telemetry.enforce_retention()
        records, _ = await telemetry.logs.search(LogQuery(limit=1000))
        assert 0 < len(records) < 1000
        assert records[0]["message"].startswith("line 2999")
    finally:
        await telemetry.stop()
