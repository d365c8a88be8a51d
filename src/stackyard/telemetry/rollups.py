"""The metrics store: ``<data_dir>/telemetry-metrics.sqlite3`` (WAL) with rollups and alarm state.

Tables:

- ``series (id, name, labels, kind, bounds, last_ts)`` — one row per (name, labels); labels
  and histogram bounds as canonical JSON;
- ``points (res, series, ts, vsum, vcount, vmin, vmax, buckets)`` — one row per series per
  resolution (10 s, 60 s, 3600 s) per period starting at ``ts`` (epoch seconds). Every flush
  of the aggregator (:meth:`MetricsStore.add`) is merged into all three resolutions by upsert
  (sums and counts added, min/max kept, bucket counts added), so any period that is a multiple
  of a resolution can be answered with sum, count, avg, min, max and bucket percentiles;
- ``alarm_state`` / ``alarm_history`` — the current state of each alarm and its changes.

Writes go through a :class:`SqliteWorker` writer thread; queries run on its reader threads.
Retention deletes points of each resolution older than its age (``RetentionSettings
.metric_ages``), series no longer written, and alarm history older than ``max_age``.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidQuery
from .metrics import HISTOGRAM, Point, percentile, remap
from .retention import CHUNK
from .worker import SqliteWorker

FILENAME = "telemetry-metrics.sqlite3"
RESOLUTIONS = (10, 60, 3600)
STATS = ("sum", "count", "avg", "min", "max", "p50", "p90", "p99")
_QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}

SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, labels TEXT NOT NULL, kind TEXT NOT NULL,
    bounds TEXT NOT NULL, last_ts INTEGER NOT NULL, UNIQUE (name, labels));
CREATE TABLE IF NOT EXISTS points (
    res INTEGER NOT NULL, series INTEGER NOT NULL, ts INTEGER NOT NULL,
    vsum REAL NOT NULL, vcount REAL NOT NULL, vmin REAL NOT NULL, vmax REAL NOT NULL,
    buckets TEXT, PRIMARY KEY (res, series, ts)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_res_ts ON points (res, ts);
CREATE TABLE IF NOT EXISTS alarm_state (
    name TEXT PRIMARY KEY, state TEXT NOT NULL, reason TEXT NOT NULL, changed_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS alarm_history (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, ts REAL NOT NULL, old_state TEXT NOT NULL,
    new_state TEXT NOT NULL, reason TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alarm_history_name ON alarm_history (name, id);
"""

_UPSERT = """
INSERT INTO points (res, series, ts, vsum, vcount, vmin, vmax, buckets)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (res, series, ts) DO UPDATE SET
    vsum = vsum + excluded.vsum, vcount = vcount + excluded.vcount,
    vmin = min(vmin, excluded.vmin), vmax = max(vmax, excluded.vmax),
    buckets = merge_buckets(buckets, excluded.buckets)
"""


def _merge_buckets(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a if b is None else b
    left, right = json.loads(a), json.loads(b)
    if len(left) != len(right):
        return b
    return json.dumps([x + y for x, y in zip(left, right, strict=True)])


def labels_json(labels: Iterable[tuple[str, str]]) -> str:
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Stat:
    """Merged statistics of one period (``time`` = its start, epoch seconds)."""

    time: int
    sum: float = 0.0
    count: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    bounds: tuple[float, ...] = ()
    buckets: list[float] | None = None

    def merge(self, vsum: float, vcount: float, vmin: float, vmax: float) -> None:
        self.sum += vsum
        self.count += vcount
        self.min = min(self.min, vmin)
        self.max = max(self.max, vmax)

    def merge_buckets(self, bounds: tuple[float, ...], counts: Sequence[float]) -> None:
        if self.buckets is None:
            self.bounds, self.buckets = bounds, [float(c) for c in counts]
            return
        for index, value in enumerate(remap(bounds, counts, self.bounds)):
            self.buckets[index] += value

    def value(self, stat: str) -> float | None:
        if stat == "sum":
            return self.sum
        if stat == "count":
            return self.count
        if stat == "avg":
            return self.sum / self.count if self.count else None
        if stat == "min":
            return self.min
        if stat == "max":
            return self.max
        if self.buckets is None:
            return None
        return percentile(_QUANTILES[stat], self.bounds, self.buckets, self.min, self.max)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"time": self.time}
        for stat in STATS:
            if stat in _QUANTILES and self.buckets is None:
                continue
            out[stat] = self.value(stat)
        return out


@dataclass(frozen=True)
class MetricQuery:
    """A series query: ``name`` + label subset, periods of ``period`` s in [since, until)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    period: int = 60
    since: int = 0
    until: int = 0

    def resolution(self) -> int:
        return next(res for res in reversed(RESOLUTIONS) if self.period % res == 0)


def _write(conn: sqlite3.Connection, items: list[tuple[float, list[Point]]]) -> None:
    conn.create_function("merge_buckets", 2, _merge_buckets, deterministic=True)
    ids: dict[tuple[str, str], int] = {}
    for when, points in items:
        for point in points:
            labels = labels_json(point.labels)
            key = (point.name, labels)
            series_id = ids.get(key)
            if series_id is None:
                conn.execute(
                    "INSERT INTO series (name, labels, kind, bounds, last_ts) VALUES (?,?,?,?,?)"
                    " ON CONFLICT (name, labels) DO UPDATE SET last_ts = excluded.last_ts",
                    (point.name, labels, point.kind, json.dumps(point.bounds), int(when)),
                )
                row = conn.execute(
                    "SELECT id FROM series WHERE name = ? AND labels = ?", key
                ).fetchone()
                series_id = ids[key] = int(row[0])
            buckets = json.dumps(point.buckets) if point.buckets is not None else None
            values = (point.sum, point.count, point.min, point.max, buckets)
            conn.executemany(
                _UPSERT,
                [(res, series_id, int(when // res * res), *values) for res in RESOLUTIONS],
            )


class MetricsStore:
    """Metric rollups and alarm state in one SQLite file."""

    def __init__(self, data_dir: Path, *, max_pending: int = 10_000) -> None:
        self.path = Path(data_dir) / FILENAME
        self._worker: SqliteWorker[tuple[float, list[Point]]] = SqliteWorker(
            self.path, SCHEMA, _write, name="metrics", max_batch=100, max_pending=max_pending
        )

    async def start(self) -> None:
        await self._worker.start()

    async def stop(self) -> None:
        await self._worker.stop()

    def add(self, when: float, points: list[Point]) -> None:
        """Queue one flush: ``points`` recorded around ``when`` (epoch seconds)."""
        if points:
            self._worker.put((when, points))

    async def flush(self) -> None:
        await self._worker.flush()

    # -- reads -------------------------------------------------------------------------------

    async def names(self, name: str | None = None) -> list[dict[str, Any]]:
        """``[{name, kind, labels}]`` of every stored series (of ``name`` when given)."""

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            sql = "SELECT name, kind, labels FROM series"
            rows = conn.execute(
                sql + (" WHERE name = ? ORDER BY labels" if name else " ORDER BY name, labels"),
                (name,) if name else (),
            ).fetchall()
            return [{"name": n, "kind": k, "labels": json.loads(lab)} for n, k, lab in rows]

        return await self._worker.read(read)

    async def query(self, query: MetricQuery) -> tuple[str | None, list[Stat]]:
        """The kind of ``query.name`` (None when unknown) and its periods with data."""
        return await self._worker.read(lambda conn: _query(conn, query))

    # -- alarms ------------------------------------------------------------------------------

    async def alarm_states(self) -> dict[str, tuple[str, str, float]]:
        def read(conn: sqlite3.Connection) -> dict[str, tuple[str, str, float]]:
            rows = conn.execute("SELECT name, state, reason, changed_at FROM alarm_state")
            return {name: (state, reason, at) for name, state, reason, at in rows}

        return await self._worker.read(read)

    async def record_alarm(
        self, name: str, when: float, old: str, new: str, reason: str, data: Mapping[str, Any]
    ) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN")
            conn.execute(
                "INSERT INTO alarm_state (name, state, reason, changed_at) VALUES (?,?,?,?)"
                " ON CONFLICT (name) DO UPDATE SET state = excluded.state,"
                " reason = excluded.reason, changed_at = excluded.changed_at",
                (name, new, reason, when),
            )
            conn.execute(
                "INSERT INTO alarm_history (name, ts, old_state, new_state, reason, data)"
                " VALUES (?,?,?,?,?,?)",
                (name, when, old, new, reason, json.dumps(data, default=str)),
            )
            conn.execute("COMMIT")

        await self._worker.call(write)

    async def alarm_history(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT ts, old_state, new_state, reason, data FROM alarm_history"
                " WHERE name = ? ORDER BY id DESC LIMIT ?",
                (name, limit),
            ).fetchall()
            return [
                {"time": ts, "old_state": old, "new_state": new, "reason": reason}
                | {"data": json.loads(data)}
                for ts, old, new, reason, data in rows
            ]

        return await self._worker.read(read)

    # -- retention ---------------------------------------------------------------------------

    async def enforce_retention(self, ages: Sequence[float], history_age: float, now: float) -> int:
        """Delete points past their resolution's age, dead series and old alarm history."""

        def run(conn: sqlite3.Connection) -> int:
            removed = 0
            for res, age in zip(RESOLUTIONS, ages, strict=True):
                removed += _chunked(
                    conn,
                    "DELETE FROM points WHERE (res, series, ts) IN (SELECT res, series, ts"
                    " FROM points WHERE res = ? AND ts < ? LIMIT ?)",
                    (res, int(now - age) // res * res, CHUNK),
                )
            _chunked(
                conn,
                "DELETE FROM series WHERE id IN (SELECT id FROM series WHERE last_ts < ? LIMIT ?)",
                (int(now - max(ages)), CHUNK),
            )
            _chunked(
                conn,
                "DELETE FROM alarm_history WHERE id IN (SELECT id FROM alarm_history"
                " WHERE ts < ? LIMIT ?)",
                (now - history_age, CHUNK),
            )
            return removed

        return await self._worker.call(run)


def _chunked(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> int:
    total = 0
    while True:
        conn.execute("BEGIN")
        count = conn.execute(sql, params).rowcount
        conn.execute("COMMIT")
        total += count
        if count < CHUNK:
            return total


def _query(conn: sqlite3.Connection, query: MetricQuery) -> tuple[str | None, list[Stat]]:
    rows = conn.execute(
        "SELECT id, labels, kind, bounds FROM series WHERE name = ?", (query.name,)
    ).fetchall()
    wanted = dict(query.labels)
    chosen: dict[int, tuple[float, ...]] = {}
    kind: str | None = rows[0][2] if rows else None
    for series_id, labels, _kind, bounds in rows:
        have = json.loads(labels)
        if all(have.get(k) == v for k, v in wanted.items()):
            chosen[series_id] = tuple(json.loads(bounds))
    res = query.resolution()
    periods: dict[int, Stat] = {}
    ids = list(chosen)
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        marks = ",".join("?" * len(part))
        cursor = conn.execute(
            "SELECT series, ts, vsum, vcount, vmin, vmax, buckets FROM points"
            f" WHERE res = ? AND series IN ({marks}) AND ts >= ? AND ts < ?",
            (res, *part, query.since, query.until),
        )
        for series_id, ts, vsum, vcount, vmin, vmax, buckets in cursor:
            begin = ts // query.period * query.period
            stat = periods.get(begin)
            if stat is None:
                stat = periods[begin] = Stat(begin)
            stat.merge(vsum, vcount, vmin, vmax)
            if buckets is not None and kind == HISTOGRAM:
                stat.merge_buckets(chosen[series_id], json.loads(buckets))
    return kind, [periods[t] for t in sorted(periods)]


def check_stat(stat: str, kind: str | None) -> None:
    if stat not in STATS and stat != "all":
        raise InvalidQuery(f"stat must be one of {', '.join(STATS)}")
    if stat in _QUANTILES and kind is not None and kind != HISTOGRAM:
        raise InvalidQuery(f"{stat} needs a histogram metric; this one is a {kind}")
