"""The response cache through a served gateway: hit/miss, key, TTL, LRU, sizes, invalidation,
and the flush endpoint of a real node."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web

from stackyard.config.api import ApiCacheConfig, ApiConfig, CacheConfig
from stackyard.gateway import RouteSpec
from stackyard.gateway.access_log import FIELDS
from stackyard.gateway.cache import ResponseCache, cache_key, key_sources
from stackyard.gateway.policy import RoutePolicy
from stackyard.testing import NodeProcess

from .conftest import Backend, Served, make_table

Factory = Callable[..., Awaitable[Served]]
BackendFactory = Callable[..., Awaitable[Backend]]


def cached(path: str = "/items/{id}", **cache: Any) -> RouteSpec:
    return RouteSpec(path, "a", policy=RoutePolicy(cache=CacheConfig(**cache)))


async def counting_backend(make_backend: BackendFactory, size: int = 0) -> Backend:
    """Answers ``{"n": <hit number>, "path": ...}`` padded to ``size`` bytes."""
    backend: Backend

    async def handler(request: web.Request) -> web.StreamResponse:
        body = json.dumps({"n": backend.hits, "path": request.raw_path})
        body += " " * max(0, size - len(body))
        headers = {"cache-control": request.headers.get("x-want-cache-control", "public")}
        status = int(request.headers.get("x-want-status", "200"))
        return web.Response(text=body, status=status, headers=headers,
                            content_type="application/json")  # fmt: skip

    backend = await make_backend("a", handler)
    return backend


async def setup(
    serve: Factory, make_backend: BackendFactory, *routes: RouteSpec, size: int = 0, **options: Any
) -> tuple[Served, Backend]:
    backend = await counting_backend(make_backend, size)
    gw = await serve(**options)
    gw.gateway.update(make_table(1, routes or [cached()], {"a": [backend]}))
    return gw, backend


async def test_second_get_is_a_hit_served_without_the_upstream(
    serve: Factory, make_backend: BackendFactory
) -> None:
    gw, backend = await setup(serve, make_backend)
    status, headers, body = await gw.request("GET", "/items/1")
    assert status == 200 and headers["x-cache"] == "miss" and json.loads(body)["n"] == 1
    status, headers, body = await gw.request("GET", "/items/1")
    assert status == 200 and headers["x-cache"] == "hit" and json.loads(body)["n"] == 1
    assert headers["age"] == "0" and headers["content-type"] == "application/json; charset=utf-8"
    assert "x-correlation-id" in headers
    assert backend.hits == 1
    status, headers, body = await gw.request("HEAD", "/items/1")
    assert status == 200 and headers["x-cache"] == "hit" and body == b""
    assert backend.hits == 1
    status, headers, body = await gw.request("GET", "/items/2")
    assert headers["x-cache"] == "miss" and json.loads(body) == {"n": 2, "path": "/items/2"}


async def test_key_uses_only_the_chosen_query_parameters_and_headers(
    serve: Factory, make_backend: BackendFactory
) -> None:
    gw, backend = await setup(serve, make_backend, cached(key=["query.lang", "header.accept"]))
    assert (await gw.json("GET", "/items/1?lang=en"))[1]["n"] == 1
    assert (await gw.json("GET", "/items/1?lang=fr"))[1]["n"] == 2
    assert (await gw.json("GET", "/items/1?lang=en&page=3"))[1]["n"] == 1  # page: not in key
    assert (await gw.json("GET", "/items/1?lang=en", headers={"accept": "text/csv"}))[1]["n"] == 3
    assert (await gw.json("GET", "/items/1?lang=en", headers={"accept": "text/csv"}))[1]["n"] == 3
    assert backend.hits == 3


async def test_methods_not_cached_pass_through_without_x_cache(
    serve: Factory, make_backend: BackendFactory
) -> None:
    gw, backend = await setup(serve, make_backend)
    for _ in range(2):
        status, headers, _ = await gw.request("POST", "/items/1", data=b"{}")
        assert status == 200 and "x-cache" not in headers
    status, headers, _ = await gw.request("HEAD", "/items/9")  # HEAD miss: passes, not stored
    assert status == 200 and headers["x-cache"] == "miss"
    assert (await gw.request("GET", "/items/9"))[1]["x-cache"] == "miss"
    assert backend.hits == 4


async def test_ttl_expiry(serve: Factory, make_backend: BackendFactory) -> None:
    gw, backend = await setup(serve, make_backend, cached(ttl=0.3))
    assert (await gw.request("GET", "/items/1"))[1]["x-cache"] == "miss"
    assert (await gw.request("GET", "/items/1"))[1]["x-cache"] == "hit"
    await asyncio.sleep(0.4)
    assert (await gw.request("GET", "/items/1"))[1]["x-cache"] == "miss"
    assert backend.hits == 2


async def test_only_storable_200_answers_are_kept(
    serve: Factory, make_backend: BackendFactory
) -> None:
    gw, backend = await setup(serve, make_backend)
    for header, value in [
        ("x-want-cache-control", "no-store"),
        ("x-want-cache-control", "private, max-age=60"),
        ("x-want-status", "404"),
    ]:
        before = backend.hits
        for _ in range(2):
            _, headers, _ = await gw.request("GET", "/items/1", headers={header: value})
            assert headers["x-cache"] == "miss"
        assert backend.hits == before + 2


async def test_lru_eviction_within_max_bytes(serve: Factory, make_backend: BackendFactory) -> None:
    # each entry ≈ 1000 body + headers + 200 bytes: two fit, three do not
    api = ApiConfig(cache=ApiCacheConfig(max_bytes=3000))
    gw, _ = await setup(serve, make_backend, size=1000, api=api)
    for path in ("/items/a", "/items/b"):
        assert (await gw.request("GET", path))[1]["x-cache"] == "miss"
    assert (await gw.request("GET", "/items/a"))[1]["x-cache"] == "hit"  # a: most recent
    assert (await gw.request("GET", "/items/c"))[1]["x-cache"] == "miss"  # evicts b
    assert (await gw.request("GET", "/items/a"))[1]["x-cache"] == "hit"
    assert (await gw.request("GET", "/items/b"))[1]["x-cache"] == "miss"  # evicts c
    assert (await gw.request("GET", "/items/c"))[1]["x-cache"] == "miss"
    cache = gw.gateway.content.cache
    assert len(cache) == 2 and cache.size <= 3000


async def test_answers_larger_than_max_entry_stream_through_uncached(
    serve: Factory, make_backend: BackendFactory
) -> None:
    chunk = b"x" * 1000

    async def streaming(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(int(request.query["n"])):
            await response.write(chunk)
            await asyncio.sleep(0.01)
        await response.write_eof()
        return response

    backend = await make_backend("a", streaming)
    gw = await serve(api=ApiConfig(cache=ApiCacheConfig(max_entry_bytes=4500)))
    gw.gateway.update(make_table(1, [cached("/s", key=["query.n"])], {"a": [backend]}))
    for expected in ("miss", "miss"):  # 20 kB, streamed, never stored
        status, headers, body = await gw.request("GET", "/s?n=20")
        assert status == 200 and body == chunk * 20 and headers["x-cache"] == expected
    for expected in ("miss", "hit"):  # 4 kB, streamed in chunks, stored whole
        status, headers, body = await gw.request("GET", "/s?n=4")
        assert status == 200 and body == chunk * 4 and headers["x-cache"] == expected
    assert backend.hits == 3


async def test_max_age_0_refreshes_only_for_plans_with_cache_invalidation(
    serve: Factory, make_backend: BackendFactory
) -> None:
    api = ApiConfig.model_validate(
        {"usage_plans": {"admin": {"cache_invalidation": True}, "basic": {}}}
    )
    route = RouteSpec("/items/{id}", "a",
                      policy=RoutePolicy(api_key=True, cache=CacheConfig()))  # fmt: skip
    gw, backend = await setup(serve, make_backend, route, api=api)
    _, admin = await gw.gateway.usage.create_key("ops", "admin")
    _, basic = await gw.gateway.usage.create_key("shop", "basic")
    refresh = {"cache-control": "max-age=0"}

    assert (await gw.json("GET", "/items/1", headers={"x-api-key": basic}))[1]["n"] == 1
    status, headers, body = await gw.request("GET", "/items/1",
                                             headers={"x-api-key": basic, **refresh})  # fmt: skip
    assert status == 200 and headers["x-cache"] == "hit" and json.loads(body)["n"] == 1  # ignored
    status, headers, body = await gw.request("GET", "/items/1",
                                             headers={"x-api-key": admin, **refresh})  # fmt: skip
    assert status == 200 and headers["x-cache"] == "miss"
    assert json.loads(body)["n"] == 2  # refreshed
    _, headers, body = await gw.request("GET", "/items/1", headers={"x-api-key": basic})
    assert headers["x-cache"] == "hit" and json.loads(body)["n"] == 2
    assert backend.hits == 2


async def test_max_age_0_refreshes_for_tokens_with_the_invalidate_scope(
    serve: Factory, make_backend: BackendFactory
) -> None:
    secret = "s3cr3t-for-tests-only-32-bytes-long!"
    api = ApiConfig.model_validate({"authorizers": {"users": {"type": "jwt", "secret": secret}}})
    route = RouteSpec("/items/{id}", "a",
                      policy=RoutePolicy(authorizer="users", cache=CacheConfig()))  # fmt: skip
    gw, backend = await setup(serve, make_backend, route, api=api)

    def bearer(scope: str) -> dict[str, str]:
        token = jwt.encode({"sub": "u", "scope": scope, "exp": time.time() + 60}, secret, "HS256")
        return {"authorization": f"Bearer {token}", "cache-control": "max-age=0"}

    assert (await gw.json("GET", "/items/1", headers=bearer("read")))[1]["n"] == 1
    assert (await gw.json("GET", "/items/1", headers=bearer("read")))[1]["n"] == 1
    allowed = bearer("read stackyard:invalidate-cache")
    assert (await gw.json("GET", "/items/1", headers=allowed))[1]["n"] == 2
    assert backend.hits == 2


async def test_hits_of_a_route_without_earlier_steps_come_before_the_route_match(
    serve: Factory, make_backend: BackendFactory
) -> None:
    """A plain cached route's hits are answered by the early step, as the route would: same
    headers, ``HEAD`` alike (``304``: test_static), and logged under their route."""
    entries: list[tuple[Any, ...]] = []
    gw, backend = await setup(serve, make_backend, access_log=entries.append)
    assert (await gw.request("GET", "/items/1"))[1]["x-cache"] == "miss"
    assert gw.gateway.content.front.paths.keys() == {("GET", "/items/1")}
    status, headers, body = await gw.request("GET", "/items/1")
    assert status == 200 and headers["x-cache"] == "hit" and json.loads(body)["n"] == 1
    assert headers["age"] == "0" and "x-correlation-id" in headers
    assert (await gw.request("HEAD", "/items/1"))[2] == b""
    assert (await gw.request("POST", "/items/1", data=b"{}"))[0] == 200  # not cached: not noted
    assert gw.gateway.content.front.paths.keys() == {("GET", "/items/1"), ("HEAD", "/items/1")}
    route, status_at = FIELDS.index("route"), FIELDS.index("status")
    assert [(e[route], e[status_at]) for e in entries] == [("/items/{id}", 200)] * 4
    assert backend.hits == 2


async def test_a_table_change_ends_early_hits_of_a_route_that_now_checks_keys(
    serve: Factory, make_backend: BackendFactory
) -> None:
    api = ApiConfig.model_validate({"usage_plans": {"basic": {}}})
    gw, backend = await setup(serve, make_backend, api=api)
    await gw.request("GET", "/items/1")
    assert (await gw.request("GET", "/items/1"))[1]["x-cache"] == "hit"
    keyed = RouteSpec("/items/{id}", "a", policy=RoutePolicy(api_key=True, cache=CacheConfig()))
    gw.gateway.update(make_table(2, [keyed], {"a": [backend]}))
    assert not gw.gateway.content.front.paths
    status, _, body = await gw.request("GET", "/items/1")
    assert status == 403, body
    _, raw = await gw.gateway.usage.create_key("k", "basic")
    status, headers, _ = await gw.request("GET", "/items/1", headers={"x-api-key": raw})
    assert status == 200 and headers["x-cache"] == "hit"  # the store outlives the table
    assert (await gw.request("GET", "/items/1"))[0] == 403  # and the key is still checked
    assert not gw.gateway.content.front.paths


async def test_routes_of_two_hosts_on_one_path_keep_their_own_answers(
    serve: Factory, make_backend: BackendFactory
) -> None:
    backend = await counting_backend(make_backend)
    other = await counting_backend(make_backend)
    gw = await serve()
    routes = [
        RouteSpec("/items/{id}", "a", host="a.example", policy=RoutePolicy(cache=CacheConfig())),
        RouteSpec("/items/{id}", "b", host="b.example", policy=RoutePolicy(cache=CacheConfig())),
    ]
    gw.gateway.update(make_table(1, routes, {"a": [backend], "b": [other]}))
    for expected in ("miss", "hit"):
        for host in ("a.example", "b.example"):
            status, headers, _ = await gw.request("GET", "/items/1", headers={"host": host})
            assert status == 200 and headers["x-cache"] == expected
    assert backend.hits == 1 and other.hits == 1
    assert not gw.gateway.content.front.paths  # the path alone does not tell the route


def test_store_bounds_and_keys() -> None:
    from stackyard.gateway.cache import Entry

    cache = ResponseCache(ApiCacheConfig(max_bytes=2000, max_entry_bytes=500))
    assert not cache.put(("GET", "/big"), Entry(200, [], b"x" * 501, 0.0, 10))
    assert cache.put(("GET", "/a"), Entry(200, [], b"x" * 500, 0.0, 10))
    assert cache.get(("GET", "/a"), 5.0) is not None
    assert cache.get(("GET", "/a"), 10.0) is None and len(cache) == 0 and cache.size == 0
    for i in range(10):
        cache.put(("GET", f"/{i}"), Entry(200, [], b"x" * 400, 0.0, 10))
    assert len(cache) == 3 and cache.size <= 2000
    assert cache.flush() == 3 and cache.size == 0
    scope = {"raw_path": b"/p?b=2&a=1&a=3", "query_string": b"b=2&a=1&a=3",
             "headers": [(b"x-t", b"1")]}  # fmt: skip
    config = CacheConfig(key=["query.a", "header.X-T", "query.zz"])
    assert cache_key(scope, "GET", "/p", key_sources(config)) == ("GET", "/p", "1&3", "1", "")


def _call(method: str, url: str) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


STACK = """
version: 1
name: cached
api:
  cache: {max_bytes: 100000}
  routes:
    - path: /items
      methods: [GET]
      cache: 60
      mock: {status: 200, body: {items: [1, 2, 3]}}
"""


def test_flush_through_the_admin_api_of_a_real_node(tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    stack.mkdir()
    (stack / "stackyard.yml").write_text(STACK)
    with NodeProcess(stack, data_dir=tmp_path / "data") as node:
        node.wait_ready(60)
        items = node.gateway_url + "/items"
        assert _call("GET", items)[1]["x-cache"] == "miss"
        status, headers, body = _call("GET", items)
        assert status == 200 and headers["x-cache"] == "hit" and body == {"items": [1, 2, 3]}
        admin = node.control_url + "/_stackyard/api/cache"
        status, _, body = _call("GET", admin)
        assert status == 200 and body["entries"] == 1 and body["max_bytes"] == 100000
        assert _call("DELETE", admin + "?stage=prod")[0] == 404
        assert _call("DELETE", admin + "?stage=dev")[2] == {"stage": "dev", "flushed": 1}
        assert _call("GET", items)[1]["x-cache"] == "miss"
        assert _call("DELETE", admin)[2] == {"stage": "dev", "flushed": 1}
        assert _call("DELETE", admin)[2] == {"stage": "dev", "flushed": 0}
