"""The control-plane HTTP app: every component's API on one port, plus the node's own endpoints.

Node endpoints (JSON): ``GET /_stackyard/health`` (200 when ready, 503 before),
``GET /_stackyard/status`` (services, instances, health, routes), ``GET /_stackyard/logs``
(``service``, ``tail``; ``follow=1`` streams newline-delimited JSON records),
``POST /_stackyard/deploy`` (``path`` of the edited stack, ``dry_run``: the changes, applied)
and ``GET /_stackyard/api/openapi.json`` (the live API as OpenAPI 3.0, as on ``/_docs``).
Services (``supervisor.api``): ``GET /_stackyard/services[/{name}]`` (instances with health
history), ``POST .../{name}/instances/{id}/restart`` and ``PUT .../{name}/replicas``.
The web console is mounted at ``/_console``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from .config import ConfigError, load_stack
from .console import CONSOLE_PATH, create_console_app
from .deploy import DeployError
from .gateway.admin import cache_routes, key_routes
from .registry import consul_routes
from .responses import error_response
from .supervisor import follow_records, read_records
from .supervisor.api import service_routes

if TYPE_CHECKING:
    from .node import Node

MAX_TAIL = 10_000


def create_control_app(node: Node) -> Starlette:
    async def health(request: Request) -> Response:
        ready = node.ready()
        body = {"status": "ready" if ready else "starting", "services": _service_counts(node)}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def status(request: Request) -> Response:
        return JSONResponse(status_document(node))

    async def logs(request: Request) -> Response:
        service = request.query_params.get("service") or None
        config = node.stack.config
        if service is not None and service not in config.services | config.functions:
            return error_response(404, "UnknownService", f"no service named {service!r}")
        try:
            tail = int(request.query_params.get("tail", "100"))
        except ValueError:
            return error_response(400, "InvalidParameter", "tail must be an integer")
        tail = max(0, min(tail, MAX_TAIL))
        log_dir = node.supervisor.log_dir
        records = await asyncio.to_thread(read_records, log_dir, service, tail)
        if request.query_params.get("follow") not in ("1", "true"):
            return JSONResponse(records)

        async def stream() -> AsyncIterator[bytes]:
            for record in records:
                yield _ndjson(record)
            async for record in follow_records(log_dir, service):
                yield _ndjson(record)

        return StreamingResponse(stream(), media_type="application/x-ndjson")

    async def deploy(request: Request) -> Response:
        path = request.query_params.get("path")
        if not path:
            return error_response(
                400, "InvalidParameter", "path (the stack file or folder) is needed"
            )
        dry_run = request.query_params.get("dry_run") in ("1", "true")
        options = {"stage": node.settings.stage, "region": node.settings.region}
        try:
            stack = await asyncio.to_thread(load_stack, Path(path), os.environ, options)
        except ConfigError as exc:
            body = {
                "error": {"code": "InvalidStack", "message": str(exc)},
                "problems": [str(problem) for problem in exc.problems],
            }
            return JSONResponse(body, status_code=400)
        try:
            changes = await node.deploy(stack, dry_run=dry_run)
        except DeployError as exc:
            return error_response(409, "DeployFailed", str(exc))
        return JSONResponse(
            {
                "stack": str(stack.file),
                "changes": [change.as_json() for change in changes],
                "applied": bool(changes) and not dry_run,
                "warnings": list(stack.warnings),
            }
        )

    async def openapi(request: Request) -> Response:
        return Response(node.gateway.openapi(), media_type="application/json")

    async def requests(request: Request) -> Response:
        params = request.query_params
        try:
            statuses = [int(s) for s in params.getlist("status")]
            limit = max(1, min(int(params.get("limit", "100")), 10_000))
        except ValueError:
            return error_response(400, "InvalidParameter", "status and limit must be integers")
        try:
            records = node.access_log.query(
                status=statuses,
                route=params.get("route") or None,
                method=(params.get("method") or "").upper() or None,
                correlation_id=params.get("correlation_id") or None,
                since=params.get("since") or None,
                limit=limit,
            )
        except ValueError as exc:
            return error_response(400, "InvalidParameter", str(exc))
        return JSONResponse(records)

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_response(
            exc.status_code,
            "NotFound" if exc.status_code == 404 else "HTTPError",
            f"{request.method} {request.url.path}: {exc.detail}",
        )

    routes = [
        Route("/_stackyard/health", health, methods=["GET"]),
        Route("/_stackyard/status", status, methods=["GET"]),
        Route("/_stackyard/logs", logs, methods=["GET"]),
        Route("/_stackyard/deploy", deploy, methods=["POST"]),
        Route("/_stackyard/api/requests", requests, methods=["GET"]),
        Route("/_stackyard/api/openapi.json", openapi, methods=["GET"]),
        *consul_routes(node.registry),
        *service_routes(node.supervisor, node.registry),
        *node.functions.routes(),
        *node.telemetry.routes(),
        *key_routes(node.gateway.usage),
        *cache_routes(node.gateway, node.gateway.content.cache),
        Mount(CONSOLE_PATH, app=create_console_app(node)),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: not_found})


def status_document(node: Node) -> dict[str, Any]:
    """Everything ``stackyard status`` shows, as JSON."""
    config = node.stack.config
    instances = [dataclasses.asdict(item) for item in node.supervisor.status()]
    health = {
        entry.registration.id: entry.status.value
        for name in config.services
        for entry in node.registry.health(name)
    }
    for item in instances:
        item["health"] = health.get(item["instance_id"], "critical")
    table = node.gateway.table
    return {
        "stack": config.name,
        "stage": node.settings.stage,
        "file": str(node.stack.file),
        "ready": node.ready(),
        "started_at": node.started_at,
        "urls": {
            "gateway": node.settings.gateway_url,
            "control": node.settings.control_url,
            "dns": f"{node.settings.host}:{node.settings.dns_port}",
        },
        "services": [
            {
                "name": name,
                "replicas": node.supervisor.replicas(name),
                "passing": len(node.registry.passing(name)),
                "instances": [i for i in instances if i["service"] == name],
            }
            for name in config.services
        ],
        "functions": [
            {
                **dataclasses.asdict(node.functions.status(name)),
                "timeout": fn.timeout,
                "memory_mb": fn.memory_mb,
                "concurrency": fn.concurrency,
            }
            for name, fn in config.functions.items()
        ],
        "routes": [
            {
                "path": route.path,
                "methods": sorted(route.methods),
                "integration": route.integration,
                "target": {"function": route.function, "bucket": route.bucket}.get(
                    route.integration, route.service
                ),
                "service": route.service,
                "endpoints": len(table.endpoints.get(route.service, ())),
            }
            for route in table.routes
        ],
        "route_table_version": table.version,
        "tables": [
            {
                "name": name,
                "hash_key": spec.hash_key,
                "range_key": spec.range_key,
                "indexes": sorted(spec.indexes),
            }
            for name, spec in config.tables.items()
        ],
        "buckets": [
            {"name": name, "region": spec.region or node.settings.region}
            for name, spec in config.buckets.items()
        ],
        "caches": node.resources.status("cache"),
        "databases": node.resources.status("database"),
    }


def _service_counts(node: Node) -> dict[str, dict[str, int]]:
    return {
        name: {
            "wanted": node.supervisor.replicas(name),
            "passing": len(node.registry.passing(name)),
        }
        for name in node.stack.config.services
    }


def _ndjson(record: Any) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"
