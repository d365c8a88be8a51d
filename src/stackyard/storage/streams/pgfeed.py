"""The feed of the PostgreSQL stream log (:mod:`.pglog`) for the nodes sharing it.

Each record is delivered by one node: a mapping is delivered by the node holding its *lease*,
a session-level advisory lock (``pg_try_advisory_lock``) taken on this feed's own connection
and kept while the connection lives — the node reads the mapping's position from
``stream_positions``, invokes the function, and stores the new position, and no other node does
meanwhile. The other nodes try to take the lease every second (:mod:`.mappings`), so when the
delivering node stops (or its connection ends, which releases the lock) another one goes on
from the stored position: delivery stays at least once, in order. A lease taken again (after a
reconnection) has a new number, so the position is read again; storing a position checks that
the lease is still the one the batch was read under.

A node that dies without closing its connection (power off, network cut) keeps its session,
and the lease, until PostgreSQL notices: the connections here ask for TCP keepalives on both
sides (libpq's ``keepalives*`` and ``tcp_user_timeout``, the server's ``tcp_keepalives_*``
as session options), so a dead peer's session ends within about a minute. Session advisory
locks and ``LISTEN`` need a session of their own: a direct connection (or a pooler in session
mode), never a transaction-mode pooler such as PgBouncer's.

Two nodes invoking at once: before each invocation the node checks, with a round trip on the
lease's connection, that its session still holds the lease (:meth:`PostgresFeed.confirm`). What
remains is an invocation already running when the session ends (PostgreSQL restarted, the
connection cut, the keepalives expired): the other node takes the lease and delivers the same
batch again, maybe while the first invocation still runs, and the first node's position is not
stored. Delivery is at least once, and a batch can overlap its redelivery in that case.

Wake-ups: a second connection ``LISTEN``\\ s to the channel that every append notifies at
commit (the table's name as payload), so the delivering node sees any node's writes at once; the
mappings also look every second anyway, in case a notification was missed. Every statement here
runs in autocommit on connections of their own (never the tables' one, never on its thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .feeds import LeaseLost
from .log import LoggedRecord, collect
from .pglog import LEASE_LOCK, Statements, channel

logger = logging.getLogger(__name__)

RECONNECT = 1.0  # seconds before the listener connects again after losing its connection
# TCP keepalives of the feed's connections: libpq's side (a dead server is noticed) ...
CLIENT_KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30000,  # ms unacknowledged data may wait
}
# ... and the server's (the session of a dead node ends, and its leases with it)
SERVER_KEEPALIVES = (
    "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
)


def session_conninfo(url: str) -> str:
    """``url`` with the keepalives above (settings the URL gives itself are kept)."""
    given = conninfo_to_dict(url)
    extra = {k: v for k, v in CLIENT_KEEPALIVES.items() if k not in given}
    options = " ".join(o for o in (SERVER_KEEPALIVES, str(given.get("options") or "")) if o)
    return make_conninfo(url, **extra, options=options)


async def connect(url: str) -> psycopg.AsyncConnection[Any]:
    """An autocommit connection with keepalives (see the module docstring)."""
    return await psycopg.AsyncConnection.connect(
        session_conninfo(url), autocommit=True, connect_timeout=10
    )


class PostgresFeed:
    def __init__(self, url: str, schema_name: str) -> None:
        self.url = url
        self.schema_name = schema_name
        self.channel = channel(schema_name)
        self.sql = Statements.of(schema_name)
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._generation = 0  # connections opened so far: the number of leases taken on it
        self._held: dict[str, int] = {}  # mapping -> generation of the connection holding it
        self._listener: asyncio.Task[None] | None = None
        self._connecting = asyncio.Lock()  # the mappings' tasks share one connection

    async def start(self, wake: Callable[[str], None]) -> None:
        await self._connection()
        self._listener = asyncio.create_task(self._listen(wake), name="stream-notifications")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        await self._drop()  # releases this node's leases

    # -- the connection ---------------------------------------------------------------------

    async def _connection(self) -> tuple[psycopg.AsyncConnection[Any], int]:
        """The connection, and its number (the lease number of the leases taken on it)."""
        async with self._connecting:
            if self._conn is None or self._conn.closed:
                self._held.clear()
                self._conn = await connect(self.url)
                self._generation += 1
            return self._conn, self._generation

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._held.clear()
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def _rows(
        self, sql: str, params: Any, conn: psycopg.AsyncConnection[Any] | None = None
    ) -> list[Any]:
        """The rows of ``sql`` on ``conn`` (default: the current connection)."""
        if conn is None:
            conn, _ = await self._connection()
        try:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall() if cursor.description is not None else []
        except psycopg.OperationalError:
            if self._conn is conn:
                await self._drop()  # opened again by the next call, which takes the leases again
            raise

    def _lease_key(self, mapping: str) -> tuple[int, str]:
        return LEASE_LOCK, f"{self.schema_name}|{mapping}"

    # -- Feed ---------------------------------------------------------------------------------

    async def claim(self, mapping: str) -> int | None:
        conn, generation = await self._connection()
        lease = self._held.get(mapping)
        if lease == generation:
            return lease
        rows = await self._rows(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", self._lease_key(mapping), conn
        )
        if not rows[0][0]:
            return None
        if self._conn is not conn:  # replaced meanwhile: the lock went with the old session
            return None
        self._held[mapping] = generation
        return generation

    async def confirm(self, mapping: str, lease: int) -> bool:
        conn, generation = await self._connection()
        if lease != generation or self._held.get(mapping) != lease:
            return False
        try:
            rows = await self._rows(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid() AND classid = %s AND objid = hashtext(%s)::oid "
                "AND objsubid = 2 AND granted)",
                self._lease_key(mapping),
                conn,
            )
        except psycopg.OperationalError:  # the session ended, and the lease with it
            rows = [(False,)]
        if rows[0][0] and self._conn is conn:
            return True
        if self._held.get(mapping) == lease:
            del self._held[mapping]
        return False

    async def position(self, mapping: str, table: str, latest: bool) -> int:
        await self._rows(self.sql.start, (mapping, latest, table))
        return int((await self._rows(self.sql.position, (mapping,)))[0][0])

    async def read(self, table: str, after: int, limit: int, max_bytes: int) -> list[LoggedRecord]:
        return collect(await self._rows(self.sql.read, (table, after, limit)), max_bytes)

    async def advance(self, mapping: str, lease: int, seq: int) -> None:
        conn, generation = await self._connection()
        if lease != generation or self._held.get(mapping) != lease:
            raise LeaseLost(f"the lease of {mapping} was lost; another node may deliver it")
        await self._rows(self.sql.save, (mapping, seq), conn)

    # -- notifications --------------------------------------------------------------------------

    async def _listen(self, wake: Callable[[str], None]) -> None:
        while True:
            try:
                conn = await connect(self.url)
                async with conn:
                    await conn.execute(f"LISTEN {self.channel}")
                    async for notify in conn.notifies():
                        wake(notify.payload)
            except psycopg.Error as exc:
                logger.warning("stream notifications: %s; listening again soon", exc)
            await asyncio.sleep(RECONNECT)
