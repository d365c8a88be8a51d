"""The ``bucket`` integration through a served gateway, over a real Buckets component: keys,
index and error documents, validators and 304s, ranges, HEAD, and the response cache."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from stackyard.config.api import CacheConfig
from stackyard.gateway import RouteSpec
from stackyard.gateway.policy import RoutePolicy
from stackyard.gateway.static import object_key
from stackyard.storage.buckets import Buckets

from .conftest import Served, make_table

Factory = Callable[..., Awaitable[Served]]

SITE = {
    "index.html": (b"<h1>home</h1>", {"content-type": "text/html"}),
    "404.html": (b"<h1>not here</h1>", {"content-type": "text/html"}),
    "app.js": (b"console.log(1)", {}),  # no stored type: guessed from the name
    "style.css": (b"body{}", {"content-type": "text/css", "cache-control": "max-age=3600"}),
    "docs/index.html": (b"<h1>docs</h1>", {"content-type": "text/html"}),
    "a b.txt": (b"spaced", {"content-type": "text/plain"}),
    "digits.txt": (b"0123456789", {"content-type": "text/plain"}),
}


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def put(buckets: Buckets, key: str, data: bytes, headers: dict[str, str]) -> None:
    await buckets.put_object("site", key, _chunks(data), headers=headers, metadata={})


@pytest.fixture
async def buckets(tmp_path: Path) -> AsyncIterator[Buckets]:
    service = Buckets(tmp_path)
    await service.start()
    await service.create_bucket("site", "us-east-1")
    for key, (data, headers) in SITE.items():
        await put(service, key, data, headers)
    yield service
    await service.stop()


def site_route(path: str = "/site/{proxy+}", **options: Any) -> RouteSpec:
    cache = options.pop("cache", None)
    policy = RoutePolicy(cache=cache) if cache is not None else RoutePolicy()
    fields: dict[str, Any] = {"bucket": "site", "index": "index.html", "error": "404.html"}
    fields.update(options)
    return RouteSpec(path, integration="bucket", policy=policy, **fields)


async def served(serve: Factory, buckets: Buckets, *routes: RouteSpec) -> Served:
    gw = await serve(buckets=buckets)
    routes = routes or (site_route(), site_route("/site"), site_route("/site/"))
    gw.gateway.update(make_table(1, routes, {}))
    return gw


def test_object_key_from_the_greedy_parameter() -> None:
    route = site_route()
    assert object_key(route, {"proxy": "a/b.txt"}) == "a/b.txt"
    assert object_key(route, {"proxy": "docs/"}) == "docs/index.html"
    assert object_key(route, {}) == "index.html"
    assert object_key(route, {"proxy": "a%20b.txt"}) == "a b.txt"
    assert object_key(site_route(index=""), {"proxy": "docs/"}) == "docs/"


async def test_get_serves_the_object_with_its_validators(serve: Factory, buckets: Buckets) -> None:
    gw = await served(serve, buckets)
    status, headers, body = await gw.request("GET", "/site/style.css")
    assert (status, body) == (200, b"body{}")
    assert headers["content-type"] == "text/css"
    assert headers["etag"] == f'"{hashlib.md5(b"body{}").hexdigest()}"'
    assert headers["last-modified"].endswith(" GMT")
    assert headers["cache-control"] == "max-age=3600"  # the object's own
    assert headers["accept-ranges"] == "bytes"
    assert headers["content-length"] == "6"


async def test_default_cache_control_and_guessed_content_type(
    serve: Factory, buckets: Buckets
) -> None:
    gw = await served(serve, buckets)
    status, headers, body = await gw.request("GET", "/site/app.js")
    assert (status, body) == (200, b"console.log(1)")
    assert headers["cache-control"] == "public, max-age=60"
    assert headers["content-type"] in ("text/javascript", "application/javascript")


async def test_index_document_for_the_root_and_folders(serve: Factory, buckets: Buckets) -> None:
    gw = await served(serve, buckets)
    for path in ("/site", "/site/"):
        status, headers, body = await gw.request("GET", path)
        assert (status, body) == (200, b"<h1>home</h1>"), path
    status, _, body = await gw.request("GET", "/site/docs/")
    assert (status, body) == (200, b"<h1>docs</h1>")
    status, headers, _ = await gw.request("GET", "/site/docs?x=1", allow_redirects=False)
    assert (status, headers["location"]) == (302, "/site/docs/?x=1")


async def test_missing_key_gets_the_error_document_with_404(
    serve: Factory, buckets: Buckets
) -> None:
    gw = await served(serve, buckets)
    status, headers, body = await gw.request("GET", "/site/nope.html")
    assert (status, body) == (404, b"<h1>not here</h1>")
    assert headers["content-type"] == "text/html"
    status, _, body = await gw.request("HEAD", "/site/nope.html")
    assert (status, body) == (404, b"")


async def test_missing_key_without_error_document_is_a_json_404(
    serve: Factory, buckets: Buckets
) -> None:
    gw = await served(serve, buckets, site_route(error=""))
    status, _, body = await gw.request("GET", "/site/nope.html")
    assert status == 404
    assert json.loads(body)["error"]["code"] == "NotFound"


async def test_a_missing_bucket_is_a_502(serve: Factory, buckets: Buckets) -> None:
    gw = await served(serve, buckets, site_route(bucket="gone"))
    status, _, body = await gw.request("GET", "/site/index.html")
    assert status == 502
    assert json.loads(body)["error"]["code"] == "NoSuchBucket"


async def test_percent_encoded_keys(serve: Factory, buckets: Buckets) -> None:
    gw = await served(serve, buckets)
    status, _, body = await gw.request("GET", "/site/a%20b.txt")
    assert (status, body) == (200, b"spaced")


async def test_conditional_requests_answer_304(serve: Factory, buckets: Buckets) -> None:
    gw = await served(serve, buckets)
    _, headers, _ = await gw.request("GET", "/site/index.html")
    etag, modified = headers["etag"], headers["last-modified"]
    status, h304, body = await gw.request(
        "GET", "/site/index.html", headers={"If-None-Match": etag}
    )
    assert (status, body) == (304, b"")
    assert h304["etag"] == etag and h304["cache-control"] == "public, max-age=60"
    status, _, _ = await gw.request("GET", "/site/index.html", headers={"If-None-Match": '"x", *'})
    assert status == 304
    status, _, _ = await gw.request("GET", "/site/", headers={"If-Modified-Since": modified})
    assert status == 304
    # a stale validator, an old date, and If-None-Match winning over If-Modified-Since: 200
    status, _, _ = await gw.request("GET", "/site/index.html", headers={"If-None-Match": '"x"'})
    assert status == 200
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    status, _, _ = await gw.request("GET", "/site/index.html", headers={"If-Modified-Since": old})
    assert status == 200
    both = {"If-None-Match": '"x"', "If-Modified-Since": modified}
    status, _, _ = await gw.request("GET", "/site/index.html", headers=both)
    assert status == 200
    status, _, _ = await gw.request(
        "GET", "/site/index.html", headers={"If-Modified-Since": "not a date"}
    )
    assert status == 200


async def test_head_has_the_headers_and_no_body(serve: Factory, buckets: Buckets) -> None:
    gw = await served(serve, buckets)
    status, headers, body = await gw.request("HEAD", "/site/digits.txt")
    assert (status, body, headers["content-length"]) == (200, b"", "10")


async def test_ranges(serve: Factory, buckets: Buckets) -> None:
    gw = await served(serve, buckets)
    status, headers, body = await gw.request(
        "GET", "/site/digits.txt", headers={"Range": "bytes=2-4"}
    )
    assert (status, body, headers["content-range"]) == (206, b"234", "bytes 2-4/10")
    status, _, body = await gw.request("GET", "/site/digits.txt", headers={"Range": "bytes=-3"})
    assert (status, body) == (206, b"789")
    status, _, body = await gw.request("GET", "/site/digits.txt", headers={"Range": "bytes=7-"})
    assert (status, body) == (206, b"789")
    status, headers, _ = await gw.request("GET", "/site/digits.txt", headers={"Range": "bytes=20-"})
    assert (status, headers["content-range"]) == (416, "bytes */10")


async def test_other_methods_are_refused(serve: Factory, buckets: Buckets) -> None:
    gw = await served(serve, buckets)
    status, headers, _ = await gw.request("POST", "/site/index.html", data=b"x")
    assert status == 405
    assert set(headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}


async def test_a_large_object_streams(serve: Factory, buckets: Buckets) -> None:
    data = bytes(range(256)) * (12 * 1024)  # 3 MiB: several read chunks
    await put(buckets, "big.bin", data, {})
    gw = await served(serve, buckets)
    status, headers, body = await gw.request("GET", "/site/big.bin")
    assert status == 200 and body == data
    assert headers["content-type"] == "application/octet-stream"


async def test_through_the_response_cache(serve: Factory, buckets: Buckets) -> None:
    gw = await served(serve, buckets, site_route(cache=CacheConfig(ttl=60)))
    status, headers, body = await gw.request("GET", "/site/index.html")
    assert (status, headers["x-cache"], body) == (200, "miss", b"<h1>home</h1>")
    # the cache answers from now on, even after the object changed in the bucket
    await put(buckets, "index.html", b"<h1>new</h1>", {"content-type": "text/html"})
    status, hit, body = await gw.request("GET", "/site/index.html")
    assert (status, hit["x-cache"], body) == (200, "hit", b"<h1>home</h1>")
    assert hit["etag"] == headers["etag"] and hit["content-type"] == "text/html"
    # a hit still answers the client's validators with 304
    status, h304, body = await gw.request(
        "GET", "/site/index.html", headers={"If-None-Match": headers["etag"]}
    )
    assert (status, h304["x-cache"], body) == (304, "hit", b"")
    assert "content-length" not in h304 or h304["content-length"] == "0"
    status, _, _ = await gw.request(
        "GET", "/site/index.html", headers={"If-Modified-Since": headers["last-modified"]}
    )
    assert status == 304
    # ranges skip the cache: the origin's 206 of the current object
    status, _, body = await gw.request("GET", "/site/index.html", headers={"Range": "bytes=4-6"})
    assert (status, body) == (206, b"new")
    # 404 error documents are not kept
    for _ in range(2):
        status, headers, _ = await gw.request("GET", "/site/nope")
        assert (status, headers["x-cache"]) == (404, "miss")
    assert len(gw.gateway.content.cache) == 1
