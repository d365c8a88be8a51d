"""The log store: ``<data_dir>/telemetry-logs.sqlite3`` (WAL) with SQLite FTS5 full-text search,
written by a child process (:mod:`.store_process`, :mod:`.log_writer`); searched here.

A record is ``time, service, instance, stream, level, message, fields, trace_id, span_id,
correlation_id``. :meth:`LogStore.add` takes the supervisor's JSON-line records
(``{"time", "service", "instance", "stream", "message"}``, see
:mod:`stackyard.supervisor.logs`) and is its ``on_record`` sink: it only queues the dict (never
raises; records are counted in ``dropped`` when the queue is full). The writer process then
parses each line (:func:`parse_line`): a JSON object line gives ``fields`` and, picked out of
them, the message (``msg``/``message``/``event``), level, trace id, span id and correlation id;
a plain line gets its level from a ``LEVEL`` word near its start (else ``info`` on stdout,
``error`` on stderr) and ``trace_id=``/``correlation_id=`` pairs when present. OTLP log records
arrive already parsed (:meth:`LogStore.add_rows`).

Levels are trace/debug/info/warn/error/fatal (OpenTelemetry severity numbers 1/5/9/13/17/21);
a ``level`` filter returns that level and above. The FTS5 index (external content) covers the
message and the JSON fields. Retention deletes by age, count and size.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import log_writer
from .errors import InvalidQuery, TelemetryError
from .log_writer import (
    CORRELATION_KEYS,
    LEVELS,
    SCHEMA,
    LogRow,
    format_time,
    normalize_level,
    parse_line,
    parse_time,
    row_from_record,
)
from .model import now_us
from .retention import RetentionSettings, trim_store
from .store_process import StoreProcess

__all__ = [
    "CORRELATION_KEYS",
    "FILENAME",
    "LEVELS",
    "MAX_LIMIT",
    "SCHEMA",
    "LogQuery",
    "LogRow",
    "LogStore",
    "fts_query",
    "normalize_level",
    "parse_line",
    "parse_time",
    "row_from_record",
]

FILENAME = "telemetry-logs.sqlite3"
MAX_LIMIT = 1000


@dataclass(frozen=True)
class LogQuery:
    """The filters of ``/_stackyard/logs/search`` (times in µs)."""

    text: str | None = None
    service: str | None = None
    level: str | None = None
    since: int | None = None
    until: int | None = None
    trace_id: str | None = None
    correlation_id: str | None = None
    limit: int = 100
    cursor: tuple[int, int] | None = None


class LogStore:
    """Log records with full-text search, in one SQLite file."""

    def __init__(self, data_dir: Path, *, max_pending: int = 500_000) -> None:
        self.path = Path(data_dir) / FILENAME
        self._worker: StoreProcess[Mapping[str, Any] | LogRow] = StoreProcess(
            self.path,
            "logs",
            log_writer.encode,
            name="logs",
            max_pending=max_pending,
            linger=0.05,
            frame_items=5000,
        )
        self.dropped = 0

    async def start(self) -> None:
        await self._worker.start()

    async def stop(self) -> None:
        await self._worker.stop()

    @property
    def writer_pid(self) -> int | None:
        """The writer process's id while the store runs."""
        return self._worker.pid

    def add(self, record: Mapping[str, Any]) -> None:
        """Queue one supervisor record (the ``on_record`` sink): cheap, never raises."""
        try:
            self._worker.put(record)
        except TelemetryError:
            self.dropped += 1

    def add_rows(self, rows: list[LogRow]) -> None:
        """Queue parsed rows, all or none (raises ``Overloaded``/``StoreClosed``)."""
        if rows:
            self._worker.put_many(list(rows))

    async def flush(self) -> None:
        await self._worker.flush()

    async def search(self, query: LogQuery) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
        """Matching records, newest first, and the cursor of the next page (None at the end)."""
        return await self._worker.read(lambda c: _search(c, query))

    async def enforce_retention(self, settings: RetentionSettings) -> int:
        """Delete records beyond the age/count/size limits; returns how many."""
        cutoff = now_us() - int(settings.max_age * 1_000_000)
        return await trim_store(
            self._worker.call, cutoff, settings.max_log_records, settings.max_bytes
        )


def fts_query(text: str) -> str:
    """Free text → a safe FTS5 query: every word must match (``word*`` matches a prefix)."""
    terms = []
    for word in text.split():
        prefix = word.endswith("*")
        word = word.rstrip("*")
        if not word:
            continue
        terms.append('"' + word.replace('"', '""') + '"' + ("*" if prefix else ""))
    return " ".join(terms)


def _search(
    conn: sqlite3.Connection, query: LogQuery
) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
    sql = (
        "SELECT logs.id, ts, service, instance, stream, level, logs.message, logs.fields,"
        " trace_id, span_id, correlation_id FROM logs"
    )
    where: list[str] = []
    args: list[Any] = []
    if query.text and (match := fts_query(query.text)):
        sql += " JOIN logs_fts ON logs_fts.rowid = logs.id"
        where.append("logs_fts MATCH ?")
        args.append(match)
    for column, value in (
        ("service", query.service),
        ("trace_id", query.trace_id.lower() if query.trace_id else None),
        ("correlation_id", query.correlation_id),
    ):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    if query.level:
        level = normalize_level(query.level)
        if level is None:
            raise InvalidQuery(f"unknown level {query.level!r}")
        where.append("severity >= ?")
        args.append(LEVELS[level])
    if query.since is not None:
        where.append("ts >= ?")
        args.append(query.since)
    if query.until is not None:
        where.append("ts <= ?")
        args.append(query.until)
    if query.cursor is not None:
        where.append("(ts < ? OR (ts = ? AND logs.id < ?))")
        args += [query.cursor[0], query.cursor[0], query.cursor[1]]
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY ts DESC, logs.id DESC LIMIT ?"
    args.append(query.limit + 1)
    try:
        rows = conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError as exc:
        raise InvalidQuery(f"cannot search for {query.text!r}: {exc}") from exc
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    records = [_record(row) for row in rows]
    cursor = (rows[-1][1], rows[-1][0]) if more and rows else None
    return records, cursor


def _record(row: tuple[Any, ...]) -> dict[str, Any]:
    _, ts, service, instance, stream, level, message, fields, trace_id, span_id, corr = row
    record: dict[str, Any] = {
        "time": format_time(ts),
        "service": service,
        "instance": instance,
        "stream": stream,
        "level": level,
        "message": message,
    }
    if fields:
        try:
            record["fields"] = json.loads(fields)
        except ValueError:
            record["fields"] = fields
    if trace_id:
        record["trace_id"] = trace_id
    if span_id:
        record["span_id"] = span_id
    if corr:
        record["correlation_id"] = corr
    return record
