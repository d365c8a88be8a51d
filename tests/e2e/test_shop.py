"""The example shop through a real node: routes, correlation, logs, status and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any

from stackyard.testing import NodeProcess, wait_until


def request(
    url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, _lower(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, _lower(exc.headers.items()), exc.read()


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in items}


def test_every_route_answers_through_the_gateway(shop: NodeProcess) -> None:
    gw = shop.gateway_url
    status, _, body = request(f"{gw}/catalog/items")
    assert status == 200 and len(json.loads(body)["items"]) == 3

    status, _, body = request(f"{gw}/catalog/items/2")
    assert status == 200 and json.loads(body)["name"] == "kettle"

    status, _, body = request(f"{gw}/catalog/items/999")
    assert status == 404 and json.loads(body)["error"]["code"] == "NoSuchItem"

    status, _, body = request(f"{gw}/orders", "POST", {"item_id": "1", "quantity": 2})
    assert status == 201, body
    order = json.loads(body)
    assert order["total"] == 49.0 and order["priced_by"].startswith("catalog-")

    # the order is stored in the registry's KV: every orders replica sees it
    for _ in range(4):
        status, _, body = request(f"{gw}/orders/{order['id']}")
        assert status == 200 and json.loads(body)["id"] == order["id"]
    status, _, body = request(f"{gw}/orders")
    assert status == 200 and order["id"] in {o["id"] for o in json.loads(body)["orders"]}

    status, headers, body = request(f"{gw}/web")
    assert status == 200 and b"teapot" in body
    assert headers["content-type"].startswith("text/html")

    status, _, body = request(f"{gw}/web/api/items?x=1")  # greedy {proxy+}
    assert status == 200 and len(json.loads(body)["items"]) == 3


def test_gateway_errors_are_json(shop: NodeProcess) -> None:
    status, _, body = request(f"{shop.gateway_url}/nowhere")
    assert status == 404 and "error" in json.loads(body)
    status, headers, body = request(f"{shop.gateway_url}/orders", "DELETE")
    assert status == 405 and "error" in json.loads(body)
    assert set(headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    status, _, body = request(f"{shop.gateway_url}/orders", "POST", {"nothing": 1})
    assert status == 400 and json.loads(body)["error"]["code"] == "InvalidOrder"


def test_correlation_id_travels_and_is_logged(shop: NodeProcess) -> None:
    correlation = "test-correlation-4242"
    status, headers, _ = request(
        f"{shop.gateway_url}/orders", "POST", {"item_id": "3"}, {"x-correlation-id": correlation}
    )
    assert status == 201
    assert headers["x-correlation-id"] == correlation

    status, headers, _ = request(f"{shop.gateway_url}/catalog/items")
    assert status == 200 and len(headers["x-correlation-id"]) >= 16  # created when absent

    def catalog_saw_it() -> bool:
        _, records = shop.get_json(f"{shop.control_url}/_stackyard/logs?service=catalog&tail=500")
        return any(correlation in r["message"] for r in records)

    wait_until(catalog_saw_it, 10, what="catalog's log line with the correlation id")

    # the central log store finds every line of the request by its correlation id:
    # orders (which placed the order) and catalog (which priced it, called through the gateway)
    def services_seen() -> set[str]:
        url = f"{shop.control_url}/_stackyard/logs/search?correlation_id={correlation}"
        return {r["service"] for r in shop.get_json(url)[1]}

    wait_until(lambda: services_seen() >= {"orders", "catalog"}, 10, what="both services' lines")
    out = subprocess.run(
        [sys.executable, "-m", "stackyard", "logs", "--correlation", correlation,
         "--url", shop.control_url],
        capture_output=True, text=True, timeout=30, check=True, env=_env(),
    ).stdout  # fmt: skip
    assert "POST /orders" in out and "GET /items/3" in out


def test_status_document_and_health(shop: NodeProcess) -> None:
    status, body = shop.health()
    assert status == 200 and body["status"] == "ready"
    doc = shop.status()
    assert doc["stack"] == "shop" and doc["ready"] is True
    services = {s["name"]: s for s in doc["services"]}
    assert services["catalog"]["passing"] == 2 and services["web"]["passing"] == 1
    ports = {i["port"] for s in doc["services"] for i in s["instances"]}
    assert len(ports) == 5
    assert {r["path"] for r in doc["routes"]} >= {"/orders/{id}", "/web/{proxy+}"}


def test_cli_status_and_logs(shop: NodeProcess) -> None:
    env = {"STACKYARD_URL": shop.control_url}
    out = subprocess.run(
        [sys.executable, "-m", "stackyard", "status"],
        capture_output=True, text=True, env={**_env(), **env}, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert "catalog-1" in out and "passing" in out and "/orders/{id}" in out
    out = subprocess.run(
        [sys.executable, "-m", "stackyard", "logs", "web", "--tail", "50"],
        capture_output=True, text=True, env={**_env(), **env}, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert "listening on" in out
    bad = subprocess.run(
        [sys.executable, "-m", "stackyard", "logs", "nosuch", "--url", shop.control_url],
        capture_output=True, text=True, env=_env(), timeout=30,
    )  # fmt: skip
    assert bad.returncode == 1 and "no service named 'nosuch'" in bad.stderr


def test_cli_without_a_node_says_how_to_start_one() -> None:
    from stackyard.testing import free_port

    result = subprocess.run(
        [sys.executable, "-m", "stackyard", "status", "--url", f"http://127.0.0.1:{free_port()}"],
        capture_output=True, text=True, env=_env(), timeout=30,
    )  # fmt: skip
    assert result.returncode == 1 and "stackyard up" in result.stderr


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "STACKYARD_URL"}


def test_cli_logs_follow_prints_new_lines(shop: NodeProcess) -> None:
    follower = subprocess.Popen(
        [sys.executable, "-m", "stackyard", "logs", "catalog", "-f", "-n", "0",
         "--url", shop.control_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    try:
        marker = "follow-marker-77"
        found = threading.Event()

        def read() -> None:
            assert follower.stdout is not None
            for line in follower.stdout:
                if marker in line:
                    found.set()
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.monotonic() + 15
        while not found.is_set() and time.monotonic() < deadline:
            request(f"{shop.gateway_url}/catalog/items", headers={"x-correlation-id": marker})
            found.wait(0.3)
        assert found.is_set(), "the followed log never showed the request"
    finally:
        follower.terminate()
        follower.wait(10)


def test_prometheus_metrics_count_gateway_requests(shop: NodeProcess) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    for _ in range(3):
        assert request(f"{shop.gateway_url}/catalog/items/1")[0] == 200
    assert request(f"{shop.gateway_url}/no/such/route")[0] == 404

    def samples() -> dict[tuple[str, str], float]:
        with urllib.request.urlopen(f"{shop.control_url}/metrics", timeout=10) as response:
            text = response.read().decode()
        out: dict[tuple[str, str], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "gateway_requests_total":
                    key = (sample.labels["route"], sample.labels["status"])
                    out[key] = sample.value
        return out

    found = wait_until(
        lambda: (s := samples()).get(("/catalog/items/{id}", "200"), 0) >= 3 and s,
        30,
        what="the gateway's request counter in /metrics",
    )
    assert found.get(("-", "404"), 0) >= 1


def test_one_trace_per_request_across_services_and_the_trace_commands(shop: NodeProcess) -> None:
    status, headers, _ = request(f"{shop.gateway_url}/orders", "POST", {"item_id": "1"})
    assert status == 201
    trace_id = headers["x-trace-id"]

    def spans() -> list[dict[str, Any]]:
        code, found = shop.get_json(f"{shop.control_url}/api/v2/trace/{trace_id}")
        return found if code == 200 else []

    # gateway SERVER+CLIENT for POST /orders, then (orders passes traceparent on) the
    # gateway's SERVER+CLIENT for the catalog call it made
    found = wait_until(lambda: len(s := spans()) >= 4 and s, 15, what="the trace's spans")
    ids = {span["id"] for span in found}
    roots = [span for span in found if span.get("parentId") not in ids]
    assert len(roots) == 1 and roots[0]["name"].lower() == "post /orders"
    assert any(span["name"].lower().startswith("get /catalog/items") for span in found)

    env = {**_env(), "STACKYARD_URL": shop.control_url}
    out = subprocess.run(
        [sys.executable, "-m", "stackyard", "trace", trace_id],
        capture_output=True, text=True, timeout=30, check=True, env=env,
    ).stdout  # fmt: skip
    assert trace_id in out and "POST /orders".lower() in out.lower()
    out = subprocess.run(
        [sys.executable, "-m", "stackyard", "traces", "--service", "gateway", "--limit", "50"],
        capture_output=True, text=True, timeout=30, check=True, env={**env, "COLUMNS": "200"},
    ).stdout  # fmt: skip
    assert trace_id in out


def test_partners_need_a_key_and_a_valid_order(shop: NodeProcess) -> None:
    url = f"{shop.gateway_url}/partner/orders"
    status, _, body = request(url)
    assert status == 403 and json.loads(body)["error"]["code"] == "Forbidden"

    status, _, body = request(
        f"{shop.control_url}/_stackyard/api/keys", "POST", {"name": "acme", "plan": "partners"}
    )
    assert status == 201, body
    key = {"x-api-key": json.loads(body)["key"]}
    status, _, body = request(url, "POST", {"item_id": 1}, key)
    assert status == 400 and json.loads(body)["error"]["code"] == "BadRequestBody"
    status, _, body = request(url, "POST", {"item_id": "2", "quantity": 1}, key)
    assert status in (200, 201), body
    order = json.loads(body)
    status, _, body = request(url, headers=key)
    assert status == 200 and order["id"] in {o["id"] for o in json.loads(body)["orders"]}
    status, _, body = request(f"{shop.control_url}/_stackyard/api/keys/acme/usage")
    assert status == 200 and json.loads(body)["quota"]["used"] >= 2, body
