"""Fixtures of the stream tests that need no functions: the tables component with its stream
log and the DynamoDB Streams API served in-process on a real port (as the node serves them:
one port, the two APIs told apart by ``X-Amz-Target``), on SQLite and on PostgreSQL (a schema
of its own), called with boto3's ``dynamodb`` and ``dynamodbstreams`` clients.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from stackyard.asgi import Receive, Scope, Send
from stackyard.config.models import TableStorageConfig
from stackyard.serving import AsgiServer, free_port
from stackyard.storage.dispatch import AwsDispatch
from stackyard.storage.streams import Streams
from stackyard.storage.streams.api import TARGET
from stackyard.storage.tables import Tables
from stackyard.storage.tables.api import DynamoDbApp
from stackyard.storage.tables.sqlite import SqliteTableStore

from ..postgres import fresh_schema
from ..tables.conftest import CONFIG, make_client


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


class StreamsServer:
    """Tables and their streams (no subscriptions) on a free port, run by a background loop."""

    def __init__(self, data_dir: Path, storage: TableStorageConfig | None = None) -> None:
        self.tables = Tables(data_dir, storage=storage, ttl_interval=0)
        self.streams = Streams(self.tables, None, [])  # type: ignore[arg-type]  # no mappings
        app = AwsDispatch(
            _not_found,
            {
                "dynamodb": self.tables.app,
                "dynamodbstreams": DynamoDbApp(self.streams.api.call, TARGET),
            },
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = AsgiServer(app, "127.0.0.1", self.port)

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def start(self) -> StreamsServer:
        self.thread.start()
        self.run(self.tables.start())
        self.run(self.streams.start())
        self.run(self.server.start())
        return self

    def stop(self) -> None:
        self.run(self.server.stop())
        self.run(self.streams.stop())
        self.run(self.tables.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def trim(self, now: float, limit: int = 5000) -> int:
        return int(self.run(self.streams.trim(now, limit)))

    def expire(self, now: float, limit: int = 5000) -> int:
        return int(self.run(self.streams.expire(now, limit)))

    def set_created(self, seq: int, created: float) -> None:
        """Give the record ``seq`` another ``created`` time, by SQL on the store's connection
        (as a record written with a clock far off would have)."""
        store = self.tables.engine.store
        shared = self.tables.shared

        def update(_: object) -> dict[str, Any]:
            with store.atomic():
                if shared is not None:
                    shared.conn.execute(
                        f"UPDATE {shared.schema_name}.stream_records SET created = %s "
                        "WHERE seq = %s",
                        (created, seq),
                    )
                else:
                    assert isinstance(store, SqliteTableStore)
                    store.db.execute(
                        "UPDATE stream_records SET created = ? WHERE seq = ?", (created, seq)
                    )
            return {}

        self.run(self.tables.run(update, {}))

    def set_stream(self, table: str, stream: dict[str, Any] | None) -> None:
        """Give ``table`` the stream ``stream`` (None: none) as a table declaration does when a
        node starts (which, unlike UpdateTable, may change an enabled stream's view type)."""
        engine = self.tables.engine

        def change(_: object) -> dict[str, Any]:
            table_id, schema = engine.table(table)
            engine.set_stream(table_id, schema, stream)
            return {}

        self.run(self.tables.run(change, {}))

    def clients(self) -> tuple[Any, Any]:
        streams = boto3.client(
            "dynamodbstreams",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="stackyard",
            aws_secret_access_key="stackyard",
            config=CONFIG,
        )
        return make_client(self.url), streams


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def streams_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StreamsServer]:
    data = tmp_path_factory.mktemp(f"streams-{request.param}")
    if request.param == "sqlite":
        server = StreamsServer(data).start()
        yield server
        server.stop()
        return
    with fresh_schema() as (url, schema):
        storage = TableStorageConfig(backend="postgres", url=url, schema_name=schema)
        server = StreamsServer(data, storage).start()
        yield server
        server.stop()
