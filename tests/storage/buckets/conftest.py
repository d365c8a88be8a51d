"""Fixtures: Stackyard's S3 API served in-process on a thread (its own event loop), moto's
server as a subprocess, and boto3 clients for either."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from stackyard.asgi import Receive, Scope, Send
from stackyard.serving import AsgiServer, free_port
from stackyard.storage.buckets import Buckets
from stackyard.storage.dispatch import AwsDispatch

CREDENTIALS = {
    "aws_access_key_id": "stackyard",
    "aws_secret_access_key": "stackyard",
    "region_name": "us-east-1",
}


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"not an AWS call"})


@dataclass
class Endpoint:
    """A running S3 endpoint: its URL and how to make boto3 clients for it."""

    name: str
    url: str
    buckets: Buckets | None = None

    def client(self, **config: Any) -> Any:
        return boto3.client(
            "s3", endpoint_url=self.url, config=Config(**config) if config else None, **CREDENTIALS
        )

    def resource(self) -> Any:
        return boto3.resource("s3", endpoint_url=self.url, **CREDENTIALS)


class ThreadServer:
    """:class:`Buckets` behind the control port's dispatcher, on a thread with its own loop."""

    def __init__(self, data_dir: Path, **options: Any) -> None:
        self.data_dir = data_dir
        self.options = options
        self.port = free_port()
        self.buckets: Buckets | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            self.buckets = Buckets(self.data_dir, **self.options)
            await self.buckets.start()
            server = AsgiServer(
                AwsDispatch(_not_found, {"s3": self.buckets.app}), "127.0.0.1", self.port
            )
            await server.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            raise
        self._ready.set()
        await self._stop.wait()
        await server.stop()
        await self.buckets.stop()

    def start(self) -> ThreadServer:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run a coroutine function on the server's loop and wait for its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(30)


@pytest.fixture(scope="session")
def stackyard_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    server = ThreadServer(tmp_path_factory.mktemp("s3"))
    server.start()
    # small parts so multipart tests stay quick; the 5 MiB rule is tested on its own server
    assert server.buckets is not None
    yield server
    server.stop()


def _wait_port(port: int, timeout: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("moto server did not start")


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    pytest.importorskip("moto.server")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port, 60, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(params=["stackyard", "moto"])
def endpoint(request: pytest.FixtureRequest, stackyard_s3: ThreadServer) -> Endpoint:
    """Each parity test runs against Stackyard and against moto's server."""
    if request.param == "moto":
        return Endpoint("moto", request.getfixturevalue("moto_s3"))
    return Endpoint("stackyard", stackyard_s3.url, stackyard_s3.buckets)


@pytest.fixture
def stackyard(stackyard_s3: ThreadServer) -> Endpoint:
    return Endpoint("stackyard", stackyard_s3.url, stackyard_s3.buckets)


@pytest.fixture
def bucket_name() -> str:
    return f"b-{uuid.uuid4().hex[:16]}"
