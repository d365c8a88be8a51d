"""Health checks against real HTTP and TCP servers on loopback; TTL expiry; deregister_after."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from stackyard.registry import CheckSpec, Health, Registry, ServiceRegistration
from stackyard.serving import free_port

from .conftest import wait_until

FAST = 0.05


class HealthServer:
    """An aiohttp server whose /health answers ``status``; counts answers by status."""

    def __init__(self) -> None:
        self.port = free_port()
        self.status = 200
        self.served: dict[int, int] = {}
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    async def _health(self, request: web.Request) -> web.Response:
        self.served[self.status] = self.served.get(self.status, 0) + 1
        return web.Response(status=self.status, text=f"status {self.status}")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
async def backend() -> AsyncIterator[HealthServer]:
    server = HealthServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def status_of(registry: Registry, check_id: str) -> Health | None:
    state = registry.check(check_id)
    return state.status if state else None


def http_service(url: str, **check: object) -> ServiceRegistration:
    spec = CheckSpec("web-http", "http", target=url, interval=FAST, timeout=1.0, **check)  # type: ignore[arg-type]
    return ServiceRegistration(id="web-1", name="web", port=1234, checks=(spec,))


async def test_http_check_follows_the_server(registry: Registry, backend: HealthServer) -> None:
    await registry.register(http_service(backend.url))
    # the first probe runs at once: passing well before one interval of a slow check would
    await wait_until(registry, lambda: status_of(registry, "web-http") is Health.PASSING, 2)
    assert [e.port for e in registry.passing("web")] == [1234]

    backend.status = 503
    await wait_until(registry, lambda: status_of(registry, "web-http") is Health.CRITICAL)
    assert registry.passing("web") == []
    assert "503" in registry.check("web-http").output  # type: ignore[union-attr]

    backend.status = 429
    await wait_until(registry, lambda: status_of(registry, "web-http") is Health.WARNING)
    assert registry.passing("web") == []
    assert registry.health("web")[0].status is Health.WARNING

    backend.status = 200
    await wait_until(registry, lambda: status_of(registry, "web-http") is Health.PASSING)

    await backend.stop()  # connection refused
    await wait_until(registry, lambda: status_of(registry, "web-http") is Health.CRITICAL)
    await backend.start()  # recovery on the same port
    await wait_until(registry, lambda: status_of(registry, "web-http") is Health.PASSING)


async def test_http_check_first_probe_is_immediate(
    registry: Registry, backend: HealthServer
) -> None:
    await registry.register(
        ServiceRegistration(
            id="slow-1",
            name="slow",
            checks=(CheckSpec("slow-http", "http", target=backend.url, interval=60.0),),
        )
    )
    await wait_until(registry, lambda: status_of(registry, "slow-http") is Health.PASSING, 2)


async def test_http_check_thresholds(registry: Registry, backend: HealthServer) -> None:
    seen: list[tuple[Health | None, dict[int, int]]] = []
    registry.add_listener(
        lambda _index: seen.append((status_of(registry, "web-http"), dict(backend.served)))
    )
    await registry.register(
        http_service(backend.url, success_before_passing=3, failures_before_critical=2)
    )
    await wait_until(registry, lambda: status_of(registry, "web-http") is Health.PASSING)
    # it turned passing exactly when the third consecutive success was served
    assert seen[-1] == (Health.PASSING, {200: 3}), seen

    backend.status = 500
    await wait_until(registry, lambda: status_of(registry, "web-http") is Health.CRITICAL)
    status, served = seen[-1]
    assert status == Health.CRITICAL
    assert served.get(500) == 2


async def test_http_check_timeout_is_critical(registry: Registry) -> None:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response()

    app = web.Application()
    app.router.add_get("/", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        spec = CheckSpec(
            "hang",
            "http",
            target=f"http://127.0.0.1:{port}/",
            interval=FAST,
            timeout=0.1,
            initial_status=Health.PASSING,
        )
        await registry.register(ServiceRegistration(id="h", name="h", checks=(spec,)))
        await wait_until(registry, lambda: status_of(registry, "hang") is Health.CRITICAL)
        assert "timed out" in registry.check("hang").output  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


async def test_tcp_check_follows_the_listener(registry: Registry) -> None:
    port = free_port()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", port)
    spec = CheckSpec("db-tcp", "tcp", target=f"127.0.0.1:{port}", interval=FAST, timeout=1.0)
    await registry.register(ServiceRegistration(id="db-1", name="db", port=port, checks=(spec,)))
    await wait_until(registry, lambda: status_of(registry, "db-tcp") is Health.PASSING, 2)

    server.close()
    await server.wait_closed()
    await wait_until(registry, lambda: status_of(registry, "db-tcp") is Health.CRITICAL)
    assert registry.passing("db") == []

    server = await asyncio.start_server(accept, "127.0.0.1", port)
    try:
        await wait_until(registry, lambda: status_of(registry, "db-tcp") is Health.PASSING)
    finally:
        server.close()
        await server.wait_closed()


async def test_ttl_expires_and_update_revives(registry: Registry) -> None:
    spec = CheckSpec("hb", "ttl", ttl=0.2, initial_status=Health.PASSING)
    await registry.register(ServiceRegistration(id="w-1", name="worker", checks=(spec,)))
    assert status_of(registry, "hb") is Health.PASSING
    await wait_until(registry, lambda: status_of(registry, "hb") is Health.CRITICAL, 2)
    assert registry.check("hb").output == "TTL expired"  # type: ignore[union-attr]

    assert await registry.update_ttl("hb", Health.PASSING, "back")
    assert status_of(registry, "hb") is Health.PASSING
    assert await registry.update_ttl("nope", Health.PASSING) is False
    await wait_until(registry, lambda: status_of(registry, "hb") is Health.CRITICAL, 2)


async def test_deregister_after_removes_a_critical_instance(registry: Registry) -> None:
    closed_port = free_port()
    dead = CheckSpec(
        "dead-tcp",
        "tcp",
        target=f"127.0.0.1:{closed_port}",
        interval=FAST,
        timeout=0.5,
        deregister_after=0.3,
    )
    await registry.register(ServiceRegistration(id="dead-1", name="dead", checks=(dead,)))
    await registry.register(ServiceRegistration(id="dead-2", name="dead"))  # no check: stays
    assert registry.instance("dead-1") is not None
    await wait_until(registry, lambda: registry.instance("dead-1") is None, 3)
    assert [h.registration.id for h in registry.health("dead")] == ["dead-2"]
    assert registry.check("dead-tcp") is None


async def test_deregister_after_is_cancelled_by_recovery(registry: Registry) -> None:
    spec = CheckSpec("ttl-1", "ttl", ttl=30, deregister_after=0.3)
    await registry.register(ServiceRegistration(id="flaky-1", name="flaky", checks=(spec,)))
    assert await registry.update_ttl("ttl-1", Health.PASSING)
    await asyncio.sleep(0.5)  # longer than deregister_after: nothing may happen
    assert registry.instance("flaky-1") is not None


async def test_reregister_keeps_check_status_and_stop_leaves_no_tasks(tmp_path: object) -> None:
    from pathlib import Path

    reg = Registry(Path(str(tmp_path)))
    await reg.start()
    before = set(asyncio.all_tasks())
    spec = CheckSpec("keep", "ttl", ttl=30)
    await reg.register(ServiceRegistration(id="k-1", name="k", checks=(spec,)))
    await reg.update_ttl("keep", Health.PASSING)
    await reg.register(ServiceRegistration(id="k-1", name="k", port=2, checks=(spec,)))
    assert status_of(reg, "keep") is Health.PASSING
    assert reg.health("k")[0].registration.port == 2
    await reg.stop()
    leftover = {t for t in asyncio.all_tasks() - before if not t.done()}
    assert leftover == set()
