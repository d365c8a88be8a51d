"""The transform step: a route's request and response rewritten on the way through.

``RoutePolicy.transform`` (a :class:`~stackyard.config.api.TransformConfig`) sets and removes
request headers and query parameters, rewrites the path (``/v2/items/{id}``: the route's path
parameters; the result is the path the integration sees, ``strip_prefix`` no longer applies),
maps the request body with a template, sets and removes response headers and maps the body of
2xx answers with a template. Every value is a :class:`~.templates.Template` rendered with:

- ``$context``: ``requestId`` (the correlation id), ``stage``, ``path``, ``resourcePath``,
  ``httpMethod``, ``domainName``, ``requestTimeEpoch``, ``identity.sourceIp``,
  ``identity.userAgent``, ``authorizer.claims.X``, ``authorizer.principalId`` and
  ``authorizer.X`` (a Lambda authorizer's context, then the claims), from ``state["auth"]``;
- ``$stageVariables.X``; ``$request.header.X`` / ``$request.querystring.X`` /
  ``$request.path.X`` (this request's values, before the transform);
- ``$input``: ``body``, ``json('$.a.b')`` (JSON text), ``path('$.a')`` (the value),
  ``params('x')`` (path, then query, then header), ``params()``; in a response template the
  body is the upstream's answer;
- ``$util``: ``escapeJavaScript``, ``urlEncode``, ``urlDecode``, ``base64Encode``,
  ``base64Decode``, ``parseJson``.

Templates are compiled when the route table is compiled (:meth:`Transforms.prepare`): a bad one
is refused there (``InvalidRoute``) and never reaches a request. A missing value renders empty.
Bodies to map are buffered up to the gateway's body limit; a larger request body is refused
(413), a larger answer passes unmapped.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from ..asgi import ASGIApp, Message, Receive, Scope, Send
from ..config.api import ParamOps, TransformConfig
from .body import HeldAnswer, read_body, replay
from .errors import InvalidRoute
from .proxy import RouteTarget, request_path
from .router import RouteMatch
from .table import RouteSpec
from .template_values import UTIL, Input
from .templates import Template, TemplateSyntaxError

_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}")
_UNSAFE_HEADER = str.maketrans("", "", "\r\n\0")


class Headers(dict[str, str]):
    """Header values by lower-case name; ``get`` ignores case."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


def request_values(scope: Scope) -> dict[str, Mapping[str, str]]:
    """The request's ``path``, ``querystring`` and ``header`` values (before any transform)."""
    headers = Headers()
    for name, value in scope["headers"]:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    match = scope["state"].get("route")
    path = dict(match.params) if match is not None else {}
    return {"path": path, "querystring": query, "header": headers}


def request_context(scope: Scope, params: dict[str, Mapping[str, str]]) -> dict[str, Any]:
    """``$context`` for this request."""
    state = scope["state"]
    match = state.get("route")
    route: RouteSpec | None = match.route if match is not None else None
    client = scope.get("client")
    authorizer: dict[str, Any] = {}
    auth = state.get("auth")
    if auth is not None:
        claims = dict(getattr(auth, "claims", None) or {})
        authorizer = {**claims, **dict(getattr(auth, "context", None) or {})}
        authorizer["claims"] = claims
        authorizer["principalId"] = getattr(auth, "principal_id", None)
    return {
        "requestId": state.get("correlation_id"),
        "stage": route.stage if route is not None else None,
        "path": request_path(scope),
        "resourcePath": route.path if route is not None else None,
        "httpMethod": scope["method"],
        "domainName": params["header"].get("host"),
        "requestTimeEpoch": int(time.time() * 1000),
        "identity": {
            "sourceIp": client[0] if client else None,
            "userAgent": params["header"].get("user-agent"),
        },
        "authorizer": authorizer,
    }


def _sets(ops: ParamOps, where: str) -> tuple[tuple[str, Template], ...]:
    sets: list[tuple[str, Template]] = []
    for name, value in ops.set.items():
        try:
            sets.append((name, Template(value)))
        except TemplateSyntaxError as exc:
            raise InvalidRoute(f"transform {where} {name!r}: {exc}") from exc
    return tuple(sets)


@dataclass(frozen=True)
class HeaderOps:
    """Headers to set (lower-case names, value templates) and every name dropped first (the
    removed ones and the set ones), as bytes."""

    sets: tuple[tuple[bytes, Template], ...] = ()
    drop: frozenset[bytes] = frozenset()

    @classmethod
    def compile(cls, ops: ParamOps, where: str) -> HeaderOps:
        sets = tuple((n.lower().encode("latin-1"), t) for n, t in _sets(ops, where))
        drop = frozenset(n.lower().encode("latin-1") for n in ops.remove)
        return cls(sets, drop | {name for name, _ in sets})

    def __bool__(self) -> bool:
        return bool(self.drop)

    def apply(
        self, headers: Iterable[tuple[bytes, bytes]], roots: Mapping[str, Any]
    ) -> list[tuple[bytes, bytes]]:
        drop = self.drop
        out = [pair for pair in headers if pair[0].lower() not in drop]
        out.extend((name, _header_value(t, roots)) for name, t in self.sets)
        return out


@dataclass(frozen=True)
class CompiledTransform:
    """A :class:`TransformConfig` with its templates compiled (``query_drop``: the query
    parameters removed and the set ones)."""

    request_headers: HeaderOps
    query: tuple[tuple[str, Template], ...]
    query_drop: frozenset[str]
    path: tuple[tuple[str, str], ...] | None
    request_body: Template | None
    response_headers: HeaderOps
    response_body: Template | None

    @property
    def touches_response(self) -> bool:
        return bool(self.response_headers or self.response_body)


def _template(source: str | None, where: str) -> Template | None:
    if source is None:
        return None
    try:
        return Template(source)
    except TemplateSyntaxError as exc:
        raise InvalidRoute(f"transform {where}: {exc}") from exc


def _path_rewrite(
    template: str | None, route: RouteSpec | None
) -> tuple[tuple[str, str], ...] | None:
    """``(text, "")`` literal parts and ``(name, "param"|"greedy")`` parameter parts."""
    if template is None:
        return None
    if not template.startswith("/"):
        raise InvalidRoute(f"transform path {template!r}: must start with '/'")
    declared = dict(_PATH_PARAM.findall(route.path)) if route is not None else None
    parts: list[tuple[str, str]] = []
    last = 0
    for match in _PATH_PARAM.finditer(template):
        name = match.group(1)
        parts.append((template[last : match.start()], ""))
        if declared is not None and name not in declared:
            raise InvalidRoute(
                f"transform path {template!r}: {{{name}}} is not a parameter of the route"
            )
        greedy = (declared or {}).get(name, match.group(2)) == "+"
        parts.append((name, "greedy" if greedy else "param"))
        last = match.end()
    parts.append((template[last:], ""))
    return tuple(p for p in parts if p[0])


def compile_transform(config: TransformConfig, route: RouteSpec | None = None) -> CompiledTransform:
    """Compiles every template of ``config``; raises InvalidRoute for a bad one."""
    request, response = config.request, config.response
    query = _sets(request.query, "query parameter")
    return CompiledTransform(
        request_headers=HeaderOps.compile(request.headers, "request header"),
        query=query,
        query_drop=frozenset(request.query.remove) | {name for name, _ in query},
        path=_path_rewrite(request.path, route),
        request_body=_template(request.body, "request body"),
        response_headers=HeaderOps.compile(response.headers, "response header"),
        response_body=_template(response.body, "response body"),
    )


class Transforms:
    """The compiled transforms of the routes in the current table (by config identity)."""

    def __init__(self) -> None:
        self._compiled: dict[int, tuple[TransformConfig, CompiledTransform]] = {}

    def prepare(self, routes: Iterable[RouteSpec]) -> None:
        """Compiles every route's transform (raises InvalidRoute and changes nothing on error)."""
        self.use(self.compile(routes))

    def use(self, compiled: dict[int, tuple[TransformConfig, CompiledTransform]]) -> None:
        """Swaps in transforms made by :meth:`compile`."""
        self._compiled = compiled

    @staticmethod
    def compile(
        routes: Iterable[RouteSpec],
    ) -> dict[int, tuple[TransformConfig, CompiledTransform]]:
        """Every route's compiled transform; raises InvalidRoute for a bad one."""
        compiled: dict[int, tuple[TransformConfig, CompiledTransform]] = {}
        for route in routes:
            config = route.policy.transform
            if config is not None:
                try:
                    compiled[id(config)] = (config, compile_transform(config, route))
                except InvalidRoute as exc:
                    raise InvalidRoute(f"route {route.path}: {exc.message}") from exc
        return compiled

    def get(self, config: TransformConfig) -> CompiledTransform:
        entry = self._compiled.get(id(config))
        if entry is not None and entry[0] is config:
            return entry[1]
        result = compile_transform(config)
        self._compiled[id(config)] = (config, result)
        return result


def _header_value(template: Template, roots: Mapping[str, Any]) -> bytes:
    return template.render(roots).translate(_UNSAFE_HEADER).encode("latin-1", "replace")


def _rewritten_path(parts: tuple[tuple[str, str], ...], params: Mapping[str, str]) -> str:
    out: list[str] = []
    for text, kind in parts:
        if kind:
            out.append(quote(params.get(text, ""), safe="/" if kind == "greedy" else ""))
        else:
            out.append(text)
    return "".join(out)


class Transform:
    """The transform step (see the module docstring)."""

    def __init__(self, app: ASGIApp, transforms: Transforms, max_body_size: int) -> None:
        self.app = app
        self.transforms = transforms
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        config = scope["state"]["route"].route.policy.transform
        if config is None:
            await self.app(scope, receive, send)
            return
        compiled = self.transforms.get(config)
        params = request_values(scope)
        roots: dict[str, Any] = {
            "context": request_context(scope, params),
            "stageVariables": dict(scope["state"]["route"].route.stage_variables),
            "request": params,
            "util": UTIL,
        }
        scope = self._request(scope, compiled, roots, params)
        if compiled.request_body is not None:
            body = await read_body(scope, receive, self.max_body_size)
            roots["input"] = Input(body, params)
            mapped = compiled.request_body.render(roots).encode()
            headers = [
                p for p in scope["headers"] if p[0] not in (b"content-length", b"transfer-encoding")
            ]
            if not any(p[0] == b"content-type" for p in headers):
                headers.append((b"content-type", b"application/json"))
            headers.append((b"content-length", b"%d" % len(mapped)))
            scope["headers"] = headers
            receive = replay(mapped, receive)
        if compiled.touches_response:
            send = _ResponseMapper(send, compiled, roots, params, scope, self.max_body_size).send
        await self.app(scope, receive, send)

    @staticmethod
    def _request(
        scope: Scope,
        compiled: CompiledTransform,
        roots: Mapping[str, Any],
        params: dict[str, Mapping[str, str]],
    ) -> Scope:
        scope = dict(scope)
        roots = {**roots, "input": Input(b"", params)}
        if compiled.request_headers:
            scope["headers"] = compiled.request_headers.apply(scope["headers"], roots)
        if compiled.query_drop:
            pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), True)
            kept = [(k, v) for k, v in pairs if k not in compiled.query_drop]
            kept.extend((name, t.render(roots)) for name, t in compiled.query)
            scope["query_string"] = urlencode(kept, quote_via=quote).encode("latin-1")
        if compiled.path is not None:
            match: RouteMatch[RouteTarget] = scope["state"]["route"]
            path = _rewritten_path(compiled.path, match.params)
            scope["raw_path"] = path.encode("latin-1")
            scope["path"] = unquote(path)
            target = match.target
            if isinstance(target, RouteTarget) and target.strip_prefix:
                unstripped = RouteTarget(match.route, target.pool, target.app)
                unstripped.strip_prefix = ""
                scope["state"]["route"] = RouteMatch(match.route, unstripped, match.params)
        return scope


class _ResponseMapper:
    """Rewrites the response headers; maps the body of a 2xx answer (held up to a limit)."""

    __slots__ = ("_answer", "_compiled", "_head", "_params", "_roots", "_send")

    def __init__(
        self,
        send: Send,
        compiled: CompiledTransform,
        roots: dict[str, Any],
        params: dict[str, Mapping[str, str]],
        scope: Scope,
        limit: int,
    ) -> None:
        self._send = send
        self._compiled = compiled
        self._roots = roots
        self._params = params
        self._head = scope["method"] == "HEAD"
        self._answer = HeldAnswer(send, limit)  # larger: passed on unmapped

    async def send(self, message: Message) -> None:
        kind = message["type"]
        compiled = self._compiled
        if kind == "http.response.start":
            message = dict(message)
            roots = {**self._roots, "input": Input(b"", self._params)}
            message["headers"] = compiled.response_headers.apply(message.get("headers", ()), roots)
            if (
                compiled.response_body is not None
                and 200 <= message["status"] < 300
                and not self._head
                and not any(p[0].lower() == b"content-encoding" for p in message["headers"])
            ):
                self._answer.hold(message)
                return
            await self._send(message)
            return
        whole = await self._answer.feed(message)
        if whole is None:
            return
        start, body = whole
        template = compiled.response_body
        assert template is not None
        roots = {**self._roots, "input": Input(body, self._params)}
        mapped = template.render(roots).encode()
        headers = [p for p in start.get("headers", ()) if p[0].lower() != b"content-length"]
        headers.append((b"content-length", b"%d" % len(mapped)))
        await self._send({**start, "headers": headers})
        await self._send({"type": "http.response.body", "body": mapped, "more_body": False})
