"""Route matching: compiles a table's routes once into a segment trie and matches requests.

Templates are API Gateway style: literal segments, ``{param}`` (exactly one segment) and a
greedy ``{proxy+}`` (one or more segments, last position only). Priority, segment by segment
from the left: a literal beats ``{param}``, which beats ``{proxy+}``; so a longer, more literal
template wins over a shorter or more generic one. At the same template a route listing the
method beats an ``ANY`` route; the first of two identical routes wins.

If a template matches the path but none of its routes takes the method, the next template in
priority order is tried; when no template takes the method the answer is 405 with the union of
the methods of the matching templates, and 404 when no template matches the path.

:class:`HostRouter` puts routes with a ``host`` in a router of their own, used for requests
whose ``Host`` (without the port, case-insensitive) names it; every other request is matched
against the routes without a host. Without host routes no header is looked at.

Paths are matched on the raw (still percent-encoded) path split on ``/`` and decoded per
segment, so ``%2F`` inside a parameter stays inside it. A trailing slash is ignored for
matching (``/items/`` matches ``/items``); the root template ``/`` matches only ``/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar
from urllib.parse import unquote

from .errors import InvalidRoute, MethodNotAllowed, NoRoute
from .table import RouteSpec

ANY = "ANY"
T = TypeVar("T")


class RouteMatch(Generic[T]):
    """The route chosen for a request, its compiled target and its decoded path parameters."""

    __slots__ = ("params", "route", "target")

    def __init__(self, route: RouteSpec, target: T, params: dict[str, str]) -> None:
        self.route = route
        self.target = target
        self.params = params

    def __repr__(self) -> str:
        return f"RouteMatch({self.route.path!r}, {self.params!r})"


class _Entry(Generic[T]):
    """One route as the trie keeps it: the route, its target and where its parameters are."""

    __slots__ = ("params", "proxy", "proxy_at", "route", "target")

    def __init__(
        self,
        route: RouteSpec,
        target: T,
        params: tuple[tuple[int, str], ...],  # (segment index, name)
        proxy: str | None,  # name of the greedy parameter
        proxy_at: int,  # the segment the greedy parameter starts at
    ) -> None:
        self.route = route
        self.target = target
        self.params = params
        self.proxy = proxy
        self.proxy_at = proxy_at


class _Leaf(Generic[T]):
    __slots__ = ("any", "methods")

    def __init__(self) -> None:
        self.methods: dict[str, _Entry[T]] = {}
        self.any: _Entry[T] | None = None

    def add(self, entry: _Entry[T], methods: Iterable[str]) -> None:
        for method in methods:
            if method == ANY:
                if self.any is None:
                    self.any = entry
            else:
                self.methods.setdefault(method, entry)

    def get(self, method: str) -> _Entry[T] | None:
        entry = self.methods.get(method)
        return entry if entry is not None else self.any


class _Node(Generic[T]):
    __slots__ = ("leaf", "literals", "param", "proxy")

    def __init__(self) -> None:
        self.literals: dict[str, _Node[T]] = {}
        self.param: _Node[T] | None = None
        self.proxy: _Leaf[T] | None = None
        self.leaf: _Leaf[T] | None = None


def _parse(template: str) -> list[tuple[str, str]]:
    """Split a template into (kind, text) segments: kind is literal, param or proxy."""
    if not template.startswith("/"):
        raise InvalidRoute(f"route path {template!r} must start with '/'")
    body = template[1:]
    if body.endswith("/"):
        body = body[:-1]
    if not body:
        return []
    parts = body.split("/")
    out: list[tuple[str, str]] = []
    for i, part in enumerate(parts):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            kind = "param"
            if name.endswith("+"):
                name, kind = name[:-1], "proxy"
                if i != len(parts) - 1:
                    raise InvalidRoute(f"{{{name}+}} must be the last segment in {template!r}")
            if not name or not name.replace("_", "a").replace("-", "a").isalnum():
                raise InvalidRoute(f"bad parameter name {part!r} in {template!r}")
            out.append((kind, name))
        elif "{" in part or "}" in part:
            raise InvalidRoute(f"a parameter must be a whole segment in {template!r}")
        else:
            out.append(("literal", part))
    return out


class Router(Generic[T]):
    """A compiled, immutable matcher for one route table's routes.

    ``prepare`` turns each route into the target a match carries (for the gateway: the
    route's upstream pool and policies), once, when the router is built.
    """

    __slots__ = ("_root", "_static")

    def __init__(self, routes: Iterable[RouteSpec], prepare: Callable[[RouteSpec], T]) -> None:
        self._root: _Node[T] = _Node()
        self._static: dict[str, _Leaf[T]] = {}
        for route in routes:
            self._add(route, prepare)

    def _add(self, route: RouteSpec, prepare: Callable[[RouteSpec], T]) -> None:
        methods = {m.upper() for m in route.methods}
        if not methods:
            raise InvalidRoute(f"route {route.path!r} has no methods")
        node = self._root
        params: list[tuple[int, str]] = []
        proxy: str | None = None
        segments = _parse(route.path)
        for i, (kind, text) in enumerate(segments):
            if kind == "literal":
                node = node.literals.setdefault(text, _Node())
            elif kind == "param":
                params.append((i, text))
                if node.param is None:
                    node.param = _Node()
                node = node.param
            else:
                proxy = text
        entry = _Entry(route, prepare(route), tuple(params), proxy, len(segments) - 1)
        if proxy is not None:
            if node.proxy is None:
                node.proxy = _Leaf()
            node.proxy.add(entry, methods)
            return
        if node.leaf is None:
            node.leaf = _Leaf()
        node.leaf.add(entry, methods)
        if not params:
            self._static["/".join(text for _, text in segments)] = node.leaf

    def match(self, method: str, raw_path: str) -> RouteMatch[T]:
        """The best route for ``method`` on ``raw_path``; raises NoRoute or MethodNotAllowed."""
        body = raw_path[1:] if raw_path.startswith("/") else raw_path
        segs = body.split("/")
        if "%" in body:
            segs = [unquote(s) if "%" in s else s for s in segs]
            body = "/".join(segs)
        n = len(segs)
        if n and not segs[-1]:
            n -= 1  # trailing slash (and the root path) do not count as a segment
            body = body[:-1]
        leaf = self._static.get(body)
        if leaf is not None:
            entry = leaf.get(method)
            if entry is not None:
                return RouteMatch(entry.route, entry.target, {})
        found = self._search(self._root, segs, 0, n, method, None)
        if found is None:
            allowed: set[str] = set()  # the methods that would match: searched again, for 405
            self._search(self._root, segs, 0, n, method, allowed)
            if allowed:
                raise MethodNotAllowed(allowed)
            raise NoRoute()
        params = {name: segs[i] for i, name in found.params}
        if found.proxy is not None:
            params[found.proxy] = "/".join(segs[found.proxy_at :])
        return RouteMatch(found.route, found.target, params)

    def _search(
        self,
        node: _Node[T],
        segs: list[str],
        i: int,
        n: int,
        method: str,
        allowed: set[str] | None,
    ) -> _Entry[T] | None:
        if i == n:
            leaf = node.leaf
            return _take(leaf, method, allowed) if leaf is not None else None
        child = node.literals.get(segs[i])
        if child is not None:
            found = self._search(child, segs, i + 1, n, method, allowed)
            if found is not None:
                return found
        if node.param is not None and segs[i]:
            found = self._search(node.param, segs, i + 1, n, method, allowed)
            if found is not None:
                return found
        if node.proxy is not None:
            return _take(node.proxy, method, allowed)
        return None


def _take(leaf: _Leaf[T], method: str, allowed: set[str] | None) -> _Entry[T] | None:
    """The leaf's entry for ``method``; when there is none, its methods go in ``allowed``
    (if given)."""
    entry = leaf.get(method)
    if entry is None and allowed is not None:
        allowed.update(leaf.methods)
    return entry


class HostRouter(Generic[T]):
    """One :class:`Router` per route ``host`` plus the default one (see the module docstring)."""

    __slots__ = ("_default", "_hosts")

    def __init__(self, routes: Iterable[RouteSpec], prepare: Callable[[RouteSpec], T]) -> None:
        by_host: dict[str, list[RouteSpec]] = {}
        for route in routes:
            by_host.setdefault(route.host.lower(), []).append(route)
        self._default: Router[T] = Router(by_host.pop("", []), prepare)
        self._hosts = {host.encode(): Router(rs, prepare) for host, rs in by_host.items()}

    @property
    def hosts(self) -> list[str]:
        return sorted(host.decode() for host in self._hosts)

    def match(
        self, method: str, raw_path: str, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> RouteMatch[T]:
        """The best route for ``method`` on ``raw_path`` for the ``Host`` in ``headers``."""
        if self._hosts:
            for name, value in headers:
                if name == b"host":
                    router = self._hosts.get(_host_name(value))
                    if router is not None:
                        return router.match(method, raw_path)
                    break
        return self._default.match(method, raw_path)


def _host_name(value: bytes) -> bytes:
    """``Example.COM:8080`` → ``example.com``; ``[::1]:80`` → ``[::1]``."""
    value = value.strip().lower()
    if value.startswith(b"["):
        return value[: value.find(b"]") + 1] if b"]" in value else value
    return value.rsplit(b":", 1)[0] if b":" in value else value
