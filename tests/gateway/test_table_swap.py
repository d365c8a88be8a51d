"""Swapping route tables while requests are in flight loses no request."""

from __future__ import annotations

import asyncio
import itertools

from stackyard.gateway import RouteSpec

from .conftest import make_table


async def test_swap_under_load_has_no_failures(make_backend, serve):
    backends = [await make_backend(n) for n in "abc"]
    for b in backends:
        b.delay = 0.005  # keep requests in flight across swaps
    a, b, c = backends
    served = await serve()
    sets = [[a, b], [b, c], [c], [a, b, c], [a]]
    routes = [
        [RouteSpec("/{proxy+}", "svc", retries=0)],
        [RouteSpec("/{proxy+}", "svc", retries=0, balancer="least_request")],
    ]
    served.gateway.update(make_table(0, routes[0], {"svc": sets[0]}))
    stop = asyncio.Event()
    results: list[int] = []

    async def client(n: int) -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            status, _, _ = await served.request("GET", f"/c{n}/{i}")
            results.append(status)

    async def swapper() -> int:
        swaps = 0
        for version in itertools.count(1):
            if stop.is_set():
                return swaps
            served.gateway.update(
                make_table(version, routes[version % 2], {"svc": sets[version % len(sets)]})
            )
            swaps += 1
            await asyncio.sleep(0.01)
        return swaps

    tasks = [asyncio.create_task(client(n)) for n in range(8)]
    swap_task = asyncio.create_task(swapper())
    await asyncio.sleep(2.0)
    stop.set()
    await asyncio.gather(*tasks)
    swaps = await swap_task
    assert swaps > 50
    assert len(results) > 200
    assert set(results) == {200}
    assert served.gateway.table.version == swaps
    assert all(b.hits > 0 for b in backends)
