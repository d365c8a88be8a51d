"""The delivery lease of a stream subscription on PostgreSQL, as the tests look at it: the
session advisory lock ``pglog.LEASE_LOCK`` keyed by ``hashtext('<schema>|<mapping>')``."""

from __future__ import annotations

from typing import Any

import psycopg

from stackyard.storage.streams.pglog import LEASE_LOCK

_HELD = (
    "FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
    "AND objid = hashtext(%s)::oid AND granted"
)


def lease_holders(url: str, schema: str, mapping: str) -> list[int]:
    """The backend pids holding the lease of ``mapping`` in ``schema`` (at most one)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(f"SELECT pid {_HELD}", (LEASE_LOCK, f"{schema}|{mapping}")).fetchall()
    return [pid for (pid,) in rows]


def end_lease_sessions(url: str, schema: str, mapping: str) -> list[tuple[Any, ...]]:
    """Has PostgreSQL end the sessions holding the lease; ``pg_terminate_backend``'s rows."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            f"SELECT pg_terminate_backend(pid) {_HELD}", (LEASE_LOCK, f"{schema}|{mapping}")
        ).fetchall()
