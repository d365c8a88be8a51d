"""The discovery client against a Consul-style HTTP endpoint: passing endpoints, round-robin,
the short cache and the stale answer while the node is away."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stackyard import sdk


class Catalog(BaseHTTPRequestHandler):
    hits: list[str] = []
    entries = [
        {"Node": {"Address": "10.0.0.1"}, "Service": {"ID": "a-1", "Address": "", "Port": 8001}},
        {"Node": {}, "Service": {"ID": "a-2", "Address": "127.0.0.2", "Port": 8002}},
    ]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = json.dumps(self.entries if self.path.startswith("/v1/health/service/api") else [])
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def catalog() -> Iterator[ThreadingHTTPServer]:
    Catalog.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Catalog)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_round_robin_over_passing_endpoints(catalog: ThreadingHTTPServer) -> None:
    discovery = sdk.Discovery(f"http://127.0.0.1:{catalog.server_port}", ttl=60)
    assert discovery.endpoints("api") == [
        sdk.Endpoint("a-1", "10.0.0.1", 8001),
        sdk.Endpoint("a-2", "127.0.0.2", 8002),
    ]
    urls = [discovery.url("api") for _ in range(4)]
    assert urls == ["http://10.0.0.1:8001", "http://127.0.0.2:8002"] * 2
    assert Catalog.hits == ["/v1/health/service/api?passing"]  # cached
    with pytest.raises(sdk.NoEndpoints):
        discovery.next("other")


def test_a_stale_answer_while_the_node_is_away(catalog: ThreadingHTTPServer) -> None:
    discovery = sdk.Discovery(f"http://127.0.0.1:{catalog.server_port}", ttl=0, stale_ttl=60)
    assert len(discovery.endpoints("api")) == 2
    catalog.shutdown()
    catalog.server_close()
    assert len(discovery.endpoints("api")) == 2
    discovery.invalidate("api")
    with pytest.raises(OSError):
        discovery.endpoints("api")
