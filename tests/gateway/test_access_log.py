"""The access log's writer: batches to a file with rotation, recent records with filters."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stackyard.gateway.access_log import (
    AccessEntry,
    AccessLogWriter,
    access_entry,
    access_line,
    access_record,
    iso_millis,
)
from stackyard.gateway.router import RouteMatch
from stackyard.gateway.table import RouteSpec
from stackyard.jsontext import dumps

START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def entry(n: int, status: int = 200, route: str = "/a") -> AccessEntry:
    """What the step hands the writer for request ``n`` (answered ``n`` seconds after START)."""
    scope: dict[str, Any] = {
        "method": "GET",
        "path": route,
        "query_string": b"",
        "headers": [(b"user-agent", b"t/1")],
        "client": ("127.0.0.1", 1),
        "state": {
            "route": RouteMatch(RouteSpec(route, "svc"), None, {}),
            "correlation_id": f"c{n}",
        },
    }
    return (START + n, *access_entry(scope, status, 10, 1.5)[1:])


async def test_lines_are_written_in_batches_and_rotated(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "gateway-access.log"
    writer = AccessLogWriter(path, max_bytes=300, flush_interval=60)
    await writer.start()
    for n in range(5):
        writer(entry(n))
    assert not path.exists()  # not before the batch is flushed
    await writer.flush()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["correlation_id"] for r in lines] == [f"c{n}" for n in range(5)]
    assert lines[1]["time"] == "2026-01-01T00:00:01.000Z"
    assert lines[1]["integration"] == "service:svc" and lines[1]["user_agent"] == "t/1"
    for n in range(5, 8):
        writer(entry(n))
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

    def forward(record: dict[str, Any], line: str) -> None:
        assert json.loads(line) == record  # the record and the line the file would get
        forwarded.append(record)

    writer = AccessLogWriter(None, keep=10, forward=forward)
    for n in range(30):
        writer(entry(n, status=500 if n % 3 == 0 else 200, route="/b" if n % 2 else "/a"))
    assert [r["correlation_id"] for r in forwarded] == [f"c{n}" for n in range(30)]
    assert [r["correlation_id"] for r in writer.query(limit=3)] == ["c29", "c28", "c27"]
    assert len(writer.query()) == 10  # only the latest ``keep`` are kept
    errors = writer.query(status=[500])
    assert [r["correlation_id"] for r in errors] == ["c27", "c24", "c21"]
    assert [r["correlation_id"] for r in writer.query(status=[500], route="/b")] == ["c27", "c21"]
    assert writer.query(correlation_id="c25")[0]["status"] == 200
    assert writer.query(correlation_id="c1") == []  # no longer kept
    assert [r["correlation_id"] for r in writer.query(since="2026-01-01T00:00:28Z")] == [
        "c29",
        "c28",
    ]
    assert writer.query(method="POST") == []
    with pytest.raises(ValueError, match="since"):
        writer.query(since="yesterday")


@given(st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False))
def test_record_times_are_those_datetime_writes(moment: float) -> None:
    expected = datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
    assert iso_millis(moment) == expected.replace("+00:00", "Z")


_texts = st.none() | st.text()
_numbers = st.integers(-(2**70), 2**70) | st.floats() | st.booleans() | st.none()


@given(
    st.floats(START, START + 10 * 365 * 86400),
    st.tuples(st.text(), st.text(), st.text(), _texts),
    _numbers,
    _numbers,
    _numbers,
    st.tuples(*[_texts] * 8),
)
def test_an_access_line_is_its_record_as_json(
    moment: float,
    request: tuple[str, str, str, str | None],
    status: Any,
    duration: Any,
    size: Any,
    rest: tuple[str | None, ...],
) -> None:
    """The line written field by field is exactly the record through the JSON encoder, for
    any text (quotes, control characters, non-ASCII) and any number (NaN, infinities)."""
    entry: AccessEntry = (moment, *request, status, duration, size, *rest)
    line = access_line(entry)
    assert line == dumps(access_record(entry))
    assert json.loads(line)["time"] == iso_millis(moment)  # (json reads NaN, Infinity)


def test_an_entry_keeps_nothing_of_the_request_alive() -> None:
    """Entries are plain values: the latest ten thousand requests' scopes, states and traces
    are not held (they would be, through a reference to the scope)."""
    trace = SimpleNamespace(trace_id="a" * 32, span_id="b" * 16)
    scope: dict[str, Any] = {
        "method": "POST",
        "path": "/f/é",
        "query_string": b"a=1",
        "headers": [(b"x-other", b"1"), (b"user-agent", b"t/2")],
        "client": ("10.0.0.1", 5),
        "state": {
            "route": RouteMatch(
                RouteSpec("/f/{x}", function="fn", integration="function"), None, {}
            ),
            "trace": trace,
            "api_key": SimpleNamespace(name="k1"),
            "auth": SimpleNamespace(principal_id="p1"),
            "correlation_id": "c-1",
        },
    }
    entry = access_entry(scope, 201, 7, 2.34567)
    assert all(value is None or type(value) in (str, int, float) for value in entry)
    record = access_record(entry)
    assert {k: v for k, v in record.items() if k != "time"} == {
        "method": "POST",
        "path": "/f/é",
        "query": "a=1",
        "route": "/f/{x}",
        "status": 201,
        "duration_ms": 2.346,
        "bytes": 7,
        "correlation_id": "c-1",
        "trace_id": "a" * 32,
        "span_id": "b" * 16,
        "client": "10.0.0.1",
        "user_agent": "t/2",
        "api_key": "k1",
        "principal": "p1",
        "integration": "function:fn",
    }
    assert iso_millis(entry[0]) == record["time"]
    unmatched = access_record(access_entry({"method": "GET", "path": "/", "headers": []}, 0, 0, 1))
    assert unmatched["route"] is None and unmatched["integration"] is None
    assert unmatched["client"] is None and unmatched["correlation_id"] is None
