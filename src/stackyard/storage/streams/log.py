"""The stream log: change records and subscription positions in ``tables.sqlite3``.

A record is inserted by :meth:`StreamLog.append`, which the tables engine calls inside the
transaction of the write itself, so a write and its record are committed (and fsynced) together
or not at all. ``seq`` (the row id) orders every record of the node; one table's stream is one
shard, so the records of a key come out in the order of its writes. Each subscription (event
source mapping) keeps the ``seq`` of the last record it got. Records are kept for 24 hours
(DynamoDB's retention) whoever has read them, so subscriptions and readers of the DynamoDB
Streams API (:mod:`.api`) see the same stream. Every method runs on the tables' worker thread.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..tables.schema import TableSchema
from ..tables.sqlite import SqliteTableStore
from ..tables.values import Item
from .records import change_record, sequence_number

RETENTION = 24 * 3600.0
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS stream_records (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "tbl TEXT NOT NULL, created REAL NOT NULL, record TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS stream_records_tbl ON stream_records (tbl, seq)",
    "CREATE TABLE IF NOT EXISTS stream_positions (mapping TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
)


@dataclass(frozen=True)
class LoggedRecord:
    seq: int
    created: float
    record: dict[str, Any]


class StreamLog:
    def __init__(self, store: SqliteTableStore, on_append: Callable[[str], None]) -> None:
        self.store = store
        self.on_append = on_append
        self._ready = False

    def _db(self) -> sqlite3.Connection:
        db = self.store.db
        if not self._ready:
            for statement in _SCHEMA:  # DDL is allowed inside the write's transaction
                db.execute(statement)
            self._ready = True
        return db

    def append(self, schema: TableSchema, old: Item | None, new: Item | None) -> None:
        """Log the change (called by the engine inside the write's transaction)."""
        record = change_record(schema, old, new)
        if record is None:
            return
        self._db().execute(
            "INSERT INTO stream_records (tbl, created, record) VALUES (?, ?, ?)",
            (schema.name, time.time(), json.dumps(record, separators=(",", ":"))),
        )
        self.on_append(schema.name)

    def read(self, table: str, after: int, limit: int, max_bytes: int) -> list[LoggedRecord]:
        """Up to ``limit`` records of ``table`` after ``after`` (at least one; at most
        ``max_bytes`` of record text beyond the first)."""
        rows = (
            self._db()
            .execute(
                "SELECT seq, created, record FROM stream_records WHERE tbl = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (table, after, limit),
            )
            .fetchall()
        )
        out: list[LoggedRecord] = []
        size = 0
        for seq, created, text in rows:
            size += len(text)
            if out and size > max_bytes:
                break
            record = json.loads(text)
            record["dynamodb"]["SequenceNumber"] = sequence_number(seq)
            out.append(LoggedRecord(seq, created, record))
        return out

    def position(self, mapping: str, table: str, latest: bool) -> int:
        """The mapping's stored position; a new mapping starts at the end of the log
        (``LATEST``) or at its oldest record (``TRIM_HORIZON``) and is stored at once."""
        db = self._db()
        row = db.execute(
            "SELECT seq FROM stream_positions WHERE mapping = ?", (mapping,)
        ).fetchone()
        if row is not None:
            return int(row[0])
        start = 0
        if latest:
            last = db.execute(
                "SELECT max(seq) FROM stream_records WHERE tbl = ?", (table,)
            ).fetchone()[0]
            start = int(last or 0)
        self.save(mapping, start)
        return start

    def save(self, mapping: str, seq: int) -> None:
        self._db().execute(
            "INSERT OR REPLACE INTO stream_positions (mapping, seq) VALUES (?, ?)", (mapping, seq)
        )

    def bounds(self, table: str) -> tuple[int | None, int]:
        """The ``seq`` of ``table``'s oldest record kept (None: none kept) and the last
        ``seq`` given to any record (0: none yet)."""
        db = self._db()
        oldest = db.execute(
            "SELECT min(seq) FROM stream_records WHERE tbl = ?", (table,)
        ).fetchone()[0]
        last = db.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'stream_records'"
        ).fetchone()
        return (None if oldest is None else int(oldest)), int(last[0]) if last else 0

    def trim(self, now: float | None = None, limit: int = 5000) -> int:
        """Delete up to ``limit`` of the oldest records past the retention period (``seq``
        order is time order, so only the oldest rows are looked at)."""
        cutoff = (time.time() if now is None else now) - RETENTION
        deleted = (
            self._db()
            .execute(
                "DELETE FROM stream_records WHERE seq IN "
                "(SELECT seq FROM stream_records ORDER BY seq LIMIT ?) AND created < ?",
                (limit, cutoff),
            )
            .rowcount
        )
        return int(deleted)
