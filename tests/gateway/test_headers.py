"""Header handling: X-Forwarded-*, hop-by-hop removal both ways, correlation id and counter."""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

from stackyard.gateway import RouteSpec

from .conftest import make_table


async def raw_request(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def upstream_headers(backend) -> dict[str, str]:
    return {k.lower(): v for k, v in backend.requests[-1]["headers"]}


async def test_request_headers_rewritten(make_backend, serve):
    backend = await make_backend("a")
    served = await serve()
    served.gateway.update(make_table(1, [RouteSpec("/{proxy+}", "svc")], {"svc": [backend]}))
    port = served.server.port
    status, _, _ = await raw_request(
        port,
        b"GET /h?q=1 HTTP/1.1\r\n"
        b"Host: shop.example:8080\r\n"
        b"X-Forwarded-For: 10.1.2.3\r\n"
        b"X-Forwarded-Proto: https\r\n"
        b"Connection: close, X-Secret-Hop\r\n"
        b"X-Secret-Hop: drop me\r\n"
        b"Keep-Alive: timeout=5\r\n"
        b"Proxy-Authorization: Basic abc\r\n"
        b"Proxy-Connection: keep-alive\r\n"
        b"TE: trailers\r\n"
        b"Trailer: X-T\r\n"
        b"X-Kept: yes\r\n"
        b"User-Agent: raw-test\r\n"
        b"\r\n",
    )
    assert status == 200
    seen = upstream_headers(backend)
    assert seen["host"] == f"127.0.0.1:{backend.port}"
    assert seen["x-forwarded-host"] == "shop.example:8080"
    assert seen["x-forwarded-for"] == "10.1.2.3, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-kept"] == "yes"
    assert seen["user-agent"] == "raw-test"
    for name in (
        "x-secret-hop",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "accept-encoding",
    ):
        assert name not in seen, name
    assert seen.get("connection", "keep-alive").lower() == "keep-alive"


async def test_response_hop_by_hop_removed(make_backend, serve):
    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            text="ok",
            headers={
                "Keep-Alive": "timeout=3",
                "Proxy-Authenticate": "Basic",
                "Trailer": "X-T",
                "Upgrade": "h2c",
                "X-Backend": "kept",
                "Connection": "X-Secret",
                "X-Secret": "dropped",
            },
        )

    backend = await make_backend("a", handler)
    served = await serve()
    served.gateway.update(make_table(1, [RouteSpec("/{proxy+}", "svc")], {"svc": [backend]}))
    status, headers, body = await served.request("GET", "/r")
    assert status == 200 and body == b"ok"
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["x-backend"] == "kept"
    for name in ("keep-alive", "proxy-authenticate", "trailer", "upgrade", "x-secret"):
        assert name not in lower, name


async def test_correlation_id_and_counter(make_backend, serve):
    backend = await make_backend("a")
    served = await serve()
    served.gateway.update(make_table(1, [RouteSpec("/{proxy+}", "svc")], {"svc": [backend]}))
    status, headers, _ = await served.request(
        "GET", "/c", headers={"x-correlation-id": "abc-123", "x-correlation-counter": "4"}
    )
    assert status == 200
    assert headers["x-correlation-id"] == "abc-123"
    seen = upstream_headers(backend)
    assert seen["x-correlation-id"] == "abc-123"
    assert seen["x-correlation-counter"] == "5"

    status, headers, _ = await served.request("GET", "/c")
    created = headers["x-correlation-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", created)
    seen = upstream_headers(backend)
    assert seen["x-correlation-id"] == created
    assert seen["x-correlation-counter"] == "1"

    # errors the gateway answers itself carry it too; a bad id is replaced
    status, headers, _ = await served.request(
        "GET", "/", headers={"x-correlation-id": "x" * 500, "x-correlation-counter": "nan"}
    )
    assert status == 404
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-correlation-id"])
