"""Instances' output: pumping stdout/stderr into JSON-lines files, and reading them back.

Writing. Each instance's stdout and stderr are pipes read by :func:`pump` in chunks and split
into lines; a line longer than ``MAX_LINE`` bytes is cut into ``MAX_LINE`` pieces (never an
unbounded buffer). :class:`LogWriter` appends one JSON object per line to
``<log_dir>/<service>.log``::

    {"time": "2024-05-01T12:00:00.123Z", "service": "api", "instance": "api-1",
     "stream": "stdout", "message": "listening on 8000"}

and hands the same record to an optional ``on_record`` sink (so a telemetry component can take
the records over). Files are flushed per line; a file larger than ``max_bytes`` is rotated to
``<service>.log.1`` (one generation kept), which bounds disk use.

Reading (for the node's logs API; both are plain file reads):

- :func:`read_records` — the last ``tail`` records of one service or of all services, ordered by
  time (synchronous; call it through ``asyncio.to_thread`` from a request handler).
- :func:`follow_records` — an async iterator yielding new records as the files grow, polling
  every ``poll_interval`` seconds (default 0.15 s); it notices new service files and rotations.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal

logger = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
"""Longest message kept in one record, in bytes; longer lines are split."""

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""Size at which a service's log file is rotated."""

_CHUNK = 64 * 1024
_FOLLOW_READ_LIMIT = 4 * 1024 * 1024
_SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")

Stream = Literal["stdout", "stderr"]
LogRecord = dict[str, str]
RecordSink = Callable[[LogRecord], None]


def utc_timestamp(moment: datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z`` suffix (lexicographic order = time order)."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def log_path(log_dir: Path, service: str) -> Path:
    """Where a service's records are written."""
    if not _SERVICE_NAME.match(service):
        raise ValueError(f"invalid service name {service!r}")
    return log_dir / f"{service}.log"


class LogWriter:
    """Owns the open log files of every service (one file per service, shared by replicas)."""

    def __init__(
        self,
        log_dir: Path,
        *,
        on_record: RecordSink | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.log_dir = log_dir
        self.on_record = on_record
        self.max_bytes = max_bytes
        self._files: dict[str, IO[str]] = {}

    def write(
        self, service: str, instance: str, stream: Stream, message: str, *, sink: bool = True
    ) -> None:
        """Append one record; errors are logged, never raised (output must not kill a pump).
        ``sink=False`` keeps the record in the file only (not passed to ``on_record``)."""
        record: LogRecord = {
            "time": utc_timestamp(),
            "service": service,
            "instance": instance,
            "stream": stream,
            "message": message,
        }
        try:
            handle = self._file(service)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            if handle.tell() > self.max_bytes:
                self._rotate(service)
        except (OSError, ValueError):
            logger.exception("cannot write the log of %s", service)
        if sink and self.on_record is not None:
            try:
                self.on_record(record)
            except Exception:
                logger.exception("log sink failed")

    def close(self) -> None:
        for handle in self._files.values():
            with contextlib.suppress(OSError):
                handle.close()
        self._files.clear()

    def _file(self, service: str) -> IO[str]:
        handle = self._files.get(service)
        if handle is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            handle = open(log_path(self.log_dir, service), "a", encoding="utf-8")  # noqa: SIM115
            self._files[service] = handle
        return handle

    def _rotate(self, service: str) -> None:
        self._files.pop(service).close()
        path = log_path(self.log_dir, service)
        os.replace(path, path.with_name(path.name + ".1"))


async def pump(
    reader: asyncio.StreamReader,
    emit: Callable[[str], None],
    *,
    max_line: int = MAX_LINE,
) -> None:
    """Read ``reader`` to EOF and call ``emit`` once per line (without the line break).

    Lines longer than ``max_line`` bytes are emitted in ``max_line`` pieces; bytes that are not
    UTF-8 are replaced. A final line without a newline is emitted at EOF.
    """
    buffer = bytearray()
    while True:
        chunk = await reader.read(_CHUNK)
        if not chunk:
            break
        buffer += chunk
        pos = 0
        while True:
            newline = buffer.find(b"\n", pos, pos + max_line + 1)
            if newline != -1:
                emit(_decode(buffer[pos:newline]))
                pos = newline + 1
            elif len(buffer) - pos > max_line:
                emit(_decode(buffer[pos : pos + max_line]))
                pos += max_line
            else:
                break
        del buffer[:pos]
    if buffer:
        emit(_decode(buffer))


def _decode(raw: bytes | bytearray) -> str:
    return bytes(raw).decode("utf-8", "replace").removesuffix("\r")


def _service_files(log_dir: Path, service: str | None) -> list[Path]:
    if service is not None:
        return [log_path(log_dir, service)]
    if not log_dir.is_dir():
        return []
    return sorted(p for p in log_dir.glob("*.log") if _SERVICE_NAME.match(p.stem))


def _parse(line: bytes) -> LogRecord | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("time"), str):
        return None
    return {str(k): str(v) for k, v in value.items()}


def _tail_records(path: Path, count: int) -> list[LogRecord]:
    """The last ``count`` valid records of a file, reading backwards in growing blocks."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return []
    with handle:
        position = handle.seek(0, os.SEEK_END)
        data = b""
        wanted = count
        while True:
            while position > 0 and data.count(b"\n") <= wanted:
                step = min(max(_CHUNK, len(data)), position)
                position -= step
                handle.seek(position)
                data = handle.read(step) + data
            lines = data.split(b"\n")
            if position > 0:
                lines = lines[1:]  # the first piece may be a partial line
            records = [r for r in map(_parse, lines) if r is not None]
            if len(records) >= count or position == 0:
                return records[-count:]
            wanted += count - len(records)  # invalid lines: read further back


def read_records(log_dir: Path, service: str | None, tail: int) -> list[LogRecord]:
    """The last ``tail`` records of ``service`` (or of every service when None), oldest first.

    Includes the rotated generation when the current file holds fewer than ``tail`` records.
    Lines that are not valid records are skipped. Raises ``ValueError`` for a malformed
    service name.
    """
    if tail <= 0:
        return []
    records: list[LogRecord] = []
    for path in _service_files(log_dir, service):
        current = _tail_records(path, tail)
        if len(current) < tail:
            rotated = path.with_name(path.name + ".1")
            records.extend(_tail_records(rotated, tail - len(current)))
        records.extend(current)
    records.sort(key=lambda r: r["time"])
    return records[-tail:]


@dataclass
class _Cursor:
    inode: int
    offset: int
    partial: bytes = field(default=b"")


class _Follower:
    """Offsets into each followed file; ``poll`` returns the records appended since."""

    def __init__(self, log_dir: Path, service: str | None, from_end: bool) -> None:
        self.log_dir = log_dir
        self.service = service
        self.cursors: dict[Path, _Cursor] = {}
        for path in _service_files(log_dir, service):
            with contextlib.suppress(FileNotFoundError):
                stat = path.stat()
                self.cursors[path] = _Cursor(stat.st_ino, stat.st_size if from_end else 0)

    def poll(self) -> list[LogRecord]:
        records: list[LogRecord] = []
        for path in _service_files(self.log_dir, self.service):
            try:
                records.extend(self._read_new(path))
            except FileNotFoundError:
                continue
        records.sort(key=lambda r: r["time"])
        return records

    def _read_new(self, path: Path) -> list[LogRecord]:
        stat = path.stat()
        cursor = self.cursors.get(path)
        if cursor is None or cursor.inode != stat.st_ino or stat.st_size < cursor.offset:
            cursor = self.cursors[path] = _Cursor(stat.st_ino, 0)
        if stat.st_size == cursor.offset:
            return []
        with path.open("rb") as handle:
            handle.seek(cursor.offset)
            data = handle.read(_FOLLOW_READ_LIMIT)
        cursor.offset += len(data)
        lines = (cursor.partial + data).split(b"\n")
        cursor.partial = lines.pop()
        return [r for r in map(_parse, lines) if r is not None]


class RecordFollower:
    """Async iterator over records appended to followed log files (see ``follow_records``)."""

    def __init__(
        self, log_dir: Path, service: str | None, *, from_end: bool, poll_interval: float
    ) -> None:
        self._follower = _Follower(log_dir, service, from_end)
        self._poll_interval = poll_interval
        self._pending: deque[LogRecord] = deque()
        self._polled = False

    def __aiter__(self) -> RecordFollower:
        return self

    async def __anext__(self) -> LogRecord:
        while not self._pending:
            if self._polled:
                await asyncio.sleep(self._poll_interval)
            self._pending.extend(await asyncio.to_thread(self._follower.poll))
            self._polled = True
        return self._pending.popleft()


def follow_records(
    log_dir: Path,
    service: str | None,
    *,
    from_end: bool = True,
    poll_interval: float = 0.15,
) -> RecordFollower:
    """Records appended to the log of ``service`` (or of every service), as they come.

    With ``from_end`` only records written after this call are yielded (the offsets are taken
    now); otherwise the files are read from their beginning first. Never ends by itself: stop
    iterating, or cancel the consumer. Raises ``ValueError`` for a malformed service name.
    """
    return RecordFollower(log_dir, service, from_end=from_end, poll_interval=poll_interval)
