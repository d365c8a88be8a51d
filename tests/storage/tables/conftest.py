"""Fixtures of the tables tests: Stackyard's DynamoDB API served in-process on a real port (in
a background thread with its own event loop, so that synchronous boto3 clients can call it),
on the SQLite and on the PostgreSQL backend, moto's server as a subprocess, and boto3 clients.

``ddb`` is parametrized over Stackyard on SQLite, Stackyard on PostgreSQL and moto (the parity
suite); ``client``/``resource`` are Stackyard on either backend. The PostgreSQL backend uses
the database of :func:`tests.storage.postgres.postgres_url` in a schema of its own per run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from stackyard.config.models import TableStorageConfig
from stackyard.serving import AsgiServer, free_port
from stackyard.storage.tables import Tables
from stackyard.testing import wait_until

from ..postgres import fresh_schema

CONFIG = Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30)


class TablesServer:
    """A :class:`Tables` component and its app on a free port, run by a background loop."""

    def __init__(self, data_dir: Path, **options: Any) -> None:
        self.tables = Tables(data_dir, **options)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = AsgiServer(self.tables.app, "127.0.0.1", self.port)

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def start(self) -> TablesServer:
        self.thread.start()
        self.run(self.tables.start())
        self.run(self.server.start())
        return self

    def stop(self) -> None:
        self.run(self.server.stop())
        self.run(self.tables.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def make_client(url: str, kind: str = "client") -> Any:
    factory = boto3.client if kind == "client" else boto3.resource
    return factory(
        "dynamodb",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="stackyard",
        aws_secret_access_key="stackyard",
        config=CONFIG,
    )


@pytest.fixture(scope="session")
def stackyard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TablesServer]:
    server = TablesServer(tmp_path_factory.mktemp("tables")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_storage() -> Iterator[TableStorageConfig]:
    """``storage.tables`` of backend postgres, in a fresh schema dropped afterwards."""
    with fresh_schema() as (url, schema):
        yield TableStorageConfig(backend="postgres", url=url, schema_name=schema)


@pytest.fixture(scope="session")
def postgres_server(
    tmp_path_factory: pytest.TempPathFactory, postgres_storage: TableStorageConfig
) -> Iterator[TablesServer]:
    server = TablesServer(tmp_path_factory.mktemp("tables-pg"), storage=postgres_storage)
    server.start()
    yield server
    server.stop()


SERVERS = {"stackyard": "stackyard_server", "postgres": "postgres_server"}


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("moto")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=1):
                return True
        except OSError:
            return process.poll() is not None

    wait_until(up, 30, 0.1, "moto's server")
    if process.poll() is not None:
        pytest.skip(f"moto's server did not start: {log.read_text()}")
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(params=list(SERVERS))
def client(request: pytest.FixtureRequest) -> Any:
    return make_client(request.getfixturevalue(SERVERS[request.param]).url)


@pytest.fixture(params=list(SERVERS))
def resource(request: pytest.FixtureRequest) -> Any:
    return make_client(request.getfixturevalue(SERVERS[request.param]).url, "resource")


@pytest.fixture(params=[*SERVERS, "moto"])
def ddb(request: pytest.FixtureRequest) -> Any:
    """A dynamodb client of Stackyard (on SQLite or PostgreSQL) or of moto (``ddb.meta.target``
    says which)."""
    if request.param in SERVERS:
        url = request.getfixturevalue(SERVERS[request.param]).url
    else:
        url = request.getfixturevalue("moto_url")
    client = make_client(url)
    client.meta.target = request.param  # type: ignore[attr-defined]
    return client


def aws_decides(client: Any, why: str) -> None:
    """Where moto differs from DynamoDB's documented behaviour: skip moto, saying why."""
    if getattr(client.meta, "target", "stackyard") == "moto":
        pytest.skip(f"moto differs from AWS here: {why}")


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def new_table(ddb: Any) -> Callable[..., str]:
    """Creates a table (hash ``pk`` S, optional range ``sk``) on ``ddb`` and returns its name."""

    def create(range_type: str | None = "S", hash_type: str = "S", **extra: Any) -> str:
        name = unique()
        keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
        attributes = [{"AttributeName": "pk", "AttributeType": hash_type}]
        if range_type is not None:
            keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
            attributes.append({"AttributeName": "sk", "AttributeType": range_type})
        attributes += extra.pop("more_attributes", [])
        ddb.create_table(
            TableName=name,
            KeySchema=keys,
            AttributeDefinitions=attributes,
            BillingMode="PAY_PER_REQUEST",
            **extra,
        )
        return name

    return create
