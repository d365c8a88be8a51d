"""Event source mappings: the functions subscribed to a table's stream, fed in order.

:class:`Streams` is a node component. Built, it installs the stream log of the tables' backend
(:mod:`.log` on SQLite, :mod:`.pglog` on PostgreSQL) as the tables engine's write hook (so every
write to a table with a stream is logged from the start); ``start`` begins one task per mapping
(a function's ``stream`` event), which — while this node delivers it (always on SQLite; on
PostgreSQL the one node holding the mapping's lease, see :mod:`.pgfeed`) — reads up to
``batch_size`` records after its stored position, invokes the function synchronously with
``{"Records": [...]}`` and stores the new position when the function succeeds. A failing
batch (a function error, a timeout, throttling) is retried with a growing delay and blocks the
records after it, as Lambda does by default, until its records are older than the log's 24-hour
retention. Delivery is at least once: a batch answered just before a crash (or a lost lease)
is delivered again after the restart (or by the node taking the lease). On PostgreSQL the lease
is checked with the database right before each invocation; an invocation already running when
the lease is lost may overlap the other node's redelivery of the same batch (see :mod:`.pgfeed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..tables.sqlite import SqliteTableStore
from .api import StreamsApi
from .feeds import Feed, SqliteFeed
from .log import RETENTION, LoggedRecord, SqliteStreamLog, StreamLog

if TYPE_CHECKING:
    from ...config.models import FunctionConfig
    from ...functions.runtime import FunctionRuntime
    from ..tables import Tables

logger = logging.getLogger(__name__)

MAX_PAYLOAD = 5 * 1024 * 1024  # record text per batch, below Lambda's 6 MB invocation limit
IDLE_POLL = 1.0  # seconds a mapping waits for a new record before it looks again anyway
LEASE_POLL = 1.0  # seconds between two tries to deliver a mapping another node delivers
RETENTION_SWEEP = 60.0  # seconds between two passes dropping records past the retention
TRIM_BATCH = 5000  # records looked at per transaction of a retention pass


@dataclass(frozen=True)
class StreamMapping:
    function: str
    table: str
    batch_size: int = 100
    starting_position: str = "LATEST"

    @property
    def id(self) -> str:
        return f"{self.function}|{self.table}"


def stream_mappings(functions: Mapping[str, FunctionConfig]) -> list[StreamMapping]:
    """The enabled ``stream`` events of the stack's functions (one mapping per function and
    table)."""
    out: dict[str, StreamMapping] = {}
    for name, config in functions.items():
        for event in config.events:
            spec = event.stream
            if spec is None or not spec.enabled:
                continue
            mapping = StreamMapping(name, spec.table, spec.batch_size, spec.starting_position)
            out.setdefault(mapping.id, mapping)
    return list(out.values())


class Streams:
    def __init__(
        self,
        tables: Tables,
        functions: FunctionRuntime,
        mappings: Sequence[StreamMapping],
        *,
        retry_delays: Sequence[float] = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0),
    ) -> None:
        self.tables = tables
        self.functions = functions
        self.mappings = list(mappings)
        self.retry_delays = tuple(retry_delays)
        self.log: StreamLog
        self.feed: Feed
        store = tables.engine.store
        if tables.shared is not None:
            from .pgfeed import PostgresFeed  # psycopg: the postgres extra
            from .pglog import PostgresStreamLog

            self.log = PostgresStreamLog(tables.shared)
            self.feed = PostgresFeed(tables.shared.url, tables.shared.schema_name)
        elif isinstance(store, SqliteTableStore):
            log = SqliteStreamLog(store, self._appended)
            self.log, self.feed = log, SqliteFeed(tables, log)
        else:
            raise TypeError(f"no stream log for the table store {type(store).__name__}")
        tables.engine.on_write = self.log.append
        tables.engine.before_writes = self.log.lock
        tables.engine.on_stream_change = self.log.retire
        self.api = StreamsApi(tables, self.log)  # the DynamoDB Streams API over the same log
        self._wakeups: dict[str, list[asyncio.Event]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.mappings:  # on PostgreSQL: the connections of the delivering node
            await self.feed.start(self._wake)
        for mapping in self.mappings:
            event = asyncio.Event()
            self._wakeups.setdefault(mapping.table, []).append(event)
            task = asyncio.create_task(self._run(mapping, event), name=f"stream-{mapping.id}")
            self._tasks.append(task)
        self._tasks.append(asyncio.create_task(self._expire(), name="stream-retention"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._wakeups = {}
        await self.feed.stop()
        self._loop = None

    # -- from the tables' thread -------------------------------------------------------------

    def _appended(self, table: str) -> None:
        loop = self._loop
        if loop is None or table not in self._wakeups:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing: the poll finds it later
            loop.call_soon_threadsafe(self._wake, table)

    def _wake(self, table: str) -> None:
        for event in self._wakeups.get(table, ()):
            event.set()

    # -- delivery ------------------------------------------------------------------------------

    async def _run(self, mapping: StreamMapping, wakeup: asyncio.Event) -> None:
        failures = 0
        held: tuple[int, int] | None = None  # (lease, position) while this node delivers
        latest = mapping.starting_position == "LATEST"
        while True:
            wakeup.clear()
            try:
                lease = await self.feed.claim(mapping.id)
                if lease is None:  # another node delivers this mapping
                    held = None
                    await asyncio.sleep(LEASE_POLL)
                    continue
                if held is None or held[0] != lease:
                    held = (lease, await self.feed.position(mapping.id, mapping.table, latest))
                batch = await self.feed.read(
                    mapping.table, held[1], mapping.batch_size, MAX_PAYLOAD
                )
                if batch and not await self.feed.confirm(mapping.id, lease):
                    held = None  # the lease was lost since it was claimed: claim it again
                    continue
            except Exception:
                logger.exception("stream of table %s: reading the log failed", mapping.table)
                await asyncio.sleep(IDLE_POLL)
                continue
            if not batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), IDLE_POLL)
                continue
            error = await self._deliver(mapping, batch)
            if error is None:
                failures = 0
                held = await self._advance(mapping, lease, batch[-1].seq)
                continue
            expired = [r for r in batch if r.created < time.time() - RETENTION]
            if expired:  # Lambda gives up on records the stream no longer holds
                logger.warning(
                    "stream of table %s: %d record(s) for %s expired undelivered",
                    mapping.table,
                    len(expired),
                    mapping.function,
                )
                held = await self._advance(mapping, lease, expired[-1].seq)
                continue
            delay = self.retry_delays[min(failures, len(self.retry_delays) - 1)]
            failures += 1
            logger.warning(
                "stream of table %s: %s failed on a batch of %d (%s); retry in %.1fs",
                mapping.table,
                mapping.function,
                len(batch),
                error,
                delay,
            )
            await asyncio.sleep(delay)

    async def _expire(self) -> None:
        """Drop records past the retention period, also when no subscription reads them."""
        while True:
            await asyncio.sleep(RETENTION_SWEEP)
            try:
                await self.expire()
            except Exception:
                logger.exception("stream log: dropping expired records failed")

    async def expire(self, now: float | None = None, limit: int = TRIM_BATCH) -> int:
        """Drop every record past the retention period at ``now``: :meth:`trim` again while a
        batch removed ``limit`` records (each batch a short transaction of its own, so writes
        go on between them); how many. On PostgreSQL one node at a time trims: the others'
        batches remove nothing."""
        total = 0
        while True:
            deleted = await self.trim(now, limit)
            total += deleted
            if deleted < limit:
                return total

    async def trim(self, now: float | None = None, limit: int = TRIM_BATCH) -> int:
        """Drop records older than the retention period at ``now`` (default: the current
        time) among the ``limit`` oldest of the log (see :meth:`.log.StreamLog.trim`), in a
        transaction of the tables' thread; how many."""

        def trim(_: object) -> dict[str, int]:
            with self.tables.engine.store.atomic():
                return {"deleted": self.log.trim(now, limit)}

        return int((await self.tables.run(trim, {}))["deleted"])

    async def _deliver(self, mapping: StreamMapping, batch: list[LoggedRecord]) -> str | None:
        """None when the function took the batch, else what went wrong."""
        payload = json.dumps({"Records": [r.record for r in batch]}).encode()
        try:
            result = await self.functions.invoke(mapping.function, payload, payload_is_json=True)
        except Exception as exc:  # throttled, timed out, stopping: the batch is retried
            return f"{type(exc).__name__}: {exc}"
        if result.function_error is not None:
            return f"{result.function_error}: {result.payload[:200].decode('utf-8', 'replace')}"
        return None

    async def _advance(
        self, mapping: StreamMapping, lease: int, seq: int
    ) -> tuple[int, int] | None:
        """The new (lease, position), or None when it could not be stored (the position is
        then read again: the batch may be delivered again, by this node or another)."""
        try:
            await self.feed.advance(mapping.id, lease, seq)
        except Exception:
            logger.exception("stream of table %s: storing the position failed", mapping.table)
            return None
        return lease, seq
