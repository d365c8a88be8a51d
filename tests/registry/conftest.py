"""Fixtures for the registry tests: a started ``Registry`` on a temp dir, and the Consul API served
on loopback by the real ASGI server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.applications import Starlette

from stackyard.registry import Registry, consul_routes
from stackyard.serving import AsgiServer, free_port


@dataclass
class Served:
    registry: Registry
    server: AsgiServer

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    reg = Registry(tmp_path / "data")
    await reg.start()
    try:
        yield reg
    finally:
        await reg.stop()


@pytest.fixture
async def served(registry: Registry) -> AsyncIterator[Served]:
    app = Starlette(routes=consul_routes(registry))
    server = AsgiServer(app, "127.0.0.1", free_port())
    await server.start()
    try:
        yield Served(registry, server)
    finally:
        await server.stop()


async def wait_until(
    registry: Registry, predicate: Callable[[], bool], within: float = 5.0
) -> None:
    """Wait (on the registry's change feed, no polling) until ``predicate()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"condition not met within {within}s")
        await registry.wait_for_change(registry.index, remaining)
