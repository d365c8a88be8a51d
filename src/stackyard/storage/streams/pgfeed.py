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

from .feeds import LeaseLost
from .log import LoggedRecord, collect
from .pglog import LEASE_LOCK, Statements, channel

logger = logging.getLogger(__name__)

RECONNECT = 1.0  # seconds before the listener connects again after losing its connection


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

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        async with self._connecting:
            if self._conn is None or self._conn.closed:
                self._held.clear()
                self._conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=10
                )
                self._generation += 1
            return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._held.clear()
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def _rows(self, sql: str, params: Any) -> list[Any]:
        conn = await self._connection()
        try:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall() if cursor.description is not None else []
        except psycopg.OperationalError:
            await self._drop()  # opened again by the next call, which takes the leases again
            raise

    # -- Feed ---------------------------------------------------------------------------------

    async def claim(self, mapping: str) -> int | None:
        await self._connection()
        lease = self._held.get(mapping)
        if lease == self._generation:
            return lease
        rows = await self._rows(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))",
            (LEASE_LOCK, f"{self.schema_name}|{mapping}"),
        )
        if not rows[0][0]:
            return None
        self._held[mapping] = self._generation
        return self._generation

    async def position(self, mapping: str, table: str, latest: bool) -> int:
        await self._rows(self.sql.start, (mapping, latest, table))
        return int((await self._rows(self.sql.position, (mapping,)))[0][0])

    async def read(self, table: str, after: int, limit: int, max_bytes: int) -> list[LoggedRecord]:
        return collect(await self._rows(self.sql.read, (table, after, limit)), max_bytes)

    async def advance(self, mapping: str, lease: int, seq: int) -> None:
        await self._connection()
        if self._held.get(mapping) != lease:
            raise LeaseLost(f"the lease of {mapping} was lost; another node may deliver it")
        await self._rows(self.sql.save, (mapping, seq))

    # -- notifications --------------------------------------------------------------------------

    async def _listen(self, wake: Callable[[str], None]) -> None:
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=10
                )
                async with conn:
                    await conn.execute(f"LISTEN {self.channel}")
                    async for notify in conn.notifies():
                        wake(notify.payload)
            except psycopg.Error as exc:
                logger.warning("stream notifications: %s; listening again soon", exc)
            await asyncio.sleep(RECONNECT)
