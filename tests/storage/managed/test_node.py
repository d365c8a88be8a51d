"""Managed Redis and PostgreSQL through a real node (``stackyard up`` subprocess): a service
that uses them gets their URLs, their data survives a restart of the node, and no server is
left running once the node has stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from stackyard.testing import NodeProcess, wait_until

from .conftest import APP, call, servers_of, write_stack

STACK = f"""\
name: managed
caches:
  sessions: {{engine: redis}}
databases:
  shop: {{engine: postgres}}
services:
  web:
    command: '"{sys.executable}" "{APP}"'
    uses: [sessions, shop]
"""


def port_of(node: NodeProcess) -> int:
    return int(node.instances("web")[0]["port"])


def test_managed_servers_are_used_kept_and_stopped(tmp_path: Path, data_dir: Path) -> None:
    root = write_stack(tmp_path / "app", STACK)
    with NodeProcess(root, data_dir=data_dir) as node:
        node.wait_ready(90)
        status = node.status()
        cache, database = status["caches"][0], status["databases"][0]
        assert cache["name"] == "sessions" and cache["state"] == "running" and cache["managed"]
        assert database["name"] == "shop" and database["state"] == "running"
        assert database["url"].startswith("postgresql://postgres@127.0.0.1:")
        assert database["url"].endswith("/shop")
        answer = call(port_of(node), "PUT", "/kept-value")
        assert answer["redis"] == "kept-value" and answer["postgres"] == "kept-value"
        assert answer["REDIS_URL"] == cache["url"]
        assert answer["DATABASE_URL"] == database["url"]
        assert (data_dir / "caches" / "sessions").is_dir()
        assert (data_dir / "databases" / "shop" / "data" / "PG_VERSION").is_file()
        assert len(servers_of(data_dir)) >= 2
    assert node.process is not None and node.process.returncode == 0, node.output()
    assert servers_of(data_dir) == []

    with NodeProcess(root, data_dir=data_dir) as node:
        node.wait_ready(90)
        status = node.status()
        assert status["caches"][0]["url"] == cache["url"]  # the same port again
        assert status["databases"][0]["url"] == database["url"]
        answer = call(port_of(node))
        assert answer["redis"] == "kept-value" and answer["postgres"] == "kept-value"
    assert servers_of(data_dir) == []


def test_servers_left_by_a_killed_node_are_replaced(tmp_path: Path, data_dir: Path) -> None:
    root = write_stack(tmp_path / "app", STACK)
    with NodeProcess(root, data_dir=data_dir) as node:
        node.wait_ready(90)
        call(port_of(node), "PUT", "/before-kill")
    with NodeProcess(root, data_dir=data_dir) as node:
        node.wait_ready(90)
        orphan = int(node.instances("web")[0]["pid"])
        node.stop(signal.SIGKILL)  # the servers run on, in their own process groups
        assert servers_of(data_dir)
    try:
        with NodeProcess(root, data_dir=data_dir) as node:
            node.wait_ready(90)
            assert call(port_of(node))["postgres"] == "before-kill"
            assert call(port_of(node))["redis"] == "before-kill"
        wait_until(lambda: servers_of(data_dir) == [], 10, what="no servers left")
    finally:
        # the killed node could not stop its service's instance (its own process group) and
        # the next node does not know it: stop it here, not to leave it running after the tests
        with contextlib.suppress(ProcessLookupError):
            os.killpg(orphan, signal.SIGKILL)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_url_resources_start_nothing_and_are_injected(tmp_path: Path) -> None:
    if not (_listening(6379) and _listening(5432)):
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432")
        pytest.skip("no Redis on 127.0.0.1:6379 or PostgreSQL on 127.0.0.1:5432")
    redis_url = "redis://127.0.0.1:6379/0"
    database_url = "postgresql://postgres@127.0.0.1:5432/test"
    stack = f"""\
name: external
caches:
  sessions: {{engine: redis, url: "{redis_url}"}}
  other: {{url: "{redis_url.replace("/0", "/1")}"}}
databases:
  main: {{url: "{database_url}"}}
services:
  web:
    command: '"{sys.executable}" "{APP}"'
    uses: {{sessions: REDIS_URL, main: DATABASE_URL, other: CACHE_TOO}}
"""
    root = write_stack(tmp_path / "app", stack)
    data = tmp_path / "data"
    with NodeProcess(root, data_dir=data) as node:
        node.wait_ready(60)
        status = node.status()
        assert {c["name"]: (c["state"], c["managed"]) for c in status["caches"]} == {
            "sessions": ("external", False),
            "other": ("external", False),
        }
        assert status["databases"][0]["url"] == database_url
        answer = call(port_of(node), "PUT", f"/external-{os.getpid()}")
        assert answer["REDIS_URL"] == redis_url and answer["DATABASE_URL"] == database_url
        assert answer["CACHE_TOO"] == "redis://127.0.0.1:6379/1"
        assert answer["redis"] == answer["postgres"] == f"external-{os.getpid()}"
    assert not (data / "caches").exists() and not (data / "databases").exists()
