"""Function logs: workers' output and Lambda's START/END/REPORT lines, written in batches.

The files and records are exactly those of :class:`~stackyard.supervisor.logs.LogWriter`
(``<log_dir>/<function>.log``, one JSON object per line with ``time``, ``service``,
``instance``, ``stream``, ``message``; rotated to ``.log.1`` beyond ``max_bytes``), so
``stackyard logs`` and the logs API read them unchanged, and records meant for the central log
go to the same ``on_record`` sink. What differs is when: a record is taken with its time at once
but formatted, written and handed to the sink at the end of the event loop's current iteration,
one ``write`` per file for everything that accumulated — an invocation's three platform lines
cost one system call (often less: invocations finishing together share it), and the work comes
after the caller's answer has been sent instead of before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from json.encoder import encode_basestring  # ``json.dumps(text, ensure_ascii=False)``, in C
from typing import IO

from ..supervisor.logs import DEFAULT_MAX_BYTES, LogRecord, LogWriter, RecordSink, Stream, log_path

logger = logging.getLogger(__name__)

_Pending = tuple[float, str, str, Stream, str, bool]


class FunctionLogs:
    """Batched writer of the functions' log files (see the module docstring)."""

    def __init__(
        self,
        log_dir: os.PathLike[str] | str,
        *,
        on_record: RecordSink | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        from pathlib import Path

        self.log_dir = Path(log_dir)
        self.on_record = on_record
        self.max_bytes = max_bytes
        self._pending: list[_Pending] = []
        self._scheduled = False
        self._files: dict[str, IO[bytes]] = {}
        self._sizes: dict[str, int] = {}
        self._second = -1
        self._stamp_prefix = ""
        self._middles: dict[tuple[str, str, str], str] = {}

    @classmethod
    def like(cls, writer: LogWriter) -> FunctionLogs:
        """A batched writer of the same folder, sink and rotation size as ``writer``."""
        return cls(writer.log_dir, on_record=writer.on_record, max_bytes=writer.max_bytes)

    def write(
        self, service: str, instance: str, stream: Stream, message: str, *, sink: bool = True
    ) -> None:
        """Take one record (written at the end of this loop iteration; at once without a
        running loop). ``sink=False`` keeps it in the file only."""
        self._pending.append((time.time(), service, instance, stream, message, sink))
        if not self._scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._scheduled = True
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what was taken; errors are logged, never raised."""
        self._scheduled = False
        pending, self._pending = self._pending, []
        if not pending:
            return
        batches: dict[str, list[str]] = {}
        sink = self.on_record
        middles = self._middles
        if len(middles) > 1024:  # worker ids come and go
            middles.clear()
        for moment, service, instance, stream, message, to_sink in pending:
            stamp = self._stamp(moment)
            middle = middles.get((service, instance, stream))
            if middle is None:
                middle = middles[(service, instance, stream)] = (
                    f'", "service": {json.dumps(service)}, "instance": {json.dumps(instance)}, '
                    f'"stream": {json.dumps(stream)}, "message": '
                )
            batches.setdefault(service, []).append(
                f'{{"time": "{stamp}{middle}{encode_basestring(message)}}}\n'
            )
            if to_sink and sink is not None:
                record: LogRecord = {
                    "time": stamp,
                    "service": service,
                    "instance": instance,
                    "stream": stream,
                    "message": message,
                }
                try:
                    sink(record)
                except Exception:
                    logger.exception("log sink failed")
        for service, lines in batches.items():
            data = "".join(lines).encode("utf-8", "replace")
            try:
                handle = self._file(service)
                handle.write(data)
                handle.flush()
                self._sizes[service] += len(data)
                if self._sizes[service] > self.max_bytes:
                    self._rotate(service)
            except (OSError, ValueError):
                logger.exception("cannot write the log of %s", service)

    def close(self) -> None:
        self.flush()
        for handle in self._files.values():
            with contextlib.suppress(OSError):
                handle.close()
        self._files.clear()
        self._sizes.clear()

    def _stamp(self, moment: float) -> str:
        """``utc_timestamp`` of ``moment``, with the part up to the second kept between calls."""
        second = int(moment)
        if second != self._second:
            self._second = second
            self._stamp_prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        return f"{self._stamp_prefix}{int((moment - second) * 1000):03d}Z"

    def _file(self, service: str) -> IO[bytes]:
        handle = self._files.get(service)
        if handle is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            handle = open(log_path(self.log_dir, service), "ab")  # noqa: SIM115
            self._files[service] = handle
            self._sizes[service] = os.fstat(handle.fileno()).st_size
        return handle

    def _rotate(self, service: str) -> None:
        self._files.pop(service).close()
        self._sizes.pop(service, None)
        path = log_path(self.log_dir, service)
        os.replace(path, path.with_name(path.name + ".1"))
