"""The access log's writer: batches to a file with rotation, recent records with filters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stackyard.gateway.access_log import AccessLogWriter


def record(n: int, status: int = 200, route: str = "/a") -> dict[str, Any]:
    return {
        "time": f"2026-01-01T00:00:{n:02d}.000Z",
        "method": "GET",
        "route": route,
        "status": status,
        "correlation_id": f"c{n}",
    }


async def test_lines_are_written_in_batches_and_rotated(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "gateway-access.log"
    writer = AccessLogWriter(path, max_bytes=300, flush_interval=60)
    await writer.start()
    for n in range(5):
        writer(record(n))
    assert not path.exists()  # not before the batch is flushed
    await writer.flush()
    assert [json.loads(line)["correlation_id"] for line in path.read_text().splitlines()] == [
        f"c{n}" for n in range(5)
    ]
    for n in range(5, 8):
        writer(record(n))
    await writer.stop()  # flushes; the file was over max_bytes, so it rotated first
    old = path.with_name("gateway-access.log.1")
    assert len(old.read_text().splitlines()) == 5
    assert [json.loads(line)["correlation_id"] for line in path.read_text().splitlines()] == [
        "c5",
        "c6",
        "c7",
    ]


def test_recent_records_are_bounded_and_filtered() -> None:
    forwarded: list[dict[str, Any]] = []
    writer = AccessLogWriter(None, keep=10, forward=forwarded.append)
    for n in range(30):
        writer(record(n, status=500 if n % 3 == 0 else 200, route="/b" if n % 2 else "/a"))
    assert len(forwarded) == 30
    assert [r["correlation_id"] for r in writer.query(limit=3)] == ["c29", "c28", "c27"]
    assert len(writer.query()) == 10  # only the latest ``keep`` are kept
    errors = writer.query(status=[500])
    assert [r["correlation_id"] for r in errors] == ["c27", "c24", "c21"]
    assert [r["correlation_id"] for r in writer.query(status=[500], route="/b")] == ["c27", "c21"]
    assert writer.query(correlation_id="c25")[0]["status"] == 200
    assert writer.query(correlation_id="c1") == []  # no longer kept
    assert [r["correlation_id"] for r in writer.query(since="2026-01-01T00:00:28")] == [
        "c29",
        "c28",
    ]
