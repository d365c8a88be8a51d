"""Fixtures for the SDK tests: a node-like telemetry endpoint and ``sdk.setup()`` pointed at it.

``sdk.setup()`` configures process-global state (OpenTelemetry's tracer provider can be set
once per process), so it runs once per session, with ``OTEL_EXPORTER_OTLP_ENDPOINT`` naming a
real :class:`~stackyard.telemetry.Telemetry` served by :class:`~stackyard.serving.AsgiServer`
on a background event loop. An in-memory exporter is added next to the OTLP one so tests can
also look at the spans locally.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette

from stackyard import sdk
from stackyard.sdk import tracing
from stackyard.serving import AsgiServer, free_port
from stackyard.telemetry import Telemetry

_T = TypeVar("_T")
SERVICE = "sdk-tests"


class TelemetryEndpoint:
    """A Telemetry component's routes on a loopback port, served from a background loop."""

    def __init__(self, data_dir: Path) -> None:
        self.telemetry = Telemetry(data_dir, process_metrics=False, alarm_interval=None)
        self.loop = asyncio.new_event_loop()
        self.server = AsgiServer(
            Starlette(routes=self.telemetry.routes()), "127.0.0.1", free_port()
        )
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def __enter__(self) -> TelemetryEndpoint:
        self._thread.start()
        self.run(self.telemetry.start())
        self.run(self.server.start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.run(self.server.stop())
        self.run(self.telemetry.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def get_json(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, None


@pytest.fixture(scope="session")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TelemetryEndpoint]:
    with TelemetryEndpoint(tmp_path_factory.mktemp("sdk-telemetry")) as served:
        yield served


@pytest.fixture(scope="session")
def configured(endpoint: TelemetryEndpoint) -> Iterator[tuple[sdk.Sdk, InMemorySpanExporter]]:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint.url,
        "OTEL_SERVICE_NAME": SERVICE,
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        handle = sdk.setup()
        if not tracing.state.owned:
            pytest.skip("another tracer provider was installed before sdk.setup() in this process")
        memory = InMemorySpanExporter()
        assert tracing.state.provider is not None
        tracing.state.provider.add_span_processor(SimpleSpanProcessor(memory))
        yield handle, memory
        handle.flush()  # before the endpoint stops: nothing left for the exit-time export
    finally:
        sdk.uninstrument()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def spans(configured: tuple[sdk.Sdk, InMemorySpanExporter]) -> InMemorySpanExporter:
    """The in-memory exporter, cleared for this test."""
    memory = configured[1]
    memory.clear()
    return memory
