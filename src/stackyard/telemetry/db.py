"""SQLite plumbing shared by the telemetry stores' writers (threads and processes).

- :func:`connect` opens a file in WAL mode (a writer connection, or a read-only one).
- :func:`write_batch` applies one batch inside one transaction; when the batch fails, each item
  is retried alone so one bad item never costs the others (the bad one is logged and dropped).

This module imports nothing heavier than :mod:`sqlite3`: the store writer processes use it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    if readonly:
        conn.execute("PRAGMA query_only=1")
    else:
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA cache_size=-32000")
        # checkpoint every ~40 MB of WAL rather than 4 MB: the checkpoint (and its fsync) is
        # most of a commit's cost when random-keyed indexes dirty many pages
        conn.execute("PRAGMA wal_autocheckpoint=10000")
    return conn


def write_batch(
    conn: sqlite3.Connection,
    apply: Callable[[sqlite3.Connection, list[_T]], None],
    batch: list[_T],
    name: str,
) -> None:
    """``apply(conn, batch)`` in one transaction; on failure, each item alone."""
    try:
        conn.execute("BEGIN")
        apply(conn, batch)
        conn.execute("COMMIT")
    except Exception:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if len(batch) > 1:  # one bad item must not cost the others: retry one by one
            for item in batch:
                write_batch(conn, apply, [item], name)
        else:
            logger.exception("%s: cannot write an item; dropped", name)
