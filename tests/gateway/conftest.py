"""Fixtures for gateway tests: real aiohttp backends on loopback and a served Gateway."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from stackyard.gateway import Gateway, OutlierSettings, RouteSpec, RouteTable
from stackyard.registry.models import Endpoint
from stackyard.serving import AsgiServer, free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Backend:
    """A real aiohttp server on 127.0.0.1 that echoes what it received as JSON."""

    def __init__(self, name: str, handler: Handler | None = None) -> None:
        self.name = name
        self.port = free_port()
        self.hits = 0
        self.in_flight = 0
        self.status = 200
        self.delay = 0.0
        self.requests: list[dict[str, Any]] = []
        self._handler = handler
        self._runner: web.AppRunner | None = None

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(f"{self.name}-id", "127.0.0.1", self.port)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        self.in_flight += 1
        try:
            if self._handler is not None:
                return await self._handler(request)
            return await self._echo(request)
        finally:
            self.in_flight -= 1

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        info = {
            "backend": self.name,
            "method": request.method,
            "path": request.raw_path,
            "headers": [[k, v] for k, v in request.raw_headers_str()],
            "body_len": len(body),
        }
        self.requests.append(info)
        return web.json_response(info, status=self.status)

    async def start(self) -> None:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _raw_headers_str(request: web.Request) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]


web.Request.raw_headers_str = _raw_headers_str  # type: ignore[attr-defined]


def make_table(
    version: int,
    routes: Iterable[RouteSpec],
    endpoints: Mapping[str, Iterable[Backend | Endpoint]],
) -> RouteTable:
    eps = {
        service: tuple(b.endpoint if isinstance(b, Backend) else b for b in items)
        for service, items in endpoints.items()
    }
    return RouteTable(version=version, routes=tuple(routes), endpoints=MappingProxyType(eps))


@pytest.fixture
async def make_backend() -> AsyncIterator[Callable[..., Awaitable[Backend]]]:
    started: list[Backend] = []

    async def factory(name: str, handler: Handler | None = None) -> Backend:
        backend = Backend(name, handler)
        await backend.start()
        started.append(backend)
        return backend

    yield factory
    for backend in started:
        await backend.stop()


class Served:
    """A Gateway served by AsgiServer on loopback, plus a client session to it."""

    def __init__(self, gateway: Gateway, server: AsgiServer, session: aiohttp.ClientSession):
        self.gateway = gateway
        self.server = server
        self.session = session
        self.url = server.url

    async def request(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[int, CIMultiDict[str], bytes]:
        url = URL(self.url + path, encoded=True)
        async with self.session.request(method, url, **kwargs) as resp:
            body = await resp.read()
            return resp.status, resp.headers.copy(), body

    async def json(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        status, _, body = await self.request(method, path, **kwargs)
        return status, json.loads(body)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Served]]]:
    made: list[Served] = []

    async def factory(**options: Any) -> Served:
        options.setdefault("outlier", OutlierSettings(consecutive_failures=0))
        gateway = Gateway(**options)
        await gateway.start()
        server = AsgiServer(gateway.serve, "127.0.0.1", free_port())  # as a node serves it
        await server.start()
        session = aiohttp.ClientSession(auto_decompress=False)
        served = Served(gateway, server, session)
        made.append(served)
        return served

    yield factory
    for served in made:
        await served.session.close()
        await served.server.stop()
        await served.gateway.stop()
