"""CORS through a served gateway: preflight answered by the gateway, headers on answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from stackyard.config.api import ApiConfig, JwtAuthorizerConfig, UsagePlanConfig
from stackyard.gateway import CorsPolicy, RouteSpec
from stackyard.gateway.policy import RoutePolicy

from .conftest import Backend, Served, make_table

Factory = Callable[..., Awaitable[Served]]
BackendFactory = Callable[..., Awaitable[Backend]]


async def test_preflight_is_answered_without_reaching_the_upstream(
    serve: Factory, make_backend: BackendFactory
) -> None:
    backend = await make_backend("a")
    gw = await serve()
    policy = CorsPolicy(origins=("https://app.example",), methods=("GET", "PUT"), max_age=300)
    gw.gateway.update(
        make_table(1, [RouteSpec("/items/{id}", "a", frozenset({"PUT", "GET"}), cors=policy)],
                   {"a": [backend]})
    )  # fmt: skip
    status, headers, body = await gw.request(
        "OPTIONS",
        "/items/7",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert status == 204 and body == b""
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-allow-methods"] == "GET, PUT"
    assert "content-type" in headers["access-control-allow-headers"]
    assert headers["access-control-max-age"] == "300"
    assert backend.hits == 0

    status, headers, _ = await gw.request(
        "GET", "/items/7", headers={"Origin": "https://app.example"}
    )
    assert status == 200 and backend.hits == 1
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert headers["vary"] == "Origin"


async def test_other_origins_and_routes_without_policy_get_no_cors_headers(
    serve: Factory, make_backend: BackendFactory
) -> None:
    backend = await make_backend("a")
    gw = await serve()
    policy = CorsPolicy(origins=("https://app.example",))
    routes = [RouteSpec("/open", "a", cors=policy), RouteSpec("/closed", "a", frozenset({"GET"}))]
    gw.gateway.update(make_table(1, routes, {"a": [backend]}))
    status, headers, _ = await gw.request(
        "GET", "/open", headers={"Origin": "https://evil.example"}
    )
    assert status == 200 and "access-control-allow-origin" not in headers
    status, headers, _ = await gw.request(
        "GET", "/closed", headers={"Origin": "https://app.example"}
    )
    assert status == 200 and "access-control-allow-origin" not in headers
    # a preflight for a route without a policy is an ordinary OPTIONS request (405 here)
    status, headers, _ = await gw.request(
        "OPTIONS", "/closed", headers={"Origin": "https://app.example",
                                       "Access-Control-Request-Method": "DELETE"},
    )  # fmt: skip
    assert status == 405 and "access-control-allow-origin" not in headers


async def test_wildcard_policy(serve: Factory, make_backend: BackendFactory) -> None:
    backend = await make_backend("a")
    gw = await serve()
    gw.gateway.update(make_table(1, [RouteSpec("/x", "a", cors=CorsPolicy())], {"a": [backend]}))
    status, headers, _ = await gw.request(
        "OPTIONS", "/x", headers={"Origin": "https://any.example",
                                  "Access-Control-Request-Method": "POST"},
    )  # fmt: skip
    assert status == 204
    assert headers["access-control-allow-origin"] == "*"
    assert headers["access-control-allow-methods"] == "POST"
    status, headers, _ = await gw.request("POST", "/x", headers={"Origin": "https://any.example"})
    assert headers["access-control-allow-origin"] == "*" and "vary" not in headers


async def test_errors_of_later_steps_carry_cors_headers(
    serve: Factory, make_backend: BackendFactory
) -> None:
    """A browser can read why a request was refused (401 from the authorizer, 403 for a
    missing key): the CORS step wraps the error answers of the steps after the route match."""
    backend = await make_backend("a")
    api = ApiConfig(
        authorizers={"users": JwtAuthorizerConfig(type="jwt", secret="s" * 32)},
        usage_plans={"basic": UsagePlanConfig()},
    )
    gw = await serve(api=api)
    policy = CorsPolicy(origins=("https://app.example",))
    routes = [
        RouteSpec("/me", "a", cors=policy, policy=RoutePolicy(authorizer="users")),
        RouteSpec("/keyed", "a", cors=policy, policy=RoutePolicy(api_key=True)),
    ]
    gw.gateway.update(make_table(1, routes, {"a": [backend]}))
    origin = {"Origin": "https://app.example"}
    for path, status in (("/me", 401), ("/keyed", 403)):
        got, headers, body = await gw.request("GET", path, headers=origin)
        assert got == status, body
        assert headers["access-control-allow-origin"] == "https://app.example"
        assert b'"error"' in body
    assert backend.hits == 0
