"""Passive outlier ejection: a failing endpoint stops getting traffic, then comes back."""

from __future__ import annotations

import asyncio

from stackyard.gateway import OutlierSettings, RouteSpec

from .conftest import make_table

FAST = OutlierSettings(consecutive_failures=3, base_ejection_time=0.5, max_ejection_time=5.0)


async def test_failing_backend_is_ejected_then_returns(make_backend, serve):
    good = [await make_backend(n) for n in ("g1", "g2")]
    bad = await make_backend("bad")
    bad.status = 500
    served = await serve(outlier=FAST)
    table = make_table(1, [RouteSpec("/{proxy+}", "svc", retries=0)], {"svc": [*good, bad]})
    served.gateway.update(table)
    statuses = [(await served.request("GET", f"/{i}"))[0] for i in range(30)]
    assert bad.hits == 3  # ejected after 3 consecutive failures
    assert statuses.count(500) == 3
    # ejection survives a table swap that keeps the endpoint
    served.gateway.update(make_table(2, table.routes, {"svc": [*good, bad]}))
    for i in range(10):
        await served.request("GET", f"/again/{i}")
    assert bad.hits == 3
    await asyncio.sleep(0.6)
    bad.status = 200
    statuses = [(await served.request("GET", f"/{i}"))[0] for i in range(30)]
    assert statuses == [200] * 30
    assert bad.hits == 13


async def test_never_ejects_the_last_endpoint(make_backend, serve):
    bad = await make_backend("bad")
    bad.status = 500
    served = await serve(outlier=FAST)
    served.gateway.update(make_table(1, [RouteSpec("/{proxy+}", "svc", retries=0)], {"svc": [bad]}))
    for i in range(10):
        assert (await served.request("GET", f"/{i}"))[0] == 500
    assert bad.hits == 10


async def test_refusing_endpoint_is_ejected(make_backend, serve):
    from stackyard.registry.models import Endpoint
    from stackyard.serving import free_port

    live = await make_backend("live")
    dead = Endpoint("dead-id", "127.0.0.1", free_port())
    served = await serve(outlier=FAST)
    served.gateway.update(
        make_table(1, [RouteSpec("/{proxy+}", "svc", retries=1)], {"svc": [dead, live]})
    )
    for i in range(20):
        assert (await served.request("GET", f"/{i}"))[0] == 200
    (state,) = [s for s in served.gateway.endpoint_states("svc") if s.key[0] == "dead-id"]
    assert state.ejections == 1 and state.ejected_until > 0
