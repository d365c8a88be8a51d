"""The control-plane API of API keys and of the response cache (mounted by
:mod:`stackyard.control`).

- ``POST /_stackyard/api/keys`` ``{"name", "plan"}`` → 201 with the key's value (shown once);
- ``GET /_stackyard/api/keys`` → ``{"keys": [...]}`` (names, plans, prefixes; never values);
- ``DELETE /_stackyard/api/keys/{name}`` → the revoked key (takes effect at once);
- ``GET /_stackyard/api/keys/{name}/usage`` → the key's quota use in the current period.

Refusals are ``{"error": {"code", "message"}}``: 400 ``InvalidRequest`` (bad body),
400 ``UnknownPlan``, 409 ``KeyExists``, 404 ``UnknownKey``.

- ``GET /_stackyard/api/cache`` → the response cache's size; ``DELETE`` flushes it
  (``?stage=`` must name this node's stage).

The endpoints live here, not beside what they act on: the request path's modules run compiled
(``scripts/compile.py``), and Starlette does not see a compiled ``async def`` as a coroutine
function.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..responses import error_response
from .cache import ApiSource, ResponseCache
from .keys import KeyAdminError
from .usage import UsagePlans

MAX_BODY = 64 * 1024


def key_routes(plans: UsagePlans) -> list[BaseRoute]:
    """The routes above, acting on ``plans`` (the gateway's :class:`UsagePlans`)."""

    async def create(request: Request) -> Response:
        raw = await _read_body(request)
        if raw is None:
            return error_response(413, "PayloadTooLarge", f"body exceeds {MAX_BODY} bytes")
        try:
            body = json.loads(raw)
        except ValueError:
            return error_response(400, "InvalidRequest", "the body must be a JSON object")
        if not isinstance(body, dict):
            return error_response(400, "InvalidRequest", "the body must be a JSON object")
        extra = sorted(set(body) - {"name", "plan"})
        if extra:
            return error_response(400, "InvalidRequest", f"unknown fields: {', '.join(extra)}")
        try:
            key, value = await plans.create_key(body.get("name"), body.get("plan"))
        except KeyAdminError as exc:
            return error_response(exc.status, exc.code, exc.message)
        source = "authorizer" if plans.from_authorizer else "header"
        answer = {**key.public(), "key": value, "key_source": source}
        return JSONResponse(answer, status_code=201)

    async def list_keys(request: Request) -> Response:
        return JSONResponse({"keys": [key.public() for key in plans.keys.list()]})

    async def revoke(request: Request) -> Response:
        try:
            key = await plans.revoke_key(request.path_params["name"])
        except KeyAdminError as exc:
            return error_response(exc.status, exc.code, exc.message)
        return JSONResponse(key.public())

    async def usage(request: Request) -> Response:
        try:
            return JSONResponse(plans.usage(request.path_params["name"]))
        except KeyAdminError as exc:
            return error_response(exc.status, exc.code, exc.message)

    return [
        Route("/_stackyard/api/keys", create, methods=["POST"]),
        Route("/_stackyard/api/keys", list_keys, methods=["GET"]),
        Route("/_stackyard/api/keys/{name}", revoke, methods=["DELETE"]),
        Route("/_stackyard/api/keys/{name}/usage", usage, methods=["GET"]),
    ]


async def _read_body(request: Request) -> bytes | None:
    """The body, or None once it is known to exceed ``MAX_BODY`` (a declared length is refused
    before anything is read; a streamed body as soon as it passes the limit)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


def cache_routes(source: ApiSource, cache: ResponseCache) -> list[BaseRoute]:
    """``/_stackyard/api/cache`` for the control app: ``GET`` (size), ``DELETE`` (flush)."""

    async def handle(request: Request) -> Response:
        stage = request.query_params.get("stage")
        if stage is not None and stage != source.stage:
            return error_response(404, "UnknownStage", f"this node serves stage {source.stage!r}")
        if request.method == "DELETE":
            return JSONResponse({"stage": source.stage, "flushed": cache.flush()})
        return JSONResponse(
            {
                "stage": source.stage,
                "entries": len(cache),
                "bytes": cache.size,
                "max_bytes": cache.max_bytes,
                "max_entry_bytes": cache.max_entry_bytes,
            }
        )

    return [Route("/_stackyard/api/cache", handle, methods=["GET", "DELETE"])]
