"""The stream log: the :class:`StreamLog` interface, and its SQLite implementation (records and
subscription positions in ``tables.sqlite3``; :mod:`.pglog` is the PostgreSQL one).

A record is inserted by :meth:`StreamLog.append`, which the tables engine calls inside the
transaction of the write itself, so a write and its record are committed (and fsynced) together
or not at all. ``seq`` (the row id) orders every record of the node; one table's stream is one
shard, so the records of a key come out in the order of its writes. Each record keeps the
table's name and the label of the stream it was written to: a stream turned off and on again is
a new stream (a new label) whose readers do not see the old one's records, while subscriptions
follow the table. Records are kept for 24 hours (DynamoDB's retention) whoever has read them;
each stream's *horizon* is the highest ``seq`` of its records removed by that retention, so a
reader positioned before it knows it lost records (``TrimmedDataAccessException``).

A stream turned off or replaced stays readable for the retention, as on DynamoDB: the engine's
stream hook (:meth:`StreamLog.retire`, in the transaction of the table change) keeps what the
API describes of it (:class:`.records.StreamInfo`) in ``stream_history`` with the time it was
disabled. The retention removes an entry 24 hours after that time, or once every record of the
stream has been removed.

The retention removes a *prefix* of each table's records in ``seq`` order: it stops at a
table's first record not yet expired, even if later ones of that table are older by their
``created`` time (a clock set back), so every record of a table after its horizon is still
there. Every method runs on the tables' worker thread, inside the transaction of the operation.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import astuple, dataclass, replace
from typing import Any, Protocol

from ..tables.schema import TableSchema
from ..tables.sqlite import SqliteTableStore
from ..tables.values import Item
from .records import StreamInfo, change_record, ended_stream, sequence_number

RETENTION = 24 * 3600.0
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS stream_records (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "tbl TEXT NOT NULL, created REAL NOT NULL, record TEXT NOT NULL, "
    "label TEXT NOT NULL DEFAULT '')",
    "CREATE INDEX IF NOT EXISTS stream_records_tbl ON stream_records (tbl, seq)",
    "CREATE TABLE IF NOT EXISTS stream_positions (mapping TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS stream_trims (tbl TEXT NOT NULL, label TEXT NOT NULL, "
    "seq INTEGER NOT NULL, PRIMARY KEY (tbl, label))",
    "CREATE TABLE IF NOT EXISTS stream_history (tbl TEXT NOT NULL, label TEXT NOT NULL, "
    "arn TEXT NOT NULL, shard TEXT NOT NULL, view TEXT NOT NULL, created REAL NOT NULL, "
    "hash_key TEXT NOT NULL, range_key TEXT, disabled REAL NOT NULL, PRIMARY KEY (tbl, label))",
)
HISTORY_COLUMNS = "tbl, label, arn, shard, view, created, hash_key, range_key, disabled"
# entries of streams disabled before the cutoff, or whose records have all been removed
HISTORY_GONE = (
    "DELETE FROM {h} WHERE disabled < {p} OR (EXISTS (SELECT 1 FROM {t} t "
    "WHERE t.tbl = {h}.tbl AND t.label = {h}.label) AND NOT EXISTS (SELECT 1 FROM {r} r "
    "WHERE r.tbl = {h}.tbl AND r.label = {h}.label))"
)


@dataclass(frozen=True)
class LoggedRecord:
    seq: int
    created: float
    record: dict[str, Any]


@dataclass(frozen=True)
class Bounds:
    """Where one stream stands: its oldest and newest record kept (None: none kept) and its
    horizon (the highest ``seq`` of its records removed by the retention; 0: none)."""

    oldest: int | None
    newest: int | None
    horizon: int

    @classmethod
    def of(cls, oldest: int | None, newest: int | None, horizon: int | None) -> Bounds:
        """Bounds whose horizon is below the oldest record kept (a log trimmed out of ``seq``
        order by an earlier version must not refuse the records it kept)."""
        trimmed = horizon or 0
        if oldest is not None:
            trimmed = min(trimmed, oldest - 1)
        return cls(oldest, newest, trimmed)


class StreamLog(Protocol):
    """What the engine's write hook and the DynamoDB Streams API need of a stream log."""

    def append(self, schema: TableSchema, old: Item | None, new: Item | None) -> None:
        """Log the change (called by the engine inside the write's transaction)."""
        ...

    def read(
        self, table: str, after: int, limit: int, max_bytes: int, label: str | None = None
    ) -> list[LoggedRecord]:
        """Up to ``limit`` records of ``table`` (of its stream ``label`` only, if given) after
        ``after`` (at least one; at most ``max_bytes`` of record text beyond the first)."""
        ...

    def bounds(self, table: str, label: str) -> Bounds: ...

    def retire(self, before: TableSchema, after: TableSchema) -> None:
        """Keep the stream of ``before`` as a disabled one if ``after`` (the table changed, in
        the change's transaction) no longer has it."""
        ...

    def old_streams(self, table: str | None = None) -> list[StreamInfo]:
        """The disabled streams kept (of ``table`` only, if given)."""
        ...

    def lock(self, schemas: Sequence[TableSchema]) -> None:
        """Before a write to several tables: take what :meth:`append` takes for each of them,
        in one order every writer follows (so two such writes never wait on each other)."""
        ...

    def trim(self, now: float | None = None, limit: int = 5000) -> int:
        """Delete each table's records older than the retention period at ``now``, in ``seq``
        order up to its first record not yet expired, looking at the oldest ``limit`` records
        of the log; raise their streams' horizons; forget the disabled streams past the
        retention or without records left. Answers how many records were deleted (0 also when
        another node is trimming the same log)."""
        ...


def collect(rows: Iterable[tuple[int, float, str]], max_bytes: int) -> list[LoggedRecord]:
    """Logged records from ``(seq, created, record text)`` rows, stopping after ``max_bytes``
    of text (the first record always comes)."""
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


def expired_prefix(
    rows: Iterable[tuple[int, str, str, float]], cutoff: float
) -> list[tuple[int, str, str]]:
    """Of the log's oldest records ``(seq, table, label, created)`` in ``seq`` order, the
    ``(seq, table, label)`` to remove: each table's records created before ``cutoff``, up to
    its first one that is not."""
    stopped: set[str] = set()
    gone: list[tuple[int, str, str]] = []
    for seq, table, label, created in rows:
        if table in stopped:
            continue
        if created >= cutoff:
            stopped.add(table)
            continue
        gone.append((seq, table, label))
    return gone


def horizons(gone: Iterable[tuple[int, str, str]]) -> dict[tuple[str, str], int]:
    """The highest ``seq`` removed of each stream ``(table, label)``."""
    out: dict[tuple[str, str], int] = {}
    for seq, table, label in gone:
        out[table, label] = max(seq, out.get((table, label), 0))
    return out


def record_text(schema: TableSchema, old: Item | None, new: Item | None) -> str | None:
    record = change_record(schema, old, new)
    return None if record is None else json.dumps(record, separators=(",", ":"))


class SqliteStreamLog:
    """:class:`StreamLog` in ``tables.sqlite3``, plus the subscriptions' positions."""

    def __init__(self, store: SqliteTableStore, on_append: Callable[[str], None]) -> None:
        self.store = store
        self.on_append = on_append
        self._ready = False

    def _db(self) -> sqlite3.Connection:
        db = self.store.db
        if not self._ready:
            for statement in _SCHEMA:  # DDL is allowed inside the write's transaction
                db.execute(statement)
            columns = {row[1] for row in db.execute("PRAGMA table_info(stream_records)")}
            if "label" not in columns:  # a log written before records had their stream
                db.execute("ALTER TABLE stream_records ADD COLUMN label TEXT NOT NULL DEFAULT ''")
            db.execute(  # a stream's bounds and reads, past the records of its older streams
                "CREATE INDEX IF NOT EXISTS stream_records_label "
                "ON stream_records (tbl, label, seq)"
            )
            self._ready = True
        return db

    def append(self, schema: TableSchema, old: Item | None, new: Item | None) -> None:
        text = record_text(schema, old, new)
        if text is None:
            return
        self._db().execute(
            "INSERT INTO stream_records (tbl, label, created, record) VALUES (?, ?, ?, ?)",
            (schema.name, schema.stream_label, time.time(), text),
        )
        self.on_append(schema.name)

    def read(
        self, table: str, after: int, limit: int, max_bytes: int, label: str | None = None
    ) -> list[LoggedRecord]:
        sql = "SELECT seq, created, record FROM stream_records WHERE tbl = ? AND seq > ? "
        params: tuple[Any, ...] = (table, after, limit)
        if label is not None:
            sql += "AND label = ? "
            params = (table, after, label, limit)
        rows = self._db().execute(sql + "ORDER BY seq LIMIT ?", params).fetchall()
        return collect(rows, max_bytes)

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

    def bounds(self, table: str, label: str) -> Bounds:
        db = self._db()
        oldest, newest = db.execute(
            "SELECT min(seq), max(seq) FROM stream_records WHERE tbl = ? AND label = ?",
            (table, label),
        ).fetchone()
        horizon = db.execute(
            "SELECT seq FROM stream_trims WHERE tbl = ? AND label = ?", (table, label)
        ).fetchone()
        return Bounds.of(oldest, newest, int(horizon[0]) if horizon else 0)

    def retire(self, before: TableSchema, after: TableSchema) -> None:
        ended = ended_stream(before, after)
        if ended is None:
            return
        info = astuple(replace(ended, disabled=time.time()))
        marks = ", ".join("?" * len(info))
        self._db().execute(
            f"INSERT OR IGNORE INTO stream_history ({HISTORY_COLUMNS}) VALUES ({marks})", info
        )

    def old_streams(self, table: str | None = None) -> list[StreamInfo]:
        sql = f"SELECT {HISTORY_COLUMNS} FROM stream_history"
        rows = self._db().execute(
            sql + (" WHERE tbl = ?" if table is not None else ""),
            (table,) if table is not None else (),
        )
        return [StreamInfo(*row) for row in rows]

    def lock(self, schemas: Sequence[TableSchema]) -> None:
        pass  # one writer: the tables' thread

    def trim(self, now: float | None = None, limit: int = 5000) -> int:
        cutoff = (time.time() if now is None else now) - RETENTION
        db = self._db()
        rows = db.execute(
            "SELECT seq, tbl, label, created FROM stream_records ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        gone = expired_prefix(rows, cutoff)
        db.executemany("DELETE FROM stream_records WHERE seq = ?", [(seq,) for seq, *_ in gone])
        db.executemany(
            "INSERT INTO stream_trims (tbl, label, seq) VALUES (?, ?, ?) "
            "ON CONFLICT (tbl, label) DO UPDATE SET seq = max(seq, excluded.seq)",
            [(table, label, seq) for (table, label), seq in horizons(gone).items()],
        )
        gone_history = HISTORY_GONE.format(
            h="stream_history", t="stream_trims", r="stream_records", p="?"
        )
        db.execute(gone_history, (cutoff,))
        return len(gone)
