"""The services admin API on a real node: the service document with health history, restarting
an instance, scaling replicas, their errors, and the ``restart``/``scale`` commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from stackyard.testing import NodeProcess, wait_until

SERVER = textwrap.dedent(
    """
    import os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = os.environ["STACKYARD_INSTANCE_ID"].encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
    """
)

STACK = """
name: ops
services:
  api:
    command: {python} server.py
    replicas: 2
    stop_grace: 2
    health: {{http: /health, interval: 200ms, timeout: 1s}}
api:
  routes:
    - path: /api
      service: api
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    root = tmp_path_factory.mktemp("ops")
    (root / "server.py").write_text(SERVER)
    (root / "stackyard.yml").write_text(STACK.format(python=sys.executable))
    with NodeProcess(root, data_dir=root / "data") as running:
        running.wait_ready(60)
        yield running


def call(node: NodeProcess, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(node.control_url + path, data=body, method=method)
    if body is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def service(node: NodeProcess, name: str = "api") -> dict[str, Any]:
    status, doc = call(node, "GET", f"/_stackyard/services/{name}")
    assert status == 200, doc
    return dict(doc)


def passing(node: NodeProcess) -> int:
    return int(service(node)["passing"])


def test_the_service_document_shows_instances_with_their_health_history(
    node: NodeProcess,
) -> None:
    status, listed = call(node, "GET", "/_stackyard/services")
    assert status == 200
    assert listed == [{"name": "api", "replicas": 2, "passing": 2, "instances": 2}]
    doc = service(node)
    assert doc["name"] == "api" and doc["replicas"] == 2 and doc["passing"] == 2
    first = doc["instances"][0]
    assert [i["instance_id"] for i in doc["instances"]] == ["api-1", "api-2"]
    assert first["address"] == "127.0.0.1" and first["port"] > 0 and first["pid"] > 0
    assert first["health"] == "passing" and first["state"] == "running"
    assert first["uptime"] >= 0 and first["restarts"] == 0
    (check,) = first["checks"]
    assert check["check_id"] == "service:api-1" and check["status"] == "passing"
    assert "200 OK" in check["output"]
    moves = [(t["from"], t["to"]) for t in first["history"]]
    assert moves == [("critical", "passing"), (None, "critical")]
    assert first["history"][0]["time"] >= first["history"][1]["time"]
    status, short = call(node, "GET", "/_stackyard/services/api?history=1")
    assert len(short["instances"][0]["history"]) == 1
    # the gateway's metrics carry the service of the route
    assert urllib.request.urlopen(node.gateway_url + "/api", timeout=10).status == 200

    def labelled() -> bool:
        _, names = call(node, "GET", "/_stackyard/metrics?name=gateway_requests_total")
        return any(s.get("service") == "api" for m in names for s in m["series"])

    wait_until(labelled, 15, what="a gateway_requests_total series labelled service=api")


def test_errors_are_json_with_codes(node: NodeProcess) -> None:
    cases = [
        ("GET", "/_stackyard/services/nope", None, 404, "UnknownService"),
        ("GET", "/_stackyard/services/api?history=x", None, 400, "InvalidParameter"),
        ("GET", "/_stackyard/services/api?history=51", None, 400, "InvalidParameter"),
        ("POST", "/_stackyard/services/nope/instances/api-1/restart", None, 404, "UnknownService"),
        ("POST", "/_stackyard/services/api/instances/api-9/restart", None, 404, "UnknownInstance"),
        ("PUT", "/_stackyard/services/nope/replicas", b'{"replicas": 1}', 404, "UnknownService"),
    ]
    for body in (b"", b"{", b"[]", b'{"replicas": "2"}', b'{"replicas": true}',
                 b'{"replicas": -1}', b'{"replicas": 65}', b'{"replicas": 1.5}'):  # fmt: skip
        cases.append(("PUT", "/_stackyard/services/api/replicas", body, 400, "InvalidParameter"))
    for method, path, body, want, code in cases:
        status, answer = call(node, method, path, body)
        assert (status, answer["error"]["code"]) == (want, code), (method, path, body, answer)
        assert answer["error"]["message"]
    assert service(node)["replicas"] == 2  # nothing changed


def test_restart_an_instance_gives_it_a_new_process(node: NodeProcess) -> None:
    before = service(node)["instances"][0]
    status, after = call(node, "POST", "/_stackyard/services/api/instances/api-1/restart")
    assert status == 200, after
    assert after["instance_id"] == "api-1"
    assert after["pid"] not in (None, before["pid"])
    assert after["restarts"] == before["restarts"] + 1
    wait_until(lambda: passing(node) == 2, 15, what="api-1 to pass again")
    history = service(node)["instances"][0]["history"]
    assert [(t["from"], t["to"]) for t in history[:3]] == [
        ("critical", "passing"),
        (None, "critical"),
        ("passing", None),
    ]


def test_a_killed_instance_is_restarted_and_its_history_shows_it(node: NodeProcess) -> None:
    before = service(node)["instances"][1]
    os.killpg(before["pid"], signal.SIGKILL)

    def back() -> dict[str, Any] | None:
        now = service(node)["instances"][1]
        fresh = now["pid"] not in (None, before["pid"]) and now["health"] == "passing"
        return now if fresh else None

    now = wait_until(back, 20, what="api-2 to be restarted and pass")
    assert now["restarts"] == before["restarts"] + 1
    assert now["last_exit_code"] == -signal.SIGKILL
    assert ("passing", None) in [(t["from"], t["to"]) for t in now["history"]]


def test_scale_up_and_down(node: NodeProcess) -> None:
    status, doc = call(node, "PUT", "/_stackyard/services/api/replicas", b'{"replicas": 3}')
    assert status == 200, doc
    assert doc["replicas"] == 3
    assert [i["instance_id"] for i in doc["instances"]] == ["api-1", "api-2", "api-3"]
    wait_until(lambda: passing(node) == 3, 15, what="three passing instances")
    api = next(s for s in node.status()["services"] if s["name"] == "api")
    assert api["replicas"] == 3
    status, doc = call(node, "PUT", "/_stackyard/services/api/replicas", b'{"replicas": 1}')
    assert status == 200 and doc["replicas"] == 1
    assert [i["instance_id"] for i in doc["instances"]] == ["api-1"]
    # one wanted instance passes: the node is ready, not waiting for the stack's two
    wait_until(lambda: node.health()[0] == 200, 10, what="the node to be ready with 1 replica")
    assert node.health()[1]["services"]["api"] == {"wanted": 1, "passing": 1}


def test_the_scale_and_restart_commands(node: NodeProcess) -> None:
    def stackyard(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "stackyard", *args, "--url", node.control_url],
            capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "api: 2 replicas (api-1, api-2)" in stackyard("scale", "api", "2")
    wait_until(lambda: passing(node) == 2, 15, what="two passing instances")
    pids = {i["instance_id"]: i["pid"] for i in service(node)["instances"]}
    out = stackyard("restart", "api")  # both, one after the other
    assert "restarted api-1" in out and "restarted api-2" in out
    after = {i["instance_id"]: i["pid"] for i in service(node)["instances"]}
    assert all(after[name] != pid for name, pid in pids.items())
    assert "restarted api-2" in stackyard("restart", "api", "api-2")
    failed = subprocess.run(
        [sys.executable, "-m", "stackyard", "scale", "nope", "1", "--url", node.control_url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert failed.returncode != 0 and "no service named 'nope'" in failed.stderr
