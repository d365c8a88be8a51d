"""The response cache step, its in-memory store, its admin API, and the content steps' wiring.

A route with ``RoutePolicy.cache`` (:class:`~stackyard.config.api.CacheConfig`) answers the
methods of ``cache.methods`` (``GET`` by default; a ``HEAD`` is answered from the ``GET``
entry) from :class:`ResponseCache` for ``ttl`` seconds. The key is the method, the request
path and the values of the ``cache.key`` sources (``query.NAME``, ``header.NAME``); other query
parameters and headers (``Authorization`` included) are not part of it. Only ``200`` answers
without ``Cache-Control: no-store``/``private`` and without ``Set-Cookie`` are stored, and only
up to ``api.cache.max_entry_bytes`` (larger answers stream through uncached); the store keeps at
most ``api.cache.max_bytes`` and drops the least recently used entries first. Answers of
cached methods carry ``x-cache: hit`` or ``miss`` (hits also ``age``). A hit whose ``ETag``
(else ``Last-Modified``) matches the request's ``If-None-Match`` (else ``If-Modified-Since``)
is answered ``304``; a ``Range`` request skips the cache.

A client's ``Cache-Control: max-age=0`` skips the lookup and refreshes the entry only when the
caller may invalidate: its API key's usage plan has ``cache_invalidation: true``, or its
authorizer granted the scope ``stackyard:invalidate-cache``. Anyone else's ``max-age=0`` is
ignored (API Gateway's "ignore" strategy): the cached answer is served.

A route with no step before its cache (no authorizer, API key or throttle, validation, API
gzip) has its hits answered earlier: its cache step notes the paths it may answer in a
:class:`FrontIndex` (method and path → the route match and the step), and :class:`CacheFront`,
a pipeline step right after CORS, answers a hit for such a path itself, without the route
match and the steps between. The index is emptied whenever the table or the API changes, and
is off for a table with ``host`` routes (the path alone does not tell the route there). A host
route's key ends with its host.

``DELETE /_stackyard/api/cache`` on the control port (:func:`.admin.cache_routes`) drops every
entry of the node's stage and answers the count; ``GET`` answers the store's size.

:class:`ContentPolicies` holds what the validation, gzip, cache and transform steps share with
the gateway (compiled schemas and templates, the store) and adds the steps in pipeline order.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Iterable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl

from ..asgi import ASGIApp, Message, Receive, Scope, Send
from ..config.api import ApiCacheConfig, ApiConfig, CacheConfig
from .body import HeldAnswer
from .gzip import Gzip
from .proxy import RouteTarget, request_path
from .router import RouteMatch
from .static import not_modified
from .table import RouteSpec
from .transform import Transform, Transforms
from .validation import Schemas, Validation

INVALIDATE_SCOPE = "stackyard:invalidate-cache"
_HIT = (b"x-cache", b"hit")
_MISS = (b"x-cache", b"miss")
_ENTRY_OVERHEAD = 200  # bytes counted per entry besides its body and headers
_ENTITY_HEADERS = frozenset({b"content-length", b"content-type", b"content-encoding"})
_CONDITIONAL = frozenset({b"if-none-match", b"if-modified-since"})


class ApiSource(Protocol):
    """Where the steps read the current ``api`` section (the gateway; swapped on deploy)."""

    api: ApiConfig
    stage: str


class Entry:
    """A stored answer, with what a hit sends made once: its headers with ``x-cache: hit``,
    those a ``304`` keeps, and the validators a conditional request is checked against."""

    __slots__ = (
        "body",
        "expires",
        "headers",
        "hit_headers",
        "not_modified_headers",
        "size",
        "status",
        "stored",
        "validators",
    )

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        stored: float,
        ttl: float,
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.stored = stored
        self.expires = stored + ttl
        self.size = len(body) + sum(len(k) + len(v) for k, v in headers) + _ENTRY_OVERHEAD
        self.hit_headers = (*headers, _HIT)
        self.not_modified_headers = tuple(
            pair for pair in self.hit_headers if pair[0] not in _ENTITY_HEADERS
        )
        self.validators = {k: v for k, v in headers if k in (b"etag", b"last-modified")}


class ResponseCache:
    """Answers by key, bounded in bytes, least recently used dropped first."""

    def __init__(self, config: ApiCacheConfig | None = None) -> None:
        config = config or ApiCacheConfig()
        self.max_bytes = config.max_bytes
        self.max_entry_bytes = config.max_entry_bytes
        self.size = 0
        self._entries: OrderedDict[tuple[Any, ...], Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def configure(self, config: ApiCacheConfig) -> None:
        self.max_bytes = config.max_bytes
        self.max_entry_bytes = config.max_entry_bytes
        self._evict()

    def get(self, key: tuple[Any, ...], now: float) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= now:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple[Any, ...], entry: Entry) -> bool:
        """Stores ``entry`` unless it is larger than an entry or the whole store may be."""
        if key in self._entries:
            self._drop(key)
        if len(entry.body) > self.max_entry_bytes or entry.size > self.max_bytes:
            return False
        self._entries[key] = entry
        self.size += entry.size
        self._evict()
        return True

    def flush(self) -> int:
        """Drops every entry; returns how many there were."""
        count = len(self._entries)
        self._entries.clear()
        self.size = 0
        return count

    def _drop(self, key: tuple[Any, ...]) -> None:
        self.size -= self._entries.pop(key).size

    def _evict(self) -> None:
        while self.size > self.max_bytes and self._entries:
            _, entry = self._entries.popitem(last=False)
            self.size -= entry.size


class KeySource:
    """One ``cache.key`` source, parsed once: ``query.NAME`` or ``header.NAME`` (the header's
    name lowercased, as the server gives it); any other kind adds an empty value."""

    __slots__ = ("header", "kind", "name")

    def __init__(self, source: str) -> None:
        kind, _, name = source.partition(".")
        self.kind = kind
        self.name = name
        self.header = name.lower().encode("latin-1")


def key_sources(config: CacheConfig) -> tuple[KeySource, ...]:
    return tuple(KeySource(source) for source in config.key)


def cache_key(
    scope: Scope, method: str, path: str, sources: tuple[KeySource, ...]
) -> tuple[Any, ...]:
    """Method, path (as :func:`.proxy.request_path` gives it), then the value of each
    ``cache.key`` source ('' when absent)."""
    if not sources:
        return (method, path)
    values: list[str] = []
    query: dict[str, list[str]] | None = None
    for source in sources:
        if source.kind == "query":
            if query is None:
                query = {}
                for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), True):
                    query.setdefault(k, []).append(v)
            values.append("&".join(query.get(source.name, ())))
        elif source.kind == "header":
            found = [v.decode("latin-1") for k, v in scope["headers"] if k == source.header]
            values.append(", ".join(found))
        else:
            values.append("")
    return (method, path, *values)


def _tokens(value: bytes) -> set[bytes]:
    return {token.strip().lower().replace(b" ", b"") for token in value.split(b",")}


def may_invalidate(state: dict[str, Any], api: ApiConfig) -> bool:
    """The caller's key plan allows cache invalidation, or its authorizer granted the scope."""
    key = state.get("api_key")
    plan = api.usage_plans.get(getattr(key, "plan", "")) if key is not None else None
    if plan is not None and plan.cache_invalidation:
        return True
    auth = state.get("auth")
    return auth is not None and INVALIDATE_SCOPE in (getattr(auth, "scopes", None) or ())


def storable(headers: Iterable[tuple[bytes, bytes]], max_entry: int) -> bool:
    for name, value in headers:
        name = name.lower()
        if name == b"cache-control" and _tokens(value) & {b"no-store", b"private"}:
            return False
        if name == b"set-cookie":
            return False
        if name == b"content-length" and (not value.isdigit() or int(value) > max_entry):
            return False
    return True


class _Capture:
    """Passes the answer on with ``x-cache: miss``; keeps a copy to store when it qualifies."""

    __slots__ = ("_answer", "_headers", "_key", "_send", "_store", "_ttl", "_when")

    def __init__(
        self, send: Send, store: ResponseCache, key: tuple[Any, ...], when: float, ttl: float
    ) -> None:
        self._send = send
        self._store = store
        self._key = key
        self._when = when
        self._ttl = ttl
        self._answer = HeldAnswer(send, store.max_entry_bytes)  # larger: streamed on, uncached
        self._headers: list[tuple[bytes, bytes]] = []
        """The answer's own headers (without ``x-cache``): what an entry keeps."""

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            headers = self._headers = list(message.get("headers", ()))
            message = {**message, "headers": [*headers, _MISS]}
            if message["status"] == 200 and storable(headers, self._store.max_entry_bytes):
                self._answer.hold(message)
                return
            await self._send(message)
            return
        whole = await self._answer.feed(message)
        if whole is None:
            return
        start, body = whole
        entry = Entry(start["status"], self._headers, body, self._when, self._ttl)
        self._store.put(self._key, entry)
        await self._send(start)
        await self._send({"type": "http.response.body", "body": body, "more_body": False})


class Lookup:
    """What the cache step found for a request: its key, the entry (None: a miss), when it
    looked, and whether the request is conditional."""

    __slots__ = ("conditional", "entry", "key", "now")

    def __init__(
        self, key: tuple[Any, ...], entry: Entry | None, now: float, conditional: bool
    ) -> None:
        self.key = key
        self.entry = entry
        self.now = now
        self.conditional = conditional


async def send_hit(scope: Scope, send: Send, entry: Entry, now: float, conditional: bool) -> None:
    """Answers ``entry`` (``304`` when the request's validators match it)."""
    age = (b"age", b"%d" % max(0, int(now - entry.stored)))
    if conditional and not_modified(scope["headers"], entry.validators):
        kept = [*entry.not_modified_headers, age]  # the client's copy is current
        await send({"type": "http.response.start", "status": 304, "headers": kept})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [*entry.hit_headers, age]
    await send({"type": "http.response.start", "status": entry.status, "headers": headers})
    body = b"" if scope["method"] == "HEAD" else entry.body
    await send({"type": "http.response.body", "body": body, "more_body": False})


class Cache:
    """The response cache step of one route, whose ``cache`` settings it reads once (see the
    module docstring). With a ``front`` index (a route with no step before this one), the
    requests it may answer are noted there, so :class:`CacheFront` can answer their hits
    early."""

    def __init__(
        self,
        app: ASGIApp,
        store: ResponseCache,
        source: ApiSource,
        config: CacheConfig,
        front: FrontIndex | None = None,
        host: str = "",
    ) -> None:
        self.app = app
        self.store = store
        self.source = source
        self.front = front
        self.host = host  # the route's host: its answers are not another host's on the same path
        self.methods = frozenset(config.methods)
        self.head_as_get = "GET" in self.methods  # a HEAD is answered from the GET entry
        self.ttl = float(config.ttl)
        self.sources = key_sources(config)

    def find(self, scope: Scope, path: str | None = None) -> Lookup | None:
        """The request's key and entry; None when the request is not answered from the cache
        (a method the route does not cache, a ``Range`` request). ``path``: the request's, if
        the caller has it already."""
        method: str = scope["method"]
        lookup = "GET" if method == "HEAD" and self.head_as_get else method
        if lookup not in self.methods:
            return None
        refresh = conditional = False
        for name, value in scope["headers"]:  # one pass for every header the step reads
            if name == b"range":  # a part: from the origin
                return None
            if name == b"cache-control":
                refresh = refresh or b"max-age=0" in _tokens(value)
            elif name in _CONDITIONAL:
                conditional = True
        if path is None:
            path = request_path(scope)
        key = cache_key(scope, lookup, path, self.sources)
        if self.host:
            key = (*key, self.host)
        now = time.monotonic()
        if refresh:
            refresh = may_invalidate(scope["state"], self.source.api)
        entry = None if refresh else self.store.get(key, now)
        return Lookup(key, entry, now, conditional)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.find(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        if self.front is not None:
            self.front.note(scope, found.key[1], self)  # the key's path
        if found.entry is not None:
            await send_hit(scope, send, found.entry, found.now, found.conditional)
            return
        if scope["method"] != found.key[0] or self.ttl <= 0:  # a HEAD miss, or nothing to keep
            await self.app(scope, receive, _add_miss(send))
            return
        capture = _Capture(send, self.store, found.key, found.now, self.ttl)
        await self.app(scope, receive, capture.send)


class FrontIndex:
    """The route match and cache step of recently requested paths (method, path) whose route
    has no step before its cache: what :class:`CacheFront` answers hits from. Emptied when the
    route table or the API changes (:meth:`ContentPolicies.prepare`), and when it is full."""

    __slots__ = ("enabled", "limit", "paths")

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self.enabled = False  # a table with host routes: the path alone does not tell the route
        self.paths: dict[tuple[str, str], tuple[RouteMatch[RouteTarget], Cache]] = {}

    def note(self, scope: Scope, path: str, step: Cache) -> None:
        """Remembers the request's route match and ``step`` (a request ``step`` may answer)
        under its method and ``path``.
        Called by the step before it awaits anything, so in the same turn of the event loop as
        the route match: what it notes belongs to the table in force."""
        if not self.enabled:
            return
        paths = self.paths
        key = (scope["method"], path)
        if key not in paths:
            if len(paths) >= self.limit:
                paths.clear()
            paths[key] = (scope["state"]["route"], step)

    def reset(self, enabled: bool) -> None:
        self.paths = {}
        self.enabled = enabled


class CacheFront:
    """Answers a cache hit before the route match, for a path the index knows (see
    :class:`FrontIndex`): the same answer the route's cache step would give, without the
    steps between. Anything else goes on to the route match."""

    def __init__(self, app: ASGIApp, index: FrontIndex) -> None:
        self.app = app
        self.index = index

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        paths = self.index.paths
        if paths:
            path = request_path(scope)
            known = paths.get((scope["method"], path))
            if known is not None:
                match, step = known
                found = step.find(scope, path)
                if found is not None and found.entry is not None:
                    scope["state"]["route"] = match  # for the access log, metrics and traces
                    return send_hit(scope, send, found.entry, found.now, found.conditional)
        return self.app(scope, receive, send)


def _add_miss(send: Send) -> Send:
    async def with_miss(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), _MISS]}
        await send(message)

    return with_miss


class ContentPolicies:
    """The gateway's validation, gzip, cache and transform state, and the steps using it."""

    def __init__(self, source: ApiSource, root: Path | None, max_body_size: int) -> None:
        self.source = source
        self.max_body_size = max_body_size
        self.schemas = Schemas(root)
        self.transforms = Transforms()
        self.cache = ResponseCache(source.api.cache)
        self.front = FrontIndex()

    def prepare(self, routes: Iterable[RouteSpec]) -> None:
        """Compiles the routes' schemas and templates (raises InvalidRoute, naming the route,
        for a bad one; nothing changes then: both are swapped in only when both compiled)."""
        routes = tuple(routes)
        schemas = self.schemas.compile(routes)
        transforms = self.transforms.compile(routes)
        self.schemas.use(schemas)
        self.transforms.use(transforms)
        self.front.reset(enabled=not any(route.host for route in routes))

    def check(self, routes: Iterable[RouteSpec]) -> None:
        """Raises InvalidRoute if a route's schema or template would be refused by ``prepare``
        (for a deploy, before anything changes)."""
        routes = tuple(routes)
        self.schemas.compile(routes)
        self.transforms.compile(routes)

    def configure(self, api: ApiConfig) -> None:
        self.cache.configure(api.cache)

    def wrap_route(self, route: RouteSpec, app: ASGIApp, first: bool = False) -> ASGIApp:
        """validation → gzip → cache → transform → ``app``, each step only where ``route``'s
        policy (the API's, for gzip) has it: the cache keeps answers uncompressed and gzip
        compresses them per client. ``first``: the route has no step before these (no
        authorizer, no usage plan or throttle); if it has no validation or gzip either, its
        hits are answered before the route match (:class:`CacheFront`)."""
        policy = route.policy
        if policy.transform is not None:
            app = Transform(app, self.transforms, self.max_body_size)
        if policy.cache is not None:
            front = first and policy.validation is None and self.source.api.gzip is None
            index = self.front if front else None
            app = Cache(app, self.cache, self.source, policy.cache, index, route.host.lower())
        if self.source.api.gzip is not None:
            app = Gzip(app, self.source)
        if policy.validation is not None:
            app = Validation(app, self.schemas, self.max_body_size)
        return app
