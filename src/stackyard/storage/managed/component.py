"""Declared caches and databases: the servers the node runs for them (or the ``url`` of ones
it does not), their start before the services that use them and their stop with the node, and
the connection URLs injected into those services' and functions' environments.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ...config.models import CacheConfig, DatabaseConfig, FunctionConfig, ServiceConfig
from .errors import ManagedError
from .postgres import ManagedPostgres
from .redis import ManagedRedis

logger = logging.getLogger(__name__)

C = TypeVar("C", ServiceConfig, FunctionConfig)
DEFAULT_ENV = {"cache": "REDIS_URL", "database": "DATABASE_URL"}


class Server(Protocol):
    engine: str
    name: str

    @property
    def url(self) -> str: ...
    @property
    def state(self) -> str: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class Resource:
    """One declared cache or database: a server the node runs, or an external ``url``."""

    def __init__(self, kind: str, name: str, engine: str, server: Server | None, url: str) -> None:
        self.kind = kind
        self.name = name
        self.engine = engine
        self.server = server
        self.url = url

    @property
    def state(self) -> str:
        return "external" if self.server is None else self.server.state

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "engine": self.engine,
            "managed": self.server is not None,
            "url": self.url,
            "state": self.state,
        }


class ManagedResources:
    """Every ``caches:`` and ``databases:`` entry of a stack; ``start`` returns once each server
    the node runs accepts connections."""

    def __init__(
        self,
        data_dir: Path,
        caches: Mapping[str, CacheConfig],
        databases: Mapping[str, DatabaseConfig],
        host: str = "127.0.0.1",
    ) -> None:
        self.resources: dict[str, Resource] = {}
        for name, cache in caches.items():
            redis = None if cache.url else ManagedRedis(name, data_dir / "caches" / name, host)
            url = cache.url or (redis.url if redis else "")
            self.resources[name] = Resource("cache", name, cache.engine, redis, url)
        for name, db in databases.items():
            pg = None if db.url else ManagedPostgres(name, data_dir / "databases" / name, host)
            url = db.url or (pg.url if pg else "")
            self.resources[name] = Resource("database", name, db.engine, pg, url)
        self._started: list[Server] = []

    def status(self, kind: str) -> list[dict[str, Any]]:
        return [r.as_json() for r in self.resources.values() if r.kind == kind]

    async def start(self) -> None:
        """Start every managed server at once; if one fails, stop those that started."""
        servers = [r.server for r in self.resources.values() if r.server is not None]
        results = await asyncio.gather(*(s.start() for s in servers), return_exceptions=True)
        self._started = servers  # a failed start may have left a process: stop them all
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.stop()
            for failure in failures:
                if not isinstance(failure, Exception):
                    raise failure
            messages = [str(f) for f in failures]
            if all(isinstance(f, ManagedError) for f in failures):
                raise ManagedError("\n".join(messages))
            raise failures[0]

    async def stop(self) -> None:
        servers, self._started = self._started, []
        results = await asyncio.gather(*(s.stop() for s in servers), return_exceptions=True)
        for server, result in zip(servers, results, strict=True):
            if isinstance(result, Exception):
                logger.error("could not stop %s %r: %s", server.engine, server.name, result)

    def env(self, uses: Mapping[str, str | None]) -> dict[str, str]:
        """The connection URLs ``uses`` asks for, by environment name."""
        env = {}
        for name, env_name in uses.items():
            resource = self.resources.get(name)
            if resource is None:  # added by a deploy: its server starts at the next `up`
                logger.warning("%r is not running on this node; restart the node to add it", name)
                continue
            env[env_name or DEFAULT_ENV[resource.kind]] = resource.url
        return env

    def services(self, services: Mapping[str, ServiceConfig]) -> dict[str, ServiceConfig]:
        """``services`` with the URLs they use in their ``env`` (their own ``env`` wins)."""
        return {name: self._inject(svc) for name, svc in services.items()}

    def functions(self, functions: Mapping[str, FunctionConfig]) -> dict[str, FunctionConfig]:
        """``functions`` with the URLs they use in their ``env`` (their own ``env`` wins)."""
        return {name: self._inject(fn) for name, fn in functions.items()}

    def _inject(self, config: C) -> C:
        if not config.uses:
            return config
        return config.model_copy(update={"env": {**self.env(config.uses), **config.env}})
