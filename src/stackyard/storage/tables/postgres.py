"""The PostgreSQL implementation of :class:`.store.TableStore`, shared by several nodes.

Layout (in its own schema, ``stackyard`` by default, created if missing): the same tables as
:mod:`.sqlite` — ``items(tid, h, hk, rk, ...)`` with primary key ``(tid, h, hk, rk)``, ``h``
the CRC-32 of the hash-key bytes, keys as ``bytea`` (compared bytewise, as SQLite compares
BLOBs), so Query is one range scan of the primary key in range-key order and Scan walks it in
``h`` order with ``Segment``/``TotalSegments`` as a range of ``h``; ``index_items`` holds the
secondary-index entries joined back to ``items`` when read. The ``stream_*`` tables are the
stream log's (see :mod:`..streams.pglog`).

Transactions: one connection, autocommit off, isolation SERIALIZABLE. :meth:`run` makes one
API operation one transaction, committed before the answer is sent, and runs it again when
PostgreSQL reports a conflict with another node's transaction; ``atomic()`` nests inside it
(or is the transaction itself when used alone). A connection the server ended is opened
again, and the operation run again when it had not reached COMMIT; an operation whose COMMIT
got no answer fails with :class:`.errors.StoreUnavailable` (HTTP 500, retried by AWS SDKs).

Several nodes: each node's engine keeps the table catalog in memory. A change to it is
announced with ``NOTIFY`` and every item write checks, in the same statement, that the table's
``version`` is the one this node loaded; a stale catalog makes the operation reload the catalog
and run again (:class:`StaleCatalog`), so no node writes with another table definition than the
stored one.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors

from .errors import StoreUnavailable, TableNotFound, TablesError
from .ranges import pages, partition, query_read, scan_read
from .schema import TableSchema
from .store import Bound, Key, Row
from .values import Item

T = TypeVar("T")

SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_ATTEMPTS = 20  # runs of one operation before a conflict is reported
_CONFLICTS = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)
_SETUP_LOCK = 0x5354_4B59  # advisory lock id held while the schema is created

_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.tables (
    id bigserial PRIMARY KEY, name text UNIQUE NOT NULL, schema text NOT NULL,
    version bigint NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS {s}.items (
    tid bigint NOT NULL, h bigint NOT NULL, hk bytea NOT NULL, rk bytea NOT NULL,
    size integer NOT NULL, item text NOT NULL, expires double precision,
    PRIMARY KEY (tid, h, hk, rk));
CREATE INDEX IF NOT EXISTS items_expiry ON {s}.items (tid, expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS {s}.index_items (
    tid bigint NOT NULL, idx text NOT NULL, h bigint NOT NULL, hk bytea NOT NULL,
    rk bytea NOT NULL, bh bigint NOT NULL, bhk bytea NOT NULL, brk bytea NOT NULL,
    PRIMARY KEY (tid, idx, h, hk, rk, bhk, brk));
CREATE TABLE IF NOT EXISTS {s}.stream_records (
    seq bigserial PRIMARY KEY, tbl text NOT NULL, label text NOT NULL,
    created double precision NOT NULL, record text NOT NULL);
CREATE INDEX IF NOT EXISTS stream_records_tbl ON {s}.stream_records (tbl, seq);
CREATE INDEX IF NOT EXISTS stream_records_label ON {s}.stream_records (tbl, label, seq);
CREATE TABLE IF NOT EXISTS {s}.stream_positions (mapping text PRIMARY KEY, seq bigint NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.stream_trims (
    tbl text NOT NULL, label text NOT NULL, seq bigint NOT NULL, PRIMARY KEY (tbl, label));
CREATE TABLE IF NOT EXISTS {s}.stream_history (
    tbl text NOT NULL, label text NOT NULL, arn text NOT NULL, shard text NOT NULL,
    view text NOT NULL, created double precision NOT NULL, hash_key text NOT NULL,
    range_key text, disabled double precision NOT NULL, PRIMARY KEY (tbl, label));
"""


class StaleCatalog(Exception):
    """This node's table catalog is older than the stored one: reload it and run again."""


class PostgresTableStore:
    def __init__(self, url: str, schema_name: str = "stackyard") -> None:
        if not SCHEMA_NAME.match(schema_name):
            raise ValueError(f"schema name {schema_name!r}: lowercase letters, digits and '_'")
        self.url = url
        self.schema_name = schema_name
        self.channel = f"{schema_name[:55]}_catalog"  # NOTIFY channels have 63 bytes at most
        self._prefix = f"{schema_name}."
        self._conn: psycopg.Connection[Any] | None = None
        self._depth = 0  # atomic() blocks open
        self._failed = False  # an atomic() block inside the transaction raised
        self._committing = False  # COMMIT was sent and has not answered
        self._stale = True  # the catalog changed since this node loaded it
        self._versions: dict[int, int] = {}  # table id -> version this node's catalog has
        s = schema_name
        self._sql_put = (
            f"INSERT INTO {s}.items (tid, h, hk, rk, size, item, expires) "
            "SELECT %s::bigint, %s::bigint, %s::bytea, %s::bytea, %s::integer, %s::text, "
            f"%s::float8 WHERE EXISTS "
            f"(SELECT 1 FROM {s}.tables WHERE id = %s AND version = %s) "
            "ON CONFLICT (tid, h, hk, rk) DO UPDATE SET size = excluded.size, "
            "item = excluded.item, expires = excluded.expires"
        )
        self._sql_delete = (
            f"WITH ok AS (SELECT 1 FROM {s}.tables WHERE id = %s AND version = %s), "
            f"gone AS (DELETE FROM {s}.items WHERE tid = %s AND h = %s AND hk = %s AND rk = %s "
            "AND EXISTS (SELECT 1 FROM ok) RETURNING 1) "
            "SELECT EXISTS (SELECT 1 FROM ok), (SELECT count(*) FROM gone)"
        )

    @property
    def conn(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            raise RuntimeError("the table store is not open")
        return self._conn

    # -- connection -----------------------------------------------------------------------

    def open(self) -> None:
        try:
            conn = psycopg.connect(self.url, autocommit=False, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreUnavailable(f"cannot connect to PostgreSQL: {_reason(exc)}") from exc
        try:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK,))
            for statement in _SCHEMA.format(s=self.schema_name).split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"LISTEN {self.channel}")
            conn.commit()
            conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
        except psycopg.Error as exc:
            conn.close()
            raise StoreUnavailable(f"cannot set up schema {self.schema_name}: {exc}") from exc
        conn.add_notify_handler(self._notified)
        self._conn = conn
        self._stale = True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _notified(self, notify: psycopg.Notify) -> None:
        if self._conn is not None and notify.pid != self._conn.info.backend_pid:
            self._stale = True

    def _poll(self) -> bool:
        """Read what already arrived on the idle connection (no round trip): another node's
        catalog change marks the catalog stale. False when the connection is broken (the server
        restarted or ended it): nothing was sent yet, so it is safe to connect again."""
        conn = self._conn
        if conn is None or conn.closed:
            return False
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            return True
        pgconn = conn.pgconn
        try:
            pgconn.consume_input()
        except psycopg.OperationalError:
            return False
        while (notify := pgconn.notifies()) is not None:
            if notify.be_pid != conn.info.backend_pid:
                self._stale = True
        return pgconn.status == psycopg.pq.ConnStatus.OK

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def atomic(self) -> Iterator[None]:
        conn = self.conn
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self._failed = False
                _quietly_rollback(conn)
            else:
                self._failed = True
            raise
        self._depth -= 1
        if self._depth == 0:
            if self._failed:
                self._failed = False
                conn.rollback()
            else:
                self._committing = True
                conn.commit()
                self._committing = False

    def run(self, operation: Callable[[], T], reload: Callable[[], None]) -> T:
        """``operation`` as one transaction, run again (after ``reload`` of the catalog) when
        PostgreSQL reports a conflict with a concurrent transaction or the catalog is stale."""
        retried_missing = False
        lost = True  # a lost connection may still be retried
        for attempt in range(_ATTEMPTS):
            try:
                if not self._poll():
                    self.close()
                if self._conn is None:
                    self.open()
                with self.atomic():
                    if self._stale:
                        reload()
                    return operation()
            except _CONFLICTS:
                time.sleep(min(0.001 * 2**attempt, 0.05))
            except (StaleCatalog, pg_errors.UniqueViolation):
                pass  # reloaded below: the engine then sees what another node did
            except TableNotFound:
                if retried_missing:
                    raise
                retried_missing = self._stale = True  # perhaps created by another node
            except psycopg.OperationalError as exc:
                self.close()  # connected again by the next attempt or operation
                if self._committing or not lost:  # perhaps committed: only the client may retry
                    self._committing = False
                    raise StoreUnavailable(f"PostgreSQL: {_reason(exc)}") from exc
                lost = False  # nothing was committed: run it once more on a new connection
            except TablesError:
                raise
            except BaseException:
                self._stale = True  # the engine may have cached a change that was rolled back
                raise
            self._stale = True
        raise StoreUnavailable("too many conflicts with concurrent writes; try again")

    # -- tables ---------------------------------------------------------------------------

    def load_tables(self) -> dict[str, tuple[int, TableSchema]]:
        rows = self.conn.execute(
            f"SELECT id, name, schema, version FROM {self.schema_name}.tables"
        ).fetchall()
        self._versions = {tid: version for tid, _, _, version in rows}
        self._stale = False
        return {name: (tid, TableSchema.from_json(json.loads(text))) for tid, name, text, _ in rows}

    def create_table(self, schema: TableSchema) -> int:
        row = self._execute(
            f"INSERT INTO {self.schema_name}.tables (name, schema) VALUES (%s, %s) RETURNING id",
            (schema.name, json.dumps(schema.to_json())),
        ).fetchone()
        assert row is not None
        self._versions[row[0]] = 1
        self._announce()
        return int(row[0])

    def save_table(self, table_id: int, schema: TableSchema) -> None:
        row = self._execute(
            f"UPDATE {self.schema_name}.tables SET schema = %s, version = version + 1 "
            "WHERE id = %s AND version = %s RETURNING version",
            (json.dumps(schema.to_json()), table_id, self._versions.get(table_id)),
        ).fetchone()
        if row is None:
            raise StaleCatalog(f"table {schema.name} was changed elsewhere")
        self._versions[table_id] = row[0]
        self._announce()

    def drop_table(self, table_id: int) -> None:
        s = self.schema_name
        with self.atomic():
            self._execute(f"DELETE FROM {s}.items WHERE tid = %s", (table_id,))
            self._execute(f"DELETE FROM {s}.index_items WHERE tid = %s", (table_id,))
            self._execute(f"DELETE FROM {s}.tables WHERE id = %s", (table_id,))
            self._versions.pop(table_id, None)
            self._announce()

    def stats(self, table_id: int) -> tuple[int, int]:
        row = self._execute(
            f"SELECT count(*), coalesce(sum(size), 0) FROM {self.schema_name}.items WHERE tid = %s",
            (table_id,),
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def _announce(self) -> None:
        """Tell the other nodes (at commit) that the catalog changed."""
        self._execute("SELECT pg_notify(%s, '')", (self.channel,))

    # -- items ----------------------------------------------------------------------------

    def get(self, table_id: int, key: Key) -> Item | None:
        row = self._execute(
            f"SELECT item FROM {self.schema_name}.items "
            "WHERE tid = %s AND h = %s AND hk = %s AND rk = %s",
            (table_id, partition(key[0]), key[0], key[1]),
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, table_id: int, key: Key, item: Item, size: int, expires: float | None) -> None:
        text = json.dumps(item, separators=(",", ":"))
        version = self._versions.get(table_id)
        cursor = self._execute(
            self._sql_put,
            (table_id, partition(key[0]), *key, size, text, expires, table_id, version),
        )
        if cursor.rowcount == 0:
            raise StaleCatalog(f"table {table_id} was changed or deleted elsewhere")

    def delete(self, table_id: int, key: Key) -> None:
        row = self._execute(
            self._sql_delete,
            (table_id, self._versions.get(table_id), table_id, partition(key[0]), key[0], key[1]),
        ).fetchone()
        if row is None or not row[0]:
            raise StaleCatalog(f"table {table_id} was changed or deleted elsewhere")

    def put_index(self, table_id: int, index: str, key: Key, base: Key) -> None:
        self._execute(
            f"INSERT INTO {self.schema_name}.index_items (tid, idx, h, hk, rk, bh, bhk, brk) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
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
        self._execute(
            f"DELETE FROM {self.schema_name}.index_items WHERE tid = %s AND idx = %s AND h = %s "
            "AND hk = %s AND rk = %s AND bhk = %s AND brk = %s",
            (table_id, index, partition(key[0]), key[0], key[1], base[0], base[1]),
        )

    def drop_index(self, table_id: int, index: str) -> None:
        self._execute(
            f"DELETE FROM {self.schema_name}.index_items WHERE tid = %s AND idx = %s",
            (table_id, index),
        )

    def set_expiry(self, table_id: int, key: Key, expires: float | None) -> None:
        self._execute(
            f"UPDATE {self.schema_name}.items SET expires = %s "
            "WHERE tid = %s AND h = %s AND hk = %s AND rk = %s",
            (expires, table_id, partition(key[0]), key[0], key[1]),
        )

    def expired(self, table_id: int, now: float, oldest: float, limit: int) -> list[Item]:
        rows = self._execute(
            f"SELECT item FROM {self.schema_name}.items WHERE tid = %s "
            "AND expires IS NOT NULL AND expires <= %s AND expires > %s LIMIT %s",
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
        read = query_read(self._prefix, "%s", table_id, index, hash_key, low, high, forward)
        yield from pages(self._fetch, read, "%s", after)

    def scan(
        self,
        table_id: int,
        index: str | None,
        segment: int,
        total_segments: int,
        after: tuple[bytes, ...] | None,
    ) -> Iterator[Row]:
        read = scan_read(self._prefix, "%s", table_id, index, segment, total_segments)
        yield from pages(self._fetch, read, "%s", after)

    def _fetch(self, sql: str, params: list[object]) -> list[Any]:
        return self._execute(sql, params).fetchall()

    def _execute(self, sql: str, params: Any = None) -> psycopg.Cursor[Any]:
        return self.conn.execute(sql, params)


def _quietly_rollback(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.rollback()
    except psycopg.Error:
        conn.close()  # a broken connection: the next operation opens a new one


def _reason(exc: psycopg.Error) -> str:
    """The first line of a psycopg error (the server's or libpq's message)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
