"""Fixtures for the telemetry tests: a started ``Telemetry`` served by the real ASGI server.

The server runs its own event loop in a background thread, so tests can use synchronous
clients (the OpenTelemetry SDK exporters, ``requests``, Hypothesis) against it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from starlette.applications import Starlette

from stackyard.serving import AsgiServer, free_port
from stackyard.telemetry import RetentionSettings, Telemetry

_T = TypeVar("_T")


class TelemetryServer:
    """A Telemetry component and its routes on a loopback port, in a background loop."""

    def __init__(
        self, data_dir: Path, retention: RetentionSettings | None = None, **options: Any
    ) -> None:
        self.telemetry = Telemetry(data_dir, retention=retention, **options)
        self.loop = asyncio.new_event_loop()
        self.server = AsgiServer(
            Starlette(routes=self.telemetry.routes()), "127.0.0.1", free_port()
        )
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.http = requests.Session()

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> TelemetryServer:
        self._thread.start()
        self.run(self.telemetry.start())
        self.run(self.server.start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        self.run(self.server.stop())
        self.run(self.telemetry.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float = 30) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def flush(self) -> None:
        self.run(self.telemetry.flush())

    def on_loop(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn()`` on the server's event loop (where producers call the aggregator)."""

        async def call() -> _T:
            return fn()

        return self.run(call())

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.http.get(self.url + path, params=params, timeout=10)

    def post(self, path: str, data: bytes, **headers: str) -> requests.Response:
        return self.http.post(self.url + path, data=data, headers=headers, timeout=30)


def wait_for(predicate: Callable[[], _T], timeout: float = 10.0) -> _T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        time.sleep(0.02)


class FakeClock:
    """An injectable wall clock (epoch seconds) that only moves when told."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def served(tmp_path: Path) -> Iterator[TelemetryServer]:
    with TelemetryServer(tmp_path / "data") as server:
        yield server


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TelemetryServer]:
    with TelemetryServer(tmp_path_factory.mktemp("telemetry")) as server:
        yield server
