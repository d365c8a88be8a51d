"""The ``api:`` section: integrations, policies and the names they refer to."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard.config import ConfigError, parse_stack

STACK = """\
name: s
services:
  items: {command: x}
functions:
  check: {handler: h.check}
api:
  throttle: {rate: 100, burst: 200}
  gzip: true
  authorizers:
    users: {type: jwt, issuer: https://issuer.example, audience: shop, jwks: jwks.json}
    custom: {type: function, function: check, identity_source: header.x-token, ttl: 30s}
  usage_plans:
    basic: {throttle: {rate: 5, burst: 5}, quota: {limit: 1000, period: day}}
  stages:
    prod: {variables: {color: blue}}
  routes:
    - path: /items/{id}
      service: items
      api_key: true
      authorizer: users
      scopes: [items.read]
      cache: {ttl: 60, key: [query.lang, header.accept]}
      throttle: {rate: 10, burst: 10}
    - path: /ping
      mock: {status: 200, body: pong}
      cache: 30
"""


def test_the_issue_sketch_loads() -> None:
    api = parse_stack(STACK, Path("s.yml"), {}).api
    route = api.routes[0]
    assert route.cache is not None and route.cache.key == ["query.lang", "header.accept"]
    assert route.cache.ttl == 60 and route.cache.methods == ["GET"]
    assert api.routes[1].cache is not None and api.routes[1].cache.ttl == 30
    assert api.gzip is not None and api.gzip.min_size == 1024
    custom = api.authorizers["custom"]
    assert custom.type == "function" and custom.identity_source == ["header.x-token"]
    assert custom.ttl == 30
    assert api.usage_plans["basic"].quota is not None
    assert api.stages["prod"].variables == {"color": "blue"}


@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        ("authorizer: users", "s.yml:20: api.routes.0.authorizer: no authorizer named 'nobody'"),
        (
            "function: check",
            "s.yml:11: api.authorizers.custom.function: no function named 'nobody'",
        ),
    ],
)
def test_unknown_names_are_reported_with_their_line(replace: str, expected: str) -> None:
    text = STACK.replace(replace, replace.split(":")[0] + ": nobody")
    with pytest.raises(ConfigError) as info:
        parse_stack(text, Path("s.yml"), {})
    assert [str(p) for p in info.value.problems] == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("routes: [{path: /x}]", "exactly one of service, function, mock"),
        ("routes: [{path: /x, service: items, function: check}]", "exactly one of"),
        ("routes: [{path: /x, service: items, scopes: [a]}]", "scopes need an authorizer"),
        ("routes: [{path: /x, service: items, cache: {ttl: 7200}}]", "less than or equal to 3600"),
        ("routes: [{path: /x, service: items, cache: {key: [cookie.a]}}]", "expected header.NAME"),
        ("throttle: {rate: 0, burst: 1}", "greater than 0"),
        ("usage_plans: {p: {quota: {limit: 5, period: year}}}", "'day', 'week' or 'month'"),
        ('usage_plans: {"basic\\n": {}}', "letters, digits"),
        ("authorizers: {a: {type: jwt}}", "exactly one of jwks, secret"),
        ("authorizers: {a: {type: jwt, secret: s, algorithms: [none]}}", "'none' is not allowed"),
        ("authorizers: {a: {type: saml}}", "does not match any of the expected tags"),
        (
            "routes: [{path: /x, service: items, validate: {body: {type: object}, bogus: 1}}]",
            "unknown field",
        ),
    ],
)
def test_bad_api_sections_are_refused(text: str, expected: str) -> None:
    stack = f"name: s\nservices: {{items: {{command: x}}}}\napi:\n  {text}\n"
    with pytest.raises(ConfigError) as info:
        parse_stack(stack, Path("s.yml"), {})
    assert expected in str(info.value)
