"""Retries: connection failures always, 502/503/504 only for idempotent methods."""

from __future__ import annotations

from stackyard.gateway import RouteSpec
from stackyard.registry.models import Endpoint
from stackyard.serving import free_port

from .conftest import make_table


async def test_refused_connection_is_retried_elsewhere(make_backend, serve):
    live = await make_backend("live")
    dead = Endpoint("dead-id", "127.0.0.1", free_port())  # nothing listens there
    served = await serve()
    served.gateway.update(
        make_table(1, [RouteSpec("/{proxy+}", "svc", retries=1)], {"svc": [dead, live]})
    )
    for i in range(6):
        status, body = await served.json("GET", f"/g/{i}")
        assert status == 200 and body["backend"] == "live"
        status, body = await served.json("POST", f"/p/{i}", data=b"x" * 100)
        assert status == 200 and body["body_len"] == 100
    assert live.hits == 12


async def test_only_endpoint_refusing_gives_502(serve):
    dead = Endpoint("dead-id", "127.0.0.1", free_port())
    served = await serve()
    served.gateway.update(make_table(1, [RouteSpec("/{proxy+}", "svc")], {"svc": [dead]}))
    status, body = await served.json("GET", "/x")
    assert status == 502
    assert body["error"]["code"] == "BadGateway"


async def test_503_retried_for_get_not_for_post(make_backend, serve):
    bad = await make_backend("bad")
    good = await make_backend("good")
    bad.status = 503
    served = await serve()
    served.gateway.update(
        make_table(1, [RouteSpec("/{proxy+}", "svc", retries=1)], {"svc": [bad, good]})
    )
    for i in range(4):
        status, body = await served.json("GET", f"/g/{i}")
        assert status == 200 and body["backend"] == "good"
    posts = [await served.json("POST", f"/p/{i}", data=b"{}") for i in range(4)]
    statuses = sorted(s for s, _ in posts)
    assert statuses == [200, 200, 503, 503]
    assert {b["backend"] for s, b in posts if s == 503} == {"bad"}


async def test_retry_budget_is_route_retries(make_backend, serve):
    bad = [await make_backend(n) for n in ("b1", "b2", "b3")]
    for b in bad:
        b.status = 502
    served = await serve()
    served.gateway.update(make_table(1, [RouteSpec("/{proxy+}", "svc", retries=2)], {"svc": bad}))
    status, body = await served.json("GET", "/x")
    assert status == 502 and body["backend"] in {"b1", "b2", "b3"}  # the last answer, as is
    assert sorted(b.hits for b in bad) == [1, 1, 1]  # each retry on another endpoint
