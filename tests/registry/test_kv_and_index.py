"""KV semantics and the change index: in-process and over HTTP (raw values, blocking KV reads)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

from stackyard.registry import Registry, ServiceRegistration

from .conftest import Served


async def test_kv_keys_separator_and_cas_edges(registry: Registry) -> None:
    kv = registry.kv
    for key in ("a/b/c", "a/b/d", "a/e", "a", "b/x"):
        assert await kv.put(key, key.encode())
    assert kv.keys("", "/") == ["a", "a/", "b/"]
    assert kv.keys("a/", "/") == ["a/b/", "a/e"]
    assert kv.keys("a/b") == ["a/b/c", "a/b/d"]
    assert [e.key for e in kv.list_prefix("a")] == ["a", "a/b/c", "a/b/d", "a/e"]
    assert await kv.put("fresh", b"1", cas=5) is False  # absent key, non-zero cas
    assert await kv.delete("absent", cas=3) is True  # missing counts as deleted
    entry = kv.get("a/e")
    assert entry is not None
    assert await kv.delete("a/e", cas=0) is False
    assert await kv.delete("a/e", cas=entry.modify_index) is True
    assert await kv.delete("a/", recurse=True)
    assert kv.keys() == ["a", "b/x"]


async def test_index_grows_and_waiters_wake_fast(registry: Registry) -> None:
    seen: list[int] = []
    published: list[float] = []
    remove = registry.add_listener(seen.append)
    registry.add_listener(lambda _: published.append(time.monotonic()))
    start = registry.index

    async def waiter_task() -> tuple[int, float]:
        index = await registry.wait_for_change(start, 10)
        return index, time.monotonic()

    waiter = asyncio.create_task(waiter_task())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await registry.register(ServiceRegistration(id="s-1", name="s"))
    index, woke = await asyncio.wait_for(waiter, 1)
    assert woke - published[0] < 0.05
    assert index > start
    assert seen == [index]
    remove()
    await registry.deregister("s-1")
    assert registry.index > index
    assert seen == [index]
    # KV changes do not move the catalog index (they have their own feed)
    catalog_index = registry.index
    kv_before = registry.kv.index
    await registry.kv.put("k", b"v")
    assert registry.index == catalog_index
    assert registry.kv.index > max(kv_before, catalog_index)
    # a wait on a stale index returns at once
    assert await registry.wait_for_change(0, 10) == registry.index


async def test_kv_raw_and_blocking_http(served: Served) -> None:
    async with aiohttp.ClientSession(base_url=served.url) as http:
        async with http.put("/v1/kv/cfg?flags=7", data=b"\x01\x02raw") as resp:
            assert await resp.json() is True
            index = int(resp.headers["X-Consul-Index"])
        async with http.get("/v1/kv/cfg?raw") as resp:
            assert await resp.read() == b"\x01\x02raw"
        async with http.get("/v1/kv/cfg") as resp:
            [entry] = await resp.json()
            assert entry["Flags"] == 7

        async def blocked() -> tuple[int, float]:
            async with http.get(f"/v1/kv/cfg?index={index}&wait=5s") as resp:
                await resp.read()
                return int(resp.headers["X-Consul-Index"]), time.monotonic()

        task = asyncio.create_task(blocked())
        await asyncio.sleep(0.2)
        assert not task.done()
        t0 = time.monotonic()
        async with http.delete("/v1/kv/cfg") as resp:
            assert await resp.json() is True
        new_index, t1 = await asyncio.wait_for(task, 2)
        assert new_index > index
        assert t1 - t0 < 0.2


async def test_stop_releases_blocking_waits(tmp_path: object) -> None:
    from pathlib import Path

    reg = Registry(Path(str(tmp_path)))
    await reg.start()
    waiter = asyncio.create_task(reg.wait_for_change(reg.index, 30))
    kv_waiter = asyncio.create_task(reg.kv.wait_for_change(reg.kv.index, 30))
    await asyncio.sleep(0.01)
    await reg.stop()
    await asyncio.wait_for(asyncio.gather(waiter, kv_waiter), 1)


def _waiting_tasks() -> int:
    return sum(
        1
        for t in asyncio.all_tasks()
        if "wait_for_change" in getattr(t.get_coro(), "__qualname__", "")
    )


async def _settle(predicate: Callable[[], bool]) -> bool:
    """Let the server run until ``predicate()`` holds (no change feed to wait on here)."""
    for _ in range(200):
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


async def test_client_disconnect_releases_a_blocking_query(served: Served) -> None:
    index = served.registry.kv.index
    _, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(f"GET /v1/kv/x?index={index}&wait=60s HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    await writer.drain()
    assert await _settle(lambda: _waiting_tasks() == 1)
    writer.close()
    assert await _settle(lambda: _waiting_tasks() == 0)
