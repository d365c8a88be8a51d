"""The writer process of a telemetry store: ``python -m stackyard.telemetry.store_writer KIND
PATH FD`` (started and stopped by :class:`~.store_process.StoreProcess`, never by hand).

The process owns the store's only writer connection to ``PATH`` (SQLite, WAL): it creates the
schema, then reads frames from the Unix socket ``FD`` (its end of a socket pair with the node)
and writes. A frame is a 4-byte little-endian length and a :mod:`marshal` payload:

- ``(BATCH, items)`` — items to store (already reduced to marshal-able tuples by the node);
- ``(CALL, seq, op, args)`` — run ``op_<op>(conn, *args)`` of the store's :class:`StoreWriter`
  after everything received before it is committed, and answer ``(seq, True, result)`` (or
  ``(seq, False, "error text")``). ``flush`` is the call that does nothing: its answer says
  that everything sent before it is stored.

Everything already waiting on the socket is read before writing, so while a commit runs the
next batch builds up (up to ``max_batch`` items per transaction). With a ``linger``, items wait
up to that long for more before they are committed: a commit costs about one page written per
page dirtied, and a random-keyed index (trace ids) dirties about a page per row until a batch
covers the index, so larger batches cost less per row. Calls never wait for the linger.

End of file on the socket — the node stopped the store, or the node died — means: write what
was received, close the file, exit. The process also exits when its parent changes
(``getppid``, checked whenever a second passes without data) and after SIGTERM (once the
current batch is written); it ignores SIGINT, which a terminal sends to the whole process
group: the node stops its stores itself.

``KIND`` picks the :class:`StoreWriter` (``WRITERS``): ``spans`` (:mod:`.span_writer`) or
``logs`` (:mod:`.log_writer`).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import marshal
import os
import select
import signal
import socket
import sqlite3
import struct
import sys
import time
from pathlib import Path
from typing import Any

from .db import connect, write_batch
from .retention import delete_beyond, delete_fraction, delete_older, used_bytes

logger = logging.getLogger(__name__)

FRAME = struct.Struct("<I")
BATCH, CALL = 0, 1
MARSHAL_VERSION = 4
WRITERS = {
    "spans": ("stackyard.telemetry.span_writer", "SpanWriter"),
    "logs": ("stackyard.telemetry.log_writer", "LogWriter"),
}
_READ_SIZE = 1 << 20
_MAX_BUFFER = 32 << 20


class StoreWriter:
    """What a store's writer process does with its file: one subclass per store.

    ``write(conn, items)`` runs inside a transaction (a failing batch is retried item by item);
    ``op_<name>(conn, *args)`` methods are what the node may :meth:`call`. The retention ops
    below each run in their own transaction on ``table``.
    """

    name = "store"
    schema = ""
    table = ""
    max_batch = 5000
    linger = 0.0  # seconds an item may wait for more before a commit (calls do not wait)

    def open(self, conn: sqlite3.Connection) -> None:
        """Called once, after the schema is created."""

    def write(self, conn: sqlite3.Connection, items: list[Any]) -> None:
        raise NotImplementedError

    def call(self, conn: sqlite3.Connection, op: str, args: tuple[Any, ...]) -> Any:
        method = getattr(self, "op_" + op, None)
        if method is None:
            raise ValueError(f"unknown operation {op!r}")
        return method(conn, *args)

    def op_flush(self, conn: sqlite3.Connection) -> None:
        return None

    def op_delete_older(self, conn: sqlite3.Connection, cutoff_us: int) -> int:
        return _in_transaction(conn, lambda: delete_older(conn, self.table, cutoff_us))

    def op_delete_beyond(self, conn: sqlite3.Connection, max_rows: int) -> int:
        return _in_transaction(conn, lambda: delete_beyond(conn, self.table, max_rows))

    def op_delete_fraction(self, conn: sqlite3.Connection, fraction: float) -> int:
        return _in_transaction(conn, lambda: delete_fraction(conn, self.table, fraction))

    def op_used_bytes(self, conn: sqlite3.Connection) -> int:
        return used_bytes(conn)


def _in_transaction(conn: sqlite3.Connection, fn: Any) -> int:
    conn.execute("BEGIN")
    try:
        count: int = fn()
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return count


def encode(message: tuple[Any, ...]) -> bytes:
    """One frame: length prefix and the marshal payload."""
    payload = marshal.dumps(message, MARSHAL_VERSION)
    return FRAME.pack(len(payload)) + payload


class _Server:
    def __init__(self, sock: socket.socket, conn: sqlite3.Connection, writer: StoreWriter) -> None:
        self.sock = sock
        self.conn = conn
        self.writer = writer
        self.items: list[Any] = []
        self.due = 0.0  # when the items received so far are committed at the latest
        self.buffer = bytearray()
        self.terminated = False

    def run(self) -> None:
        parent = os.getppid()
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        linger = self.writer.linger
        eof = False
        while not eof and not self.terminated:
            wait = 1.0 if not self.items else max(0.0, self.due - time.monotonic())
            if poller.poll(wait * 1000):
                eof = self._receive()
                self._handle_frames()
            elif os.getppid() != parent:
                break  # the node is gone (and the socket leaked to another process)
            if self.items and (linger <= 0 or time.monotonic() >= self.due):
                self._commit()

    def _receive(self) -> bool:
        """Read everything waiting on the socket; True at end of file."""
        buffer = self.buffer
        while len(buffer) < _MAX_BUFFER:
            try:
                chunk = self.sock.recv(_READ_SIZE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return False
            except ConnectionError:
                return True
            if not chunk:
                return True
            buffer += chunk
        return False

    def _handle_frames(self) -> None:
        buffer = self.buffer
        pos, size = 0, len(buffer)
        with memoryview(buffer) as view:
            while size - pos >= FRAME.size:
                (length,) = FRAME.unpack_from(buffer, pos)
                end = pos + FRAME.size + length
                if end > size:
                    break
                message = marshal.loads(view[pos + FRAME.size : end])
                pos = end
                if message[0] == BATCH:
                    if not self.items:
                        self.due = time.monotonic() + self.writer.linger
                    self.items.extend(message[1])
                    if len(self.items) >= self.writer.max_batch:
                        self._commit()
                else:
                    self._commit()
                    self._answer(message[1], message[2], message[3])
        del buffer[:pos]

    def _commit(self) -> None:
        items, self.items = self.items, []
        if items:
            write_batch(self.conn, self.writer.write, items, self.writer.name)

    def _answer(self, seq: int, op: str, args: tuple[Any, ...]) -> None:
        try:
            reply: tuple[Any, ...] = (seq, True, self.writer.call(self.conn, op, args))
        except Exception as exc:
            logger.exception("%s: %s failed", self.writer.name, op)
            reply = (seq, False, f"{type(exc).__name__}: {exc}")
        try:
            frame = encode(reply)
        except ValueError:
            frame = encode((seq, False, f"{op} returned an unencodable result"))
        with contextlib.suppress(OSError):  # the node is gone; what was received is still written
            self.sock.sendall(frame)


def main(argv: list[str]) -> int:
    kind, path, fd = argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.WARNING, format=f"%(asctime)s telemetry {kind} writer: %(message)s"
    )
    module, name = WRITERS[kind]
    writer: StoreWriter = getattr(importlib.import_module(module), name)()
    sock = socket.socket(fileno=int(fd))
    sock.setblocking(True)
    conn = connect(Path(path))
    conn.executescript(writer.schema)
    writer.open(conn)
    # the objects made per batch die young; fewer collections of the long-lived ones
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    server = _Server(sock, conn, writer)

    def terminate(signum: int, frame: object) -> None:
        server.terminated = True

    signal.signal(signal.SIGTERM, terminate)
    try:
        server.run()
        server._commit()
    finally:
        conn.close()
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
