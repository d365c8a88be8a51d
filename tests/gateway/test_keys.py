"""API keys and usage-plan quotas through a served gateway and the served admin API."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette

from stackyard.asgi import Receive, Scope, Send
from stackyard.config.api import ApiConfig, MockConfig
from stackyard.gateway import RouteSpec
from stackyard.gateway.admin import key_routes
from stackyard.gateway.keys import DB_NAME, digest
from stackyard.gateway.policy import RoutePolicy
from stackyard.gateway.quota import period_bounds
from stackyard.gateway.steps import ErrorResponder, RouteMatcher
from stackyard.gateway.usage import UsagePlans, UsageStep
from stackyard.serving import AsgiServer, free_port

from .conftest import Served, make_table

Factory = Callable[..., Awaitable[Served]]

API = {
    "usage_plans": {
        "basic": {"quota": {"limit": 3, "period": "day"}},
        "free": {},
        "gold": {"throttle": {"rate": 100, "burst": 100}},
    }
}
OK = MockConfig(status=200, body={"ok": True})
ROUTES = [
    RouteSpec("/items", integration="mock", mock=OK, policy=RoutePolicy(api_key=True)),
    RouteSpec("/open", integration="mock", mock=OK),
]


@dataclass
class Stack:
    gw: Served
    admin_url: str
    session: aiohttp.ClientSession

    async def admin(self, method: str, path: str, body: Any = None, raw: bytes | None = None
                    ) -> tuple[int, Any]:  # fmt: skip
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        async with self.session.request(method, self.admin_url + path, data=data) as resp:
            return resp.status, await resp.json()

    async def create(self, name: str, plan: str = "basic") -> str:
        status, answer = await self.admin(
            "POST", "/_stackyard/api/keys", {"name": name, "plan": plan}
        )
        assert status == 201, answer
        return str(answer["key"])


Starter = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def stack(serve: Factory) -> AsyncIterator[Starter]:
    servers: list[AsgiServer] = []
    sessions: list[aiohttp.ClientSession] = []

    async def start(api: dict[str, Any] | None = None, data_dir: Path | None = None) -> Stack:
        gw = await serve(api=ApiConfig.model_validate(api or API), data_dir=data_dir)
        gw.gateway.update(make_table(1, ROUTES, {}))
        server = AsgiServer(Starlette(routes=key_routes(gw.gateway.usage)), "127.0.0.1",
                            free_port())  # fmt: skip
        await server.start()
        servers.append(server)
        session = aiohttp.ClientSession()
        sessions.append(session)
        return Stack(gw, server.url, session)

    yield start
    for session in sessions:
        await session.close()
    for server in servers:
        await server.stop()


async def test_a_route_with_api_key_needs_a_valid_key(stack: Starter) -> None:
    s = await stack()
    status, body = await s.gw.json("GET", "/items")
    assert status == 403 and body["error"]["code"] == "Forbidden"
    status, body = await s.gw.json("GET", "/items", headers={"x-api-key": "made-up"})
    assert status == 403 and body["error"]["code"] == "Forbidden"
    status, body = await s.gw.json("GET", "/items", headers={"x-api-key": ""})
    assert status == 403
    key = await s.create("alice")
    status, body = await s.gw.json("GET", "/items", headers={"x-api-key": key})
    assert (status, body) == (200, {"ok": True})
    status, body = await s.gw.json("GET", "/items", headers={"x-api-key": key[:-1]})
    assert status == 403
    # a route without api_key does not look at keys
    assert (await s.gw.json("GET", "/open"))[0] == 200


async def test_revoke_takes_effect_at_once(stack: Starter) -> None:
    s = await stack()
    key = await s.create("bob", "free")
    assert (await s.gw.json("GET", "/items", headers={"x-api-key": key}))[0] == 200
    status, answer = await s.admin("DELETE", "/_stackyard/api/keys/bob")
    assert status == 200 and answer["name"] == "bob" and answer["revoked"] is not None
    assert "key" not in answer
    status, body = await s.gw.json("GET", "/items", headers={"x-api-key": key})
    assert status == 403 and body["error"]["code"] == "Forbidden"
    # revoking again changes nothing; the name stays taken
    status, again = await s.admin("DELETE", "/_stackyard/api/keys/bob")
    assert status == 200 and again["revoked"] == answer["revoked"]
    status, answer = await s.admin("POST", "/_stackyard/api/keys", {"name": "bob", "plan": "free"})
    assert status == 409 and answer["error"]["code"] == "KeyExists"


async def test_a_key_whose_plan_left_the_stack_is_refused(stack: Starter) -> None:
    s = await stack()
    key = await s.create("carol", "gold")
    assert (await s.gw.json("GET", "/items", headers={"x-api-key": key}))[0] == 200
    s.gw.gateway.configure(ApiConfig.model_validate({"usage_plans": {"basic": {}}}))
    assert (await s.gw.json("GET", "/items", headers={"x-api-key": key}))[0] == 403
    status, usage = await s.admin("GET", "/_stackyard/api/keys/carol/usage")
    assert status == 200 and usage["plan_exists"] is False


async def test_admin_api_lists_without_secrets_and_refuses_bad_requests(stack: Starter) -> None:
    s = await stack()
    status, answer = await s.admin("POST", "/_stackyard/api/keys", {"name": "dan", "plan": "gold"})
    assert status == 201
    assert set(answer) == {"name", "plan", "prefix", "created", "revoked", "key", "key_source"}
    assert len(answer["key"]) == 40 and answer["key"].startswith(answer["prefix"])
    assert answer["key_source"] == "header" and answer["revoked"] is None
    await s.create("erin", "free")
    status, listing = await s.admin("GET", "/_stackyard/api/keys")
    assert status == 200
    assert [(k["name"], k["plan"]) for k in listing["keys"]] == [("dan", "gold"), ("erin", "free")]
    assert all("key" not in k for k in listing["keys"])
    assert answer["key"] not in json.dumps(listing)

    bad: list[tuple[Any, bytes | None, int, str]] = [
        (None, b"not json", 400, "InvalidRequest"),
        ([1, 2], None, 400, "InvalidRequest"),
        ({"plan": "gold"}, None, 400, "InvalidRequest"),
        ({"name": 7, "plan": "gold"}, None, 400, "InvalidRequest"),
        ({"name": "bad name!", "plan": "gold"}, None, 400, "InvalidRequest"),
        ({"name": "x" * 65, "plan": "gold"}, None, 400, "InvalidRequest"),
        ({"name": "frank\n", "plan": "gold"}, None, 400, "InvalidRequest"),
        ({"name": "frank"}, None, 400, "InvalidRequest"),
        ({"name": "frank", "plan": "platinum"}, None, 400, "UnknownPlan"),
        ({"name": "frank", "plan": "gold", "key": "mine"}, None, 400, "InvalidRequest"),
        ({"name": "dan", "plan": "free"}, None, 409, "KeyExists"),
        (None, b"x" * (65 * 1024), 413, "PayloadTooLarge"),
    ]
    for body, raw, want_status, code in bad:
        status, answer = await s.admin("POST", "/_stackyard/api/keys", body, raw)
        assert (status, answer["error"]["code"]) == (want_status, code), (body, answer)
        assert answer["error"]["message"]
    status, answer = await s.admin("DELETE", "/_stackyard/api/keys/nobody")
    assert (status, answer["error"]["code"]) == (404, "UnknownKey")
    status, answer = await s.admin("GET", "/_stackyard/api/keys/nobody/usage")
    assert (status, answer["error"]["code"]) == (404, "UnknownKey")
    status, listing = await s.admin("GET", "/_stackyard/api/keys")
    assert len(listing["keys"]) == 2


async def test_admin_api_refuses_a_large_body_before_reading_it(stack: Starter) -> None:
    s = await stack()
    host, port = s.admin_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:  # a declared length far past the limit, and no body sent: refused at once
        writer.write(
            b"POST /_stackyard/api/keys HTTP/1.1\r\nhost: x\r\n"
            b"content-type: application/json\r\ncontent-length: 1000000000\r\n\r\n"
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
    assert status_line.split()[1] == b"413"

    async def chunks() -> AsyncIterator[bytes]:  # streamed, no length: refused past the limit
        for _ in range(100):
            yield b" " * 1024

    async with s.session.post(s.admin_url + "/_stackyard/api/keys", data=chunks()) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "PayloadTooLarge"


def _store_bytes(data_dir: Path) -> bytes:
    """The key store's files (the database, its WAL) as they are on disk."""
    files = [p for p in data_dir.iterdir() if p.name.startswith(DB_NAME)]
    assert data_dir / DB_NAME in files
    return b"".join(p.read_bytes() for p in files)


async def test_keys_are_stored_hashed_and_survive_a_restart(stack: Starter, tmp_path: Path) -> None:
    s = await stack(data_dir=tmp_path)
    key = await s.create("gina", "free")
    on_disk = _store_bytes(tmp_path)
    assert key.encode() not in on_disk
    assert digest(key) in on_disk
    await s.gw.gateway.stop()

    again = await stack(data_dir=tmp_path)
    assert (await again.gw.json("GET", "/items", headers={"x-api-key": key}))[0] == 200
    status, listing = await again.admin("GET", "/_stackyard/api/keys")
    assert status == 200 and [k["name"] for k in listing["keys"]] == ["gina"]


async def test_quota_exhaustion_answers_429_and_usage_counts(stack: Starter) -> None:
    s = await stack()
    key = await s.create("hank", "basic")
    for _ in range(3):
        assert (await s.gw.json("GET", "/items", headers={"x-api-key": key}))[0] == 200
    status, headers, body = await s.gw.request("GET", "/items", headers={"x-api-key": key})
    error = json.loads(body)["error"]
    assert status == 429 and error["code"] == "LimitExceeded"
    assert "basic" in error["message"] and "3 requests per day" in error["message"]
    _, midnight = period_bounds("day", time.time())
    retry_after = int(headers["retry-after"])
    assert 1 <= retry_after <= midnight - time.time() + 2

    status, usage = await s.admin("GET", "/_stackyard/api/keys/hank/usage")
    assert status == 200
    quota = usage["quota"]
    assert (quota["limit"], quota["used"], quota["remaining"], quota["period"]) == (3, 3, 0, "day")
    assert quota["period_end"] == midnight
    assert quota["period_end"] - quota["period_start"] == 86400
    # another key of the same plan has its own quota; a plan without quota shows none
    other = await s.create("ida", "basic")
    assert (await s.gw.json("GET", "/items", headers={"x-api-key": other}))[0] == 200
    await s.create("jo", "free")
    assert (await s.admin("GET", "/_stackyard/api/keys/jo/usage"))[1]["quota"] is None


async def test_quota_counts_are_kept_over_a_restart(stack: Starter, tmp_path: Path) -> None:
    s = await stack(data_dir=tmp_path)
    key = await s.create("kim", "basic")
    for _ in range(2):
        assert (await s.gw.json("GET", "/items", headers={"x-api-key": key}))[0] == 200
    await s.gw.gateway.stop()  # writes the counters

    again = await stack(data_dir=tmp_path)
    status, usage = await again.admin("GET", "/_stackyard/api/keys/kim/usage")
    assert status == 200 and usage["quota"]["used"] == 2
    assert (await again.gw.json("GET", "/items", headers={"x-api-key": key}))[0] == 200
    assert (await again.gw.json("GET", "/items", headers={"x-api-key": key}))[0] == 429


async def test_quota_counts_are_flushed_periodically(tmp_path: Path) -> None:
    plans = UsagePlans(ApiConfig.model_validate(API), "dev", tmp_path, flush_interval=0.05)
    await plans.start()
    try:
        await plans.create_key("lee", "basic")
        quota = plans.plans["basic"].quota
        assert quota is not None
        plans.quotas.count("lee", quota)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            rows = await plans.keys.store.quota_rows()
            if rows:
                break
            await asyncio.sleep(0.02)
        assert [(r[0], r[3]) for r in rows] == [("lee", 1)]
    finally:
        await plans.stop()


class _Auth:
    def __init__(self, api_key: str | None) -> None:
        self.claims: dict[str, Any] = {}
        self.scopes: tuple[str, ...] = ()
        self.context: dict[str, Any] = {}
        self.principal_id: str | None = "user"
        self.api_key = api_key


class _AuthorizerSide:
    """The authorizer's side of the contract: ``state["auth"]`` with ``api_key`` (here taken
    from a test header, as a Lambda authorizer's usageIdentifierKey would be)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        value = dict(scope["headers"]).get(b"x-test-usage-key")
        scope["state"]["auth"] = _Auth(value.decode() if value else None)
        await self.app(scope, receive, send)


async def _echo_key(scope: Scope, receive: Receive, send: Send) -> None:
    key = scope["state"].get("api_key")
    body = json.dumps({"name": key.name, "plan": key.plan} if key else None).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def test_key_from_the_authorizer_and_state_for_later_steps(stack: Starter) -> None:
    s = await stack({**API, "key_source": "authorizer"})
    gateway = s.gw.gateway
    key = await s.create("max", "gold")
    (items,) = [route for route in gateway.table.routes if route.path == "/items"]
    pipeline = ErrorResponder(
        RouteMatcher(_AuthorizerSide(UsageStep(_echo_key, gateway.usage, items)), gateway._live)
    )
    server = AsgiServer(pipeline, "127.0.0.1", free_port())
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:

            async def get(headers: dict[str, str]) -> tuple[int, Any]:
                async with session.get(server.url + "/items", headers=headers) as resp:
                    return resp.status, await resp.json(content_type=None)

            assert await get({"x-test-usage-key": key}) == (200, {"name": "max", "plan": "gold"})
            # the x-api-key header is not what counts with key_source: authorizer
            assert (await get({"x-api-key": key}))[0] == 403
            assert (await get({"x-test-usage-key": "nope"}))[0] == 403
    finally:
        await server.stop()


@given(st.floats(min_value=0, max_value=4_102_444_800), st.sampled_from(["day", "week", "month"]))
def test_periods_are_utc_calendar_periods(now: float, period: str) -> None:
    start, end = period_bounds(period, now)
    assert start <= now < end
    first = datetime.fromtimestamp(start, UTC)
    assert (first.hour, first.minute, first.second, first.microsecond) == (0, 0, 0, 0)
    if period == "day":
        assert end - start == 86400
    elif period == "week":
        assert first.weekday() == 0 and end - start == 7 * 86400
    else:
        assert first.day == 1 and datetime.fromtimestamp(end, UTC).day == 1
        assert 28 * 86400 <= end - start <= 31 * 86400
    assert period_bounds(period, end)[0] == end
