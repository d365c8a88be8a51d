"""Per-endpoint keep-alive pools of upstream HTTP/1.1 connections.

An :class:`EndpointPool` holds the open :class:`~stackyard.gateway.h1.H1Connection` objects to
one ``host:port``: the idle ones on a LIFO stack (the most recently used is reused first, so
the rest age out), at most ``max_idle`` of them, each closed once idle longer than
``idle_timeout`` (:meth:`EndpointPool.sweep`, called by the client's sweeper task). A connection
closed by the upstream while idle leaves the stack as soon as the loop sees it close; one that
is found dead only when reused (the request went out, the connection broke before any answer
byte) is retried once on a fresh connection by :meth:`EndpointPool.request`, unless a streamed
request body already started to go out. ``close`` closes every connection of the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from .errors import UpstreamConnectTimeout, UpstreamUnavailable
from .h1 import H1Connection, StaleConnection

if TYPE_CHECKING:
    from .body import StreamedBody

_HTTP11_HOST = b" HTTP/1.1\r\nhost: "


class EndpointPool:
    """The connections to one upstream endpoint; see the module docstring."""

    __slots__ = (
        "_loop",
        "authority",
        "closed",
        "conns",
        "high_water",
        "host",
        "idle",
        "idle_timeout",
        "max_idle",
        "port",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        *,
        max_idle: int,
        idle_timeout: float,
        high_water: int,
    ) -> None:
        self._loop = loop
        self.host = host
        self.port = port
        name = f"[{host}]" if ":" in host else host
        self.authority = (name if port == 80 else f"{name}:{port}").encode("latin-1")
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.high_water = high_water
        self.idle: list[H1Connection] = []
        self.conns: set[H1Connection] = set()
        self.closed = False

    async def request(
        self,
        start: bytes,
        fields: bytes,
        body: bytes | StreamedBody | None,
        chunked: bool,
        wait_limit: float,
        head_only: bool,
    ) -> H1Connection:
        """Sends ``start`` (method and target) with ``fields`` (header lines, each ending in
        CRLF) and ``body``; returns the connection once the response head is in. The caller
        must ``release()`` the connection when done with the body."""
        head = b"".join((start, _HTTP11_HOST, self.authority, b"\r\n", fields, b"\r\n"))
        conn = self._take()
        if conn is not None:
            try:
                await conn.exchange(head, body, chunked, wait_limit, head_only)
                return conn
            except StaleConnection:
                conn.release()
                if body is not None and not isinstance(body, bytes) and body.started:
                    raise
            except BaseException:
                conn.release()
                raise
        conn = await self.connect(wait_limit)
        try:
            await conn.exchange(head, body, chunked, wait_limit, head_only)
        except BaseException:
            conn.release()
            raise
        return conn

    def _take(self) -> H1Connection | None:
        idle = self.idle
        while idle:
            conn = idle.pop()
            transport = conn.transport
            if not conn.closed and transport is not None and not transport.is_closing():
                conn.reused = True
                return conn
        return None

    async def connect(self, wait_limit: float) -> H1Connection:
        """Opens a new connection (bounded by ``wait_limit`` seconds)."""
        if self.closed:
            raise UpstreamUnavailable("the upstream client is stopped")
        conn = H1Connection(self._loop, self.high_water, self)
        self.conns.add(conn)  # counted while connecting, so the sweeper keeps the pool
        try:
            async with asyncio.timeout(wait_limit):
                await self._loop.create_connection(lambda: conn, self.host, self.port)
        except TimeoutError as exc:
            self.conns.discard(conn)
            raise UpstreamConnectTimeout() from exc
        except OSError as exc:
            self.conns.discard(conn)
            raise UpstreamUnavailable(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        except BaseException:
            self.conns.discard(conn)
            raise
        if self._stopped():  # stopped while connecting
            conn.close()
            raise UpstreamUnavailable("the upstream client is stopped")
        return conn

    def _stopped(self) -> bool:
        return self.closed

    def put(self, conn: H1Connection) -> None:
        """Takes a connection back after an exchange: onto the idle stack, or closed."""
        if conn.finish() and not self.closed and len(self.idle) < self.max_idle:
            conn.idle_since = self._loop.time()
            self.idle.append(conn)
        else:
            conn.close()

    def lost(self, conn: H1Connection) -> None:
        """Called by a connection when its transport is gone."""
        self.conns.discard(conn)
        if not conn.active:
            with contextlib.suppress(ValueError):
                self.idle.remove(conn)

    def sweep(self, now: float) -> None:
        """Closes the connections idle for longer than ``idle_timeout`` (oldest at the bottom)."""
        idle = self.idle
        limit = now - self.idle_timeout
        expired = 0
        while expired < len(idle) and idle[expired].idle_since <= limit:
            expired += 1
        if expired:
            old = idle[:expired]
            del idle[:expired]
            for conn in old:
                conn.close()

    def close(self) -> None:
        self.closed = True
        self.idle.clear()
        for conn in list(self.conns):
            conn.close()
