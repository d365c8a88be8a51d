"""Request validation through a served gateway: required parameters, JSON bodies against
schemas (inline and files, drafts 4 and 2020-12), error details, and fuzzed bodies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackyard.config.api import MockConfig, TransformConfig, ValidationConfig
from stackyard.gateway import Gateway, RouteSpec
from stackyard.gateway.errors import InvalidRoute
from stackyard.gateway.policy import RoutePolicy
from stackyard.gateway.table import RouteTable

from .conftest import Backend, Served, make_table

Factory = Callable[..., Awaitable[Served]]
BackendFactory = Callable[..., Awaitable[Backend]]

ORDER = {
    "type": "object",
    "required": ["item", "quantity"],
    "properties": {
        "item": {"type": "string", "minLength": 1},
        "quantity": {"type": "integer", "minimum": 1},
        "email": {"type": "string", "format": "email"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}


async def body_echo(request: web.Request) -> web.StreamResponse:
    return web.Response(body=await request.read(), content_type="application/octet-stream")


def validated(path: str = "/orders", service: str = "a", **config: Any) -> RouteSpec:
    return RouteSpec(path, service, policy=RoutePolicy(validation=ValidationConfig(**config)))


async def setup(
    serve: Factory, make_backend: BackendFactory, route: RouteSpec, **options: Any
) -> tuple[Served, Backend]:
    backend = await make_backend("a", body_echo)
    gw = await serve(**options)
    gw.gateway.update(make_table(1, [route], {"a": [backend]}))
    return gw, backend


async def test_required_query_parameters_and_headers(
    serve: Factory, make_backend: BackendFactory
) -> None:
    route = validated(query=["page", "lang"], headers=["X-Tenant"])
    gw, backend = await setup(serve, make_backend, route)
    status, body = await gw.json("GET", "/orders?lang=&other=1")
    assert status == 400
    assert body["error"]["code"] == "BadRequestParameters"
    assert body["error"]["details"] == [
        {"path": "query.page", "message": "required, missing"},
        {"path": "query.lang", "message": "required, missing"},
        {"path": "header.x-tenant", "message": "required, missing"},
    ]
    status, _, _ = await gw.request("GET", "/orders?lang=en&page=2", headers={"x-tenant": "t"})
    assert status == 200 and backend.hits == 1


async def test_valid_body_reaches_the_upstream_unchanged(
    serve: Factory, make_backend: BackendFactory
) -> None:
    gw, backend = await setup(serve, make_backend, validated(body=ORDER))
    order = json.dumps({"item": "pen", "quantity": 2, "email": "a@example.com"}).encode()
    status, _, body = await gw.request("POST", "/orders", data=order)
    assert status == 200 and body == order

    async def chunks() -> Any:  # chunked upload: buffered, checked, replayed
        yield order[:5]
        await asyncio.sleep(0.01)
        yield order[5:]

    status, _, body = await gw.request("POST", "/orders", data=chunks())
    assert status == 200 and body == order
    assert backend.hits == 2


async def test_invalid_bodies_list_every_problem(
    serve: Factory, make_backend: BackendFactory
) -> None:
    gw, backend = await setup(serve, make_backend, validated(body=ORDER))
    bad = {"item": "", "quantity": 0, "email": "nope", "tags": ["a", 3], "x": 1}
    status, body = await gw.json("POST", "/orders", json=bad)
    assert status == 400 and body["error"]["code"] == "BadRequestBody"
    details = {(d["path"], d["message"]) for d in body["error"]["details"]}
    assert details == {
        ("$", "Additional properties are not allowed ('x' was unexpected)"),
        ("$.item", "'' should be non-empty"),
        ("$.quantity", "0 is less than the minimum of 1"),
        ("$.email", "'nope' is not a 'email'"),
        ("$.tags[1]", "3 is not of type 'string'"),
    }
    status, body = await gw.json("POST", "/orders", data=b"{not json")
    assert status == 400 and body["error"]["details"][0]["path"] == "$"
    assert body["error"]["details"][0]["message"].startswith("the body is not JSON")
    status, body = await gw.json("POST", "/orders")
    assert status == 400
    assert body["error"]["details"] == [{"path": "$", "message": "a JSON body is required"}]
    status, body = await gw.json("POST", "/orders", data=b"[" * 100_000)
    assert status == 400
    assert backend.hits == 0
    status, _, _ = await gw.request("GET", "/orders")  # no body on a GET: not checked
    assert status == 200 and backend.hits == 1


async def test_body_limit_applies(serve: Factory, make_backend: BackendFactory) -> None:
    gw, backend = await setup(serve, make_backend, validated(body=ORDER), max_body_size=1000)
    status, body = await gw.json("POST", "/orders", data=b" " * 2000)
    assert status == 413 and body["error"]["code"] == "PayloadTooLarge"
    assert backend.hits == 0


async def test_schema_files_and_drafts(
    serve: Factory, make_backend: BackendFactory, tmp_path: Path
) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "v4.yaml").write_text(
        "$schema: http://json-schema.org/draft-04/schema#\n"
        "type: object\n"
        "properties: {n: {type: number, maximum: 10, exclusiveMaximum: true}}\n"
    )
    route = validated(body="schemas/v4.yaml")
    gw, _ = await setup(serve, make_backend, route, root=tmp_path)
    assert (await gw.request("POST", "/orders", json={"n": 9.5}))[0] == 200
    status, body = await gw.json("POST", "/orders", json={"n": 10})
    assert status == 400 and body["error"]["details"][0]["path"] == "$.n"
    # 2020-12 by default: exclusiveMaximum is a number there
    later = {"type": "object", "properties": {"n": {"exclusiveMaximum": 10}}}
    gw.gateway.update(make_table(2, [validated(body=later)], {"a": [_backend_of(gw)]}))
    assert (await gw.json("POST", "/orders", json={"n": 10}))[0] == 400


def _backend_of(gw: Served) -> Any:
    return gw.gateway.table.endpoints["a"][0]


@pytest.mark.parametrize(
    "body",
    [
        "missing.json",
        {"type": "objekt"},
        {"$schema": "http://json-schema.org/draft-04/schema#", "minimum": "ten"},
    ],
)
def test_bad_schemas_are_refused_when_the_table_is_compiled(body: Any, tmp_path: Path) -> None:
    gateway = Gateway(root=tmp_path)
    good = make_table(1, [validated(body=ORDER)], {"a": []})
    gateway.update(good)
    with pytest.raises(InvalidRoute):
        gateway.update(make_table(2, [validated(body=body)], {"a": []}))
    assert gateway.table is good


@pytest.mark.parametrize("bad", ["template", "path"])
async def test_a_refused_table_leaves_the_current_routes_compiled(
    serve: Factory, make_backend: BackendFactory, tmp_path: Path, bad: str
) -> None:
    (tmp_path / "order.json").write_text(json.dumps(ORDER))
    gw, backend = await setup(serve, make_backend, validated(body="order.json"), root=tmp_path)
    if bad == "template":  # schemas compile, a template does not
        refused = RouteSpec("/other", "a", policy=RoutePolicy(
            validation=ValidationConfig(body=ORDER),
            transform=TransformConfig.model_validate({"response": {"body": "#end"}})))  # fmt: skip
    else:  # schemas and templates compile, the path template does not
        refused = validated("/bad/{id", body=ORDER)
    with pytest.raises(InvalidRoute):
        gw.gateway.update(make_table(2, [refused], {"a": [backend]}))
    (tmp_path / "order.json").unlink()  # the table in force compiled its schema already
    status, body = await gw.json("POST", "/orders", json={"item": "x"})
    assert status == 400 and body["error"]["code"] == "BadRequestBody"


# -- fuzzing: any body, never a 5xx ---------------------------------------------------------


async def _call(app: Any, body: bytes) -> int:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/orders", "raw_path": b"/orders", "query_string": b"",
        "headers": [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


names = st.sampled_from(["item", "quantity", "email", "tags", "x"]) | st.text(max_size=4)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=json_values, raw=st.binary(max_size=64), use_raw=st.booleans())
def test_random_bodies_never_cause_a_5xx(document: Any, raw: bytes, use_raw: bool) -> None:
    body = raw if use_raw else json.dumps(document).encode()
    mock = MockConfig(status=200, body={"ok": True})
    route = RouteSpec("/orders", integration="mock", mock=mock,
                      policy=RoutePolicy(validation=ValidationConfig(body=ORDER)))  # fmt: skip
    gateway = _fuzz_gateway(route)
    status = asyncio.run(_call(gateway, body))
    assert status in (200, 400), status


_GATEWAYS: dict[str, Gateway] = {}


def _fuzz_gateway(route: RouteSpec) -> Gateway:
    gateway = _GATEWAYS.get("g")
    if gateway is None:
        gateway = _GATEWAYS["g"] = Gateway()
        gateway.update(RouteTable(version=1, routes=(route,)))
    return gateway
