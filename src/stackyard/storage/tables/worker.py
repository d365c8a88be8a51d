"""The tables' one worker thread, with group commit of concurrent writes on SQLite.

Every engine call runs on this thread, never on the event loop. A job is a ``write`` (an item
write: PutItem, UpdateItem, ...), a ``read`` (GetItem, Query, ...) or ``alone`` (anything else:
table changes, which also change the engine's memory, the stream and TTL jobs, and every job
when the store has no group commit, as on PostgreSQL).

Group commit: a write opens a transaction, and the writes and reads queued behind it (up to
:data:`MAX_GROUP` jobs, while the queue is not empty and no ``alone`` job comes) run in it, each
write in a savepoint of its own — a write that fails (a condition, a validation error) is rolled
back to its savepoint and answers its error, the others stay. The transaction is committed, and
fsynced, once for the group; only then are the group's answers sent, so every acknowledged
write is as durable as before, with one fsync per group instead of one per write. A failed
commit fails every job of its group. A caller alone makes groups of one: nothing waits for
others. A read while no group is open answers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Kind = Literal["write", "read", "alone"]
MAX_GROUP = 64


class GroupStore(Protocol):
    """What group commit needs of a store: one transaction, and savepoints inside it."""

    def group(self) -> AbstractContextManager[None]: ...

    def savepoint(self) -> AbstractContextManager[None]: ...


@dataclass(slots=True)
class _Job:
    fn: Callable[[], Any]
    kind: Kind
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    ok: bool = False
    value: Any = None  # the result, or the exception

    def run(self) -> None:
        try:
            self.value, self.ok = self.fn(), True
        except Exception as exc:
            self.value, self.ok = exc, False

    def settle(self) -> None:
        self.loop.call_soon_threadsafe(_settle, self.future, self.ok, self.value)


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # the caller gave up waiting
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class _Failed(Exception):
    """A write failed: its savepoint is rolled back; its error is its answer."""


class TableWorker:
    """Runs the jobs on one thread; with a ``store``, writes are committed in groups."""

    def __init__(self, store: GroupStore | None, max_group: int = MAX_GROUP) -> None:
        self.store = store
        self.max_group = max_group
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.groups = 0  # transactions committed (or failed) for groups, and their jobs
        self.grouped_jobs = 0

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="tables", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Run what is queued, then end the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    async def submit(self, fn: Callable[[], Any], kind: Kind = "alone") -> Any:
        if self._thread is None:
            raise RuntimeError("the tables component is not started")
        loop = asyncio.get_running_loop()
        grouped = kind if self.store is not None else "alone"
        job = _Job(fn, grouped, loop, loop.create_future())
        self._queue.put(job)
        return await job.future

    def _main(self) -> None:
        job = self._queue.get()
        while job is not None:
            if job.kind == "write":
                job = self._group(job)
                continue
            job.run()
            job.settle()
            job = self._queue.get()

    def _group(self, first: _Job) -> _Job | None:
        """Run ``first`` and what queues behind it in one transaction; the job that ends the
        group (``alone``, or None: stop) if one was taken from the queue, else the next."""
        assert self.store is not None
        done: list[_Job] = [first]
        after: _Job | Literal[False] | None = False  # False: nothing taken that is not done
        try:
            with self.store.group():
                job = first
                while True:
                    self._run_in_group(job)
                    if len(done) >= self.max_group:
                        break
                    try:
                        taken = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if taken is None or taken.kind == "alone":
                        after = taken
                        break
                    job = taken
                    done.append(job)  # before it runs: a failed group answers it too
        except Exception as exc:  # BEGIN, a savepoint or the commit failed: so did the group
            for failed in done:
                failed.value, failed.ok = exc, False
        self.groups += 1
        self.grouped_jobs += len(done)
        for finished in done:
            finished.settle()
        return self._queue.get() if after is False else after

    def _run_in_group(self, job: _Job) -> None:
        assert self.store is not None
        if job.kind != "write":
            job.run()
            return
        with contextlib.suppress(_Failed), self.store.savepoint():
            job.run()
            if not job.ok:
                raise _Failed
