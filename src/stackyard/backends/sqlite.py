"""One SQLite connection owned by one worker thread.

A component that keeps its state in a SQLite file opens a :class:`SqliteThread` with a function
that makes the connection (run on the thread), then calls ``await thread.run(fn)``: ``fn`` runs
on that thread, where :attr:`SqliteThread.conn` is the connection, so the event loop never
blocks on SQLite and the connection is only ever used by the thread that made it.

``translate`` is the component's error hook: a :class:`sqlite3.Error` raised by ``fn`` (or by
the connect function) is re-raised as ``translate(error)`` (chained), so each component keeps
raising its own exception type; without a hook the ``sqlite3.Error`` propagates as is.

:func:`open_wal` opens the durable kind of file these components keep.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def open_wal(path: Path, schema: str) -> sqlite3.Connection:
    """``path`` (its folder made) in WAL mode with ``synchronous=FULL`` (every commit on disk
    before it returns), autocommit, usable from another thread, with ``schema`` run on it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db


class SqliteThread:
    """A single-thread executor and the connection it owns; ``open`` before use, ``close``
    after. ``what`` names the store in the error raised when it is used while closed."""

    def __init__(
        self,
        what: str,
        *,
        thread_name: str,
        translate: Callable[[sqlite3.Error], Exception] | None = None,
    ) -> None:
        self.what = what
        self.thread_name = thread_name
        self.translate = translate
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None

    @property
    def is_open(self) -> bool:
        return self._executor is not None

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection; use it only inside a function given to :meth:`run`."""
        if self._db is None:
            raise RuntimeError(f"{self.what} is not open")
        return self._db

    async def open(self, connect: Callable[[], sqlite3.Connection]) -> None:
        """Start the thread and make the connection on it (no-op when already open)."""
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.thread_name)
        await self.run(lambda: self._set(connect()))

    async def close(self) -> None:
        """Close the connection on its thread and stop the thread (no-op when closed)."""
        if self._executor is None:
            return
        await self.run(self._disconnect)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the connection's thread; a ``sqlite3.Error`` goes through ``translate``."""
        if self._executor is None:
            raise RuntimeError(f"{self.what} is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        except sqlite3.Error as exc:
            if self.translate is None:
                raise
            raise self.translate(exc) from exc

    def _set(self, db: sqlite3.Connection) -> None:
        self._db = db

    def _disconnect(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
