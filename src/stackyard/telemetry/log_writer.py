"""The log store's writing side: the schema, how an output line is parsed, how a batch of
lines becomes rows. It runs in the log store's writer process (:mod:`.store_writer`).

The node ships supervisor records as ``(time, service, instance, stream, message)`` tuples and
OTLP rows (:class:`LogRow`, already parsed) as 11-tuples (:func:`encode`). :class:`LogWriter`
parses each line (:func:`parse_line`): a JSON object line gives ``fields`` and, picked out of
them, the message (``msg``/``message``/``event``), level, trace id, span id and correlation id;
a plain line gets its level from a ``LEVEL`` word near its start (else ``info`` on stdout,
``error`` on stderr) and ``trace_id=``/``correlation_id=`` pairs when present.

Rows get their ids from the writer (one above the largest stored) and are indexed in the FTS5
table (external content: ``logs``) by an explicit ``executemany`` in the same transaction —
several times cheaper per line than the per-row ``AFTER INSERT`` trigger it replaces (dropped
from older files). Deletes keep their trigger (retention deletes in chunks).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from .model import now_us
from .store_writer import StoreWriter

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
DROP TRIGGER IF EXISTS logs_ai;
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
_HEX_DIGITS = re.compile(r"[0-9a-f]+")
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
    if len(text) in sizes and _HEX_DIGITS.fullmatch(text):
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
    return row_from_fields(
        record.get("time"),
        record.get("service"),
        record.get("instance"),
        record.get("stream"),
        record.get("message"),
    )


def row_from_fields(time: Any, service: Any, instance: Any, stream: Any, message: Any) -> LogRow:
    """:func:`row_from_record` of the record's five fields."""
    stream = str(stream or "stdout")
    text, level, fields, trace_id, span_id, correlation_id = parse_line(str(message or ""), stream)
    return LogRow(
        parse_time(time),
        str(service or "unknown"),
        str(instance or ""),
        stream,
        level,
        LEVELS[level],
        text,
        fields,
        trace_id,
        span_id,
        correlation_id,
    )


def format_time(ts: int) -> str:
    moment = datetime.fromtimestamp(ts / 1_000_000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}Z"


def encode(items: list[Mapping[str, Any] | LogRow]) -> list[tuple[Any, ...]]:
    """Records and rows → marshal-able tuples (the node's side)."""
    out: list[tuple[Any, ...]] = []
    append = out.append
    for item in items:
        if isinstance(item, tuple):
            append(tuple(item))
        else:
            get = item.get
            append(
                (
                    _plain(get("time")),
                    _plain(get("service")),
                    _plain(get("instance")),
                    _plain(get("stream")),
                    _plain(get("message")),
                )
            )
    return out


def _plain(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    return str(value) if value else None


_INSERT = (
    "INSERT INTO logs (id, ts, service, instance, stream, level, severity, message, fields,"
    " trace_id, span_id, correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INDEX = "INSERT INTO logs_fts (rowid, message, fields) VALUES (?, ?, ?)"


class LogWriter(StoreWriter):
    """Parses and inserts log lines, and indexes them for full-text search."""

    name = "logs"
    schema = SCHEMA
    table = "logs"
    max_batch = 10_000

    def write(self, conn: sqlite3.Connection, items: list[tuple[Any, ...]]) -> None:
        rows = [row_from_fields(*item) if len(item) == 5 else LogRow(*item) for item in items]
        first = (conn.execute("SELECT max(id) FROM logs").fetchone()[0] or 0) + 1
        conn.executemany(_INSERT, [(first + i, *row) for i, row in enumerate(rows)])
        conn.executemany(_INDEX, [(first + i, r[6], r[7]) for i, r in enumerate(rows)])
