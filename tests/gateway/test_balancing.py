"""Load balancing across real backends: round-robin and least-request."""

from __future__ import annotations

import asyncio

from stackyard.gateway import RouteSpec

from .conftest import make_table


async def test_round_robin_spreads_evenly(make_backend, serve):
    backends = [await make_backend(n) for n in "abc"]
    served = await serve()
    served.gateway.update(make_table(1, [RouteSpec("/{proxy+}", "svc")], {"svc": backends}))
    for i in range(30):
        status, _, _ = await served.request("GET", f"/r/{i}")
        assert status == 200
    assert [b.hits for b in backends] == [10, 10, 10]


async def test_least_request_prefers_the_idle_backend(make_backend, serve):
    slow = await make_backend("slow")
    fast = await make_backend("fast")
    slow.delay = 1.0
    served = await serve()
    served.gateway.update(
        make_table(
            1,
            [RouteSpec("/{proxy+}", "svc", balancer="least_request")],
            {"svc": [slow, fast]},
        )
    )

    async def one(i: int) -> int:
        await asyncio.sleep(i * 0.02)
        status, _, _ = await served.request("GET", f"/x/{i}")
        return status

    statuses = await asyncio.gather(*(one(i) for i in range(20)))
    assert statuses == [200] * 20
    assert slow.hits <= 1, (slow.hits, fast.hits)
    assert fast.hits >= 19
