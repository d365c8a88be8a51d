"""The gateway's route table, built from a stack and the registry's passing instances.

:func:`route_table` is what the node publishes to the gateway on start, on every registry
change and on a deploy: the ``api.routes`` (to services, functions or mock answers, with their
policies), the functions' ``http``/``httpApi`` events, for the node's stage at the root and for
every other stage served under its own ``path`` or ``host``, plus the passing endpoints of the
services the routes name.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from types import MappingProxyType

from .config import StackConfig
from .config.api import CorsConfig, RouteConfig, StageConfig
from .config.models import HttpEventConfig
from .gateway import CorsPolicy
from .gateway.policy import NO_POLICY, RoutePolicy
from .gateway.table import RouteSpec, RouteTable
from .registry import Registry


def route_table(
    stack: StackConfig,
    registry: Registry,
    version: int,
    stage: str = "dev",
    exclude: Collection[str] = (),
) -> RouteTable:
    """The gateway's view of the stack right now: configured routes + passing endpoints
    (but not the instances in ``exclude``: those a deploy is retiring). The node's ``stage``
    is served at the root; every other stage with a ``path`` or ``host`` there as well."""
    routes = stage_routes(stack, stage)
    for name, config in stack.api.stages.items():
        if config.path is not None or config.host is not None:
            routes.extend(served_elsewhere(stage_routes(stack, name), config))
    names = {route.service for route in routes if route.integration == "http_proxy"}
    endpoints = {
        name: tuple(ep for ep in registry.passing(name) if ep.instance_id not in exclude)
        for name in sorted(names)
    }
    return RouteTable(version=version, routes=tuple(routes), endpoints=endpoints)


def stage_routes(stack: StackConfig, stage: str) -> list[RouteSpec]:
    """Every route of the stack as stage ``stage`` serves it, with the stage's variables."""
    api_cors = cors_policy(stack.api.cors)
    routes = [api_route(route, stage, api_cors) for route in stack.api.routes]
    routes.extend(function_routes(stack, stage, api_cors))
    stage_config = stack.api.stages.get(stage)
    if stage_config is not None and stage_config.variables:
        variables = MappingProxyType(dict(stage_config.variables))
        routes = [replace(route, stage_variables=variables) for route in routes]
    return routes


def served_elsewhere(routes: list[RouteSpec], config: StageConfig) -> list[RouteSpec]:
    """A stage's routes under its ``path`` (which replaces the ``/<stage>`` prefix of REST API
    routes; removed again before proxying) and only for its ``host``, when set."""
    prefix = config.path or ""
    out = []
    for route in routes:
        if prefix:
            path = route.path[len(route.base_path) :] or "/"
            route = replace(
                route,
                path=prefix if path == "/" else prefix + path,
                base_path=prefix,
                strip_prefix=prefix + route.strip_prefix
                if route.integration == "http_proxy"
                else route.strip_prefix,
            )
        out.append(replace(route, host=config.host or ""))
    return out


def api_route(route: RouteConfig, stage: str, cors: CorsPolicy | None) -> RouteSpec:
    """The gateway's spec of one ``api.routes`` entry: its integration and its policies."""
    policy = RoutePolicy(
        api_key=route.api_key,
        authorizer=route.authorizer,
        scopes=tuple(route.scopes),
        throttle=route.throttle,
        cache=route.cache,
        transform=route.transform,
        validation=route.validate_,
    )
    spec = RouteSpec(
        path=route.path,
        methods=frozenset(route.methods),
        timeout=route.timeout,
        cors=cors,
        policy=policy if policy != NO_POLICY else NO_POLICY,
        stage=stage,
        resource=route.path,
    )
    if route.function is not None:
        return replace(
            spec,
            integration="function",
            function=route.function,
            payload_version=route.payload_version,
        )
    if route.mock is not None:
        return replace(spec, integration="mock", mock=route.mock)
    if route.bucket is not None:
        error = route.error or ""
        return replace(
            spec, integration="bucket", bucket=route.bucket, index=route.index, error=error
        )
    return replace(
        spec,
        service=route.service or "",
        strip_prefix=route.prefix_to_strip,
        retries=route.retries,
        balancer=route.balancer,
    )


def cors_policy(config: CorsConfig | None) -> CorsPolicy | None:
    if config is None:
        return None
    defaults = CorsPolicy()
    return CorsPolicy(
        origins=tuple(config.origins),
        methods=tuple(m.upper() for m in config.methods),
        headers=tuple(h.lower() for h in config.headers) if config.headers else defaults.headers,
        expose_headers=tuple(config.expose_headers),
        credentials=config.credentials,
        max_age=config.max_age,
    )


def event_policy(event: HttpEventConfig) -> RoutePolicy:
    """The policies of a function's ``http``/``httpApi`` event (serverless.yml ``private``,
    ``authorizer``)."""
    if not event.private and event.authorizer is None:
        return NO_POLICY
    return RoutePolicy(
        api_key=event.private, authorizer=event.authorizer, scopes=tuple(event.scopes)
    )


def function_routes(
    stack: StackConfig, stage: str, api_cors: CorsPolicy | None = None
) -> list[RouteSpec]:
    """Routes of the functions' ``http`` and ``httpApi`` events.

    As the Serverless Framework deploys them: a REST API (``http``, payload 1.0) is served
    under ``/<stage>``; an HTTP API (``httpApi``, payload 2.0) at the root, stage ``$default``;
    its default route (``'*'``) catches every path the other routes do not.
    """
    out: list[RouteSpec] = []
    for name, function in stack.functions.items():
        for event in function.events:
            if event.http is not None:
                out.append(
                    RouteSpec(
                        path=f"/{stage}{event.http.path}".rstrip("/") or "/",
                        methods=frozenset({event.http.method}),
                        integration="function",
                        function=name,
                        payload_version="1.0",
                        stage=stage,
                        base_path=f"/{stage}",
                        resource=event.http.path,
                        timeout=function.timeout,
                        cors=cors_policy(event.http.cors) or api_cors,
                        policy=event_policy(event.http),
                    )
                )
            elif event.http_api is not None:
                api = event.http_api
                paths = ["/", "/{proxy+}"] if api.default_route else [api.path]
                out.extend(
                    RouteSpec(
                        path=path,
                        methods=frozenset({api.method}),
                        integration="function",
                        function=name,
                        payload_version="2.0",
                        resource="$default" if api.default_route else api.path,
                        timeout=function.timeout,
                        cors=cors_policy(api.cors) or api_cors,
                        policy=event_policy(api),
                    )
                    for path in paths
                )
    return out
