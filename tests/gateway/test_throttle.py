"""Throttling: the token buckets alone, and the stage, route and key buckets of a gateway."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

from stackyard.asgi import Receive, Scope, Send
from stackyard.config.api import ApiConfig, MockConfig, ThrottleConfig
from stackyard.gateway import RouteSpec
from stackyard.gateway.policy import RoutePolicy
from stackyard.gateway.steps import ErrorResponder
from stackyard.gateway.throttle import Limit, LocalBuckets, retry_after_seconds
from stackyard.gateway.usage import UsagePlans, UsageStep
from stackyard.serving import AsgiServer, free_port

from .conftest import Served, make_table

Factory = Callable[..., Awaitable[Served]]
OK = MockConfig(status=200, body="ok")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_rate() -> None:
    clock = Clock()
    buckets = LocalBuckets(clock)
    limit = [Limit("b", ThrottleConfig(rate=2, burst=5))]
    assert [buckets.take(limit) for _ in range(5)] == [0.0] * 5
    assert buckets.take(limit) == 0.5  # one token comes back in 1/rate seconds
    clock.now += 0.25
    assert buckets.take(limit) == 0.25
    clock.now += 0.25
    assert buckets.take(limit) == 0.0
    clock.now += 100  # an idle bucket fills up to its burst, not more
    assert [buckets.take(limit) for _ in range(6)][-2:] == [0.0, 0.5]


def test_a_request_takes_from_every_bucket_or_from_none() -> None:
    clock = Clock()
    buckets = LocalBuckets(clock)
    wide, narrow = (
        Limit("wide", ThrottleConfig(rate=10, burst=10)),
        Limit("n", ThrottleConfig(rate=1, burst=1)),
    )
    assert buckets.take([wide, narrow]) == 0.0
    assert buckets.take([wide, narrow]) == 1.0
    assert buckets.tokens("wide") == 9.0  # the refused request took nothing from "wide"
    assert buckets.take([wide]) == 0.0


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_retry_after_is_whole_seconds_at_least_one(wait: float) -> None:
    value = retry_after_seconds(wait)
    assert isinstance(value, int) and value >= 1 and value >= wait and value - wait < 1 + 1e-9


@given(
    st.floats(min_value=0.5, max_value=1000),
    st.integers(min_value=1, max_value=100),
    st.lists(st.floats(min_value=0, max_value=2), max_size=60),
)
def test_accepted_never_exceed_burst_plus_rate_times_time(
    rate: float, burst: int, gaps: list[float]
) -> None:
    clock = Clock()
    buckets = LocalBuckets(clock)
    limit = [Limit("b", ThrottleConfig(rate=rate, burst=burst))]
    accepted = 0
    for gap in gaps:
        clock.now += gap
        if buckets.take(limit) == 0.0:
            accepted += 1
    assert accepted <= burst + rate * sum(gaps) + 1e-6


async def _served(serve: Factory, api: dict[str, Any], routes: list[RouteSpec]) -> Served:
    gw = await serve(api=ApiConfig.model_validate(api), stage="dev")
    gw.gateway.update(make_table(1, routes, {}))
    return gw


async def test_a_throttle_of_n_rps_holds_within_ten_percent_over_five_seconds(
    serve: Factory,
) -> None:
    rate, burst = 40, 5  # a burst of a few absorbs scheduling gaps on a busy machine
    gw = await _served(
        serve,
        {"throttle": {"rate": rate, "burst": burst}},
        [RouteSpec("/x", integration="mock", mock=OK)],
    )
    accepted = refused = 0
    deadline = time.monotonic() + 5.0

    async def client() -> None:
        nonlocal accepted, refused
        while time.monotonic() < deadline:
            status, headers, _ = await gw.request("GET", "/x")
            if status == 200:
                accepted += 1
            else:
                assert status == 429 and int(headers["retry-after"]) >= 1
                refused += 1

    await asyncio.gather(*(client() for _ in range(8)))
    expected = burst + rate * 5
    assert abs(accepted - expected) <= 0.1 * expected, (accepted, refused)
    assert refused > accepted  # the clients really asked for more than the rate


async def test_stage_route_and_key_buckets(serve: Factory) -> None:
    api = {
        "throttle": {"rate": 1000, "burst": 1000},
        "stages": {"dev": {"throttle": {"rate": 0.1, "burst": 4}}},  # overrides api.throttle
        "usage_plans": {"slow": {"throttle": {"rate": 0.1, "burst": 2}}},
    }
    routes = [
        RouteSpec("/stage", integration="mock", mock=OK),
        RouteSpec(
            "/route",
            integration="mock",
            mock=OK,
            policy=RoutePolicy(throttle=ThrottleConfig(rate=0.5, burst=1)),
        ),
    ]
    gw = await _served(serve, api, routes)
    assert (await gw.request("GET", "/route"))[0] == 200
    status, headers, body = await gw.request("GET", "/route")
    assert status == 429 and headers["retry-after"] == "2"
    assert json.loads(body)["error"]["code"] == "TooManyRequests"
    # the stage bucket (burst 4, rate 0.1) has 3 left after the one /route request it allowed
    statuses = [(await gw.request("GET", "/stage"))[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    status, headers, _ = await gw.request("GET", "/stage")
    assert status == 429 and headers["retry-after"] == "10"


async def test_each_key_has_its_own_bucket_and_throttled_requests_use_no_quota(
    serve: Factory,
) -> None:
    api = {
        "usage_plans": {
            "slow": {
                "throttle": {"rate": 0.01, "burst": 2},
                "quota": {"limit": 10, "period": "week"},
            }
        }
    }
    routes = [RouteSpec("/k", integration="mock", mock=OK, policy=RoutePolicy(api_key=True))]
    gw = await _served(serve, api, routes)
    usage = gw.gateway.usage
    (a, key_a), (_, key_b) = (
        await usage.create_key("a", "slow"),
        await usage.create_key("b", "slow"),
    )
    for key in (key_a, key_b):
        statuses = [
            (await gw.request("GET", "/k", headers={"x-api-key": key}))[0] for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
    status, headers, _ = await gw.request("GET", "/k", headers={"x-api-key": key_a})
    assert status == 429 and headers["retry-after"] == "100"
    assert usage.usage(a.name)["quota"]["used"] == 2
    # a refused key never reaches the buckets
    assert (await gw.request("GET", "/k", headers={"x-api-key": "nope"}))[0] == 403


async def test_a_deploy_changes_the_stage_and_plan_throttles_of_routes_already_served(
    serve: Factory,
) -> None:
    """The usage step resolves the stage's bucket when the route's chain is compiled, and a
    key's when it first sees the key: ``Gateway.configure`` (a deploy) reaches both."""
    tight = {
        "throttle": {"rate": 0.01, "burst": 1},
        "usage_plans": {"p": {"throttle": {"rate": 0.01, "burst": 1}}},
    }
    routes = [
        RouteSpec("/open", integration="mock", mock=OK),
        RouteSpec("/keyed", integration="mock", mock=OK, policy=RoutePolicy(api_key=True)),
    ]
    gw = await _served(serve, tight, routes)
    _, key = await gw.gateway.usage.create_key("k", "p")
    keyed = {"x-api-key": key}
    assert [(await gw.request("GET", "/open"))[0] for _ in range(2)] == [200, 429]

    # no stage throttle: /open passes; the plan's bucket still holds /keyed to 1
    gw.gateway.configure(ApiConfig.model_validate({"usage_plans": tight["usage_plans"]}))
    assert [(await gw.request("GET", "/open"))[0] for _ in range(3)] == [200] * 3
    statuses = [(await gw.request("GET", "/keyed", headers=keyed))[0] for _ in range(2)]
    assert statuses == [200, 429]

    # the plan's throttle raised: the same key, already seen, gets the new rate
    wide = {"p": {"throttle": {"rate": 1_000_000, "burst": 100}}}
    gw.gateway.configure(ApiConfig.model_validate({"usage_plans": wide}))
    statuses = [(await gw.request("GET", "/keyed", headers=keyed))[0] for _ in range(5)]
    assert statuses == [200] * 5


class _Elsewhere:
    """Buckets answered asynchronously, as a shared store would (here backed by memory)."""

    def __init__(self) -> None:
        self.held = LocalBuckets()
        self.asked = 0

    async def acquire(self, limits: Sequence[Limit]) -> float:
        self.asked += 1
        await asyncio.sleep(0)  # the answer comes back later, from another party
        return self.held.take(limits)


async def _mock_answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def test_buckets_kept_elsewhere_are_awaited() -> None:
    api = ApiConfig.model_validate({"throttle": {"rate": 0.01, "burst": 2}})
    elsewhere = _Elsewhere()
    plans = UsagePlans(api, "dev", None, buckets=elsewhere)
    step = UsageStep(_mock_answer, plans, RouteSpec("/x", integration="mock", mock=OK))
    server = AsgiServer(ErrorResponder(step), "127.0.0.1", free_port())
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            statuses = []
            for _ in range(3):
                async with session.get(server.url + "/x") as resp:
                    statuses.append((resp.status, resp.headers.get("retry-after")))
        assert statuses == [(200, None), (200, None), (429, "100")]
        assert elsewhere.asked == 3
    finally:
        await server.stop()
