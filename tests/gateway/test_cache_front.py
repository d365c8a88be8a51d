"""Early cache hits answer as the route would: random request sequences sent to a gateway that
answers a plain cached route's hits before the route match and to one that does not (its
early step switched off) get the same answers, and reach their backends as often."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackyard.config.api import CacheConfig
from stackyard.gateway import Gateway, RouteSpec
from stackyard.gateway.policy import RoutePolicy
from stackyard.serving import AsgiServer, free_port

from .conftest import Backend, Handler, make_table

ROUTES = (
    RouteSpec("/items/{id}", "a", policy=RoutePolicy(cache=CacheConfig(key=["query.lang"]))),
    RouteSpec("/plain/{id}", "a"),
)


def _answering() -> Handler:
    """Answers the path, a count of its calls, and an ETag to make conditional requests with."""
    calls = 0

    async def answer(request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        etag = f'"{request.path}"'
        if request.headers.get("if-none-match") == etag:
            return web.Response(status=304, headers={"etag": etag})
        body = json.dumps({"path": request.raw_path, "n": calls})
        return web.Response(text=body, content_type="application/json", headers={"etag": etag})

    return answer


class Pair:
    """Two gateways with the same table, each with its own backend; ``early`` answers early
    hits, ``routed`` has that step off."""

    def __init__(self) -> None:
        self.ports = (free_port(), free_port())
        self.backends = (Backend("a", _answering()), Backend("a", _answering()))

    async def run(self, ready: threading.Event, stop: asyncio.Event) -> None:
        gateways: list[Gateway] = []
        servers: list[AsgiServer] = []
        for port, backend in zip(self.ports, self.backends, strict=True):
            await backend.start()
            gateway = Gateway()
            await gateway.start()
            gateway.update(make_table(1, ROUTES, {"a": [backend]}))
            server = AsgiServer(gateway.serve, "127.0.0.1", port)
            await server.start()
            gateways.append(gateway)
            servers.append(server)
        gateways[1].content.front.reset(enabled=False)
        ready.set()
        await stop.wait()
        for server, gateway, backend in zip(servers, gateways, self.backends, strict=True):
            await server.stop()
            await gateway.stop()
            await backend.stop()


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    made = Pair()
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    thread = threading.Thread(
        target=loop.run_until_complete, args=(made.run(ready, stop),), daemon=True
    )
    thread.start()
    assert ready.wait(20)
    yield made
    loop.call_soon_threadsafe(stop.set)
    thread.join(20)
    loop.close()


def _send(port: int, method: str, target: str, headers: dict[str, str]) -> tuple[object, ...]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, target, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    return resp.status, resp.getheader("x-cache"), resp.getheader("etag"), body


requests = st.tuples(
    st.sampled_from(["GET", "GET", "HEAD", "POST"]),
    st.sampled_from(["/items/1", "/items/2", "/plain/1", "/missing"]),
    st.sampled_from(["", "?lang=en", "?lang=fr&page=2"]),
    st.sampled_from(["", "if-none-match", "max-age=0", "range"]),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=st.lists(requests, min_size=1, max_size=12), run=st.uuids())
def test_the_same_requests_get_the_same_answers_with_and_without_early_hits(
    pair: Pair, sequence: list[tuple[str, str, str, str]], run: object
) -> None:
    hits_before = [backend.hits for backend in pair.backends]
    for method, path, query, extra in sequence:
        target = f"/{run}{path}" if path.startswith("/missing") else f"{path}-{run}{query}"
        headers = {
            "": {},
            "if-none-match": {"if-none-match": f'"{target.partition("?")[0]}"'},
            "max-age=0": {"cache-control": "max-age=0"},
            "range": {"range": "bytes=0-3"},
        }[extra]
        early, routed = (_send(port, method, target, headers) for port in pair.ports)
        assert early == routed, (method, target, headers)
    calls = [b.hits - n for b, n in zip(pair.backends, hits_before, strict=True)]
    assert calls[0] == calls[1]
