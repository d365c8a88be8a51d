"""The telemetry component: owns the span and log stores, their writer threads and retention.

    telemetry = Telemetry(data_dir, retention=RetentionSettings(max_age=3 * 86400))
    await telemetry.start()
    supervisor_log_writer.on_record = telemetry.log_sink     # every output line → log store
    control_routes += telemetry.routes()                     # OTLP, Zipkin, log search
    telemetry.record_span(span)                              # gateway / function runtime spans
    ...
    await telemetry.stop()                                   # flushes; nothing left running

``start`` opens both SQLite files and starts one retention task (every ``interval`` seconds,
first run at start); ``stop`` cancels it, commits everything queued and joins the threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute

from .ingest import ingest_routes
from .logs import LogStore
from .model import Span
from .query import log_search_route, zipkin_query_routes
from .retention import RetentionSettings
from .spans import SpanStore

logger = logging.getLogger(__name__)


class Telemetry:
    """Traces and logs of a node: stores, ingest and query routes, in-process hooks."""

    def __init__(self, data_dir: Path, *, retention: RetentionSettings | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.retention = retention or RetentionSettings()
        self.spans = SpanStore(self.data_dir)
        self.logs = LogStore(self.data_dir)
        self._retention_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the stores and start the retention task."""
        if self._retention_task is not None:
            return
        await self.spans.start()
        try:
            await self.logs.start()
        except BaseException:
            await self.spans.stop()
            raise
        try:
            await self.enforce_retention()  # before anything new arrives
        except Exception:
            logger.exception("telemetry retention failed")
        self._retention_task = asyncio.create_task(self._retain(), name="telemetry-retention")

    async def stop(self) -> None:
        """Stop the retention task, flush what is queued, close the stores."""
        task, self._retention_task = self._retention_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.logs.stop()
        await self.spans.stop()

    def routes(self) -> list[BaseRoute]:
        """Every telemetry HTTP endpoint, to mount at the root of the control app."""
        return [
            *ingest_routes(self.spans, self.logs),
            *zipkin_query_routes(self.spans),
            log_search_route(self.logs),
        ]

    def log_sink(self, record: Mapping[str, Any]) -> None:
        """The supervisor's ``on_record`` sink: queues one output line (never raises)."""
        self.logs.add(record)

    def record_span(self, span: Span) -> None:
        """Store a span produced in-process (raises ``Overloaded`` when the queue is full)."""
        self.spans.add(span)

    async def flush(self) -> None:
        """Wait until everything queued so far is stored and searchable."""
        await self.spans.flush()
        await self.logs.flush()

    async def enforce_retention(self) -> None:
        """Apply the retention settings now (also done every ``retention.interval`` seconds)."""
        await self.spans.enforce_retention(self.retention)
        await self.logs.enforce_retention(self.retention)

    async def _retain(self) -> None:
        while True:
            await asyncio.sleep(self.retention.interval)
            try:
                await self.enforce_retention()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("telemetry retention failed")
