"""The stream log on PostgreSQL, shared by the nodes of one schema (tables created with the
others by :mod:`..tables.postgres`): ``stream_records(seq bigserial, tbl, label, created,
record)``, ``stream_positions(mapping, seq)`` and ``stream_trims(tbl, label, seq)``.

:class:`PostgresStreamLog` is the :class:`.log.StreamLog` of the engine's write hook and of the
DynamoDB Streams API; it runs on the tables' worker thread, on the table store's connection,
inside the operation's transaction: a committed write has its record, a transaction rolled back
(or run again after a conflict) has none.

Order: ``seq`` is given when a record is inserted, not when it commits, so two writers could
commit a table's records out of ``seq`` order and a reader between the two commits would step
over the lower one for good. To prevent that, :meth:`PostgresStreamLog.append` first takes a
transaction-level advisory lock of the table's stream (released at commit or rollback): the
records of one table are allocated and committed one transaction at a time, so once a record is
visible, every lower ``seq`` of its table is committed or never will be. The same statement
queues a ``NOTIFY`` (sent at commit) naming the table, which wakes the delivering node.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..tables.schema import TableSchema
from ..tables.values import Item
from .log import RETENTION, Bounds, LoggedRecord, collect, record_text

if TYPE_CHECKING:
    from ..tables.postgres import PostgresTableStore

APPEND_LOCK = 0x5354_5245  # first key of the advisory locks of appends (the second: the table)
LEASE_LOCK = 0x5354_4C45  # first key of the session locks of delivering nodes (see .pgfeed)


def channel(schema_name: str) -> str:
    """The NOTIFY channel of new records (63 bytes at most)."""
    return f"{schema_name[:55]}_streams"


@dataclass(frozen=True)
class Statements:
    """The SQL of the stream log in one schema (parameters as ``%s``)."""

    lock: str
    insert: str
    read: str
    read_label: str
    bounds: str
    trim: str
    position: str
    start: str
    save: str

    @classmethod
    def of(cls, s: str) -> Statements:
        records = f"{s}.stream_records"
        return cls(
            lock="SELECT pg_advisory_xact_lock(%s, hashtext(%s)), pg_notify(%s, %s)",
            insert=f"INSERT INTO {records} (tbl, label, created, record) VALUES (%s, %s, %s, %s)",
            read=f"SELECT seq, created, record FROM {records} WHERE tbl = %s AND seq > %s "
            "ORDER BY seq LIMIT %s",
            read_label=f"SELECT seq, created, record FROM {records} WHERE tbl = %s AND seq > %s "
            "AND label = %s ORDER BY seq LIMIT %s",
            bounds=f"SELECT (SELECT min(seq) FROM {records} WHERE tbl = %s AND label = %s), "
            f"(SELECT max(seq) FROM {records} WHERE tbl = %s AND label = %s), "
            f"(SELECT seq FROM {s}.stream_trims WHERE tbl = %s AND label = %s)",
            trim=f"WITH gone AS (DELETE FROM {records} WHERE seq IN "
            f"(SELECT seq FROM {records} ORDER BY seq LIMIT %s) AND created < %s "
            "RETURNING tbl, label, seq), "
            f"raised AS (INSERT INTO {s}.stream_trims AS t (tbl, label, seq) "
            "SELECT tbl, label, max(seq) FROM gone GROUP BY tbl, label "
            "ON CONFLICT (tbl, label) DO UPDATE SET seq = greatest(t.seq, excluded.seq)) "
            "SELECT count(*) FROM gone",
            position=f"SELECT seq FROM {s}.stream_positions WHERE mapping = %s",
            start=f"INSERT INTO {s}.stream_positions (mapping, seq) SELECT %s, CASE WHEN %s "
            f"THEN coalesce((SELECT max(seq) FROM {records} WHERE tbl = %s), 0) ELSE 0 END "
            "ON CONFLICT (mapping) DO NOTHING",
            save=f"INSERT INTO {s}.stream_positions (mapping, seq) VALUES (%s, %s) "
            "ON CONFLICT (mapping) DO UPDATE SET seq = excluded.seq",
        )


class PostgresStreamLog:
    def __init__(self, store: PostgresTableStore) -> None:
        self.store = store
        self.channel = channel(store.schema_name)
        self.sql = Statements.of(store.schema_name)

    def _rows(self, sql: str, params: Any) -> list[Any]:
        return self.store.conn.execute(sql, params).fetchall()

    def append(self, schema: TableSchema, old: Item | None, new: Item | None) -> None:
        text = record_text(schema, old, new)
        if text is None:
            return
        conn = self.store.conn
        stream = f"{self.store.schema_name}.{schema.name}"
        conn.execute(self.sql.lock, (APPEND_LOCK, stream, self.channel, schema.name))
        conn.execute(self.sql.insert, (schema.name, schema.stream_label, time.time(), text))

    def read(
        self, table: str, after: int, limit: int, max_bytes: int, label: str | None = None
    ) -> list[LoggedRecord]:
        if label is None:
            return collect(self._rows(self.sql.read, (table, after, limit)), max_bytes)
        return collect(self._rows(self.sql.read_label, (table, after, label, limit)), max_bytes)

    def bounds(self, table: str, label: str) -> Bounds:
        oldest, newest, horizon = self._rows(self.sql.bounds, (table, label) * 3)[0]
        return Bounds(oldest, newest, horizon or 0)

    def trim(self, now: float | None = None, limit: int = 5000) -> int:
        cutoff = (time.time() if now is None else now) - RETENTION
        return int(self._rows(self.sql.trim, (limit, cutoff))[0][0])
