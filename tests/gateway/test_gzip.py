"""Gzip through a served gateway: sizes, round trips with real clients, streaming, and the
cache storing answers uncompressed."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from aiohttp import web

from stackyard.config.api import ApiConfig, CacheConfig
from stackyard.gateway import RouteSpec
from stackyard.gateway.gzip import accepts_gzip
from stackyard.gateway.policy import RoutePolicy

from .conftest import Backend, Served, make_table

Factory = Callable[..., Awaitable[Served]]
BackendFactory = Callable[..., Awaitable[Backend]]

DOCUMENT = json.dumps({"items": [{"id": i, "name": f"item {i}"} for i in range(200)]}).encode()
GZIP = {"accept-encoding": "gzip, deflate"}


async def answer(request: web.Request) -> web.StreamResponse:
    size = int(request.query.get("size", len(DOCUMENT)))
    headers = {"content-type": request.query.get("type", "application/json"), "etag": '"v1"'}
    if "encoding" in request.query:
        headers["content-encoding"] = request.query["encoding"]
    status = int(request.query.get("status", 200))
    if status == 206:
        headers["content-range"] = f"bytes 0-{size - 1}/{len(DOCUMENT)}"
    return web.Response(body=DOCUMENT[:size], headers=headers, status=status)


async def setup(
    serve: Factory, make_backend: BackendFactory, *routes: RouteSpec, **gzip_config: Any
) -> Served:
    backend = await make_backend("a", answer)
    gw = await serve(api=ApiConfig.model_validate({"gzip": gzip_config or True}))
    gw.gateway.update(make_table(1, routes or [RouteSpec("/doc", "a")], {"a": [backend]}))
    return gw


async def test_large_json_is_compressed_for_clients_that_accept_gzip(
    serve: Factory, make_backend: BackendFactory
) -> None:
    gw = await setup(serve, make_backend, min_size=500)
    status, headers, body = await gw.request("GET", "/doc", headers=GZIP)
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert headers["vary"] == "Accept-Encoding" and headers["etag"] == 'W/"v1"'
    assert int(headers["content-length"]) == len(body) < len(DOCUMENT) // 3
    assert gzip.decompress(body) == DOCUMENT

    async with httpx.AsyncClient(base_url=gw.url) as client:  # decompresses by itself
        response = await client.get("/doc")
        assert response.headers["content-encoding"] == "gzip"
        assert response.content == DOCUMENT


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("size=499", GZIP),  # below min_size
        ("", {"accept-encoding": "br"}),
        ("", {"accept-encoding": "gzip;q=0, *"}),
        ("", {"accept-encoding": "identity"}),
        ("type=image/png", GZIP),
        ("encoding=br", GZIP),  # already encoded
        ("status=206&size=1000", GZIP),  # a byte range of the identity body
    ],
)
async def test_answers_left_alone(
    serve: Factory, make_backend: BackendFactory, query: str, headers: dict[str, str]
) -> None:
    gw = await setup(serve, make_backend, min_size=500)
    status, got, body = await gw.request("GET", "/doc?" + query, headers=headers)
    assert status in (200, 206) and got.get("content-encoding") != "gzip"
    assert int(got["content-length"]) == len(body) and DOCUMENT.startswith(body)
    status, got, body = await gw.request("HEAD", "/doc", headers=GZIP)
    assert "content-encoding" not in got and body == b""


async def test_other_compressible_types(serve: Factory, make_backend: BackendFactory) -> None:
    gw = await setup(serve, make_backend, min_size=100)
    for content_type in ("text/html; charset=utf-8", "application/problem+json",
                         "image/svg+xml", "application/javascript", "application/xml"):  # fmt: skip
        _, headers, body = await gw.request("GET", f"/doc?type={quote(content_type)}", headers=GZIP)
        assert headers["content-encoding"] == "gzip", content_type
        assert gzip.decompress(body) == DOCUMENT


async def test_streamed_answers_are_compressed_chunk_by_chunk(
    serve: Factory, make_backend: BackendFactory
) -> None:
    first_seen = asyncio.Event()
    chunk = b'{"line": "' + b"x" * 2000 + b'"}\n'

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "application/x-ndjson+json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(chunk)
        await asyncio.wait_for(first_seen.wait(), 10)  # the client saw chunk 1 before chunk 2
        for _ in range(3):
            await response.write(chunk)
        await response.write_eof()
        return response

    backend = await make_backend("a", stream)
    gw = await serve(api=ApiConfig.model_validate({"gzip": {"min_size": 1000}}))
    gw.gateway.update(make_table(1, [RouteSpec("/s", "a")], {"a": [backend]}))
    decoder = zlib.decompressobj(31)
    data = b""
    async with gw.session.get(gw.url + "/s", headers=GZIP) as response:
        assert response.headers["content-encoding"] == "gzip"
        assert "content-length" not in response.headers
        async for piece in response.content.iter_any():
            data += decoder.decompress(piece)
            if data == chunk:
                first_seen.set()
    assert first_seen.is_set() and data + decoder.flush() == chunk * 4


async def test_cache_stores_uncompressed_and_compresses_per_client(
    serve: Factory, make_backend: BackendFactory
) -> None:
    route = RouteSpec("/doc", "a", policy=RoutePolicy(cache=CacheConfig()))
    gw = await setup(serve, make_backend, route, min_size=500)
    _, headers, body = await gw.request("GET", "/doc", headers=GZIP)
    assert headers["x-cache"] == "miss" and gzip.decompress(body) == DOCUMENT
    (entry,) = gw.gateway.content.cache._entries.values()
    assert entry.body == DOCUMENT
    _, headers, body = await gw.request("GET", "/doc", headers={"accept-encoding": "identity"})
    assert headers["x-cache"] == "hit" and "content-encoding" not in headers and body == DOCUMENT
    _, headers, body = await gw.request("GET", "/doc", headers=GZIP)
    assert headers["x-cache"] == "hit" and gzip.decompress(body) == DOCUMENT


def test_accept_encoding_parsing() -> None:
    assert accepts_gzip(b"gzip")
    assert accepts_gzip(b"deflate, GZIP;q=0.5")
    assert accepts_gzip(b"*")
    assert not accepts_gzip(b"gzip;q=0")
    assert not accepts_gzip(b"gzip;q=0, *;q=1")
    assert not accepts_gzip(b"br, *;q=0")
    assert not accepts_gzip(b"gzip;q=bad")
    assert not accepts_gzip(b"")


async def test_gzip_and_the_stage_throttle_follow_configure_on_the_live_table(
    serve: Factory, make_backend: BackendFactory
) -> None:
    """Each route's chain is compiled with the table; configure() (a deploy) compiles it again,
    so API-wide steps turn on and off without a new table."""
    backend = await make_backend("a", answer)
    gw = await serve()
    gw.gateway.update(make_table(1, [RouteSpec("/doc", "a")], {"a": [backend]}))
    _, headers, _ = await gw.request("GET", "/doc", headers=GZIP)
    assert "content-encoding" not in headers

    api = {"gzip": {"min_size": 500}, "throttle": {"rate": 1, "burst": 1}}
    gw.gateway.configure(ApiConfig.model_validate(api))
    status, headers, body = await gw.request("GET", "/doc", headers=GZIP)
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == DOCUMENT
    assert (await gw.request("GET", "/doc"))[0] == 429  # the burst of one is spent

    gw.gateway.configure(ApiConfig())
    status, headers, _ = await gw.request("GET", "/doc", headers=GZIP)
    assert status == 200 and "content-encoding" not in headers
