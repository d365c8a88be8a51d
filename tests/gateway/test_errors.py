"""Errors the gateway answers itself: 504 on timeout, 503 without endpoints."""

from __future__ import annotations

import time

from stackyard.gateway import RouteSpec

from .conftest import make_table


async def test_timeout_is_504_json(make_backend, serve):
    slow = await make_backend("slow")
    slow.delay = 2.0
    served = await serve()
    served.gateway.update(
        make_table(1, [RouteSpec("/{proxy+}", "svc", timeout=0.2, retries=1)], {"svc": [slow]})
    )
    started = time.monotonic()
    status, headers, body = await served.request("GET", "/x")
    elapsed = time.monotonic() - started
    assert status == 504
    assert headers["Content-Type"] == "application/json"
    assert b'"code":"GatewayTimeout"' in body
    assert 0.35 < elapsed < 1.5  # two tries of 0.2 s
    started = time.monotonic()
    status, _, _ = await served.request("POST", "/x", data=b"{}")
    assert status == 504
    assert time.monotonic() - started < 0.35  # POST is not retried after a read timeout


async def test_no_endpoints_is_503_json(serve):
    served = await serve()
    served.gateway.update(
        make_table(
            1,
            [RouteSpec("/a", "empty"), RouteSpec("/b", "unknown")],
            {"empty": []},
        )
    )
    for path in ("/a", "/b"):
        status, body = await served.json("GET", path)
        assert status == 503
        assert body["error"]["code"] == "ServiceUnavailable"


async def test_invalid_table_keeps_the_old_one(make_backend, serve):
    import pytest

    from stackyard.gateway import InvalidRoute

    backend = await make_backend("a")
    served = await serve()
    good = make_table(1, [RouteSpec("/a", "svc")], {"svc": [backend]})
    served.gateway.update(good)
    with pytest.raises(InvalidRoute):
        served.gateway.update(make_table(2, [RouteSpec("/{bad+}/x", "svc")], {"svc": [backend]}))
    assert served.gateway.table is good
    assert (await served.request("GET", "/a"))[0] == 200
