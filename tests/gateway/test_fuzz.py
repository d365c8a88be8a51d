"""Random requests against a served gateway with no routes: always a JSON 404, never a 5xx."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackyard.gateway import Gateway
from stackyard.serving import AsgiServer, free_port


@pytest.fixture(scope="module")
def gateway_port() -> Iterator[int]:
    """A gateway with an empty table, served on its own loop in a thread."""
    port = free_port()
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        gateway = Gateway()
        await gateway.start()
        server = AsgiServer(gateway, "127.0.0.1", port)
        await server.start()
        ready.set()
        await stop.wait()
        await server.stop()
        await gateway.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(20)
    yield port
    assert stop is not None
    loop.call_soon_threadsafe(stop.set)
    thread.join(20)
    loop.close()


path_chars = st.sampled_from([*"abcXYZ019-._~!$&'()*+,;=:@/", "%20", "%2F", "%", "%zz", "{", "}"])
paths = st.lists(path_chars, max_size=30).map(lambda cs: "/" + "".join(cs))
queries = st.one_of(st.just(""), st.lists(path_chars, max_size=10).map(lambda c: "?" + "".join(c)))
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(method=methods, path=paths, query=queries)
def test_random_requests_get_404(gateway_port: int, method: str, path: str, query: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", gateway_port, timeout=10)
    try:
        conn.request(method, path + query)
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 404, (resp.status, body)
    if method != "HEAD":
        assert json.loads(body)["error"]["code"] == "NotFound"
