"""Failure isolation on a real node: kill -9 under load, failing health checks."""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

from stackyard.testing import NodeProcess, wait_until


def get(url: str, timeout: float = 10) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            return response.status, response.headers.get("X-Instance", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("X-Instance", "")


class Load:
    """8 client threads sending GETs through the gateway until stopped; counts every answer."""

    def __init__(self, url: str, clients: int = 8) -> None:
        self.url = url
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.instances: Counter[str] = Counter()
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                status, instance = get(self.url)
            except OSError as exc:
                with self.lock:
                    self.failures.append(repr(exc))
                continue
            with self.lock:
                self.statuses[status] += 1
                self.instances[instance] += 1
                if status != 200:
                    self.failures.append(f"HTTP {status}")

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)


def test_kill_9_under_load_loses_no_request(shop: NodeProcess) -> None:
    url = f"{shop.gateway_url}/catalog/items"
    victim = shop.instances("catalog")[0]
    with Load(url) as load:
        wait_until(lambda: sum(load.statuses.values()) > 200, 20, what="traffic to flow")
        os.kill(victim["pid"], signal.SIGKILL)

        def restarted() -> bool:
            now = {i["instance_id"]: i for i in shop.instances("catalog")}[victim["instance_id"]]
            return (
                now["restarts"] >= 1 and now["pid"] != victim["pid"] and now["health"] == "passing"
            )

        wait_until(restarted, 30, what="the killed instance to be restarted and passing")
        with load.lock:
            before = load.instances[victim["instance_id"]]
        wait_until(
            lambda: load.instances[victim["instance_id"]] > before + 20,
            20,
            what="the restarted instance to take traffic again",
        )
    assert load.failures == [], load.failures[:5]


def test_failing_health_check_takes_an_instance_out_and_recovery_puts_it_back(
    shop: NodeProcess,
) -> None:
    catalog = shop.instances("catalog")
    sick, well = catalog[0], catalog[1]
    admin = f"http://127.0.0.1:{sick['port']}/_admin/health"
    url = f"{shop.gateway_url}/catalog/items"

    def set_health(state: str) -> None:
        req = urllib.request.Request(admin, data=state.encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as response:
            assert response.status == 200

    def health_of(instance_id: str) -> str:
        return {i["instance_id"]: i for i in shop.instances("catalog")}[instance_id]["health"]

    set_health("fail")
    try:
        wait_until(lambda: health_of(sick["instance_id"]) == "critical", 10, what="critical")
        seen = Counter(get(url)[1] for _ in range(30))
        assert seen == Counter({well["instance_id"]: 30})
        status, body = shop.health()
        assert status == 503 and body["services"]["catalog"]["passing"] == 1
    finally:
        set_health("ok")
    wait_until(lambda: health_of(sick["instance_id"]) == "passing", 10, what="passing again")
    deadline = time.monotonic() + 10
    seen = Counter()
    while seen[sick["instance_id"]] == 0 and time.monotonic() < deadline:
        seen[get(url)[1]] += 1
    assert seen[sick["instance_id"]] > 0
