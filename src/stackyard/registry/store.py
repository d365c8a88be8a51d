"""SQLite persistence of the registry: service registrations (with their check specs), KV entries
and the index clock, in ``<data_dir>/registry.sqlite3`` (WAL mode).

All SQLite work runs on one dedicated writer thread (a single-worker executor owning the
connection), so the event loop never blocks and writes reach the file in the order they were
submitted. Check *status* is not stored: on reload every check starts at its initial status.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .errors import RegistryClosed, StoreError
from .models import CheckSpec, Health, KVEntry, ServiceRegistration

FILENAME = "registry.sqlite3"
_T = TypeVar("_T")
_U64 = 1 << 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS services (
    id TEXT PRIMARY KEY, body TEXT NOT NULL,
    create_index INTEGER NOT NULL, modify_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY, value BLOB NOT NULL, flags INTEGER NOT NULL,
    create_index INTEGER NOT NULL, modify_index INTEGER NOT NULL,
    lock_index INTEGER NOT NULL, session TEXT);
"""


@dataclass(frozen=True)
class StoredService:
    registration: ServiceRegistration
    create_index: int
    modify_index: int


@dataclass
class Snapshot:
    """Everything loaded at start."""

    index: int = 0
    services: list[StoredService] = field(default_factory=list)
    kv: list[KVEntry] = field(default_factory=list)


def registration_to_json(reg: ServiceRegistration) -> str:
    checks = [
        {
            "check_id": c.check_id,
            "kind": c.kind,
            "name": c.name,
            "target": c.target,
            "interval": c.interval,
            "timeout": c.timeout,
            "ttl": c.ttl,
            "success_before_passing": c.success_before_passing,
            "failures_before_critical": c.failures_before_critical,
            "deregister_after": c.deregister_after,
            "initial_status": c.initial_status.value,
            "notes": c.notes,
            "method": c.method,
            "headers": [list(h) for h in c.headers],
        }
        for c in reg.checks
    ]
    body = {
        "id": reg.id,
        "name": reg.name,
        "address": reg.address,
        "port": reg.port,
        "tags": list(reg.tags),
        "meta": reg.meta,
        "checks": checks,
    }
    return json.dumps(body, separators=(",", ":"))


def registration_from_json(text: str) -> ServiceRegistration:
    body: dict[str, Any] = json.loads(text)
    checks = tuple(
        CheckSpec(
            check_id=c["check_id"],
            kind=c["kind"],
            name=c.get("name", ""),
            target=c.get("target", ""),
            interval=float(c.get("interval", 10.0)),
            timeout=float(c.get("timeout", 5.0)),
            ttl=c.get("ttl"),
            success_before_passing=int(c.get("success_before_passing", 0)),
            failures_before_critical=int(c.get("failures_before_critical", 0)),
            deregister_after=c.get("deregister_after"),
            initial_status=Health(c.get("initial_status", "critical")),
            notes=c.get("notes", ""),
            method=c.get("method", "GET"),
            headers=tuple((str(k), str(v)) for k, v in c.get("headers", [])),
        )
        for c in body.get("checks", [])
    )
    return ServiceRegistration(
        id=body["id"],
        name=body["name"],
        address=body.get("address", "127.0.0.1"),
        port=int(body.get("port", 0)),
        tags=tuple(body.get("tags", [])),
        meta=dict(body.get("meta", {})),
        checks=checks,
    )


def _flags_to_db(flags: int) -> int:
    return flags - _U64 if flags >= 1 << 63 else flags


def _flags_from_db(flags: int) -> int:
    return flags + _U64 if flags < 0 else flags


class RegistryStore:
    """The registry's SQLite file, worked on by one writer thread."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILENAME
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    @property
    def is_open(self) -> bool:
        return self._executor is not None

    async def open(self) -> Snapshot:
        """Create the file if needed and load everything stored."""
        if self._executor is not None:
            raise StoreError("store already open")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="registry-store")
        try:
            return await self._run(self._open_sync)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(executor, self._close_sync)
        executor.shutdown(wait=False)

    def put_service(self, stored: StoredService, index: int) -> asyncio.Future[None]:
        body = registration_to_json(stored.registration)
        reg_id = stored.registration.id

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO services (id, body, create_index, modify_index)"
                " VALUES (?, ?, ?, ?)",
                (reg_id, body, stored.create_index, stored.modify_index),
            )
            _save_index(conn, index)

        return self._submit(work)

    def delete_service(self, service_id: str, index: int) -> asyncio.Future[None]:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM services WHERE id = ?", (service_id,))
            _save_index(conn, index)

        return self._submit(work)

    def put_kv(self, entry: KVEntry, index: int) -> asyncio.Future[None]:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO kv (key, value, flags, create_index, modify_index,"
                " lock_index, session) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.key,
                    entry.value,
                    _flags_to_db(entry.flags),
                    entry.create_index,
                    entry.modify_index,
                    entry.lock_index,
                    entry.session,
                ),
            )
            _save_index(conn, index)

        return self._submit(work)

    def delete_kv(self, keys: Sequence[str], index: int) -> asyncio.Future[None]:
        rows = [(k,) for k in keys]

        def work(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM kv WHERE key = ?", rows)
            _save_index(conn, index)

        return self._submit(work)

    def save_index(self, index: int) -> asyncio.Future[None]:
        return self._submit(lambda conn: _save_index(conn, index))

    # -- thread side ---------------------------------------------------------------------

    def _submit(self, work: Callable[[sqlite3.Connection], None]) -> asyncio.Future[None]:
        """Queue ``work`` now (so writes keep their order) and return an awaitable result."""
        return self._run(lambda: self._transaction(work))

    def _run(self, fn: Callable[[], _T]) -> asyncio.Future[_T]:
        if self._executor is None:
            raise RegistryClosed("registry store is not open")
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, fn)

    def _transaction(self, work: Callable[[sqlite3.Connection], None]) -> None:
        conn = self._connection()
        try:
            with conn:
                work(conn)
        except sqlite3.Error as exc:
            raise StoreError(f"registry store write failed: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("registry store is closed")
        return self._conn

    def _open_sync(self) -> Snapshot:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(_SCHEMA)
            self._conn = conn
            return self._load(conn)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc

    def _load(self, conn: sqlite3.Connection) -> Snapshot:
        snap = Snapshot()
        row = conn.execute("SELECT value FROM meta WHERE key = 'index'").fetchone()
        snap.index = int(row[0]) if row else 0
        for body, create_index, modify_index in conn.execute(
            "SELECT body, create_index, modify_index FROM services ORDER BY id"
        ):
            try:
                reg = registration_from_json(body)
            except (ValueError, KeyError, TypeError):
                continue  # an unreadable row must not keep the node from starting
            snap.services.append(StoredService(reg, int(create_index), int(modify_index)))
            snap.index = max(snap.index, int(modify_index))
        for key, value, flags, ci, mi, li, session in conn.execute(
            "SELECT key, value, flags, create_index, modify_index, lock_index, session"
            " FROM kv ORDER BY key"
        ):
            snap.kv.append(
                KVEntry(str(key), bytes(value), _flags_from_db(int(flags)), ci, mi, li, session)
            )
            snap.index = max(snap.index, int(mi))
        return snap

    def _close_sync(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _save_index(conn: sqlite3.Connection, index: int) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('index', ?)"
        " ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
        (index,),
    )
