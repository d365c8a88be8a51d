"""The log store: ``<data_dir>/telemetry-logs.sqlite3`` (WAL) with SQLite FTS5 full-text search.

A record is ``time, service, instance, stream, level, message, fields, trace_id, span_id,
correlation_id``. :meth:`LogStore.add` takes the supervisor's JSON-line records
(``{"time", "service", "instance", "stream", "message"}``, see
:mod:`stackyard.supervisor.logs`) and is its ``on_record`` sink: it only queues the dict (never
raises; records are counted in ``dropped`` when the queue is full). The writer thread then
parses each line (:func:`parse_line`): a JSON object line gives ``fields`` and, picked out of
them, the message (``msg``/``message``/``event``), level, trace id, span id and correlation id;
a plain line gets its level from a ``LEVEL`` word near its start (else ``info`` on stdout,
``error`` on stderr) and ``trace_id=``/``correlation_id=`` pairs when present. OTLP log records
arrive already parsed (:meth:`LogStore.add_rows`).

Levels are trace/debug/info/warn/error/fatal (OpenTelemetry severity numbers 1/5/9/13/17/21);
a ``level`` filter returns that level and above. The FTS5 index (external content, kept by
triggers) covers the message and the JSON fields. Retention deletes by age, count and size.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from .errors import InvalidQuery, TelemetryError
from .model import now_us
from .retention import CHUNK, RetentionSettings, delete_beyond, delete_fraction, delete_older
from .retention import used_bytes as _used_bytes
from .worker import SqliteWorker

FILENAME = "telemetry-logs.sqlite3"
MAX_LIMIT = 1000

SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, service TEXT NOT NULL, instance TEXT NOT NULL,
    stream TEXT NOT NULL, level TEXT NOT NULL, severity INTEGER NOT NULL, message TEXT NOT NULL,
    fields TEXT NOT NULL, trace_id TEXT, span_id TEXT, correlation_id TEXT);
CREATE INDEX IF NOT EXISTS logs_ts ON logs (ts);
CREATE INDEX IF NOT EXISTS logs_service_ts ON logs (service, ts);
CREATE INDEX IF NOT EXISTS logs_trace ON logs (trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS logs_correlation ON logs (correlation_id)
    WHERE correlation_id IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS logs_fts USING fts5(
    message, fields, content='logs', content_rowid='id');
CREATE TRIGGER IF NOT EXISTS logs_ai AFTER INSERT ON logs BEGIN
    INSERT INTO logs_fts (rowid, message, fields) VALUES (new.id, new.message, new.fields);
END;
CREATE TRIGGER IF NOT EXISTS logs_ad AFTER DELETE ON logs BEGIN
    INSERT INTO logs_fts (logs_fts, rowid, message, fields)
    VALUES ('delete', old.id, old.message, old.fields);
END;
"""

LEVELS = {"trace": 1, "debug": 5, "info": 9, "warn": 13, "error": 17, "fatal": 21}
_ALIASES = {
    "warning": "warn",
    "err": "error",
    "critical": "fatal",
    "crit": "fatal",
    "panic": "fatal",
    "emerg": "fatal",
    "alert": "fatal",
    "notice": "info",
    "information": "info",
    "verbose": "debug",
    "dbg": "debug",
    "trc": "trace",
}
_LEVEL_WORD = re.compile(
    r"\b(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRITICAL|FATAL|PANIC)\b"
)
_TRACE_PAIR = re.compile(r"trace_?id[=:]\s*\"?([0-9a-fA-F]{16,32})\b")
_SPAN_PAIR = re.compile(r"span_?id[=:]\s*\"?([0-9a-fA-F]{16})\b")
_CORRELATION_PAIR = re.compile(r"correlation_?id[=:]\s*\"?([\w.:/-]{1,128})")
_MESSAGE_KEYS = ("msg", "message", "event", "log")
_LEVEL_KEYS = ("level", "levelname", "severity", "lvl", "log.level", "severity_text")
_TRACE_KEYS = ("trace_id", "traceId", "traceid", "otelTraceID", "trace.id", "otel.trace_id")
_SPAN_KEYS = ("span_id", "spanId", "spanid", "otelSpanID", "span.id", "otel.span_id")
CORRELATION_KEYS = (
    "correlation_id",
    "correlationId",
    "x-correlation-id",
    "correlation.id",
    "x_correlation_id",
)


class LogRow(NamedTuple):
    """One parsed record, in column order (``ts`` in µs since the epoch)."""

    ts: int
    service: str
    instance: str
    stream: str
    level: str
    severity: int
    message: str
    fields: str
    trace_id: str | None
    span_id: str | None
    correlation_id: str | None


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


def normalize_level(value: Any) -> str | None:
    """A level name or OpenTelemetry severity number → one of ``LEVELS`` (None if unknown)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            return None
        for name, number in reversed(LEVELS.items()):
            if value >= number:
                return name
        return None
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    text = _ALIASES.get(text, text)
    if text in LEVELS:
        return text
    head = text.rstrip("0123456789")  # OTel severity texts such as "INFO2", "ERROR3"
    head = _ALIASES.get(head, head)
    return head if head in LEVELS else None


def _pick(fields: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = fields.get(key)
        if value is not None and value != "":
            return value
    return None


def _hex_id(value: Any, sizes: tuple[int, ...]) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if len(text) in sizes and all(c in "0123456789abcdef" for c in text):
        return text
    return None


def parse_line(
    message: str, stream: str
) -> tuple[str, str, str, str | None, str | None, str | None]:
    """``(message, level, fields_json, trace_id, span_id, correlation_id)`` of one output line."""
    if message.startswith("{"):
        try:
            fields = json.loads(message)
        except (ValueError, RecursionError):
            fields = None
        if isinstance(fields, dict):
            text = _pick(fields, _MESSAGE_KEYS)
            level = normalize_level(_pick(fields, _LEVEL_KEYS))
            correlation = _pick(fields, CORRELATION_KEYS)
            return (
                text if isinstance(text, str) else message,
                level or ("error" if stream == "stderr" else "info"),
                message,
                _hex_id(_pick(fields, _TRACE_KEYS), (16, 32)),
                _hex_id(_pick(fields, _SPAN_KEYS), (16,)),
                str(correlation)[:128] if correlation is not None else None,
            )
    match = _LEVEL_WORD.search(message, 0, 80)
    level = normalize_level(match.group(1)) if match else None
    trace_id = span_id = correlation_id = None
    if "_id" in message or "Id" in message:
        if found := _TRACE_PAIR.search(message):
            trace_id = found.group(1).lower()
        if found := _SPAN_PAIR.search(message):
            span_id = found.group(1).lower()
        if found := _CORRELATION_PAIR.search(message):
            correlation_id = found.group(1)
    return (
        message,
        level or ("error" if stream == "stderr" else "info"),
        "",
        trace_id,
        span_id,
        correlation_id,
    )


def parse_time(value: Any) -> int:
    """An ISO-8601 time (``Z`` or offset) → µs since the epoch; now when absent or malformed."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return now_us()
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1_000_000)
    return now_us()


def row_from_record(record: Mapping[str, Any]) -> LogRow:
    """A supervisor record (``time, service, instance, stream, message``) → a row."""
    stream = str(record.get("stream") or "stdout")
    message, level, fields, trace_id, span_id, correlation_id = parse_line(
        str(record.get("message") or ""), stream
    )
    return LogRow(
        parse_time(record.get("time")),
        str(record.get("service") or "unknown"),
        str(record.get("instance") or ""),
        stream,
        level,
        LEVELS[level],
        message,
        fields,
        trace_id,
        span_id,
        correlation_id,
    )


def format_time(ts: int) -> str:
    moment = datetime.fromtimestamp(ts / 1_000_000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}Z"


def _insert(conn: sqlite3.Connection, items: list[Mapping[str, Any] | LogRow]) -> None:
    rows = [item if isinstance(item, LogRow) else row_from_record(item) for item in items]
    conn.executemany(
        "INSERT INTO logs (ts, service, instance, stream, level, severity, message, fields,"
        " trace_id, span_id, correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


class LogStore:
    """Log records with full-text search, in one SQLite file."""

    def __init__(self, data_dir: Path, *, max_pending: int = 500_000) -> None:
        self.path = Path(data_dir) / FILENAME
        self._worker: SqliteWorker[Mapping[str, Any] | LogRow] = SqliteWorker(
            self.path,
            SCHEMA,
            _insert,
            name="logs",
            max_batch=10_000,
            max_pending=max_pending,
            linger=0.05,
        )
        self.dropped = 0

    async def start(self) -> None:
        await self._worker.start()

    async def stop(self) -> None:
        await self._worker.stop()

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
        deleted = 0
        while (n := await self._worker.call(lambda c: _tx(c, delete_older, cutoff))) > 0:
            deleted += n
            if n < CHUNK:
                break
        limit = settings.max_log_records
        while (n := await self._worker.call(lambda c: _tx(c, delete_beyond, limit))) > 0:
            deleted += n
        if settings.max_bytes is not None:
            for _ in range(50):
                if await self._worker.call(_used_bytes) <= settings.max_bytes:
                    break
                n = await self._worker.call(lambda c: _tx(c, delete_fraction, 0.1))
                if n == 0:
                    break
                deleted += n
        return deleted


def _tx(conn: sqlite3.Connection, fn: Any, arg: Any) -> int:
    conn.execute("BEGIN")
    count: int = fn(conn, "logs", arg)
    conn.execute("COMMIT")
    return count


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
