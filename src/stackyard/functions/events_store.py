"""Durable store of asynchronous invocations and dead letters (SQLite, WAL).

``<data_dir>/functions.sqlite3`` holds two tables:

- ``events``: accepted ``Event`` invocations not yet delivered (id, function, payload, attempts,
  next attempt time, last error). A row is written (and committed with ``synchronous=FULL``)
  before the caller gets its 202, and deleted only after a successful delivery; so a crash or a
  restart at any moment loses nothing (delivery is at least once).
- ``dead_letters``: events that failed every attempt, kept until redriven.

Every call runs on one dedicated thread that owns the connection, so the event loop never
blocks on SQLite.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ..backends.sqlite import SqliteThread, open_wal
from .errors import UnknownDeadLetter

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    created REAL NOT NULL,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    created REAL NOT NULL,
    failed_at REAL NOT NULL,
    error TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class StoredEvent:
    """An accepted asynchronous invocation waiting for (re)delivery."""

    id: str
    function: str
    payload: bytes
    attempts: int
    next_attempt: float
    created: float
    trace: str | None = None
    """The caller's trace context: a ``traceparent`` value, or an ``X-Amzn-Trace-Id`` one."""


@dataclass(frozen=True)
class DeadLetter:
    """An event that failed every attempt."""

    id: str
    function: str
    payload: bytes
    attempts: int
    created: float
    failed_at: float
    error: str


class EventStore:
    """The SQLite file of the functions component; ``open`` before use, ``close`` after."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = SqliteThread(
            "the event store",
            thread_name="functions-db",
            translate=lambda exc: OSError(f"functions store {self.path}: {exc}"),
        )

    async def open(self) -> None:
        await self._db.open(self._connect)

    async def close(self) -> None:
        await self._db.close()

    async def put(self, event: StoredEvent) -> None:
        await self._db.run(lambda: self._put(event))

    async def put_many(self, events: list[StoredEvent]) -> None:
        """Several events in one transaction (one commit, one fsync)."""
        await self._db.run(lambda: self._put_many(events))

    async def pending(self) -> list[StoredEvent]:
        """Every event not yet delivered, in due order."""
        rows = await self._db.run(
            lambda: self._db.conn.execute(
                "SELECT id, function, payload, attempts, next_attempt, created, trace FROM events"
                " ORDER BY next_attempt"
            ).fetchall()
        )
        return [StoredEvent(r[0], r[1], bytes(r[2]), r[3], r[4], r[5], r[6]) for r in rows]

    async def delete(self, event_id: str) -> None:
        await self._write("DELETE FROM events WHERE id = ?", (event_id,))

    async def reschedule(
        self, event_id: str, attempts: int, next_attempt: float, error: str
    ) -> None:
        await self._write(
            "UPDATE events SET attempts = ?, next_attempt = ?, last_error = ? WHERE id = ?",
            (attempts, next_attempt, error, event_id),
        )

    async def bury(self, event: StoredEvent, attempts: int, error: str) -> None:
        """Move ``event`` to the dead letters (one transaction)."""

        def bury() -> None:
            with self._db.conn:
                self._db.conn.execute("DELETE FROM events WHERE id = ?", (event.id,))
                self._db.conn.execute(
                    "INSERT OR REPLACE INTO dead_letters VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        event.id,
                        event.function,
                        event.payload,
                        attempts,
                        event.created,
                        time.time(),
                        error,
                    ),
                )

        await self._db.run(bury)

    async def dead_letters(self, function: str | None = None, limit: int = 100) -> list[DeadLetter]:
        query = (
            "SELECT id, function, payload, attempts, created, failed_at, error FROM dead_letters"
        )
        params: tuple[object, ...] = ()
        if function is not None:
            query += " WHERE function = ?"
            params = (function,)
        query += " ORDER BY failed_at DESC LIMIT ?"
        params = (*params, limit)
        rows = await self._db.run(lambda: self._db.conn.execute(query, params).fetchall())
        return [DeadLetter(r[0], r[1], bytes(r[2]), r[3], r[4], r[5], r[6]) for r in rows]

    async def redrive(self, dead_letter_id: str) -> StoredEvent:
        """Move a dead letter back to the events, due now with no attempts (a new event: its
        age counts from now)."""

        def redrive() -> StoredEvent:
            with self._db.conn:
                row = self._db.conn.execute(
                    "SELECT id, function, payload, created FROM dead_letters WHERE id = ?",
                    (dead_letter_id,),
                ).fetchone()
                if row is None:
                    raise UnknownDeadLetter(f"no dead letter with id {dead_letter_id!r}")
                now = time.time()
                event = StoredEvent(row[0], row[1], bytes(row[2]), 0, now, now)
                self._db.conn.execute("DELETE FROM dead_letters WHERE id = ?", (dead_letter_id,))
                self._insert(event)
            return event

        return await self._db.run(redrive)

    async def counts(self) -> dict[str, tuple[int, int]]:
        """Per function: (pending events, dead letters)."""

        def counts() -> dict[str, tuple[int, int]]:
            result: dict[str, tuple[int, int]] = {}
            for name, count in self._db.conn.execute(
                "SELECT function, COUNT(*) FROM events GROUP BY function"
            ):
                result[name] = (count, 0)
            for name, count in self._db.conn.execute(
                "SELECT function, COUNT(*) FROM dead_letters GROUP BY function"
            ):
                result[name] = (result.get(name, (0, 0))[0], count)
            return result

        return await self._db.run(counts)

    # -- on the database thread --------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = open_wal(self.path, _SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
        if "trace" not in columns:  # a store made before events kept their trace context
            db.execute("ALTER TABLE events ADD COLUMN trace TEXT")
        db.isolation_level = "DEFERRED"
        return db

    def _insert(self, event: StoredEvent) -> None:
        self._db.conn.execute(
            "INSERT OR REPLACE INTO events"
            " (id, function, payload, attempts, next_attempt, created, trace)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                event.id,
                event.function,
                event.payload,
                event.attempts,
                event.next_attempt,
                event.created,
                event.trace,
            ),
        )

    def _put(self, event: StoredEvent) -> None:
        with self._db.conn:
            self._insert(event)

    def _put_many(self, events: list[StoredEvent]) -> None:
        with self._db.conn:
            for event in events:
                self._insert(event)

    async def _write(self, sql: str, params: tuple[object, ...]) -> None:
        def write() -> None:
            with self._db.conn:
                self._db.conn.execute(sql, params)

        await self._db.run(write)
