"""Bodies stream both ways; oversized request bodies get 413 before reaching the upstream."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

from aiohttp import web

from stackyard.gateway import RouteSpec

from .conftest import make_table

CHUNK = b"0123456789abcdef" * 4096  # 64 KiB
TOTAL = 20 * 1024 * 1024


async def test_large_response_streams(make_backend, serve):
    first_seen = asyncio.Event()
    finished = asyncio.Event()

    async def big(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await resp.prepare(request)
        sent = 0
        while sent < TOTAL:
            await resp.write(CHUNK)
            sent += len(CHUNK)
            if sent == 16 * len(CHUNK):
                # hold the rest back until the client saw data: a buffering proxy deadlocks here
                await asyncio.wait_for(first_seen.wait(), 10)
        await resp.write_eof()
        finished.set()
        return resp

    backend = await make_backend("big", big)
    served = await serve()
    served.gateway.update(make_table(1, [RouteSpec("/big", "svc")], {"svc": [backend]}))
    digest = hashlib.sha256()
    received = 0
    async with served.session.get(served.url + "/big") as resp:
        assert resp.status == 200
        async for chunk in resp.content.iter_any():
            if not first_seen.is_set():
                assert not finished.is_set()
                first_seen.set()
            received += len(chunk)
            digest.update(chunk)
    assert received == TOTAL
    assert digest.hexdigest() == hashlib.sha256(CHUNK * (TOTAL // len(CHUNK))).hexdigest()


async def test_request_body_streams(make_backend, serve):
    upstream_started = asyncio.Event()

    async def sink(request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        size = 0
        while True:
            chunk = await request.content.readany()
            if not chunk:
                break
            upstream_started.set()
            size += len(chunk)
            digest.update(chunk)
        return web.json_response({"size": size, "sha": digest.hexdigest()})

    backend = await make_backend("sink", sink)
    served = await serve()
    served.gateway.update(make_table(1, [RouteSpec("/up", "svc")], {"svc": [backend]}))

    async def body() -> AsyncIterator[bytes]:
        for i in range(80):  # 5 MiB
            yield CHUNK
            if i == 20:
                # the upstream must already be receiving: a buffering proxy deadlocks here
                await asyncio.wait_for(upstream_started.wait(), 10)

    status, answer = await served.json("POST", "/up", data=body())
    assert status == 200
    assert answer == {"size": 80 * len(CHUNK), "sha": hashlib.sha256(CHUNK * 80).hexdigest()}


async def test_small_body_with_length_is_retried(make_backend, serve):
    from stackyard.registry.models import Endpoint
    from stackyard.serving import free_port

    live = await make_backend("live")
    dead = Endpoint("dead", "127.0.0.1", free_port())
    served = await serve()
    served.gateway.update(
        make_table(1, [RouteSpec("/{proxy+}", "svc", retries=1)], {"svc": [dead, live]})
    )
    for size in (10, 60_000, 200_000):
        for _ in range(2):
            status, answer = await served.json("PUT", "/p", data=b"z" * size)
            assert status == 200 and answer["body_len"] == size


async def test_oversized_body_is_413(make_backend, serve):
    backend = await make_backend("a")
    served = await serve(max_body_size=256 * 1024)
    served.gateway.update(make_table(1, [RouteSpec("/up", "svc")], {"svc": [backend]}))
    status, body = await served.json("POST", "/up", data=b"x" * (300 * 1024))
    assert status == 413
    assert body["error"]["code"] == "PayloadTooLarge"
    assert backend.hits == 0

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield CHUNK  # 320 KiB, no Content-Length

    status, body = await served.json("POST", "/up", data=chunked())
    assert status == 413
    assert body["error"]["code"] == "PayloadTooLarge"
    # a body at the limit passes
    status, body = await served.json("POST", "/up", data=b"x" * (256 * 1024))
    assert status == 200 and body["body_len"] == 256 * 1024
