"""The SQLite implementation of :class:`.store.TableStore` (``tables.sqlite3`` in the data dir).

Layout: ``items(tid, h, hk, rk, ...)`` with primary key ``(tid, h, hk, rk)`` in a WITHOUT ROWID
table, where ``h`` is the CRC-32 of the hash-key bytes. A Query (one hash key, a range-key
interval) is therefore one range scan of the primary key; a Scan walks it in ``h`` order, which
spreads partitions as DynamoDB's hashing does and makes ``Segment``/``TotalSegments`` a range
of ``h``. Secondary-index entries live in ``index_items`` with the same shape plus the base key,
joined back to ``items`` when read.

Durability: WAL with ``synchronous=FULL`` — each commit (one acknowledged write, or one
transaction/batch) is fsynced before the answer is sent, so an acknowledged write survives a
kill -9 and a power cut.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .ranges import pages, partition, query_read, scan_read
from .schema import TableSchema
from .store import Bound, Key, Row
from .values import Item

__all__ = ["SqliteTableStore", "partition"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tables (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, schema TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    tid INTEGER NOT NULL, h INTEGER NOT NULL, hk BLOB NOT NULL, rk BLOB NOT NULL,
    size INTEGER NOT NULL, item TEXT NOT NULL, expires REAL,
    PRIMARY KEY (tid, h, hk, rk)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_expiry ON items (tid, expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS index_items (
    tid INTEGER NOT NULL, idx TEXT NOT NULL, h INTEGER NOT NULL, hk BLOB NOT NULL,
    rk BLOB NOT NULL, bh INTEGER NOT NULL, bhk BLOB NOT NULL, brk BLOB NOT NULL,
    PRIMARY KEY (tid, idx, h, hk, rk, bhk, brk)) WITHOUT ROWID;
"""


class SqliteTableStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the table store is not open")
        return self._db

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA cache_size=-32000")
        db.executescript(_SCHEMA)
        self._db = db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @contextmanager
    def atomic(self) -> Iterator[None]:
        db = self.db
        if db.in_transaction:
            yield
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def group(self) -> Iterator[None]:
        """One transaction for a group of writes (see :mod:`.worker`), committed at the end."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """One write of a group: rolled back alone if it fails."""
        db = self.db
        db.execute("SAVEPOINT write")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK TO write")
            db.execute("RELEASE write")
            raise
        db.execute("RELEASE write")

    # -- tables ---------------------------------------------------------------------------

    def load_tables(self) -> dict[str, tuple[int, TableSchema]]:
        rows = self.db.execute("SELECT id, name, schema FROM tables").fetchall()
        return {name: (tid, TableSchema.from_json(json.loads(text))) for tid, name, text in rows}

    def create_table(self, schema: TableSchema) -> int:
        cursor = self.db.execute(
            "INSERT INTO tables (name, schema) VALUES (?, ?)",
            (schema.name, json.dumps(schema.to_json())),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def save_table(self, table_id: int, schema: TableSchema) -> None:
        self.db.execute(
            "UPDATE tables SET schema = ? WHERE id = ?", (json.dumps(schema.to_json()), table_id)
        )

    def drop_table(self, table_id: int) -> None:
        with self.atomic():
            self.db.execute("DELETE FROM items WHERE tid = ?", (table_id,))
            self.db.execute("DELETE FROM index_items WHERE tid = ?", (table_id,))
            self.db.execute("DELETE FROM tables WHERE id = ?", (table_id,))

    def stats(self, table_id: int) -> tuple[int, int]:
        count, size = self.db.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM items WHERE tid = ?", (table_id,)
        ).fetchone()
        return int(count), int(size)

    # -- items ----------------------------------------------------------------------------

    def get(self, table_id: int, key: Key) -> Item | None:
        row = self.db.execute(
            "SELECT item FROM items WHERE tid = ? AND h = ? AND hk = ? AND rk = ?",
            (table_id, partition(key[0]), key[0], key[1]),
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, table_id: int, key: Key, item: Item, size: int, expires: float | None) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO items (tid, h, hk, rk, size, item, expires) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                table_id,
                partition(key[0]),
                key[0],
                key[1],
                size,
                json.dumps(item, separators=(",", ":")),
                expires,
            ),
        )

    def delete(self, table_id: int, key: Key) -> None:
        self.db.execute(
            "DELETE FROM items WHERE tid = ? AND h = ? AND hk = ? AND rk = ?",
            (table_id, partition(key[0]), key[0], key[1]),
        )

    def put_index(self, table_id: int, index: str, key: Key, base: Key) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO index_items (tid, idx, h, hk, rk, bh, bhk, brk) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                table_id,
                index,
                partition(key[0]),
                key[0],
                key[1],
                partition(base[0]),
                base[0],
                base[1],
            ),
        )

    def delete_index(self, table_id: int, index: str, key: Key, base: Key) -> None:
        self.db.execute(
            "DELETE FROM index_items WHERE tid = ? AND idx = ? AND h = ? AND hk = ? AND rk = ? "
            "AND bhk = ? AND brk = ?",
            (table_id, index, partition(key[0]), key[0], key[1], base[0], base[1]),
        )

    def drop_index(self, table_id: int, index: str) -> None:
        self.db.execute("DELETE FROM index_items WHERE tid = ? AND idx = ?", (table_id, index))

    def set_expiry(self, table_id: int, key: Key, expires: float | None) -> None:
        self.db.execute(
            "UPDATE items SET expires = ? WHERE tid = ? AND h = ? AND hk = ? AND rk = ?",
            (expires, table_id, partition(key[0]), key[0], key[1]),
        )

    def expired(self, table_id: int, now: float, oldest: float, limit: int) -> list[Item]:
        rows = self.db.execute(
            "SELECT item FROM items WHERE tid = ? AND expires IS NOT NULL AND expires <= ? "
            "AND expires > ? LIMIT ?",
            (table_id, now, oldest, limit),
        ).fetchall()
        return [json.loads(row[0]) for row in rows]

    # -- reads of ranges (see .ranges) ------------------------------------------------------

    def query(
        self,
        table_id: int,
        index: str | None,
        hash_key: bytes,
        low: Bound | None,
        high: Bound | None,
        forward: bool,
        after: tuple[bytes, ...] | None,
    ) -> Iterator[Row]:
        read = query_read("", "?", table_id, index, hash_key, low, high, forward)
        yield from pages(self._fetch, read, "?", after)

    def scan(
        self,
        table_id: int,
        index: str | None,
        segment: int,
        total_segments: int,
        after: tuple[bytes, ...] | None,
    ) -> Iterator[Row]:
        read = scan_read("", "?", table_id, index, segment, total_segments)
        yield from pages(self._fetch, read, "?", after)

    def _fetch(self, sql: str, params: list[object]) -> list[Any]:
        return self.db.execute(sql, params).fetchall()
