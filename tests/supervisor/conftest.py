"""Fixtures for the supervisor tests: a real Registry, real processes, condition waits."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pytest
import uvloop

from stackyard.config.models import HealthConfig, ServiceConfig
from stackyard.registry.base import Catalog
from stackyard.registry.catalog import Registry
from stackyard.supervisor import RestartPolicy, Supervisor

PY = sys.executable
FAST = RestartPolicy(initial_delay=0.05, max_delay=1.0, factor=2.0, reset_after=10.0)
BASE_ENV = {
    "STACKYARD_URL": "http://127.0.0.1:4566",
    "AWS_REGION": "us-east-1",
    "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
    "OVERRIDDEN": "by-node",
}

SERVER = textwrap.dedent(
    """
    import json, os, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/env":
                body = json.dumps({"env": dict(os.environ), "cwd": os.getcwd()}).encode()
            else:
                body = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    print("listening on", os.environ["PORT"], flush=True)
    print("a warning", file=sys.stderr, flush=True)
    server.serve_forever()
    """
)


async def wait_until(
    predicate: Callable[[], object], within: float = 10.0, interval: float = 0.01
) -> None:
    """Poll ``predicate`` until it is truthy; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


def group_gone(pgid: int) -> bool:
    """No process left in the group (zombies count until init reaps them)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async test runs on both loops: the node runs on uvloop, tools on asyncio."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
def server_script(tmp_path: Path) -> Path:
    path = tmp_path / "server.py"
    path.write_text(SERVER)
    return path


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[Catalog]:
    registry = Registry(tmp_path / "registry")
    await registry.start()
    try:
        yield registry
    finally:
        await registry.stop()


def http_service(script: Path, **kwargs: object) -> ServiceConfig:
    health = HealthConfig(http="/health", interval=0.05, timeout=1.0)
    return ServiceConfig(command=f"{PY} {script}", health=health, **kwargs)  # type: ignore[arg-type]


SupervisorFactory = Callable[..., Supervisor]


@pytest.fixture
async def make_supervisor(tmp_path: Path, catalog: Catalog) -> AsyncIterator[SupervisorFactory]:
    """Builds Supervisors against the test's catalog; stops them all at teardown."""
    made: list[Supervisor] = []

    def make(services: Mapping[str, ServiceConfig], **kwargs: object) -> Supervisor:
        options: dict[str, object] = {
            "stack_root": tmp_path,
            "log_dir": tmp_path / "logs",
            "base_env": BASE_ENV,
            "restart_policy": FAST,
        }
        options.update(kwargs)
        supervisor = Supervisor(services, catalog, **options)  # type: ignore[arg-type]
        made.append(supervisor)
        return supervisor

    yield make
    for supervisor in made:
        pgids = [s.pid for s in supervisor.status() if s.pid is not None]
        await supervisor.stop()
        for pgid in pgids:  # belt and braces: never leak processes from a failed test
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
