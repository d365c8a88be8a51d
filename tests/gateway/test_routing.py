"""Routing through a served gateway: params, priority, 404/405 JSON, strip_prefix, query."""

from __future__ import annotations

from stackyard.gateway import RouteSpec

from .conftest import make_table


async def test_routes_by_template_and_priority(make_backend, serve):
    items, new, files = [await make_backend(n) for n in ("items", "new", "files")]
    served = await serve()
    served.gateway.update(
        make_table(
            1,
            [
                RouteSpec("/items/{id}", "items"),
                RouteSpec("/items/new", "new"),
                RouteSpec("/files/{proxy+}", "files"),
            ],
            {"items": [items], "new": [new], "files": [files]},
        )
    )
    assert (await served.json("GET", "/items/42"))[1]["backend"] == "items"
    assert (await served.json("GET", "/items/new"))[1]["backend"] == "new"
    status, body = await served.json("GET", "/files/a/b%20c/d.txt?x=1&y=%2F")
    assert status == 200
    assert body["backend"] == "files"
    assert body["path"] == "/files/a/b%20c/d.txt?x=1&y=%2F"


async def test_404_and_405_are_json(make_backend, serve):
    backend = await make_backend("a")
    served = await serve()
    served.gateway.update(
        make_table(
            1,
            [RouteSpec("/items", "svc", methods=frozenset({"GET", "POST"}))],
            {"svc": [backend]},
        )
    )
    status, headers, body = await served.request("GET", "/nothing/here")
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert body == b'{"error":{"code":"NotFound","message":"no route matches the request path"}}'
    status, headers, _ = await served.request("DELETE", "/items")
    assert status == 405
    assert headers["Allow"] == "GET, POST"
    status, body = await served.json("DELETE", "/items")
    assert body["error"]["code"] == "MethodNotAllowed"
    assert backend.hits == 0


async def test_strip_prefix_keeps_query(make_backend, serve):
    backend = await make_backend("a")
    served = await serve()
    served.gateway.update(
        make_table(
            1,
            [
                RouteSpec("/api/{proxy+}", "svc", strip_prefix="/api"),
                RouteSpec("/v1", "svc", strip_prefix="/v1/"),
            ],
            {"svc": [backend]},
        )
    )
    _, body = await served.json("GET", "/api/orders/7?expand=lines&q=a%20b")
    assert body["path"] == "/orders/7?expand=lines&q=a%20b"
    _, body = await served.json("GET", "/v1?x=1")
    assert body["path"] == "/?x=1"


async def test_empty_table_answers_404(serve):
    served = await serve()
    status, body = await served.json("GET", "/")
    assert status == 404
    assert body["error"]["code"] == "NotFound"
