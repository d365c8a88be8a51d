"""The registry's health history: transitions of real checks (TTL and HTTP), kept across a
re-registration of the same instance, and bounded."""

from __future__ import annotations

import asyncio

from stackyard.registry import CheckSpec, Health, Registry, ServiceRegistration
from stackyard.registry.history import HealthHistory

from .conftest import wait_until


def _ttl_instance(service_id: str) -> ServiceRegistration:
    check = CheckSpec(check_id=f"service:{service_id}", kind="ttl", ttl=30.0)
    return ServiceRegistration(id=service_id, name="api", port=8000, checks=(check,))


def _moves(registry: Registry, service_id: str) -> list[tuple[str | None, str | None, str]]:
    return [
        (t["from"], t["to"], t["output"])
        for t in (x.as_json() for x in registry.history.of_service(service_id))
    ]


async def test_ttl_transitions_are_recorded_newest_first(registry: Registry) -> None:
    await registry.register(_ttl_instance("api-1"))
    await registry.update_ttl("service:api-1", Health.PASSING, "all good")
    await registry.update_ttl("service:api-1", Health.PASSING, "still good")  # no change
    await registry.update_ttl("service:api-1", Health.WARNING, "slow disk")
    await registry.update_ttl("service:api-1", Health.CRITICAL, "db down")
    assert _moves(registry, "api-1") == [
        ("warning", "critical", "db down"),
        ("passing", "warning", "slow disk"),
        ("critical", "passing", "all good"),
        (None, "critical", ""),
    ]
    newest = registry.history.of_check("service:api-1", limit=1)[0]
    assert newest.service_id == "api-1" and newest.to_status is Health.CRITICAL
    assert registry.history.of_service("api-2") == []


async def test_history_survives_deregistration_and_registration_again(
    registry: Registry,
) -> None:
    await registry.register(_ttl_instance("api-1"))
    await registry.update_ttl("service:api-1", Health.PASSING, "up")
    assert await registry.deregister("api-1")
    await registry.register(_ttl_instance("api-1"))  # a restarted instance, same check id
    assert [(a, b) for a, b, _ in _moves(registry, "api-1")] == [
        (None, "critical"),
        ("passing", None),
        ("critical", "passing"),
        (None, "critical"),
    ]
    # re-registering a live instance keeps its check's status: no transition
    await registry.update_ttl("service:api-1", Health.PASSING, "up again")
    await registry.register(_ttl_instance("api-1"))
    assert _moves(registry, "api-1")[0] == ("critical", "passing", "up again")


async def test_an_http_check_failing_is_recorded_with_its_output(registry: Registry) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    check = CheckSpec(
        check_id="service:web-1",
        kind="http",
        target=f"http://127.0.0.1:{port}/health",
        interval=0.1,
        timeout=0.5,
    )
    await registry.register(ServiceRegistration(id="web-1", name="web", port=port, checks=(check,)))
    await wait_until(registry, lambda: registry.passing("web") != [])
    server.close()
    await server.wait_closed()
    await wait_until(registry, lambda: registry.passing("web") == [])
    latest = registry.history.of_service("web-1")[0].as_json()
    assert (latest["from"], latest["to"]) == ("passing", "critical")
    assert f"127.0.0.1:{port}" in latest["output"]
    assert "200 OK" in registry.history.of_service("web-1")[1].output


def test_history_is_bounded_per_check_and_in_checks() -> None:
    ticks = iter(range(1_000_000))
    history = HealthHistory(per_check=3, max_checks=2, clock=lambda: float(next(ticks)))
    for n in range(5):
        history.record("c1", "s1", Health.PASSING, Health.CRITICAL, f"out {n}" + "x" * 2000)
    assert [t.output[:5] for t in history.of_check("c1")] == ["out 4", "out 3", "out 2"]
    assert len(history.of_check("c1")[0].output) == 512
    history.record("c2", "s2", None, Health.CRITICAL, "")
    history.record("c1", "s1", Health.CRITICAL, Health.PASSING, "")  # c1 is now the newest
    history.record("c3", "s3", None, Health.CRITICAL, "")  # forgets c2, changed longest ago
    assert history.of_check("c2") == [] and history.of_service("s2") == []
    assert len(history.of_check("c1")) == 3 and len(history.of_service("s3")) == 1
