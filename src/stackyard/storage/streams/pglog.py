"""The stream log on PostgreSQL, shared by the nodes of one schema (tables created with the
others by :mod:`..tables.postgres`): ``stream_records(seq bigserial, tbl, label, created,
record)``, ``stream_positions(mapping, seq)``, ``stream_trims(tbl, label, seq)`` and
``stream_history`` (the disabled streams kept for the retention, see :mod:`.log`).

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
queues a ``NOTIFY`` (sent at commit) naming the table, which wakes the delivering node. A write
to several tables with streams (a batch, a transaction, a TTL sweep) takes their locks first,
in the order of their keys (:meth:`PostgresStreamLog.lock`), so two such writes cannot each
hold the lock the other waits for.

Time: a record's ``created`` is the database's clock when it is inserted (under the table's
lock, so it grows with ``seq`` within a table), never a node's: nodes whose clocks disagree
cannot make the retention remove a record before an older one; a disabled stream's time is the
database's clock too. The retention (:meth:`trim`) runs on one node at a time (a
transaction-level advisory lock tried, not waited for).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, Any

from ..tables.schema import TableSchema
from ..tables.values import Item
from .log import (
    HISTORY_COLUMNS,
    HISTORY_GONE,
    RETENTION,
    Bounds,
    LoggedRecord,
    collect,
    expired_prefix,
    horizons,
    record_text,
)
from .records import StreamInfo, ended_stream

if TYPE_CHECKING:
    from ..tables.postgres import PostgresTableStore

APPEND_LOCK = 0x5354_5245  # first key of the advisory locks of appends (the second: the table)
LEASE_LOCK = 0x5354_4C45  # first key of the session locks of delivering nodes (see .pgfeed)
TRIM_LOCK = 0x5354_5452  # first key of the lock of the node trimming (the second: the schema)


def append_key(schema_name: str, table: str) -> int:
    """The second key of the append lock of ``table`` (a signed 32-bit CRC of its name, the
    same on every node; writes to several tables take their locks in the order of these)."""
    crc = zlib.crc32(f"{schema_name}.{table}".encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


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
    trim_lock: str
    trim_head: str
    trim_delete: str
    trim_raise: str
    position: str
    start: str
    save: str
    retire: str
    old_streams: str
    old_streams_of: str
    trim_history: str

    @classmethod
    def of(cls, s: str) -> Statements:
        records = f"{s}.stream_records"
        return cls(
            lock="SELECT pg_advisory_xact_lock(%s, %s), pg_notify(%s, %s)",
            insert=f"INSERT INTO {records} (tbl, label, created, record) "
            "VALUES (%s, %s, extract(epoch FROM clock_timestamp()), %s)",
            read=f"SELECT seq, created, record FROM {records} WHERE tbl = %s AND seq > %s "
            "ORDER BY seq LIMIT %s",
            read_label=f"SELECT seq, created, record FROM {records} WHERE tbl = %s AND seq > %s "
            "AND label = %s ORDER BY seq LIMIT %s",
            bounds=f"SELECT (SELECT min(seq) FROM {records} WHERE tbl = %s AND label = %s), "
            f"(SELECT max(seq) FROM {records} WHERE tbl = %s AND label = %s), "
            f"(SELECT seq FROM {s}.stream_trims WHERE tbl = %s AND label = %s)",
            trim_lock="SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))",
            trim_head=f"SELECT seq, tbl, label, created FROM {records} ORDER BY seq LIMIT %s",
            trim_delete=f"DELETE FROM {records} WHERE seq = ANY(%s)",
            trim_raise=f"INSERT INTO {s}.stream_trims AS t (tbl, label, seq) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[]) "
            "ON CONFLICT (tbl, label) DO UPDATE SET seq = greatest(t.seq, excluded.seq)",
            position=f"SELECT seq FROM {s}.stream_positions WHERE mapping = %s",
            start=f"INSERT INTO {s}.stream_positions (mapping, seq) SELECT %s, CASE WHEN %s "
            f"THEN coalesce((SELECT max(seq) FROM {records} WHERE tbl = %s), 0) ELSE 0 END "
            "ON CONFLICT (mapping) DO NOTHING",
            save=f"INSERT INTO {s}.stream_positions (mapping, seq) VALUES (%s, %s) "
            "ON CONFLICT (mapping) DO UPDATE SET seq = excluded.seq",
            retire=f"INSERT INTO {s}.stream_history ({HISTORY_COLUMNS}) VALUES "
            f"({'%s, ' * 8}extract(epoch FROM clock_timestamp())) "
            "ON CONFLICT (tbl, label) DO NOTHING",
            old_streams=f"SELECT {HISTORY_COLUMNS} FROM {s}.stream_history",
            old_streams_of=f"SELECT {HISTORY_COLUMNS} FROM {s}.stream_history WHERE tbl = %s",
            trim_history=HISTORY_GONE.format(
                h=f"{s}.stream_history", t=f"{s}.stream_trims", r=records, p="%s"
            ),
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
        key = append_key(self.store.schema_name, schema.name)
        conn.execute(self.sql.lock, (APPEND_LOCK, key, self.channel, schema.name))
        conn.execute(self.sql.insert, (schema.name, schema.stream_label, text))

    def lock(self, schemas: Sequence[TableSchema]) -> None:
        keys = {append_key(self.store.schema_name, schema.name): schema for schema in schemas}
        for key in sorted(keys):  # one statement each: the order is the one asked for
            name = keys[key].name
            self.store.conn.execute(self.sql.lock, (APPEND_LOCK, key, self.channel, name))

    def read(
        self, table: str, after: int, limit: int, max_bytes: int, label: str | None = None
    ) -> list[LoggedRecord]:
        if label is None:
            return collect(self._rows(self.sql.read, (table, after, limit)), max_bytes)
        return collect(self._rows(self.sql.read_label, (table, after, label, limit)), max_bytes)

    def bounds(self, table: str, label: str) -> Bounds:
        oldest, newest, horizon = self._rows(self.sql.bounds, (table, label) * 3)[0]
        return Bounds.of(oldest, newest, horizon)

    def retire(self, before: TableSchema, after: TableSchema) -> None:
        ended = ended_stream(before, after)
        if ended is not None:
            info = astuple(ended)[:-1]  # disabled: the database's clock
            self.store.conn.execute(self.sql.retire, info)

    def old_streams(self, table: str | None = None) -> list[StreamInfo]:
        if table is None:
            rows = self._rows(self.sql.old_streams, ())
        else:
            rows = self._rows(self.sql.old_streams_of, (table,))
        return [StreamInfo(*row) for row in rows]

    def trim(self, now: float | None = None, limit: int = 5000) -> int:
        """``now`` defaults to the database's clock (the clock of ``created``)."""
        if not self._rows(self.sql.trim_lock, (TRIM_LOCK, self.store.schema_name))[0][0]:
            return 0  # another node is trimming
        if now is None:
            now = float(self._rows("SELECT extract(epoch FROM clock_timestamp())", ())[0][0])
        gone = expired_prefix(self._rows(self.sql.trim_head, (limit,)), now - RETENTION)
        if gone:
            self.store.conn.execute(self.sql.trim_delete, ([seq for seq, *_ in gone],))
            raised = horizons(gone)
            self.store.conn.execute(
                self.sql.trim_raise,
                ([t for t, _ in raised], [label for _, label in raised], list(raised.values())),
            )
        self.store.conn.execute(self.sql.trim_history, (now - RETENTION,))
        return len(gone)
