"""The compiled router on its own: templates, priority, methods, decoding, bad templates."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackyard.gateway import InvalidRoute, MethodNotAllowed, NoRoute, Router, RouteSpec


def router(*routes: RouteSpec) -> Router[RouteSpec]:
    return Router(routes, lambda r: r)


def R(path: str, *methods: str, service: str = "s") -> RouteSpec:
    return RouteSpec(path, service, methods=frozenset(methods or {"ANY"}))


def test_param_and_proxy_values():
    r = router(R("/items/{id}"), R("/files/{proxy+}"))
    m = r.match("GET", "/items/42")
    assert m.route.path == "/items/{id}" and m.params == {"id": "42"}
    m = r.match("GET", "/files/a/b/c.txt")
    assert m.params == {"proxy": "a/b/c.txt"}
    with pytest.raises(NoRoute):
        r.match("GET", "/files")  # {proxy+} needs at least one segment
    with pytest.raises(NoRoute):
        r.match("GET", "/items/42/more")


def test_priority_literal_param_proxy():
    r = router(R("/{proxy+}"), R("/items/{proxy+}"), R("/items/{id}"), R("/items/new"))
    assert r.match("GET", "/items/new").route.path == "/items/new"
    assert r.match("GET", "/items/7").route.path == "/items/{id}"
    assert r.match("GET", "/items/7/x").route.path == "/items/{proxy+}"
    assert r.match("GET", "/other/a").route.path == "/{proxy+}"
    with pytest.raises(NoRoute):
        r.match("GET", "/")


def test_longer_beats_shorter():
    r = router(R("/a/{proxy+}"), R("/a/b/{proxy+}"), R("/a/{x}/{y}"))
    assert r.match("GET", "/a/b/c").route.path == "/a/b/{proxy+}"
    assert r.match("GET", "/a/z/c").route.path == "/a/{x}/{y}"
    assert r.match("GET", "/a/z/c/d").route.path == "/a/{proxy+}"


def test_root_and_trailing_slash():
    r = router(R("/"), R("/items"))
    assert r.match("GET", "/").route.path == "/"
    assert r.match("GET", "/items/").route.path == "/items"
    with pytest.raises(NoRoute):
        r.match("GET", "/nope")


def test_methods_405_and_fallthrough():
    r = router(R("/x", "GET"), R("/x", "POST"), R("/items/new", "GET"), R("/items/{id}", "DELETE"))
    assert r.match("POST", "/x").route.methods == frozenset({"POST"})
    with pytest.raises(MethodNotAllowed) as info:
        r.match("PUT", "/x")
    assert info.value.allowed == ("GET", "POST")
    assert info.value.extra_headers() == [(b"allow", b"GET, POST")]
    # the literal template does not take DELETE: the {id} one does
    assert r.match("DELETE", "/items/new").route.path == "/items/{id}"
    with pytest.raises(MethodNotAllowed) as info:
        r.match("PATCH", "/items/new")
    assert info.value.allowed == ("DELETE", "GET")


def test_specific_method_beats_any_and_first_wins():
    a = RouteSpec("/p", "any-svc")
    g = RouteSpec("/p", "get-svc", methods=frozenset({"GET"}))
    g2 = RouteSpec("/p", "get-svc-2", methods=frozenset({"get"}))
    r = router(a, g, g2)
    assert r.match("GET", "/p").route.service == "get-svc"
    assert r.match("POST", "/p").route.service == "any-svc"


def test_percent_decoding():
    r = router(R("/files/{name}"), R("/raw/{proxy+}"), R("/caf\u00e9"))
    assert r.match("GET", "/files/a%2Fb").params == {"name": "a/b"}
    assert r.match("GET", "/files/hello%20world").params == {"name": "hello world"}
    assert r.match("GET", "/raw/x%20y/z").params == {"proxy": "x y/z"}
    assert r.match("GET", "/caf%C3%A9").route.path == "/caf\u00e9"


def test_empty_segment_is_not_a_param():
    r = router(R("/a/{id}/b"))
    with pytest.raises(NoRoute):
        r.match("GET", "/a//b")


@pytest.mark.parametrize(
    "path", ["items", "/a/{proxy+}/b", "/a/x{id}", "/a/{}", "/a/{na me}", "/a/{id"]
)
def test_bad_templates(path: str):
    with pytest.raises(InvalidRoute):
        router(R(path))


ROUTES = [
    R("/"),
    R("/items", "GET", "POST"),
    R("/items/{id}", "GET", "PUT", "DELETE"),
    R("/items/{id}/tags/{tag}", "GET"),
    R("/files/{proxy+}"),
    R("/a/b/{proxy+}", "POST"),
]
segment = st.lists(
    st.sampled_from([*"abcitemsfl2F0{}+-_.~:@ /\u00e9", "%", "%zz", "%C3", "%2F", "tags"]),
    max_size=6,
).map("".join)
paths = st.lists(segment, max_size=6).map(lambda s: "/" + "/".join(s))
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "FOO"])


@settings(max_examples=500, deadline=None)
@given(path=paths, method=methods)
def test_random_paths_never_raise_anything_else(path: str, method: str):
    r = router(*ROUTES)
    try:
        m = r.match(method, path)
    except (NoRoute, MethodNotAllowed):
        return
    assert m.route in ROUTES
    assert all(isinstance(v, str) for v in m.params.values())


def test_host_routes_answer_only_their_host():
    from stackyard.gateway.router import HostRouter

    routes = [
        RouteSpec("/items", "default"),
        RouteSpec("/items", "beta", host="beta.example"),
        RouteSpec("/only-beta", "beta", host="beta.example"),
        RouteSpec("/v6", "six", host="[::1]"),
    ]
    r: HostRouter[RouteSpec] = HostRouter(routes, lambda route: route)
    assert r.hosts == ["[::1]", "beta.example"]
    assert r.match("GET", "/items").route.service == "default"
    assert r.match("GET", "/items", [(b"host", b"BETA.example:8443")]).route.service == "beta"
    assert r.match("GET", "/items", [(b"host", b"other.example")]).route.service == "default"
    assert r.match("GET", "/v6", [(b"host", b"[::1]:80")]).route.service == "six"
    with pytest.raises(NoRoute):  # a host's routes are not visible from other hosts
        r.match("GET", "/only-beta", [(b"host", b"other.example")])
    with pytest.raises(NoRoute):  # and a host with routes sees only its own
        r.match("GET", "/v6", [(b"host", b"beta.example")])
