"""Dependency links from the per-minute call counts equal a count of the single calls, for
any window, through re-sent spans, provisional calls made real, retention and an old store."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from stackyard.telemetry import RetentionSettings
from stackyard.telemetry.dependencies import MINUTE_US
from stackyard.telemetry.spans import FILENAME

from .conftest import TelemetryServer
from .test_zipkin_api import post, span

# on a minute boundary, recent enough for the default retention
START = (int(time.time()) - 3600) * 1_000_000 // MINUTE_US * MINUTE_US
SERVICES = ["gateway", "orders", "catalog", "stock"]


def calls_in(path: Path, start: int, end: int) -> list[dict[str, Any]]:
    """What the links must be: a GROUP BY over the single calls the store keeps."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT parent, child, count(*), sum(error) FROM calls WHERE ts BETWEEN ? AND ?"
            " GROUP BY 1, 2 ORDER BY 1, 2",
            (start, end),
        ).fetchall()
    out = []
    for parent, child, calls, errors in rows:
        link: dict[str, Any] = {"parent": parent, "child": child, "callCount": calls}
        if errors:
            link["errorCount"] = errors
        out.append(link)
    return out


def traces(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Traces of a SERVER root and CLIENT → SERVER calls, spread over ten minutes."""
    spans: list[dict[str, Any]] = []
    for number in range(count):
        trace = f"{number + 1:032x}"
        ts = START + rng.randrange(10 * MINUTE_US)
        caller = rng.choice(SERVICES[:2])
        callee = rng.choice(SERVICES[2:])
        tags = {"error": "boom"} if rng.random() < 0.2 else {}
        spans.append(span(trace, f"{number:08x}00000001", caller, kind="SERVER", ts=ts))
        client = span(
            trace,
            f"{number:08x}00000002",
            caller,
            parent=f"{number:08x}00000001",
            kind="CLIENT",
            ts=ts + 5,
            remoteEndpoint={"serviceName": callee},
            tags=tags,
        )
        spans.append(client)
        if rng.random() < 0.7:  # the callee reports too: the provisional call becomes real
            spans.append(
                span(trace, f"{number:08x}00000003", callee,
                     parent=f"{number:08x}00000002", kind="SERVER", ts=ts + 10)
            )  # fmt: skip
    return spans


def windows(rng: random.Random) -> list[tuple[int, int]]:
    fixed = [
        (START, START + 10 * MINUTE_US),  # whole minutes only
        (START + 1, START + 10 * MINUTE_US - 2),  # partial minutes at both ends
        (START + 90_000_000, START + 100_000_000),  # inside one minute
        (START + 2 * MINUTE_US - 1, START + 4 * MINUTE_US),  # one microsecond short
    ]
    drawn = []
    for _ in range(20):
        a, b = sorted(rng.randrange(START - MINUTE_US, START + 11 * MINUTE_US) for _ in "ab")
        drawn.append((a, b))
    return fixed + drawn


def links(server: TelemetryServer, start: int, end: int) -> list[dict[str, Any]]:
    # the API's window is [endTs - lookback, endTs] in milliseconds, endTs's millisecond whole
    end_ms = end // 1000
    start_ms = -(-start // 1000)
    found: list[dict[str, Any]] = server.get(
        "/api/v2/dependencies", endTs=end_ms, lookback=end_ms - start_ms
    ).json()
    return found


def test_links_equal_the_single_calls_in_every_window(tmp_path: Path) -> None:
    rng = random.Random(7)
    with TelemetryServer(tmp_path / "data") as server:
        spans = traces(rng, 400)
        for at in range(0, len(spans), 150):
            post(server, spans[at : at + 150])
        server.flush()
        post(server, rng.sample(spans, 100))  # sent again: stored rows replaced, counted once
        server.flush()
        store = tmp_path / "data" / FILENAME
        for start, end in windows(rng):
            start_ms, end_ms = -(-start // 1000), end // 1000
            expected = calls_in(store, start_ms * 1000, end_ms * 1000 + 999)
            assert links(server, start, end) == expected, (start - START, end - START)
        assert sum(link["callCount"] for link in links(server, START, START + 11 * MINUTE_US))


def test_retention_keeps_the_counts_true_and_drops_empty_minutes(tmp_path: Path) -> None:
    rng = random.Random(11)
    retention = RetentionSettings(max_spans=600)
    with TelemetryServer(tmp_path / "data", retention=retention) as server:
        post(server, traces(rng, 400))
        server.flush()
        server.run(server.telemetry.enforce_retention())
        store = tmp_path / "data" / FILENAME
        with sqlite3.connect(store) as conn:
            assert conn.execute("SELECT count(*) FROM spans").fetchone()[0] <= 600
            assert (
                conn.execute("SELECT count(*) FROM call_minutes WHERE calls <= 0").fetchone()[0]
                == 0
            )
        end = START + 11 * MINUTE_US
        assert links(server, START, end) == calls_in(store, START, end // 1000 * 1000 + 999)


def test_a_store_without_minute_counts_gets_them_when_opened(tmp_path: Path) -> None:
    rng = random.Random(3)
    data = tmp_path / "data"
    with TelemetryServer(data) as server:
        post(server, traces(rng, 200))
        server.flush()
    store = data / FILENAME
    with sqlite3.connect(store) as conn:  # as a store written before the counts existed
        conn.executescript(
            "DROP TRIGGER calls_counted; DROP TRIGGER calls_uncounted; DROP TABLE call_minutes;"
        )
    end = START + 11 * MINUTE_US
    expected = calls_in(store, START, end // 1000 * 1000 + 999)
    assert expected
    with TelemetryServer(data) as server:
        assert links(server, START, end) == expected  # call_minutes, filled when opened
    with sqlite3.connect(store) as conn:
        filled = conn.execute("SELECT sum(calls) FROM call_minutes").fetchone()[0]
    assert filled == sum(link["callCount"] for link in expected)
