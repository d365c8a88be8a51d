"""serverless.yml's API keys, usage plans and authorizers as Stackyard API policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard.config import ConfigError
from stackyard.config.serverless import parse_serverless
from stackyard.gateway.policy import NO_POLICY
from stackyard.routes import function_routes

DOC = """\
service: keyed
provider:
  name: aws
  runtime: python3.11
  apiGateway:
    apiKeys: [partner]
    apiKeySourceType: HEADER
    usagePlan:
      quota: {limit: 5000, offset: 2, period: MONTH}
      throttle: {burstLimit: 200, rateLimit: 100}
  httpApi:
    authorizers:
      users:
        identitySource: $request.header.Authorization
        issuerUrl: https://issuer.example/
        audience: [shop]
      custom:
        type: request
        functionName: check
        identitySource: [$request.header.X-Token, $request.querystring.t]
        resultTtlInSeconds: 60
        enableSimpleResponses: true
functions:
  check:
    handler: h.check
  items:
    handler: h.items
    events:
      - http: {path: items, method: get, private: true}
      - httpApi: {path: /v2/items, method: get, authorizer: {name: users, scopes: [items.read]}}
      - httpApi: {path: /v2/custom, method: get, authorizer: custom}
      - httpApi: {path: /v2/open, method: get}
"""


def test_keys_plans_and_authorizers_are_translated() -> None:
    config, warnings = parse_serverless(DOC, Path("serverless.yml"), {}, {})
    plan = config.api.usage_plans["default"]
    assert plan.throttle is not None and (plan.throttle.rate, plan.throttle.burst) == (100, 200)
    assert plan.quota is not None and (plan.quota.limit, plan.quota.period) == (5000, "month")
    users = config.api.authorizers["users"]
    assert users.type == "jwt"
    assert users.issuer == "https://issuer.example"
    assert users.jwks == "https://issuer.example/.well-known/jwks.json"
    assert users.audience == ["shop"] and users.identity_source == "header.authorization"
    custom = config.api.authorizers["custom"]
    assert custom.type == "function" and custom.function == "check"
    assert custom.identity_source == ["header.x-token", "query.t"]
    assert (custom.ttl, custom.response) == (60, "simple")
    assert any("stackyard keys create NAME --plan default" in w for w in warnings), warnings

    policies = {(r.path, r.resource): r.policy for r in function_routes(config, "dev")}
    private = policies[("/dev/items", "/items")]
    assert private.api_key and private.authorizer is None
    jwt = policies[("/v2/items", "/v2/items")]
    assert (jwt.authorizer, jwt.scopes, jwt.api_key) == ("users", ("items.read",), False)
    assert policies[("/v2/custom", "/v2/custom")].authorizer == "custom"
    assert policies[("/v2/open", "/v2/open")] is NO_POLICY


def test_an_event_naming_an_unknown_authorizer_is_refused() -> None:
    text = DOC.replace("authorizer: custom", "authorizer: nobody")
    with pytest.raises(ConfigError) as info:
        parse_serverless(text, Path("serverless.yml"), {}, {})
    assert "functions.items.events.2.httpApi.authorizer: no authorizer named 'nobody'" in str(
        info.value
    )
