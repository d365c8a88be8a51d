"""Function (Lambda REQUEST) authorizers on a served gateway with a real function runtime
(handlers in real worker processes): allow, deny, errors, missing identity, the result cache,
and what reaches the integration (function proxy events and http upstreams)."""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest

from stackyard.config.api import ApiConfig, FunctionAuthorizerConfig, JwtAuthorizerConfig
from stackyard.config.models import FunctionConfig
from stackyard.functions.runtime import FunctionRuntime
from stackyard.gateway import RouteSpec
from stackyard.gateway.auth.cache import ResultCache
from stackyard.gateway.auth.function import glob_match, parse_answer
from stackyard.gateway.policy import RoutePolicy

from .conftest import Backend, Served, make_table

SECRET = "function-authorizer-tests-secret-" + "y" * 32

HANDLERS = """
import json, os

ARN_PREFIX = "arn:aws:execute-api:us-east-1:000000000000:"

def _record(name, event):
    with open(os.environ["CALLS"], "a") as f:
        f.write(json.dumps({"name": name, "event": event}) + "\\n")

def simple(event, context):
    _record("simple", event)
    token = event["identitySource"][0]
    if token == "boom":
        raise RuntimeError("authorizer crashed")
    if token == "garbage":
        return "not an answer"
    if token == "half":
        return {"isAuthorized": "yes"}
    return {"isAuthorized": token.startswith("allow"), "context": {"user": token, "n": 7}}

def iam(event, context):
    _record("iam", event)
    token = event["authorizationToken"]
    if token == "nobody":
        return {"principalId": "x", "policyDocument": {"Version": "2012-10-17", "Statement": []}}
    return {
        "principalId": "user-7",
        "usageIdentifierKey": "key-" + token,
        "context": {"tier": "gold", "admin": False},
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow",
                 "Resource": ["arn:aws:execute-api:*:*:stackyard/dev/GET/items/*"]},
                {"Action": "execute-api:Invoke", "Effect": "Deny",
                 "Resource": ARN_PREFIX + "stackyard/*/*/items/secret"},
            ],
        },
    }

def echo(event, context):
    return {"statusCode": 200, "body": json.dumps(event["requestContext"].get("authorizer"))}
"""


@dataclass
class Setup:
    served: Served
    backend: Backend
    calls_file: Path

    def calls(self, name: str | None = None) -> list[dict[str, Any]]:
        if not self.calls_file.exists():
            return []
        lines = [json.loads(line) for line in self.calls_file.read_text().splitlines()]
        return [c["event"] for c in lines if name is None or c["name"] == name]

    async def call(
        self, path: str, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> tuple[int, Any]:
        status, _, body = await self.served.request(method, path, headers=headers)
        return status, json.loads(body) if body else None


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[FunctionRuntime]:
    app = tmp_path / "app"
    app.mkdir()
    (app / "authz.py").write_text(textwrap.dedent(HANDLERS))
    env = {"CALLS": str(tmp_path / "calls.jsonl")}
    functions = {
        name: FunctionConfig(handler=f"authz.{name}", env=env) for name in ("simple", "iam", "echo")
    }
    runtime = FunctionRuntime(
        functions,
        stack_root=app,
        data_dir=tmp_path / "data",
        log_dir=tmp_path / "logs",
        base_env={"STACKYARD_URL": "http://127.0.0.1:4566", "AWS_REGION": "us-east-1"},
    )
    await runtime.start()
    yield runtime
    await runtime.stop()


@pytest.fixture
async def setup(
    serve: Callable[..., Awaitable[Served]],
    make_backend: Callable[..., Awaitable[Backend]],
    runtime: FunctionRuntime,
    tmp_path: Path,
) -> Setup:
    api = ApiConfig(
        authorizers={
            "simple": FunctionAuthorizerConfig(
                type="function",
                function="simple",
                identity_source=["header.x-token"],
                ttl=1,
            ),
            "uncached": FunctionAuthorizerConfig(
                type="function",
                function="simple",
                identity_source=["header.x-token", "query.tenant"],
                ttl=0,
            ),
            "iam": FunctionAuthorizerConfig(
                type="function",
                function="iam",
                response="iam",
                payload_version="1.0",
                ttl=300,
            ),
            "jwt": JwtAuthorizerConfig(type="jwt", secret=SECRET),
        }
    )
    backend = await make_backend("svc")
    served = await serve(api=api, root=tmp_path, functions=runtime)

    def function(path: str, authorizer: str, version: str = "2.0", **kw: Any) -> RouteSpec:
        return RouteSpec(
            path,
            integration="function",
            function="echo",
            payload_version=version,  # type: ignore[arg-type]
            policy=RoutePolicy(authorizer=authorizer),
            **kw,
        )

    routes = [
        function("/v2/items/{id}", "simple", resource="/v2/items/{id}"),
        function("/uncached", "uncached"),
        function("/dev/items/{id}", "iam", "1.0", stage="dev", resource="/items/{id}"),
        function("/dev/jwt", "jwt", "1.0", stage="dev", resource="/jwt"),
        function("/jwt", "jwt"),
        RouteSpec("/svc/{id}", service="svc", policy=RoutePolicy(authorizer="simple")),
        RouteSpec("/items/{id}", service="svc", stage="dev", policy=RoutePolicy(authorizer="iam")),
    ]
    served.gateway.update(make_table(1, routes, {"svc": [backend]}))
    return Setup(served, backend, tmp_path / "calls.jsonl")


async def test_simple_allow_passes_context_to_the_function(setup: Setup) -> None:
    status, body = await setup.call("/v2/items/42?lang=en", {"x-token": "allow-ada"})
    assert status == 200, body
    assert body == {"lambda": {"user": "allow-ada", "n": 7}}
    [event] = setup.calls("simple")
    assert event["version"] == "2.0" and event["type"] == "REQUEST"
    assert event["identitySource"] == ["allow-ada"]
    assert event["routeArn"] == (
        "arn:aws:execute-api:us-east-1:000000000000:stackyard/$default/GET/v2/items/42"
    )
    assert event["routeKey"] == "ANY /v2/items/{id}"
    assert event["rawPath"] == "/v2/items/42" and event["rawQueryString"] == "lang=en"
    assert event["headers"]["x-token"] == "allow-ada"
    assert event["queryStringParameters"] == {"lang": "en"}
    assert event["pathParameters"] == {"id": "42"}
    assert event["requestContext"]["http"]["method"] == "GET"
    assert "body" not in event and "isBase64Encoded" not in event


async def test_simple_deny_error_and_missing_identity(setup: Setup) -> None:
    status, body = await setup.call("/v2/items/1", {"x-token": "mallory"})
    assert status == 403
    assert body == {"error": {"code": "Forbidden", "message": "Forbidden"}}
    status, body = await setup.call("/v2/items/1")
    assert status == 401 and body["error"]["code"] == "Unauthorized"
    assert (await setup.call("/v2/items/1", {"x-token": ""}))[0] == 401
    assert len(setup.calls()) == 1  # no identity: the function is not called
    for token in ("boom", "garbage", "half"):
        status, body = await setup.call("/v2/items/1", {"x-token": token})
        assert status == 500, token
        assert body["error"]["code"] == "AuthorizerFailure"
    # a failure is not cached
    assert (await setup.call("/v2/items/1", {"x-token": "boom"}))[0] == 500
    assert len(setup.calls()) == 5


async def test_result_cache_ttl(setup: Setup) -> None:
    for _ in range(3):
        assert (await setup.call("/v2/items/1", {"x-token": "allow-1"}))[0] == 200
    assert len(setup.calls()) == 1
    assert (await setup.call("/v2/items/2", {"x-token": "allow-2"}))[0] == 200
    assert len(setup.calls()) == 2  # another identity, another call
    # a cached deny is a deny too
    assert (await setup.call("/v2/items/1", {"x-token": "no"}))[0] == 403
    assert (await setup.call("/v2/items/1", {"x-token": "no"}))[0] == 403
    assert len(setup.calls()) == 3
    await asyncio.sleep(1.1)
    assert (await setup.call("/v2/items/1", {"x-token": "allow-1"}))[0] == 200
    assert len(setup.calls()) == 4  # the TTL passed
    # ttl 0: every request calls the function; both identity sources are needed
    for _ in range(2):
        assert (await setup.call("/uncached?tenant=t1", {"x-token": "allow-u"}))[0] == 200
    assert (await setup.call("/uncached", {"x-token": "allow-u"}))[0] == 401
    assert len(setup.calls()) == 6
    assert setup.calls()[-1]["identitySource"] == ["allow-u", "t1"]


async def test_concurrent_misses_share_one_call(setup: Setup) -> None:
    results = await asyncio.gather(
        *(setup.call("/v2/items/1", {"x-token": "allow-many"}) for _ in range(8))
    )
    assert [status for status, _ in results] == [200] * 8
    assert len(setup.calls()) == 1


async def test_iam_policy_evaluated_per_resource(setup: Setup) -> None:
    status, body = await setup.call("/dev/items/1", {"authorization": "t1"})
    assert status == 200, body
    assert body == {
        "tier": "gold",
        "admin": False,
        "principalId": "user-7",
        "integrationLatency": body["integrationLatency"],
    }
    [event] = setup.calls("iam")
    assert event["type"] == "REQUEST"
    assert event["methodArn"] == (
        "arn:aws:execute-api:us-east-1:000000000000:stackyard/dev/GET/items/1"
    )
    assert event["authorizationToken"] == "t1" and event["identitySource"] == "t1"
    assert event["resource"] == "/items/{id}" and event["path"] == "/items/1"
    assert event["httpMethod"] == "GET" and event["headers"]["Authorization"] == "t1"
    assert event["pathParameters"] == {"id": "1"}
    assert event["requestContext"]["stage"] == "dev"
    assert "authorizer" not in event["requestContext"] and "body" not in event
    # the cached policy denies another resource without a second call
    status, body = await setup.call("/dev/items/secret", {"authorization": "t1"})
    assert status == 403
    status, _ = await setup.call("/dev/items/2", {"authorization": "t1"}, method="POST")
    assert status == 403  # only GET is allowed
    assert len(setup.calls("iam")) == 1
    # no statement at all: deny
    assert (await setup.call("/dev/items/1", {"authorization": "nobody"}))[0] == 403


async def test_context_reaches_an_http_upstream(setup: Setup) -> None:
    forged = {"x-stackyard-authorizer": '{"principalId": "admin"}'}
    status, _ = await setup.call("/items/1", {"authorization": "t2", **forged})
    assert status == 200
    headers = [(k.lower(), v) for k, v in setup.backend.requests[-1]["headers"]]
    [value] = [v for k, v in headers if k == "x-stackyard-authorizer"]
    assert json.loads(value) == {
        "type": "function",
        "principalId": "user-7",
        "claims": {},
        "scopes": [],
        "context": {"tier": "gold", "admin": False},
    }
    assert (await setup.call("/items/secret", {"authorization": "t2"}))[0] == 403
    assert (await setup.call("/svc/1", {"x-token": "allow-svc"}))[0] == 200
    headers = [(k.lower(), v) for k, v in setup.backend.requests[-1]["headers"]]
    [value] = [v for k, v in headers if k == "x-stackyard-authorizer"]
    assert json.loads(value)["context"] == {"user": "allow-svc", "n": 7}
    assert setup.backend.hits == 2


async def test_jwt_claims_reach_the_function(setup: Setup) -> None:
    now = int(time.time())
    token = jwt.encode(
        {"sub": "u1", "exp": now + 60, "scope": "a b", "roles": ["x"]}, SECRET, algorithm="HS256"
    )
    bearer = {"authorization": f"Bearer {token}"}
    status, body = await setup.call("/jwt", bearer)
    assert status == 200, body
    assert body["jwt"]["scopes"] == ["a", "b"]
    assert body["jwt"]["claims"]["sub"] == "u1" and body["jwt"]["claims"]["roles"] == ["x"]
    status, body = await setup.call("/dev/jwt", bearer)
    assert status == 200, body
    assert body["claims"]["sub"] == "u1" and body["scopes"] == ["a", "b"]
    assert (await setup.call("/jwt"))[0] == 401


async def test_without_a_function_runtime(
    serve: Callable[..., Awaitable[Served]], make_backend: Callable[..., Awaitable[Backend]]
) -> None:
    api = ApiConfig(
        authorizers={"simple": FunctionAuthorizerConfig(type="function", function="simple")}
    )
    backend = await make_backend("svc")
    served = await serve(api=api)
    route = RouteSpec("/svc", service="svc", policy=RoutePolicy(authorizer="simple"))
    served.gateway.update(make_table(1, [route], {"svc": [backend]}))
    status, _, body = await served.request("GET", "/svc", headers={"authorization": "x"})
    assert status == 500 and json.loads(body)["error"]["code"] == "AuthorizerFailure"


def test_glob_match() -> None:
    arn = "arn:aws:execute-api:us-east-1:000000000000:stackyard/dev/GET/items/1"
    assert glob_match("*", arn) and glob_match(arn, arn)
    assert glob_match("arn:aws:execute-api:*:*:stackyard/dev/GET/*", arn)
    assert glob_match("arn:aws:execute-api:us-east-1:000000000000:stackyard/dev/GET/items/?", arn)
    assert not glob_match("arn:aws:execute-api:*:*:stackyard/prod/*", arn)
    assert not glob_match("arn:aws:execute-api:*:*:stackyard/dev/GET/items/??", arn)
    assert glob_match("a*b*c", "aXXbYYc") and not glob_match("a*b*c", "aXXbYY")
    started = time.perf_counter()
    assert not glob_match("*a" * 30 + "b", "a" * 4000)
    assert time.perf_counter() - started < 1.0


def test_parse_answer_rejects_malformed_policies() -> None:
    for bad in (
        [],
        {"policyDocument": "x"},
        {"policyDocument": {"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}},
        {"policyDocument": {"Statement": [{"Effect": "Allow", "Action": 1, "Resource": "*"}]}},
        {"policyDocument": {"Statement": []}, "context": []},
        {"policyDocument": {"Statement": []}, "usageIdentifierKey": 5},
    ):
        with pytest.raises(ValueError):
            parse_answer(bad, "iam")
    single = parse_answer(
        {"policyDocument": {"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}},
        "iam",
    )
    assert single.allows("arn:anything") and single.api_key is None
    keyed = parse_answer(
        {"principalId": 7, "usageIdentifierKey": "k1", "policyDocument": {"Statement": []}},
        "iam",
    )
    assert (keyed.api_key, keyed.principal_id) == ("k1", "7") and not keyed.allows("arn:x")
    other_action = parse_answer(
        {
            "policyDocument": {
                "Statement": [{"Effect": "Allow", "Action": "s3:Get", "Resource": "*"}]
            }
        },
        "iam",
    )
    assert not other_action.allows("arn:anything")


async def test_result_cache_is_bounded() -> None:
    cache: ResultCache[int] = ResultCache(max_entries=3)
    for i in range(5):
        cache.put(i, i, 60)
    assert len(cache) == 3 and cache.get(0) is None and cache.get(4) == 4
    cache.get(2)  # recently used: kept
    cache.put(9, 9, 60)
    assert cache.get(2) == 2 and cache.get(3) is None
    calls = 0

    async def load() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return 5

    assert await asyncio.gather(*(cache.load("k", 60, load) for _ in range(4))) == [5] * 4
    assert calls == 1
