"""Feeds: what the event source mappings (:mod:`.mappings`) need to deliver a table's stream —
who delivers a mapping, its stored position and its next records.

:class:`Feed` is the interface; :class:`SqliteFeed` runs everything on the tables' worker thread
over :class:`.log.SqliteStreamLog` (one node: it always delivers); :mod:`.pgfeed` is the
PostgreSQL one, where several nodes share the log and one at a time delivers each mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from .log import LoggedRecord, SqliteStreamLog

if TYPE_CHECKING:
    from ..tables import Tables

T = TypeVar("T")


class Feed(Protocol):
    async def start(self, wake: Callable[[str], None]) -> None:
        """Begin; ``wake(table)`` (on the event loop) when ``table`` may have new records."""
        ...

    async def stop(self) -> None: ...

    async def claim(self, mapping: str) -> int | None:
        """The lease under which this node delivers ``mapping`` (a number that changes when
        the lease is taken again, so the position is read again), or None: another node
        delivers it now."""
        ...

    async def confirm(self, mapping: str, lease: int) -> bool:
        """Whether this node still holds ``lease`` (asked of the shared log, not remembered):
        checked right before each invocation."""
        ...

    async def position(self, mapping: str, table: str, latest: bool) -> int:
        """The mapping's stored position; a new mapping starts after the newest record of its
        table (``latest``) or before the oldest, and is stored at once."""
        ...

    async def read(self, table: str, after: int, limit: int, max_bytes: int) -> list[LoggedRecord]:
        """The next records of ``table`` after ``after`` (see :meth:`.log.StreamLog.read`)."""
        ...

    async def advance(self, mapping: str, lease: int, seq: int) -> None:
        """Store the mapping's new position (refused if the lease was lost meanwhile)."""
        ...


class LeaseLost(Exception):
    """The node no longer delivers this mapping (its connection to the shared log ended)."""


class SqliteFeed:
    """The feed of one node's ``tables.sqlite3``: every call a job of the tables' thread."""

    def __init__(self, tables: Tables, log: SqliteStreamLog) -> None:
        self.tables = tables
        self.log = log

    async def _call(self, fn: Callable[[], T]) -> T:
        out = await self.tables.run(lambda _: {"value": fn()}, {})
        return cast(T, out["value"])

    async def start(self, wake: Callable[[str], None]) -> None:
        pass  # the log wakes the mappings itself, from the tables' thread

    async def stop(self) -> None:
        pass

    async def claim(self, mapping: str) -> int | None:
        return 1

    async def confirm(self, mapping: str, lease: int) -> bool:
        return True

    async def position(self, mapping: str, table: str, latest: bool) -> int:
        return await self._call(partial(self.log.position, mapping, table, latest))

    async def read(self, table: str, after: int, limit: int, max_bytes: int) -> list[LoggedRecord]:
        return await self._call(partial(self.log.read, table, after, limit, max_bytes))

    async def advance(self, mapping: str, lease: int, seq: int) -> None:
        def commit() -> Any:
            with self.log.store.atomic():
                self.log.save(mapping, seq)
                self.log.trim()

        await self._call(commit)
