"""The API page: the gateway's routes with their policies, stages, usage plans and API keys.

``GET /api`` renders the live route table (``node.gateway.table``: routes of ``api.routes``
and of functions' ``http``/``httpApi`` events, each with its integration, target, auth,
throttle, cache and validation), the stages of ``api.stages`` (the node's own marked), the
usage plans and the keys (``node.gateway.usage``: the keys admin API's component, with each
key's quota use). The keys table is ``/fragments/api/keys``, refreshed by htmx; creating and
revoking a key (``static/api.js``) are calls of ``POST``/``DELETE /_stackyard/api/keys``.
The OpenAPI links go to the gateway's ``/_docs`` and the control port's
``/_stackyard/api/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...config.api import ThrottleConfig
from ...gateway.keys import KeyAdminError
from ...gateway.table import RouteSpec
from ..app import Console


def routes(console: Console) -> list[BaseRoute]:
    async def page(request: Request) -> Response:
        node = console.node
        api = node.gateway.api
        return console.render(
            request,
            "api.html",
            title="API",
            routes=[route_row(route) for route in node.gateway.table.routes],
            stages=_stages(console),
            plans=_plans(console),
            keys=_keys(console),
            docs_url=node.settings.gateway_url + "/_docs",
            export_url="/_stackyard/api/openapi.json",
            key_source=api.key_source,
            authorizers=api.authorizers,
        )

    async def keys_fragment(request: Request) -> Response:
        return console.render(request, "_api_keys.html", keys=_keys(console))

    return [
        Route("/api", page, methods=["GET"]),
        Route("/fragments/api/keys", keys_fragment, methods=["GET"]),
    ]


def route_row(route: RouteSpec) -> dict[str, Any]:
    """A route of the table as the page shows it."""
    policy = route.policy
    target = {"function": route.function, "bucket": route.bucket, "mock": "mock"}.get(
        route.integration, route.service
    )
    auth = []
    if policy.api_key:
        auth.append("API key")
    if policy.authorizer:
        auth.append(f"authorizer {policy.authorizer}")
    cache = None
    if policy.cache is not None:
        keyed = ", ".join(policy.cache.key)
        cache = f"{policy.cache.ttl:g} s" + (f" by {keyed}" if keyed else "")
    validation = []
    if policy.validation is not None:
        if policy.validation.body is not None:
            validation.append("body schema")
        validation.extend(f"query {name}" for name in policy.validation.query)
        validation.extend(f"header {name}" for name in policy.validation.headers)
    return {
        "path": route.path,
        "methods": sorted(route.methods),
        "integration": route.integration,
        "target": target,
        "strip_prefix": route.strip_prefix,
        "auth": auth,
        "scopes": list(policy.scopes),
        "throttle": throttle_text(policy.throttle),
        "cache": cache,
        "validation": validation,
        "transform": policy.transform is not None,
        "host": route.host,
        "stage": route.stage,
        "timeout": route.timeout,
    }


def throttle_text(throttle: ThrottleConfig | None) -> str | None:
    if throttle is None:
        return None
    return f"{throttle.rate:g}/s, burst {throttle.burst}"


def _stages(console: Console) -> list[dict[str, Any]]:
    node = console.node
    api = node.gateway.api
    current = node.settings.stage
    stages = [
        {
            "name": name,
            "current": name == current,
            "variables": dict(stage.variables),
            "path": stage.path,
            "host": stage.host,
            "throttle": throttle_text(stage.throttle or api.throttle),
            "description": stage.description,
        }
        for name, stage in api.stages.items()
    ]
    if current not in api.stages:  # the node's stage, declared or not
        stages.insert(
            0,
            {
                "name": current,
                "current": True,
                "variables": {},
                "path": None,
                "host": None,
                "throttle": throttle_text(api.throttle),
                "description": "",
            },
        )
    return stages


def _plans(console: Console) -> list[dict[str, Any]]:
    usage = console.node.gateway.usage
    keys = usage.keys.list()
    return [
        {
            "name": name,
            "description": plan.description,
            "throttle": throttle_text(plan.throttle),
            "quota": f"{plan.quota.limit:,} per {plan.quota.period}" if plan.quota else None,
            "active_keys": sum(1 for key in keys if key.plan == name and key.revoked is None),
        }
        for name, plan in usage.plans.items()
    ]


def _keys(console: Console) -> list[dict[str, Any]]:
    usage = console.node.gateway.usage
    rows = []
    for key in sorted(usage.keys.list(), key=lambda key: key.created, reverse=True):
        try:
            rows.append(usage.usage(key.name))
        except KeyAdminError:  # revoked and forgotten between the two calls
            continue
    return rows
