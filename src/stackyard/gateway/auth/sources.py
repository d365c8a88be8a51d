"""Identity sources: where in a request an authorizer finds its credentials.

A source is ``header.NAME``, ``query.NAME``, ``path.NAME``, ``stageVariables.NAME`` or
``context.NAME`` (``context.stage``, ``context.httpMethod``, ``context.path``,
``context.sourceIp``) — API Gateway's ``$request.header.NAME`` etc. Repeated headers and query
parameters are joined with commas, as in a payload 2.0 event.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from ...asgi import Scope
from ..proxy import request_path
from ..router import RouteMatch


def identity_value(scope: Scope, match: RouteMatch[Any], source: str) -> str | None:
    """The value of ``source`` in the request (None when absent)."""
    kind, _, name = source.partition(".")
    if kind == "header":
        wanted = name.lower().encode("latin-1")
        values = [v.decode("latin-1") for n, v in scope["headers"] if n == wanted]
        return ",".join(values) if values else None
    if kind == "query":
        values = [v for k, v in query_pairs(scope.get("query_string", b"")) if k == name]
        return ",".join(values) if values else None
    if kind == "path":
        return match.params.get(name)
    if kind == "stageVariables":
        return match.route.stage_variables.get(name)
    if kind == "context":
        return _context(scope, match, name)
    return None


def query_pairs(raw: bytes) -> list[tuple[str, str]]:
    out = []
    for part in raw.decode("latin-1").split("&"):
        if part:
            key, _, value = part.partition("=")
            out.append((unquote_plus(key), unquote_plus(value)))
    return out


def _context(scope: Scope, match: RouteMatch[Any], name: str) -> str | None:
    if name == "stage":
        return match.route.stage or "$default"
    if name in ("httpMethod", "http.method"):
        return str(scope["method"])
    if name in ("path", "http.path"):
        return request_path(scope)
    if name in ("sourceIp", "identity.sourceIp", "http.sourceIp"):
        client = scope.get("client")
        return str(client[0]) if client else None
    return None
