"""Transforms through a served gateway: every kind of rewrite as a real backend receives it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jwt
import pytest
from aiohttp import web

from stackyard.config.api import ApiConfig, TransformConfig
from stackyard.gateway import Gateway, RouteSpec
from stackyard.gateway.errors import InvalidRoute
from stackyard.gateway.policy import RoutePolicy
from stackyard.testing import NodeProcess

from .conftest import Backend, Served, make_table

Factory = Callable[..., Awaitable[Served]]
BackendFactory = Callable[..., Awaitable[Backend]]


async def echo(request: web.Request) -> web.StreamResponse:
    """The request as the backend saw it, with its body, and two headers to transform away."""
    body = await request.read()
    info = {
        "path": request.raw_path,
        "headers": {k.lower(): v for k, v in request.headers.items()},
        "body": body.decode(),
    }
    headers = {"x-internal": "secret", "server-timing": "db;dur=3"}
    return web.json_response(info, headers=headers)


def transformed(
    path: str, config: dict[str, Any], variables: Mapping[str, str] | None = None, **spec: Any
) -> RouteSpec:
    return RouteSpec(
        path, "a",
        policy=RoutePolicy(transform=TransformConfig.model_validate(config),
                           authorizer=spec.pop("authorizer", None)),
        stage="test",
        stage_variables=MappingProxyType(dict(variables or {})),
        **spec,
    )  # fmt: skip


async def setup(
    serve: Factory, make_backend: BackendFactory, *routes: RouteSpec, **options: Any
) -> Served:
    backend = await make_backend("a", echo)
    gw = await serve(**options)
    gw.gateway.update(make_table(1, routes, {"a": [backend]}))
    return gw


async def test_request_headers_and_query_parameters(
    serve: Factory, make_backend: BackendFactory
) -> None:
    config = {
        "request": {
            "headers": {
                "set": {
                    "X-Request-Id": "$context.requestId",
                    "X-Stage": "${context.stage}-$stageVariables.region",
                    "X-Caller": "$context.identity.sourceIp $context.httpMethod $context.path",
                    "X-Token": "Bearer $request.header.x-legacy-token",
                    "X-Item": "$request.path.id/$request.querystring.q",
                },
                "remove": ["X-Legacy-Token", "Cookie"],
            },
            "query": {"set": {"api_version": "2", "lang": "$input.params('lang')"},
                      "remove": ["debug"]},
        }
    }  # fmt: skip
    gw = await setup(serve, make_backend,
                     transformed("/items/{id}", config, {"region": "eu"}))  # fmt: skip
    headers = {"x-legacy-token": "t0k", "cookie": "a=b", "x-correlation-id": "req-1"}
    status, seen = await gw.json("GET", "/items/7?q=red&debug=1&lang=fr&keep=1", headers=headers)
    assert status == 200
    got = seen["headers"]
    assert got["x-request-id"] == "req-1"
    assert got["x-stage"] == "test-eu"
    assert got["x-caller"] == "127.0.0.1 GET /items/7"
    assert got["x-token"] == "Bearer t0k"
    assert got["x-item"] == "7/red"
    assert "x-legacy-token" not in got and "cookie" not in got
    assert seen["path"] == "/items/7?q=red&keep=1&api_version=2&lang=fr"


async def test_values_cannot_inject_header_lines(
    serve: Factory, make_backend: BackendFactory
) -> None:
    config = {"request": {"headers": {"set": {"X-Q": "$request.querystring.q"}}}}
    gw = await setup(serve, make_backend, transformed("/x", config))
    status, seen = await gw.json("GET", "/x?q=a%0d%0aX-Evil:%201")
    assert status == 200 and seen["headers"]["x-q"] == "aX-Evil: 1"
    assert "x-evil" not in seen["headers"]


async def test_path_rewrite_with_parameters(serve: Factory, make_backend: BackendFactory) -> None:
    routes = [
        transformed("/api/items/{id}", {"request": {"path": "/v2/things/{id}/detail"}},
                    strip_prefix="/api"),
        transformed("/files/{proxy+}", {"request": {"path": "/storage/{proxy}"}}),
    ]  # fmt: skip
    gw = await setup(serve, make_backend, *routes)
    assert (await gw.json("GET", "/api/items/a%2Fb?x=1"))[1][
        "path"
    ] == "/v2/things/a%2Fb/detail?x=1"
    assert (await gw.json("GET", "/files/a/b%20c.txt"))[1]["path"] == "/storage/a/b%20c.txt"


async def test_request_body_mapping_template(serve: Factory, make_backend: BackendFactory) -> None:
    template = """{
  "order": $input.json('$.order'),
  "first": "$input.path('$.order.items[0].sku')",
  "count": $input.path('$.order.items').size(),
  "skus": [#foreach($i in $input.path('$.order.items'))"$i.sku"#if($foreach.hasNext),#end#end],
  "note": "$util.escapeJavaScript($input.path('$.note'))",
  "user": "$context.authorizer.claims.sub",
  "missing": "$input.path('$.nothing.here')",
  "stage": "$stageVariables.region"
}"""
    secret = "s3cr3t-for-tests-only-32-bytes-long!"
    api = ApiConfig.model_validate({"authorizers": {"users": {"type": "jwt", "secret": secret}}})
    route = transformed("/orders", {"request": {"body": template}}, {"region": "eu"},
                        authorizer="users")  # fmt: skip
    gw = await setup(serve, make_backend, route, api=api)
    token = jwt.encode({"sub": "alice", "exp": time.time() + 60}, secret, "HS256")
    order = {"order": {"items": [{"sku": "a1"}, {"sku": "b2"}]}, "note": 'say "hi"\n'}
    status, seen = await gw.json(
        "POST", "/orders", json=order, headers={"authorization": f"Bearer {token}"}
    )
    assert status == 200
    mapped = json.loads(seen["body"])
    assert mapped == {
        "order": order["order"],
        "first": "a1",
        "count": 2,
        "skus": ["a1", "b2"],
        "note": 'say "hi"\n',
        "user": "alice",
        "missing": "",
        "stage": "eu",
    }
    assert seen["headers"]["content-length"] == str(len(seen["body"].encode()))
    assert seen["headers"]["content-type"] == "application/json"


async def test_response_headers_and_body_mapping(
    serve: Factory, make_backend: BackendFactory
) -> None:
    config = {
        "response": {
            "headers": {"set": {"X-Stage": "$context.stage", "Cache-Control": "max-age=60"},
                        "remove": ["X-Internal"]},
            "body": '{"seen_path": $input.json(\'$.path\'), "id": "$input.params(\'id\')"}',
        }
    }  # fmt: skip
    gw = await setup(serve, make_backend, transformed("/items/{id}", config))
    status, headers, body = await gw.request("GET", "/items/42?z=1")
    assert status == 200
    assert json.loads(body) == {"seen_path": "/items/42?z=1", "id": "42"}
    assert headers["content-length"] == str(len(body))
    assert headers["x-stage"] == "test" and headers["cache-control"] == "max-age=60"
    assert "x-internal" not in headers and headers["server-timing"] == "db;dur=3"


async def test_answers_over_the_body_limit_pass_unmapped(
    serve: Factory, make_backend: BackendFactory
) -> None:
    config = {"response": {"headers": {"set": {"x-mapped": "yes"}}, "body": '{"mapped": true}'}}
    gw = await setup(serve, make_backend, transformed("/items/{id}", config), max_body_size=64)
    status, headers, body = await gw.request("GET", "/items/42")
    assert status == 200
    assert json.loads(body)["path"] == "/items/42"  # the backend's own answer, whole
    assert headers["content-length"] == str(len(body))
    assert headers["x-mapped"] == "yes"  # headers are still rewritten


@pytest.mark.parametrize(
    "config",
    [
        {"request": {"body": "#if($input.body)"}},
        {"request": {"headers": {"set": {"X": "${context.stage"}}}},
        {"request": {"query": {"set": {"q": "#foreach($x on $y)#end"}}}},
        {"request": {"path": "/v2/{nope}"}},
        {"request": {"path": "relative/{id}"}},
        {"response": {"body": "#end"}},
        {"response": {"headers": {"set": {"X": "$input.json('$.a'"}}}},
    ],
)
def test_bad_templates_are_refused_when_the_table_is_compiled(config: dict[str, Any]) -> None:
    gateway = Gateway()
    good = make_table(1, [transformed("/items/{id}", {"request": {"path": "/x/{id}"}})], {"a": []})
    gateway.update(good)
    with pytest.raises(InvalidRoute):
        gateway.update(make_table(2, [transformed("/items/{id}", config)], {"a": []}))
    assert gateway.table is good


GOOD_STACK = """
version: 1
name: mapped
api:
  routes:
    - path: /hello/{name}
      methods: [GET]
      mock: {status: 200, body: {hello: world}}
      transform:
        response:
          headers: {set: {x-greeting: "hi $request.path.name on $context.stage"}}
"""


def _post(url: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_real_node_refuses_bad_templates_at_start_and_on_deploy(tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    stack.mkdir()
    (stack / "stackyard.yml").write_text(GOOD_STACK.replace("$context.stage", "#end"))
    bad = NodeProcess(stack, data_dir=tmp_path / "bad").start()
    assert bad.process is not None and bad.process.wait(60) != 0
    assert "route /hello/{name}: transform response header 'x-greeting'" in bad.output()

    (stack / "stackyard.yml").write_text(GOOD_STACK)
    with NodeProcess(stack, data_dir=tmp_path / "data") as node:
        node.wait_ready(60)
        with urllib.request.urlopen(node.gateway_url + "/hello/ann", timeout=10) as response:
            assert response.headers["x-greeting"] == "hi ann on dev"
        (stack / "stackyard.yml").write_text(GOOD_STACK.replace("$context.stage", "#if("))
        url = f"{node.control_url}/_stackyard/deploy?path={stack}"
        for query in ("&dry_run=1", ""):
            status, body = _post(url + query)
            assert status == 409 and body["error"]["code"] == "DeployFailed", body
            assert "route /hello/{name}" in body["error"]["message"]
        with urllib.request.urlopen(node.gateway_url + "/hello/bo", timeout=10) as response:
            assert response.headers["x-greeting"] == "hi bo on dev"
