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
:func:`record_calls` runs on the span store's writer thread after each batch is inserted;
``/api/v2/dependencies`` is then a GROUP BY over the time window.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from .model import Span

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    trace_id TEXT NOT NULL, call_key TEXT NOT NULL, ts INTEGER NOT NULL,
    parent TEXT NOT NULL, child TEXT NOT NULL, error INTEGER NOT NULL,
    PRIMARY KEY (trace_id, call_key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS calls_ts ON calls (ts);
"""

_NODE_COLUMNS = "trace_id, span_id, parent_id, kind, service, remote_service, ts, error, shared"
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


def record_calls(conn: sqlite3.Connection, nodes: list[Node]) -> None:
    """Update the calls touched by newly inserted spans (writer thread, inside its transaction)."""
    for node in nodes:
        _link(conn, node)
        linked_as_parent = False
        for child in _children(conn, node):
            parent = _link(conn, child)
            if parent is not None and parent.span_id == node.span_id:
                linked_as_parent = linked_as_parent or parent.kind == node.kind
        if (
            node.kind == "CLIENT"
            and node.remote_service
            and node.remote_service != node.service
            and not linked_as_parent
        ):
            conn.execute(
                "INSERT OR IGNORE INTO calls VALUES (?, ?, ?, ?, ?, ?)",
                (
                    node.trace_id,
                    "c:" + node.span_id,
                    node.ts,
                    node.service,
                    node.remote_service,
                    node.error,
                ),
            )


def _link(conn: sqlite3.Connection, child: Node) -> Node | None:
    """Record the call into ``child``; returns the parent when a real edge was recorded."""
    parent = _parent(conn, child)
    if parent is None:
        if (
            child.kind in _SERVER_SIDE
            and child.remote_service
            and child.remote_service != child.service
        ):
            conn.execute(
                "INSERT OR IGNORE INTO calls VALUES (?, ?, ?, ?, ?, ?)",
                (
                    child.trace_id,
                    "s:" + child.span_id,
                    child.ts,
                    child.remote_service,
                    child.service,
                    child.error,
                ),
            )
        return None
    if parent.service == child.service:
        return None
    error = child.error or (parent.error if parent.kind == "CLIENT" else 0)
    conn.execute(
        "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?)",
        (
            child.trace_id,
            f"e:{child.span_id}:{child.kind}",
            child.ts,
            parent.service,
            child.service,
            error,
        ),
    )
    stale = ["s:" + child.span_id]
    if parent.kind == "CLIENT":
        stale.append("c:" + parent.span_id)
    conn.executemany(
        "DELETE FROM calls WHERE trace_id = ? AND call_key = ?",
        [(child.trace_id, key) for key in stale],
    )
    return parent


def _parent(conn: sqlite3.Connection, child: Node) -> Node | None:
    if child.shared and child.kind == "SERVER":
        row = conn.execute(
            f"SELECT {_NODE_COLUMNS} FROM spans WHERE trace_id = ? AND span_id = ?"
            " AND kind = 'CLIENT'",
            (child.trace_id, child.span_id),
        ).fetchone()
        return Node(*row) if row else None
    if not child.parent_id:
        return None
    rows = [
        Node(*row)
        for row in conn.execute(
            f"SELECT {_NODE_COLUMNS} FROM spans WHERE trace_id = ? AND span_id = ?",
            (child.trace_id, child.parent_id),
        )
    ]
    if len(rows) <= 1:
        return rows[0] if rows else None
    # a shared id: the child runs in the process of the server side (or its own service)
    for row in rows:
        if row.service == child.service:
            return row
    for row in rows:
        if row.kind != "CLIENT":
            return row
    return rows[0]


def _children(conn: sqlite3.Connection, node: Node) -> list[Node]:
    if node.kind == "CLIENT":
        sql = (
            f"SELECT {_NODE_COLUMNS} FROM spans WHERE trace_id = ? AND (parent_id = ?"
            " OR (span_id = ? AND kind = 'SERVER' AND shared = 1))"
        )
        args: tuple[str, ...] = (node.trace_id, node.span_id, node.span_id)
    else:
        sql = f"SELECT {_NODE_COLUMNS} FROM spans WHERE trace_id = ? AND parent_id = ?"
        args = (node.trace_id, node.span_id)
    return [Node(*row) for row in conn.execute(sql, args)]


def query_links(conn: sqlite3.Connection, start_us: int, end_us: int) -> list[dict[str, object]]:
    """``[{parent, child, callCount, errorCount}]`` for calls in ``[start_us, end_us]``."""
    rows = conn.execute(
        "SELECT parent, child, count(*), sum(error) FROM calls WHERE ts BETWEEN ? AND ?"
        " GROUP BY parent, child ORDER BY parent, child",
        (start_us, end_us),
    ).fetchall()
    out: list[dict[str, object]] = []
    for parent, child, calls, errors in rows:
        link: dict[str, object] = {"parent": parent, "child": child, "callCount": calls}
        if errors:
            link["errorCount"] = errors
        out.append(link)
    return out
