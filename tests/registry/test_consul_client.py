"""The Consul HTTP API driven by a real Consul client library (py-consul, sync, run in a thread)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import consul  # type: ignore[import-untyped]

from stackyard.registry import CheckSpec, Health, ServiceRegistration

from .conftest import Served


def client(served: Served) -> consul.Consul:
    return consul.Consul(host="127.0.0.1", port=served.port)


async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def test_register_ttl_pass_catalog_health(served: Served) -> None:
    c = client(served)
    ok = await call(
        c.agent.service.register,
        "web",
        service_id="web-1",
        address="127.0.0.1",
        port=8001,
        tags=["v1", "blue"],
        meta={"version": "1"},
        check=consul.Check.ttl("10s"),
    )
    assert ok is True
    await call(
        c.agent.service.register,
        "web",
        service_id="web-2",
        port=8002,
        tags=["v2"],
        check=consul.Check.ttl("10s"),
    )

    # TTL checks start critical: nothing passes yet
    _, passing = await call(c.health.service, "web", passing=True)
    assert passing == []
    _, all_nodes = await call(c.health.service, "web")
    assert {e["Service"]["ID"] for e in all_nodes} == {"web-1", "web-2"}

    assert await call(c.agent.check.ttl_pass, "service:web-1", "all good") is True
    index, passing = await call(c.health.service, "web", passing=True)
    assert int(index) >= 1
    assert [e["Service"]["ID"] for e in passing] == ["web-1"]
    entry = passing[0]
    assert entry["Service"]["Port"] == 8001
    assert entry["Service"]["Tags"] == ["v1", "blue"]
    assert entry["Service"]["Meta"] == {"version": "1"}
    assert entry["Node"]["Node"] == "stackyard"
    check = next(ch for ch in entry["Checks"] if ch["CheckID"] == "service:web-1")
    assert check["Status"] == "passing"
    assert check["Output"] == "all good"
    assert check["ServiceID"] == "web-1"

    _, services = await call(c.catalog.services)
    assert services == {"web": ["blue", "v1", "v2"]}
    _, nodes = await call(c.catalog.service, "web")
    assert sorted((n["ServiceID"], n["ServicePort"]) for n in nodes) == [
        ("web-1", 8001),
        ("web-2", 8002),
    ]
    _, tagged = await call(c.catalog.service, "web", tag="v2")
    assert [n["ServiceID"] for n in tagged] == ["web-2"]

    agent_services = await call(c.agent.services)
    assert set(agent_services) == {"web-1", "web-2"}
    _, checks = await call(c.health.checks, "web")
    assert {ch["CheckID"]: ch["Status"] for ch in checks} == {
        "service:web-1": "passing",
        "service:web-2": "critical",
    }

    await call(c.agent.check.ttl_warn, "service:web-1")
    _, passing = await call(c.health.service, "web", passing=True)
    assert passing == []
    await call(c.agent.check.ttl_fail, "service:web-1", "down")
    assert served.registry.check("service:web-1").status is Health.CRITICAL  # type: ignore[union-attr]

    assert await call(c.agent.service.deregister, "web-2") is True
    assert await call(c.agent.service.deregister, "web-2") is False  # 404 → False
    assert await call(c.agent.check.ttl_pass, "no-such-check") is False
    _, services = await call(c.catalog.services)
    assert services == {"web": ["blue", "v1"]}
    assert await call(c.status.leader) == "127.0.0.1:8300"
    assert (await call(c.agent.self))["Config"]["Datacenter"] == "dc1"


async def test_multiple_checks_get_numbered_ids(served: Served) -> None:
    c = client(served)
    await call(
        c.agent.service.register,
        "api",
        service_id="api-1",
        check=consul.Check.ttl("10s"),
        extra_checks=[consul.Check.ttl("20s")],
    )
    _, checks = await call(c.health.checks, "api")
    assert sorted(ch["CheckID"] for ch in checks) == ["service:api-1:1", "service:api-1:2"]


async def test_kv_operations(served: Served) -> None:
    c = client(served)
    assert await call(c.kv.put, "app/config/db", "postgres://x") is True
    assert await call(c.kv.put, "app/config/cache", b"\x00\x01binary", flags=42) is True
    assert await call(c.kv.put, "app/name", "demo") is True
    assert await call(c.kv.put, "other", "x") is True

    index, item = await call(c.kv.get, "app/config/db")
    assert item["Value"] == b"postgres://x"
    assert item["Key"] == "app/config/db"
    assert item["CreateIndex"] == item["ModifyIndex"]
    assert int(index) >= item["ModifyIndex"]
    _, item = await call(c.kv.get, "app/config/cache")
    assert item["Value"] == b"\x00\x01binary"
    assert item["Flags"] == 42

    _, items = await call(c.kv.get, "app/", recurse=True)
    assert [i["Key"] for i in items] == ["app/config/cache", "app/config/db", "app/name"]
    _, keys = await call(c.kv.get, "app/", keys=True)
    assert keys == ["app/config/cache", "app/config/db", "app/name"]
    _, keys = await call(c.kv.get, "app/", keys=True, separator="/")
    assert keys == ["app/config/", "app/name"]
    _, missing = await call(c.kv.get, "nope")
    assert missing is None

    # check-and-set: 0 = create only
    assert await call(c.kv.put, "app/name", "again", cas=0) is False
    assert await call(c.kv.put, "app/lock", "1", cas=0) is True
    _, item = await call(c.kv.get, "app/name")
    stale = item["ModifyIndex"]
    assert await call(c.kv.put, "app/name", "v2", cas=stale) is True
    assert await call(c.kv.put, "app/name", "v3", cas=stale) is False
    _, item = await call(c.kv.get, "app/name")
    assert item["Value"] == b"v2"
    assert item["CreateIndex"] < item["ModifyIndex"]

    # delete: cas, single, recurse
    assert await call(c.kv.delete, "app/name", cas=stale) is False
    assert await call(c.kv.delete, "app/name", cas=item["ModifyIndex"]) is True
    assert (await call(c.kv.get, "app/name"))[1] is None
    assert await call(c.kv.delete, "app/config/db") is True
    assert await call(c.kv.delete, "app/", recurse=True) is True
    assert (await call(c.kv.get, "app/", recurse=True))[1] is None
    _, item = await call(c.kv.get, "other")
    assert item["Value"] == b"x"

    # an empty value reads back as None, like Consul
    assert await call(c.kv.put, "empty", "") is True
    assert (await call(c.kv.get, "empty"))[1]["Value"] is None


async def _blocked_call(fn: Any, *args: Any, **kwargs: Any) -> tuple[asyncio.Task[Any], float]:
    """Start a blocking query in a thread and make sure it is really held by the server."""
    task = asyncio.ensure_future(call(fn, *args, **kwargs))
    await asyncio.sleep(0.3)
    assert not task.done(), "the blocking query returned before any change"
    return task, time.monotonic()


async def test_blocking_kv_get_wakes_on_change(served: Served) -> None:
    c = client(served)
    await call(c.kv.put, "watch/me", "1")
    index, _ = await call(c.kv.get, "watch/me")

    task, _ = await _blocked_call(c.kv.get, "watch/me", index=index, wait="10s")
    changed_at = time.monotonic()
    await served.registry.kv.put("watch/me", b"2")  # a change from another task
    new_index, item = await asyncio.wait_for(task, 5)
    elapsed = time.monotonic() - changed_at
    assert elapsed < 0.5, f"blocking KV query took {elapsed:.3f}s to wake"
    assert int(new_index) > int(index)
    assert item["Value"] == b"2"


async def test_blocking_health_wakes_on_change_from_another_thread(served: Served) -> None:
    c = client(served)
    other = client(served)
    await call(c.agent.service.register, "svc", service_id="svc-1", check=consul.Check.ttl("30s"))
    index, _ = await call(c.health.service, "svc", passing=True)

    task, _ = await _blocked_call(c.health.service, "svc", index=index, wait="10s", passing=True)
    changed_at = time.monotonic()
    await call(other.agent.check.ttl_pass, "service:svc-1")
    new_index, nodes = await asyncio.wait_for(task, 5)
    elapsed = time.monotonic() - changed_at
    assert elapsed < 0.5, f"blocking health query took {elapsed:.3f}s to wake"
    assert int(new_index) > int(index)
    assert [n["Service"]["ID"] for n in nodes] == ["svc-1"]


async def test_blocking_query_times_out_with_same_index(served: Served) -> None:
    c = client(served)
    index, _ = await call(c.catalog.services)
    started = time.monotonic()
    same, _ = await call(c.catalog.services, index=index, wait="200ms")
    elapsed = time.monotonic() - started
    assert same == index
    assert 0.19 <= elapsed < 1.0


async def test_registry_api_and_http_api_agree(served: Served) -> None:
    reg = served.registry
    await reg.register(
        ServiceRegistration(
            id="inproc-1",
            name="inproc",
            port=9000,
            checks=(CheckSpec("inproc-ttl", "ttl", ttl=30, initial_status=Health.PASSING),),
        )
    )
    c = client(served)
    _, nodes = await call(c.health.service, "inproc", passing=True)
    assert [n["Service"]["Port"] for n in nodes] == [9000]
    assert [e.authority for e in reg.passing("inproc")] == ["127.0.0.1:9000"]
