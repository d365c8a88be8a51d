"""Bad input on the Consul API: JSON errors with the right status, nothing crashes, nothing lost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackyard.registry import MAX_BODY

from .conftest import Served


@pytest.fixture
async def http(served: Served) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=served.url) as session:
        yield session


async def put(
    http: aiohttp.ClientSession, path: str, body: Any = None, **kw: Any
) -> tuple[int, Any]:
    data = body if not isinstance(body, dict | list) else json.dumps(body)
    async with http.put(path, data=data, **kw) as resp:
        assert "X-Consul-Index" in resp.headers
        text = await resp.text()
        return resp.status, (json.loads(text) if text else None)


def assert_error(status: int, body: Any, expected: int, field: str = "") -> None:
    assert status == expected, body
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert field in body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "JSON"),
        (b"", "object"),
        (b"[1, 2]", "object"),
        (b"null", "object"),
        ({"ID": "x"}, "Name"),
        ({"Name": ""}, "Name"),
        ({"Name": 5}, "Name"),
        ({"Name": "a", "Port": "80"}, "Port"),
        ({"Name": "a", "Port": 70000}, "Port"),
        ({"Name": "a", "Port": True}, "Port"),
        ({"Name": "a", "Tags": "x"}, "Tags"),
        ({"Name": "a", "Tags": [1]}, "Tags"),
        ({"Name": "a", "Meta": {"k": 1}}, "Meta"),
        ({"Name": "a", "Check": "x"}, "Check"),
        ({"Name": "a", "Checks": {}}, "Checks"),
        ({"Name": "a", "Checks": [1]}, "Checks[0]"),
        ({"Name": "a", "Check": {"HTTP": "http://x"}}, "Interval"),
        ({"Name": "a", "Check": {"TTL": "soon"}}, "TTL"),
        ({"Name": "a", "Check": {"TTL": "10s", "HTTP": "http://x", "Interval": "1s"}}, "exactly"),
        ({"Name": "a", "Check": {"Notes": "no kind"}}, "exactly"),
        ({"Name": "a", "Check": {"TTL": "1s", "Status": "fine"}}, "Status"),
        ({"Name": "a", "Check": {"Args": ["/bin/true"], "Interval": "1s"}}, "args"),
        ({"Name": "a", "Check": {"TCP": "nohost", "Interval": "1s"}}, "host:port"),
        ({"Name": "a", "Check": {"HTTP": "ftp://x", "Interval": "1s"}}, "HTTP"),
        (
            {"Name": "a", "Checks": [{"TTL": "1s"}, {"TTL": "1s", "FailuresBeforeCritical": -1}]},
            "Checks[1].FailuresBeforeCritical",
        ),
        (b"[" * 100_000, "JSON"),
        ({"Name": "a", "Check": {"TTL": "9" * 400 + "s"}}, "TTL"),
        ({"Name": "a", "Check": {"TCP": "127.0.0.1:1", "Interval": 1e308}}, "Interval"),
        ({"Name": "a", "Check": {"HTTP": "http://x", "Interval": "1s", "Method": "G T"}}, "Method"),
        ({"Name": "a", "Check": {"HTTP": "http://x", "Interval": "1s", "Header": []}}, "Header"),
    ],
)
async def test_register_rejects_bad_bodies(
    http: aiohttp.ClientSession, served: Served, body: Any, field: str
) -> None:
    status, answer = await put(http, "/v1/agent/service/register", body)
    assert_error(status, answer, 400, field)
    assert served.registry.instances() == []


async def test_lowercase_and_snake_case_fields_are_accepted(
    http: aiohttp.ClientSession, served: Served
) -> None:
    body = {
        "name": "lower",
        "port": 80,
        "check": {"ttl": "5s", "deregister_critical_service_after": "1m", "status": "passing"},
    }
    status, _ = await put(http, "/v1/agent/service/register", body)
    assert status == 200
    state = served.registry.check("service:lower")
    assert state is not None
    assert state.spec.deregister_after == 60
    assert served.registry.passing("lower")[0].port == 80


async def test_unknown_service_and_check_are_404(http: aiohttp.ClientSession) -> None:
    status, answer = await put(http, "/v1/agent/service/deregister/nope")
    assert_error(status, answer, 404, "nope")
    for action in ("pass", "warn", "fail"):
        status, answer = await put(http, f"/v1/agent/check/{action}/nope")
        assert_error(status, answer, 404, "nope")
    status, answer = await put(http, "/v1/agent/check/update/nope", {"Status": "passing"})
    assert_error(status, answer, 404, "nope")
    status, answer = await put(http, "/v1/agent/check/update/nope", {"Status": "meh"})
    assert_error(status, answer, 400, "Status")
    async with http.get("/v1/agent/service/nope") as resp:
        assert resp.status == 404
    async with http.get("/v1/kv/missing") as resp:
        assert resp.status == 404
        assert int(resp.headers["X-Consul-Index"]) >= 1


async def test_bad_query_parameters_are_400(http: aiohttp.ClientSession) -> None:
    status, answer = await put(http, "/v1/kv/k?cas=abc", b"v")
    assert_error(status, answer, 400, "cas")
    status, answer = await put(http, "/v1/kv/k?flags=-1", b"v")
    assert_error(status, answer, 400, "flags")
    status, answer = await put(http, "/v1/kv/k?acquire=abc", b"v")
    assert_error(status, answer, 400, "session")
    for path in (
        "/v1/kv/k?index=x",
        "/v1/health/service/x?index=1&wait=forever",
        "/v1/catalog/services?filter=Service==x",
    ):
        async with http.get(path) as resp:
            assert resp.status == 400, path
            assert "error" in await resp.json()


async def test_oversized_body_is_413_and_nothing_is_lost(
    http: aiohttp.ClientSession, served: Served
) -> None:
    status, _ = await put(http, "/v1/kv/keep", b"safe")
    assert status == 200
    big = b"x" * (MAX_BODY + 1)
    status, answer = await put(http, "/v1/kv/keep", big)
    assert_error(status, answer, 413, str(MAX_BODY))
    body = json.dumps({"Name": "big", "Meta": {"pad": "y" * MAX_BODY}})
    status, answer = await put(http, "/v1/agent/service/register", body)
    assert_error(status, answer, 413)

    # streamed without Content-Length too
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"z" * 65536

    try:
        status, answer = await put(http, "/v1/kv/keep", chunks())
    except aiohttp.ClientError:
        pass  # the server answered 413 and closed while the client was still sending
    else:
        assert_error(status, answer, 413)
    entry = served.registry.kv.get("keep")
    assert entry is not None and entry.value == b"safe"
    assert served.registry.instances() == []


_field_names = st.sampled_from(
    [
        "Name",
        "ID",
        "Address",
        "Port",
        "Tags",
        "Meta",
        "Check",
        "Checks",
        "name",
        "port",
        "CheckID",
        "HTTP",
        "TCP",
        "TTL",
        "Interval",
        "Timeout",
        "Status",
        "Notes",
        "DeregisterCriticalServiceAfter",
        "SuccessBeforePassing",
        "FailuresBeforeCritical",
        "Header",
        "Method",
        "Args",
    ]
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["10s", "1m30s", "-1s", "passing", "critical", "127.0.0.1:1", "x"])
    | st.sampled_from([1e308, "9" * 400 + "s", -0.0, 2**64, "http://127.0.0.1:1/"])
)
_json_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_field_names | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=25,
)
_bodies = st.dictionaries(_field_names, _json_values, max_size=8) | _json_values


async def test_fuzz_register_never_5xx(served: Served) -> None:
    url = f"{served.url}/v1/agent/service/register"

    def run() -> None:
        session = requests.Session()

        @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
        @given(body=_bodies)
        def check(body: Any) -> None:
            resp = session.put(url, data=json.dumps(body), timeout=10)
            assert resp.status_code in (200, 400), (resp.status_code, resp.text, body)
            if resp.status_code == 400:
                assert "error" in resp.json()

        try:
            check()
        finally:
            session.close()

    await asyncio.to_thread(run)
    # the registry is still healthy and can render everything that was accepted
    async with aiohttp.ClientSession(base_url=served.url) as session:
        for path in ("/v1/agent/services", "/v1/agent/checks", "/v1/health/state/any"):
            async with session.get(path) as resp:
                assert resp.status == 200, await resp.text()
        for name in served.registry.services():
            async with session.get(f"/v1/health/service/{quote(name, safe='')}") as resp:
                assert resp.status == 200, await resp.text()
