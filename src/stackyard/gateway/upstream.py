"""The gateway's one pooled HTTP client to upstream endpoints, and its lifecycle.

:class:`UpstreamClient` owns a single ``aiohttp.ClientSession`` (keep-alive connection pool, no
cookie jar, no automatic decompression, no automatic Accept/Accept-Encoding/User-Agent/
Content-Type headers, so the upstream sees what the client sent), created by ``start`` and
closed by ``stop``. Per-try timeouts are ``aiohttp.ClientTimeout`` objects cached per value:
``sock_connect`` bounds opening a connection, ``sock_read`` bounds every wait for upstream bytes
(so it bounds the time to the response head, and each pause of a streamed body).
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from .errors import GatewayNotStarted


@dataclass(frozen=True)
class PoolSettings:
    """Upstream connection-pool limits."""

    limit: int = 1024  # connections in total (0: no limit)
    limit_per_host: int = 0  # connections per endpoint (0: no limit)
    keepalive_timeout: float = 30.0  # seconds an idle connection is kept
    read_buffer: int = 64 * 1024  # aiohttp read_bufsize


SKIP_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


class UpstreamClient:
    """The pooled client session, created in ``start`` and closed in ``stop``."""

    def __init__(self, settings: PoolSettings | None = None) -> None:
        self.settings = settings or PoolSettings()
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    @property
    def started(self) -> bool:
        return self._session is not None

    @property
    def session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None:
            raise GatewayNotStarted()
        return session

    async def start(self) -> None:
        if self._session is not None:
            return
        settings = self.settings
        connector = aiohttp.TCPConnector(
            limit=settings.limit,
            limit_per_host=settings.limit_per_host,
            keepalive_timeout=settings.keepalive_timeout,
            ttl_dns_cache=10,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=SKIP_AUTO_HEADERS,
            timeout=aiohttp.ClientTimeout(total=None),
            read_bufsize=settings.read_buffer,
            raise_for_status=False,
            trust_env=False,
        )

    async def stop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        """The per-try timeout object for ``seconds`` (cached)."""
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)
            self._timeouts[seconds] = timeout
        return timeout
