"""The span store's writing side: the schema, how a batch of spans becomes rows, and the
derived rows' retention. It runs in the span store's writer process (:mod:`.store_writer`).

The node ships spans as tuples (:func:`encode`: the :class:`~.model.Span` fields in order,
endpoints as ``(service_name, ipv4, ipv6, port)``) and the gateway's requests as the records of
:mod:`.gateway_spans`; per batch, :class:`SpanWriter` reads the spans already stored in the
batch's traces (one query), inserts the rows (searchable columns plus the span's Zipkin JSON,
:func:`~.model.zipkin_json` — the bytes of ``Span.to_json``), updates the service/span-name
catalogs and the dependency ``calls`` (:mod:`.dependencies`), working on the tuples directly.
A gateway request alone in its trace (nothing stored, nothing else in the batch: the usual
case) takes a fast path, :func:`~.gateway_spans.rows_of`: its rows and its CLIENT spans'
provisional calls straight from the record, the same rows the general path makes. So does a
gateway request with the span of what it called (a function's invocation: a SERVER span whose
parent is one of the request's CLIENT spans) when the two are alone in their trace: that
call's provisional edge becomes the real one the general path would link.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from . import dependencies
from .gateway_spans import GatewayRecord, Row, expand, rows_of
from .model import Span, endpoint_json, now_us, zipkin_json
from .store_writer import StoreWriter

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_id TEXT, kind TEXT NOT NULL,
    name TEXT NOT NULL, service TEXT NOT NULL, remote_service TEXT NOT NULL,
    ts INTEGER NOT NULL, duration INTEGER, error INTEGER NOT NULL, shared INTEGER NOT NULL,
    body TEXT NOT NULL);
DROP INDEX IF EXISTS spans_parent;
DROP INDEX IF EXISTS spans_id;
DROP INDEX IF EXISTS spans_duration;
CREATE INDEX IF NOT EXISTS spans_trace ON spans (trace_id);
CREATE INDEX IF NOT EXISTS spans_service_ts ON spans (service, ts);
CREATE INDEX IF NOT EXISTS spans_name_ts ON spans (name, ts);
CREATE INDEX IF NOT EXISTS spans_ts ON spans (ts);
CREATE TABLE IF NOT EXISTS span_names (
    service TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (service, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS remote_services (
    service TEXT NOT NULL, remote TEXT NOT NULL, PRIMARY KEY (service, remote)) WITHOUT ROWID;
"""
    + dependencies.SCHEMA
)

_INSERT = "INSERT INTO spans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_STORED = (
    f"SELECT rowid, {dependencies.NODE_COLUMNS} FROM spans"
    " WHERE trace_id IN (SELECT value FROM json_each(?))"
)

SpanTuple = tuple[Any, ...]


def encode(spans: list[Span | GatewayRecord]) -> list[SpanTuple | GatewayRecord]:
    """Spans → marshal-able tuples (the node's side; as cheap as it gets in Python); gateway
    records (:mod:`.gateway_spans`) are shipped as they are."""
    out: list[SpanTuple | GatewayRecord] = []
    append = out.append
    for s in spans:
        if isinstance(s, tuple):
            append(s)
            continue
        local, remote = s.local_endpoint, s.remote_endpoint
        append(
            (
                s.trace_id,
                s.span_id,
                s.name,
                s.parent_id,
                s.kind,
                s.timestamp,
                s.duration,
                None if local is None else (local.service_name, local.ipv4, local.ipv6, local.port),
                None
                if remote is None
                else (remote.service_name, remote.ipv4, remote.ipv6, remote.port),
                s.tags,
                s.annotations,
                s.debug,
                s.shared,
            )
        )
    return out


class SpanWriter(StoreWriter):
    """Inserts span batches; trims the catalogs and calls after retention deletes."""

    name = "spans"
    schema = SCHEMA
    table = "spans"
    max_batch = 20_000
    linger = 0.5

    def __init__(self) -> None:
        # name pairs already written, to skip redundant inserts
        self.names: set[tuple[str, str]] = set()
        self.remotes: set[tuple[str, str]] = set()

    def open(self, conn: sqlite3.Connection) -> None:
        dependencies.count_minutes(conn)

    def write(self, conn: sqlite3.Connection, items: list[SpanTuple | GatewayRecord]) -> None:
        """Rows, catalogs and dependency calls of a batch of :func:`encode` items (inside
        the caller's transaction). A span stored again (same trace id, span id, kind and
        service) replaces the one stored before."""
        traces: dict[str, list[SpanTuple | GatewayRecord]] = {}  # the batch's items by trace
        for item in items:
            trace_id = item[1] if type(item[0]) is int else item[0]
            found = traces.get(trace_id)
            if found is None:
                traces[trace_id] = [item]
            else:
                found.append(item)
        stored_rows = conn.execute(_STORED, (json.dumps(list(traces)),)).fetchall()
        stored = {row[1] for row in stored_rows}  # traces with spans stored before
        callees: dict[str, SpanTuple] = {}  # new traces of a gateway request and its callee
        for trace_id, trace in traces.items():
            if len(trace) == 2 and trace_id not in stored:
                callee = _callee(trace)
                if callee is not None:
                    callees[trace_id] = callee
        spans: list[SpanTuple] = []
        fast: list[Row] = []
        calls: list[Row] = []
        now = now_us()
        for item in items:
            if type(item[0]) is not int:
                if callees.get(item[0]) is not item:
                    spans.append(item)
                # else: stored with its caller's gateway record
            elif item[1] in callees:
                # a gateway request and the span of what it called (a function's invocation),
                # alone in their trace: the general path's rows and calls, made directly (the
                # call's provisional edge made real)
                callee = callees[item[1]]
                more_rows, more_calls = rows_of(item)
                row = span_row(callee, now)
                fast += more_rows
                fast.append(row)
                parent = callee[3]
                calls += [call for call in more_calls if call[1] != "c:" + parent]
                caller = next(r for r in more_rows if r[1] == parent and r[3] == "CLIENT")
                error = row[9] or caller[9]
                calls.append((row[0], f"e:{row[1]}:SERVER", row[7], caller[5], row[5], error))
            elif len(traces[item[1]]) == 1 and item[1] not in stored and _plain(item):
                # a gateway request alone in its trace: its rows and calls made directly
                more_rows, more_calls = rows_of(item)
                fast += more_rows
                calls += more_calls
            else:
                spans += expand(item)
        names = {(row[5], row[4]) for row in fast if row[4]}
        remotes = {(row[5], row[6]) for row in fast if row[6]}
        if spans:
            self._write_spans(conn, spans, stored_rows, names, remotes)
        if fast:
            conn.executemany(_INSERT, fast)
        if calls:
            conn.executemany("INSERT OR IGNORE INTO calls VALUES (?, ?, ?, ?, ?, ?)", calls)
        if not names <= self.names:
            new_names = names - self.names
            conn.executemany("INSERT OR IGNORE INTO span_names VALUES (?, ?)", new_names)
            self.names |= new_names
        if not remotes <= self.remotes:
            new_remotes = remotes - self.remotes
            conn.executemany("INSERT OR IGNORE INTO remote_services VALUES (?, ?)", new_remotes)
            self.remotes |= new_remotes

    def _write_spans(
        self,
        conn: sqlite3.Connection,
        spans: list[SpanTuple],
        stored_rows: list[Row],
        names: set[tuple[str, str]],
        remotes: set[tuple[str, str]],
    ) -> None:
        """The general path: rows and dependency calls of span tuples; ``stored_rows`` are
        the batch's traces' stored spans (rowid and ``dependencies.NODE_COLUMNS``)."""
        rows: dict[tuple[str, str, str, str], Row] = {}
        nodes: dict[tuple[str, str, str, str], dependencies.Node] = {}
        now = now_us()
        node = dependencies.Node
        for item in spans:
            row = span_row(item, now)
            trace_id, span_id, parent_id, kind, name, service, remote, ts = row[:8]
            key = (trace_id, span_id, kind, service)
            if key in rows:  # the last of a span sent twice in a batch wins, in its place
                del rows[key]
                del nodes[key]
            rows[key] = row
            nodes[key] = node(
                trace_id, span_id, parent_id, kind, service, remote, ts, row[9], row[10]
            )
            if name:
                names.add((service, name))
            if remote:
                remotes.add((service, remote))
        stored = []
        replaced = []
        for row in stored_rows:
            found = node._make(row[1:])
            if (found.trace_id, found.span_id, found.kind, found.service) in rows:
                replaced.append((row[0],))
            else:
                stored.append(found)
        if replaced:
            conn.executemany("DELETE FROM spans WHERE rowid = ?", replaced)
        dependencies.record_calls(conn, list(nodes.values()), stored)
        conn.executemany(_INSERT, rows.values())

    def op_trim_derived(self, conn: sqlite3.Connection, cutoff: int, spans_deleted: bool) -> None:
        """After retention: calls older than the cutoff or the oldest span, and (when spans
        were deleted) names no span has any more."""
        conn.execute("BEGIN")
        conn.execute("DELETE FROM calls WHERE ts < ?", (cutoff,))
        oldest = conn.execute("SELECT min(ts) FROM spans").fetchone()[0]
        oldest = oldest if oldest is not None else 2**62
        conn.execute("DELETE FROM calls WHERE ts < ?", (oldest,))
        last_minute = max(cutoff, oldest) // dependencies.MINUTE_US  # where counts fell to 0
        conn.execute("DELETE FROM call_minutes WHERE minute <= ? AND calls <= 0", (last_minute,))
        if spans_deleted:
            conn.execute(
                "DELETE FROM span_names WHERE NOT EXISTS (SELECT 1 FROM spans"
                " WHERE spans.name = span_names.name AND spans.service = span_names.service)"
            )
            conn.execute(
                "DELETE FROM remote_services WHERE NOT EXISTS (SELECT 1 FROM spans WHERE"
                " spans.service = remote_services.service"
                " AND spans.remote_service = remote_services.remote)"
            )
            self.names = set()
            self.remotes = set()
        conn.execute("COMMIT")


def span_row(item: SpanTuple, now: int) -> Row:
    """The ``spans`` row of a span tuple (``now``: its time when it has none)."""
    (trace_id, span_id, name, parent_id, kind, ts, duration, local, peer, tags) = item[:10]
    body = zipkin_json(
        trace_id,
        span_id,
        name,
        parent_id,
        kind,
        ts,
        duration,
        None if local is None else endpoint_json(local),
        None if peer is None else endpoint_json(peer),
        tags,
        item[10],
        item[11],
        item[12],
    )
    return (
        trace_id,
        span_id,
        parent_id,
        kind or "",
        name.lower(),
        ((local[0] if local else None) or "unknown").lower(),
        ((peer[0] if peer else None) or "").lower(),
        now if ts is None else ts,
        duration,
        1 if "error" in tags else 0,
        1 if item[12] else 0,
        body,
    )


def _callee(trace: list[SpanTuple | GatewayRecord]) -> SpanTuple | None:
    """In a batch's items of a new trace: the span of what a gateway request called, when
    the trace is exactly that request and that span — a SERVER span, not shared, whose parent
    is one of the request's CLIENT spans, of another service, with an id of its own (a
    function's invocation behind the gateway). None otherwise."""
    if len(trace) != 2:
        return None
    record, span = trace if type(trace[0][0]) is int else (trace[1], trace[0])
    if type(record[0]) is not int or type(span[0]) is int or not _plain(record):
        return None
    if span[4] != "SERVER" or span[12] or not record[16]:
        return None
    local = span[7]
    service = ((local[0] if local else None) or "unknown").lower()
    if service == (record[4] or "unknown").lower():
        return None
    ids = {record[2], record[3]} | {client[1] for client in record[16]}
    if span[1] in ids or span[3] not in ids or span[3] in (record[2], record[3]):
        return None
    if sum(1 for client in record[16] if client[1] == span[3]) != 1:
        return None
    return span


def _plain(record: GatewayRecord) -> bool:
    """Whether :func:`~.gateway_spans.rows_of` takes the record (a route name with a route)."""
    return record[10] is None or type(record[11]) is str
