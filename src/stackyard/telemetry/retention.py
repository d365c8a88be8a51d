"""Retention settings and the chunked deletes every telemetry table goes through.

:class:`RetentionSettings` bounds each store by age (``max_age`` seconds), by row count
(``max_spans``, ``max_log_records``) and optionally by file size (``max_bytes`` per SQLite file).
Metric rollups are kept per resolution: ``metric_ages`` = ages (seconds) of the 10 s, 1 min
and 1 h rollups (default 1 day, 15 days, 455 days, as CloudWatch keeps them); alarm history
follows ``max_age``.
The helpers here delete in chunks of ``CHUNK`` rows so a store's writer is never held for long;
callers loop until a helper returns less than a full chunk.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

CHUNK = 20_000


@dataclass(frozen=True)
class RetentionSettings:
    """How much telemetry is kept; enforced every ``interval`` seconds."""

    max_age: float = 7 * 24 * 3600.0
    max_spans: int = 1_000_000
    max_log_records: int = 1_000_000
    max_bytes: int | None = None
    interval: float = 60.0
    metric_ages: tuple[float, float, float] = (86400.0, 15 * 86400.0, 455 * 86400.0)

    def __post_init__(self) -> None:
        if self.max_age <= 0 or self.interval <= 0:
            raise ValueError("max_age and interval must be positive")
        if self.max_spans < 1 or self.max_log_records < 1:
            raise ValueError("row limits must be at least 1")
        if len(self.metric_ages) != 3 or min(self.metric_ages) <= 0:
            raise ValueError("metric_ages must be three positive ages (10 s, 1 min, 1 h)")
        if self.max_bytes is not None and self.max_bytes < 1:
            raise ValueError("max_bytes must be positive")


WriterCall = Callable[..., Awaitable[Any]]
"""A store writer process's operation call (``StoreProcess.call``)."""


async def trim_store(call: WriterCall, cutoff: int, max_rows: int, max_bytes: int | None) -> int:
    """One store's retention through its writer's ``delete_older``, ``delete_beyond``,
    ``used_bytes`` and ``delete_fraction`` operations: rows older than ``cutoff`` (epoch µs),
    rows beyond ``max_rows``, then tenths of the oldest rows while the file exceeds
    ``max_bytes`` (at most 50 rounds). Returns the rows deleted."""
    deleted = 0
    while (n := await call("delete_older", cutoff)) > 0:
        deleted += n
        if n < CHUNK:
            break
    while (n := await call("delete_beyond", max_rows)) > 0:
        deleted += n
    if max_bytes is not None:
        for _ in range(50):
            if await call("used_bytes") <= max_bytes:
                break
            n = await call("delete_fraction", 0.1)
            if n == 0:
                break
            deleted += n
    return deleted


def delete_older(conn: sqlite3.Connection, table: str, cutoff_us: int) -> int:
    """Delete up to ``CHUNK`` rows of ``table`` whose ``ts`` is before ``cutoff_us``."""
    cur = conn.execute(
        f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE ts < ? LIMIT ?)",
        (cutoff_us, CHUNK),
    )
    return cur.rowcount


def delete_beyond(conn: sqlite3.Connection, table: str, max_rows: int) -> int:
    """Delete up to ``CHUNK`` of the oldest rows (by rowid) so at most ``max_rows`` remain.

    Uses the rowid range (O(log n)) rather than ``count(*)``: the range is an upper bound of
    the row count, so what is kept never exceeds ``max_rows``.
    """
    low, high = conn.execute(f"SELECT min(rowid), max(rowid) FROM {table}").fetchone()
    if low is None or high - low + 1 <= max_rows:
        return 0
    keep_from = high - max_rows + 1
    cur = conn.execute(
        f"DELETE FROM {table} WHERE rowid < ? AND rowid < ?", (keep_from, low + CHUNK)
    )
    return cur.rowcount


def delete_fraction(conn: sqlite3.Connection, table: str, fraction: float) -> int:
    """Delete (up to ``CHUNK`` of) the oldest ``fraction`` of ``table`` by rowid."""
    low, high = conn.execute(f"SELECT min(rowid), max(rowid) FROM {table}").fetchone()
    if low is None:
        return 0
    cut = low + max(1, int((high - low + 1) * fraction))
    cur = conn.execute(f"DELETE FROM {table} WHERE rowid < ? AND rowid < ?", (cut, low + CHUNK))
    return cur.rowcount


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of the database in use (pages minus free pages)."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)
