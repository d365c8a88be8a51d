"""Service dependency links, computed as spans arrive (no batch job).

Each call between two services is one row of the ``calls`` table, keyed by (trace id, call
key), so re-sent spans and spans arriving in any order update the same row:

- a **real edge** exists when a span and its parent are both stored and belong to different
  services: ``parent service → child service``, key ``e:<child id>:<child kind>``. The parent of
  a Zipkin shared SERVER span is the CLIENT span with the same id, so a CLIENT/SERVER pair sharing
  an id counts once; an OpenTelemetry CLIENT span and its SERVER child also count once.
- a **provisional edge** stands in while one side is missing: a CLIENT span naming its
  ``remoteEndpoint.serviceName`` (key ``c:<id>``; also covers uninstrumented back ends such as
  databases) or a SERVER/CONSUMER span naming its caller (key ``s:<id>``). A real edge replaces
  the provisional rows of its two spans.

A call is an error when the child span, or its CLIENT parent, carries an ``error`` tag.
:func:`record_calls` runs in the span store's writer process for each batch (one read of the
batch's traces, links worked out in memory, three ``executemany`` writes).

Triggers keep ``call_minutes`` — calls and errors per (minute, parent, child) — equal to what
``calls`` holds, row by row, through inserts, replacements and retention deletes, so
``/api/v2/dependencies`` (:func:`query_links`) sums the minutes inside its window and reads
single calls only for the partial minutes at its two ends: a window over a million calls
answers in milliseconds, exactly.
"""

from __future__ import annotations

import json
import sqlite3
from typing import NamedTuple

from .model import Span

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    trace_id TEXT NOT NULL, call_key TEXT NOT NULL, ts INTEGER NOT NULL,
    parent TEXT NOT NULL, child TEXT NOT NULL, error INTEGER NOT NULL,
    PRIMARY KEY (trace_id, call_key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS calls_ts ON calls (ts);
CREATE TABLE IF NOT EXISTS call_minutes (
    minute INTEGER NOT NULL, parent TEXT NOT NULL, child TEXT NOT NULL,
    calls INTEGER NOT NULL, errors INTEGER NOT NULL,
    PRIMARY KEY (minute, parent, child)) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS calls_counted AFTER INSERT ON calls BEGIN
    INSERT INTO call_minutes VALUES (NEW.ts / 60000000, NEW.parent, NEW.child, 1, NEW.error)
    ON CONFLICT DO UPDATE SET calls = calls + 1, errors = errors + excluded.errors;
END;
CREATE TRIGGER IF NOT EXISTS calls_uncounted AFTER DELETE ON calls BEGIN
    UPDATE call_minutes SET calls = calls - 1, errors = errors - OLD.error
    WHERE minute = OLD.ts / 60000000 AND parent = OLD.parent AND child = OLD.child;
END;
"""
MINUTE_US = 60_000_000

NODE_COLUMNS = "trace_id, span_id, parent_id, kind, service, remote_service, ts, error, shared"
_SERVER_SIDE = ("SERVER", "CONSUMER")


class Node(NamedTuple):
    """The columns of a stored span that linking needs."""

    trace_id: str
    span_id: str
    parent_id: str | None
    kind: str
    service: str
    remote_service: str
    ts: int
    error: int
    shared: int


def node_of(span: Span, ts: int) -> Node:
    return Node(
        span.trace_id,
        span.span_id,
        span.parent_id,
        span.kind or "",
        span.service,
        span.remote_service,
        ts,
        int(span.error),
        int(span.shared),
    )


_IGNORE, _SET, _DELETE = 0, 1, 2
_Row = tuple[str, str, int, str, str, int]


class _Batch:
    """The spans of a batch's traces (read once) and the net changes to their calls.

    Changes are kept per call key as the statement the sequence of per-span updates amounts to
    (insert-or-ignore, replace or delete), so the rows already stored never need to be read.
    """

    def __init__(self, stored: list[Node], nodes: list[Node]) -> None:
        self.by_id: dict[tuple[str, str], list[Node]] = {}
        self.by_parent: dict[tuple[str, str], list[Node]] = {}
        # the rows stored before this batch, then the batch, which replaces a stored row of
        # the same (trace, id, kind, service)
        latest: dict[tuple[str, str, str, str], Node] = {}
        for node in stored:
            latest[(node.trace_id, node.span_id, node.kind, node.service)] = node
        for node in nodes:
            latest[(node.trace_id, node.span_id, node.kind, node.service)] = node
        by_id, by_parent = self.by_id, self.by_parent
        for node in latest.values():
            key = (node.trace_id, node.span_id)
            found = by_id.get(key)
            if found is None:
                by_id[key] = [node]
            else:
                found.append(node)
                found.sort(key=_stored_order)
            if node.parent_id:
                key = (node.trace_id, node.parent_id)
                found = by_parent.get(key)
                if found is None:
                    by_parent[key] = [node]
                else:
                    found.append(node)
        self.changes: dict[tuple[str, str], tuple[int, _Row | None]] = {}

    def ignore(self, row: _Row) -> None:
        key = (row[0], row[1])
        change = self.changes.get(key)
        if change is None:
            self.changes[key] = (_IGNORE, row)
        elif change[0] == _DELETE:
            self.changes[key] = (_SET, row)

    def replace(self, row: _Row) -> None:
        self.changes[(row[0], row[1])] = (_SET, row)

    def delete(self, trace_id: str, call_key: str) -> None:
        self.changes[(trace_id, call_key)] = (_DELETE, None)

    def write(self, conn: sqlite3.Connection) -> None:
        ignored: list[_Row] = []
        replaced: list[_Row] = []
        deleted: list[tuple[str, str]] = []
        for key, (op, row) in self.changes.items():
            if row is None:
                deleted.append(key)
            elif op == _SET:
                replaced.append(row)
            else:
                ignored.append(row)
        # a replaced row is deleted, then inserted: the triggers see both (REPLACE's implicit
        # delete fires no trigger)
        deleted += [(row[0], row[1]) for row in replaced]
        if deleted:
            conn.executemany("DELETE FROM calls WHERE trace_id = ? AND call_key = ?", deleted)
        if replaced:
            conn.executemany("INSERT INTO calls VALUES (?, ?, ?, ?, ?, ?)", replaced)
        if ignored:
            conn.executemany("INSERT OR IGNORE INTO calls VALUES (?, ?, ?, ?, ?, ?)", ignored)


def _stored_order(node: Node) -> tuple[str, str]:
    return (node.kind, node.service)


def stored_nodes(conn: sqlite3.Connection, nodes: list[Node]) -> list[Node]:
    """The spans already stored in the traces of ``nodes`` (one query)."""
    rows = conn.execute(
        f"SELECT {NODE_COLUMNS} FROM spans WHERE trace_id IN (SELECT value FROM json_each(?))",
        (json.dumps(list({node.trace_id for node in nodes})),),
    ).fetchall()
    return [Node._make(row) for row in rows]


def record_calls(
    conn: sqlite3.Connection, nodes: list[Node], stored: list[Node] | None = None
) -> None:
    """Update the calls touched by a batch of spans (span writer, inside its transaction,
    before the batch is inserted).

    ``stored``: the spans already stored in the batch's traces, other than those the batch
    replaces (read with :func:`stored_nodes` when not given). The links are worked out in
    memory and written with three ``executemany`` statements.
    """
    if not nodes:
        return
    if stored is None:
        stored = stored_nodes(conn, nodes)
    batch = _Batch(stored, nodes)
    for node in nodes:
        _link(batch, node)
        linked_as_parent = False
        for child in _children(batch, node):
            parent = _link(batch, child)
            if parent is not None and parent.span_id == node.span_id:
                linked_as_parent = linked_as_parent or parent.kind == node.kind
        if (
            node.kind == "CLIENT"
            and node.remote_service
            and node.remote_service != node.service
            and not linked_as_parent
        ):
            batch.ignore(
                (
                    node.trace_id,
                    "c:" + node.span_id,
                    node.ts,
                    node.service,
                    node.remote_service,
                    node.error,
                )
            )
    batch.write(conn)


def _link(batch: _Batch, child: Node) -> Node | None:
    """Record the call into ``child``; returns the parent when a real edge was recorded."""
    parent = _parent(batch, child)
    if parent is None:
        if (
            child.kind in _SERVER_SIDE
            and child.remote_service
            and child.remote_service != child.service
        ):
            batch.ignore(
                (
                    child.trace_id,
                    "s:" + child.span_id,
                    child.ts,
                    child.remote_service,
                    child.service,
                    child.error,
                )
            )
        return None
    if parent.service == child.service:
        return None
    error = child.error or (parent.error if parent.kind == "CLIENT" else 0)
    batch.replace(
        (
            child.trace_id,
            f"e:{child.span_id}:{child.kind}",
            child.ts,
            parent.service,
            child.service,
            error,
        )
    )
    batch.delete(child.trace_id, "s:" + child.span_id)
    if parent.kind == "CLIENT":
        batch.delete(child.trace_id, "c:" + parent.span_id)
    return parent


def _parent(batch: _Batch, child: Node) -> Node | None:
    if child.shared and child.kind == "SERVER":
        for row in batch.by_id.get((child.trace_id, child.span_id), ()):
            if row.kind == "CLIENT":
                return row
        return None
    if not child.parent_id:
        return None
    rows = batch.by_id.get((child.trace_id, child.parent_id))
    if not rows:
        return None
    if len(rows) == 1:
        return rows[0]
    # a shared id: the child runs in the process of the server side (or its own service)
    for row in rows:
        if row.service == child.service:
            return row
    for row in rows:
        if row.kind != "CLIENT":
            return row
    return rows[0]


def _children(batch: _Batch, node: Node) -> list[Node]:
    children = batch.by_parent.get((node.trace_id, node.span_id), [])
    if node.kind == "CLIENT":
        shared = [
            row
            for row in batch.by_id.get((node.trace_id, node.span_id), ())
            if row.kind == "SERVER" and row.shared and row.parent_id != node.span_id
        ]
        if shared:
            return children + shared
    return children


def count_minutes(conn: sqlite3.Connection) -> None:
    """Fill ``call_minutes`` from ``calls`` when it is empty and ``calls`` is not (a store
    written before the minute counts existed); call once, before anything is written."""
    if conn.execute("SELECT 1 FROM call_minutes LIMIT 1").fetchone() is not None:
        return
    with conn:
        conn.execute(
            "INSERT INTO call_minutes SELECT ts / ?, parent, child, count(*), sum(error)"
            " FROM calls GROUP BY 1, 2, 3",
            (MINUTE_US,),
        )


def query_links(conn: sqlite3.Connection, start_us: int, end_us: int) -> list[dict[str, object]]:
    """``[{parent, child, callCount, errorCount}]`` for calls in ``[start_us, end_us]``."""
    first = -(-start_us // MINUTE_US)  # the whole minutes inside the window: first..last
    last = (end_us + 1) // MINUTE_US - 1
    single = "SELECT parent, child, count(*), sum(error) FROM calls WHERE ts BETWEEN ? AND ?"
    if first > last:
        rows = conn.execute(single + " GROUP BY 1, 2", (start_us, end_us)).fetchall()
    else:
        rows = conn.execute(
            f"{single} GROUP BY 1, 2 UNION ALL"
            " SELECT parent, child, sum(calls), sum(errors) FROM call_minutes"
            " WHERE minute BETWEEN ? AND ? GROUP BY 1, 2"
            f" UNION ALL {single} GROUP BY 1, 2",
            (start_us, first * MINUTE_US - 1, first, last, (last + 1) * MINUTE_US, end_us),
        ).fetchall()
    totals: dict[tuple[str, str], list[int]] = {}
    for parent, child, calls, errors in rows:
        total = totals.setdefault((parent, child), [0, 0])
        total[0] += calls
        total[1] += errors or 0
    out: list[dict[str, object]] = []
    for (parent, child), (calls, errors) in sorted(totals.items()):
        if calls <= 0:
            continue
        link: dict[str, object] = {"parent": parent, "child": child, "callCount": calls}
        if errors:
            link["errorCount"] = errors
        out.append(link)
    return out
