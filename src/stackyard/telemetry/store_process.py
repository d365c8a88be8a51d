"""A store whose writer is a child process: the node queues, a child process writes SQLite.

:class:`StoreProcess` is the node's side of one store file (the span store's, the log
store's). Writing a span costs the node's event loop an append to a list: producers call
:meth:`~StoreProcess.put` (on the loop; from another thread the items go through a deque and a
``call_soon_threadsafe``). ``linger`` seconds after the first queued item the list is shipped:
the store's ``encode`` reduces the items to marshal-able tuples and one frame per
``frame_items`` items goes down a Unix socket pair to the child
(``python -m stackyard.telemetry.store_writer``, see there), which owns the writer connection and
does the rest (row building, indexes, dependency links, retention deletes). So the Python work
of writing never holds the node's GIL, and a slow disk never stalls the loop.

- **Backpressure**: while more than ``MAX_BUFFERED`` bytes wait in the socket's transport, items
  stay in the list; past ``max_pending`` items :meth:`put` raises :class:`Overloaded`.
- :meth:`call` (``op``, args) ships what is queued, then asks the child to run ``op_<op>``
  after committing all of it; the answer comes back with the call's sequence number.
  :meth:`flush` is the call that does nothing: when it returns, everything queued before it is
  stored and visible to readers.
- :meth:`read` runs queries on reader threads with read-only connections (WAL), in the node.
- :meth:`start` starts the child and waits until it has opened the file and its schema;
  :meth:`stop` ships what is queued, closes the socket's sending side (the child writes
  everything, commits, exits), waits up to ``stop_timeout`` seconds and kills it after that.
- The child exits on its own when the node dies (end of file on the socket, or its parent
  changes). If it dies while the store runs, the error is logged and another one is started
  (after 0.5 s, doubling up to 30 s while they keep dying); items shipped to the dead one and
  not yet committed are lost, calls waiting for it raise :class:`StoreClosed`, items queued
  meanwhile wait for the new one (up to ``max_pending``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import marshal
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from .errors import Overloaded, StoreClosed, TelemetryError
from .store_writer import BATCH, CALL, FRAME, MARSHAL_VERSION, encode
from .worker import Readers

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_R = TypeVar("_R")

MAX_BUFFERED = 8 << 20
START_TIMEOUT = 30.0
RESTART_DELAY = 0.5
_SRC = str(Path(__file__).resolve().parents[2])  # the folder holding the stackyard package


class StoreProcess(Generic[_T]):
    """Items of type ``_T`` queued in the node, written by a child process, read in the node."""

    def __init__(
        self,
        path: Path,
        kind: str,
        encode_items: Callable[[list[_T]], list[Any]],
        *,
        name: str,
        max_pending: int = 200_000,
        linger: float = 0.05,
        frame_items: int = 2000,
        stop_timeout: float = 30.0,
    ) -> None:
        self.path = path
        self.kind = kind
        self._encode = encode_items
        self._name = name
        self.max_pending = max_pending
        self.linger = linger
        self.frame_items = frame_items
        self.stop_timeout = stop_timeout
        self.dropped = 0
        self._pending: list[_T] = []
        self._foreign: deque[_T] = deque()  # items put by other threads
        self._foreign_armed = False
        self._armed = False
        self._timer: asyncio.TimerHandle | None = None
        self._closing = True
        self._proc: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._writer: asyncio.StreamWriter | None = None
        self._replies: asyncio.Task[None] | None = None
        self._restart: asyncio.Task[None] | None = None
        self._restart_delay = RESTART_DELAY
        self._started_at = 0.0
        self._ready = False
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self._seq = itertools.count(1)
        self._readers = Readers(path, name)

    @property
    def running(self) -> bool:
        return not self._closing

    @property
    def pending(self) -> int:
        """Items queued in the node, not yet shipped to the writer process."""
        return len(self._pending) + len(self._foreign)

    @property
    def pid(self) -> int | None:
        """The writer process's id while it runs."""
        return self._proc.pid if self._proc is not None else None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the writer process; returns once it has opened the file and its schema."""
        if self._loop is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._restart_delay = RESTART_DELAY
        try:
            await self._launch()
            self._closing = False
            self._readers.start()
            await asyncio.wait_for(self.flush(), START_TIMEOUT)
            self._ready = True  # from now on, a writer that dies is replaced
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Ship what is queued, let the child commit it and exit (killed after
        ``stop_timeout`` seconds), close every connection."""
        if self._loop is None:
            return
        if not self._closing:
            self._ship(force=True)
        self._closing = True
        self._ready = False
        self._disarm()
        restart, self._restart = self._restart, None
        if restart is not None:
            restart.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await restart
        proc, self._proc = self._proc, None
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(OSError, RuntimeError):
                writer.write_eof()  # after what is buffered: the child writes it all, then exits
        try:
            if proc is not None:
                await asyncio.to_thread(_wait_or_kill, proc, self.stop_timeout, self._name)
        finally:
            if writer is not None:
                writer.close()
            replies, self._replies = self._replies, None
            if replies is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await replies
            self._fail_calls(StoreClosed(f"the {self._name} store stopped"))
            await self._readers.stop()
            self._loop = None

    async def _launch(self) -> None:
        """Start a writer process and the task reading its answers."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            proc = await asyncio.to_thread(_spawn, self.kind, self.path, theirs)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        try:
            reader, writer = await asyncio.open_unix_connection(sock=ours)
        except BaseException:
            ours.close()
            proc.kill()
            await asyncio.to_thread(proc.wait)
            raise
        self._proc, self._writer = proc, writer
        self._started_at = time.monotonic()
        self._replies = asyncio.create_task(
            self._read_replies(reader, proc), name=f"{self._name}-writer-answers"
        )

    async def _relaunch(self, dead: subprocess.Popen[bytes]) -> None:
        """Replace a writer process that died while the store was running (with a growing
        delay between attempts while they keep failing)."""
        code = await asyncio.to_thread(dead.wait)
        while not self._closing:
            lived = time.monotonic() - self._started_at
            if lived > 60:
                self._restart_delay = RESTART_DELAY
            delay, self._restart_delay = self._restart_delay, min(self._restart_delay * 2, 30.0)
            logger.error(
                "the %s writer process exited (code %s); starting another in %.1f s",
                self._name,
                code,
                delay,
            )
            await asyncio.sleep(delay)
            try:
                await self._launch()
            except Exception:
                logger.exception("cannot start the %s writer process", self._name)
                continue
            self._restart = None
            if self.pending and not self._armed:
                self._arm()
            return

    # -- producers ---------------------------------------------------------------------------

    def put(self, item: _T) -> None:
        """Queue one item; raises :class:`Overloaded` when the queue is full and
        :class:`StoreClosed` when the store is not running."""
        if self._closing:
            raise StoreClosed(f"the {self._name} store is not running")
        if threading.get_ident() != self._thread:
            self._put_foreign([item])
            return
        pending = self._pending
        if len(pending) >= self.max_pending:
            self.dropped += 1
            raise Overloaded(f"the {self._name} write queue is full")
        pending.append(item)
        if not self._armed:
            self._arm()

    def put_many(self, items: list[_T]) -> None:
        """Queue several items, all or none."""
        if self._closing:
            raise StoreClosed(f"the {self._name} store is not running")
        if threading.get_ident() != self._thread:
            self._put_foreign(items)
            return
        if len(self._pending) + len(items) > self.max_pending:
            self.dropped += len(items)
            raise Overloaded(f"the {self._name} write queue is full")
        self._pending.extend(items)
        if not self._armed:
            self._arm()

    def _put_foreign(self, items: list[_T]) -> None:
        if self.pending + len(items) > self.max_pending:
            self.dropped += len(items)
            raise Overloaded(f"the {self._name} write queue is full")
        self._foreign.extend(items)
        if not self._foreign_armed:
            self._foreign_armed = True
            loop = self._loop
            try:
                if loop is None:
                    raise RuntimeError("no loop")
                loop.call_soon_threadsafe(self._arm_foreign)
            except RuntimeError as exc:  # the loop is closed
                raise StoreClosed(f"the {self._name} store is not running") from exc

    def _arm_foreign(self) -> None:
        self._foreign_armed = False
        if not self._armed and not self._closing:
            self._arm()

    # -- shipping (event loop) ---------------------------------------------------------------

    def _arm(self) -> None:
        self._armed = True
        assert self._loop is not None
        self._timer = self._loop.call_later(self.linger, self._ship)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed = False

    def _ship(self, force: bool = False) -> None:
        """Send the queued items to the child (unless it is behind, when not ``force``)."""
        self._disarm()
        foreign = self._foreign
        while foreign:
            self._pending.append(foreign.popleft())
        writer = self._writer
        if not self._pending or writer is None:
            return
        if not force and writer.transport.get_write_buffer_size() > MAX_BUFFERED:
            self._arm()  # the child is behind: keep the items here (bounded by max_pending)
            return
        batch, self._pending = self._pending, []
        step = self.frame_items
        for start in range(0, len(batch), step):
            self._send_items(writer, batch[start : start + step])

    def _send_items(self, writer: asyncio.StreamWriter, items: list[_T]) -> None:
        try:
            frame = encode((BATCH, self._encode(items)))
        except Exception:  # an item that cannot be encoded: drop it, keep the others
            kept = []
            for item in items:
                try:
                    [encoded] = self._encode([item])
                    marshal.dumps(encoded, MARSHAL_VERSION)
                except Exception:
                    self.dropped += 1
                    logger.warning("%s: cannot encode %r; dropped", self._name, item)
                else:
                    kept.append(encoded)
            frame = encode((BATCH, kept))
        writer.write(frame)

    # -- calls -------------------------------------------------------------------------------

    async def call(self, op: str, *args: Any) -> Any:
        """Run ``op`` in the writer process after everything queued so far is committed."""
        writer = self._writer
        if self._closing or writer is None:
            raise StoreClosed(f"the {self._name} store is not running")
        self._ship(force=True)
        seq = next(self._seq)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[seq] = future
        writer.write(encode((CALL, seq, op, args)))
        return await future

    async def flush(self) -> None:
        """Wait until every item queued before this call is committed."""
        await self.call("flush")

    async def read(self, fn: Callable[[sqlite3.Connection], _R]) -> _R:
        """Run ``fn(conn)`` with a read-only connection on a reader thread."""
        return await self._readers.read(fn)

    async def _read_replies(
        self, reader: asyncio.StreamReader, proc: subprocess.Popen[bytes]
    ) -> None:
        try:
            while True:
                head = await reader.readexactly(FRAME.size)
                seq, ok, value = marshal.loads(await reader.readexactly(FRAME.unpack(head)[0]))
                future = self._calls.pop(seq, None)
                if future is None or future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(TelemetryError(f"{self._name} writer: {value}"))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        self._fail_calls(StoreClosed(f"the {self._name} writer process exited"))
        if self._closing or proc is not self._proc or not self._ready:
            return
        # the writer died while the store runs: what it had not committed is lost; items
        # queued here wait for its replacement (puts go on, up to max_pending)
        writer, self._writer = self._writer, None
        self._proc = None
        if writer is not None:
            writer.close()
        self._restart = asyncio.create_task(self._relaunch(proc), name=f"{self._name}-relaunch")

    def _fail_calls(self, error: Exception) -> None:
        calls, self._calls = self._calls, {}
        for future in calls.values():
            if not future.done():
                future.set_exception(error)


def _spawn(kind: str, path: Path, sock: socket.socket) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_SRC, env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stackyard.telemetry.store_writer",
            kind,
            str(path),
            str(sock.fileno()),
        ],
        pass_fds=(sock.fileno(),),
        stdin=subprocess.DEVNULL,
        env=env,
    )


def _wait_or_kill(proc: subprocess.Popen[bytes], timeout: float, name: str) -> None:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        logger.error("the %s writer process did not stop in %.0f s; killed", name, timeout)
        proc.kill()
        proc.wait()
