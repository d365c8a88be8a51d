"""Fixtures for the functions tests: a real FunctionRuntime served on a real port, and boto3."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import uvloop
from botocore.config import Config
from starlette.applications import Starlette

from stackyard.config.models import FunctionConfig
from stackyard.functions.runtime import FunctionRuntime
from stackyard.serving import AsgiServer, free_port

APP = Path(__file__).parent / "app"
BASE_ENV = {"STACKYARD_URL": "http://127.0.0.1:4566", "AWS_REGION": "us-east-1"}


@dataclass
class Served:
    runtime: FunctionRuntime
    url: str
    client: Any  # boto3 lambda client

    async def call(self, method: str, **kwargs: Any) -> Any:
        """Call a boto3 method on a thread (the server runs on this event loop)."""
        return await asyncio.to_thread(getattr(self.client, method), **kwargs)


def lambda_client(url: str) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0, "mode": "standard"}, read_timeout=30),
    )


Factory = Callable[..., Awaitable[Served]]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The node runs on uvloop, tools on asyncio: the runtime must work on both."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Factory]:
    """``await serve({"name": FunctionConfig(...)}, **runtime_kwargs)`` → a running ``Served``."""
    started: list[tuple[FunctionRuntime, AsgiServer]] = []

    async def factory(
        functions: dict[str, FunctionConfig], *, data_dir: Path | None = None, **kwargs: Any
    ) -> Served:
        runtime = FunctionRuntime(
            functions,
            stack_root=APP,
            data_dir=data_dir or tmp_path / "data",
            log_dir=tmp_path / "logs",
            base_env=BASE_ENV,
            **kwargs,
        )
        await runtime.start()
        server = AsgiServer(Starlette(routes=runtime.routes()), "127.0.0.1", free_port())
        await server.start()
        started.append((runtime, server))
        return Served(runtime, server.url, lambda_client(server.url))

    yield factory
    for runtime, server in reversed(started):
        with contextlib.suppress(Exception):
            await server.stop()
        await runtime.stop()


def fn(handler: str, **kwargs: Any) -> FunctionConfig:
    return FunctionConfig(handler=handler, **kwargs)
