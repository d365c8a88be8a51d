"""One SQLite file worked on off the event loop: a writer thread and a small reader pool
(the metrics store's; the span and log stores write from a child process, :mod:`.store_process`).

:class:`SqliteWorker` owns the file (WAL mode). Producers call :meth:`SqliteWorker.put` (any
thread; a deque append, no lock, no I/O); the writer thread drains the queue and hands each
batch (up to ``max_batch`` items) to ``apply_batch(conn, items)`` inside one transaction, so a
burst of single items becomes a few large inserts. With ``linger`` (seconds), the writer waits
that long after the first item of a batch (unless ``max_batch`` items, a call or stop come
first), so a steady trickle is committed a few times a second instead of item by item.
:meth:`call` runs maintenance work (retention) on the writer thread in queue order, and
:meth:`flush` waits until everything queued before it is committed. Reads run on
:class:`Readers`: a two-thread pool, each thread with its own read-only connection (WAL lets
them read while a writer — this thread or another process — writes). Nothing here touches the
event loop's thread.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Generic, TypeVar

from .db import connect, write_batch
from .errors import Overloaded, StoreClosed

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_R = TypeVar("_R")


class _Call:
    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        self.fn = fn
        self.future: Future[Any] = Future()


class Readers:
    """Read-only connections to one file, on a small thread pool."""

    def __init__(self, path: Path, name: str, threads: int = 2) -> None:
        self.path = path
        self._name = name
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self._threads, thread_name_prefix=f"{self._name}-read"
            )

    async def stop(self) -> None:
        """Wait for running reads, then close every connection."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, True)
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()

    async def read(self, fn: Callable[[sqlite3.Connection], _R]) -> _R:
        """Run ``fn(conn)`` with a read-only connection on a reader thread."""
        pool = self._pool
        if pool is None:
            raise StoreClosed(f"the {self._name} store is not running")
        return await asyncio.get_running_loop().run_in_executor(pool, self._read, fn)

    def _read(self, fn: Callable[[sqlite3.Connection], _R]) -> _R:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return fn(conn)


class SqliteWorker(Generic[_T]):
    """A writer thread draining a queue of ``_T`` into one SQLite file, plus readers."""

    def __init__(
        self,
        path: Path,
        schema: str,
        apply_batch: Callable[[sqlite3.Connection, list[_T]], None],
        *,
        name: str,
        max_batch: int = 5000,
        max_pending: int = 200_000,
        linger: float = 0.0,
    ) -> None:
        self.path = path
        self._schema = schema
        self._apply = apply_batch
        self._name = name
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.linger = linger
        self._hurry = threading.Event()
        self._queue: deque[_T | _Call] = deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._readers = Readers(path, name)
        self.dropped = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._closing

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def start(self) -> None:
        """Create the file and schema (in a thread), then start the writer thread."""
        if self._thread is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = await asyncio.to_thread(self._open)
        self._closing = False
        self._readers.start()
        self._thread = threading.Thread(
            target=self._run, args=(conn,), name=f"{self._name}-writer", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        """Commit everything queued, stop the writer thread, close every connection."""
        thread = self._thread
        if thread is None:
            return
        self._closing = True
        self._hurry.set()
        self._wake.set()
        await asyncio.to_thread(thread.join)
        self._thread = None
        await self._readers.stop()

    def put(self, item: _T) -> None:
        """Queue one item for the writer; raises :class:`Overloaded` when the queue is full."""
        if self._closing or self._thread is None:
            raise StoreClosed(f"the {self._name} store is not running")
        if len(self._queue) >= self.max_pending:
            self.dropped += 1
            raise Overloaded(f"the {self._name} write queue is full")
        queue = self._queue
        queue.append(item)
        if not self._wake.is_set():
            self._wake.set()
        if len(queue) >= self.max_batch:
            self._hurry.set()

    def put_many(self, items: list[_T]) -> None:
        if self._closing or self._thread is None:
            raise StoreClosed(f"the {self._name} store is not running")
        if len(self._queue) + len(items) > self.max_pending:
            self.dropped += len(items)
            raise Overloaded(f"the {self._name} write queue is full")
        self._queue.extend(items)
        if not self._wake.is_set():
            self._wake.set()
        if len(self._queue) >= self.max_batch:
            self._hurry.set()

    async def call(self, fn: Callable[[sqlite3.Connection], _R]) -> _R:
        """Run ``fn(conn)`` on the writer thread after everything queued so far."""
        if self._closing or self._thread is None:
            raise StoreClosed(f"the {self._name} store is not running")
        item = _Call(fn)
        self._queue.append(item)
        self._hurry.set()
        self._wake.set()
        result: _R = await asyncio.wrap_future(item.future)
        return result

    async def flush(self) -> None:
        """Wait until every item queued before this call is committed."""
        await self.call(lambda conn: None)

    async def read(self, fn: Callable[[sqlite3.Connection], _R]) -> _R:
        """Run ``fn(conn)`` with a read-only connection on a reader thread."""
        return await self._readers.read(fn)

    def _open(self) -> sqlite3.Connection:
        conn = connect(self.path)
        conn.executescript(self._schema)
        return conn

    def _run(self, conn: sqlite3.Connection) -> None:
        try:
            linger = self.linger
            while True:
                self._wake.wait()
                if linger > 0 and not self._closing:
                    # let a batch build up: fewer, larger commits (a call, a full batch or
                    # stop ends the wait early)
                    self._hurry.wait(linger)
                self._hurry.clear()
                self._wake.clear()
                self._drain(conn)
                if self._closing and not self._queue:
                    break
        finally:
            conn.close()

    def _drain(self, conn: sqlite3.Connection) -> None:
        queue = self._queue
        while queue:
            batch: list[_T] = []
            call: _Call | None = None
            while queue and len(batch) < self.max_batch:
                item = queue.popleft()
                if isinstance(item, _Call):
                    call = item
                    break
                batch.append(item)
            if batch:
                self._write(conn, batch)
            if call is not None:
                self._run_call(conn, call)

    def _write(self, conn: sqlite3.Connection, batch: list[_T]) -> None:
        write_batch(conn, self._apply, batch, self._name)

    def _run_call(self, conn: sqlite3.Connection, call: _Call) -> None:
        if not call.future.set_running_or_notify_cancel():
            return
        try:
            result = call.fn(conn)
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            call.future.set_exception(exc)
        else:
            call.future.set_result(result)
