"""The tables component: the engine on its worker thread, the API app, declared tables, TTL.

``Tables(data_dir)`` keeps ``tables.sqlite3`` in the data dir; with ``storage`` (the stack's
``storage.tables``) of backend ``postgres`` it keeps them in PostgreSQL instead, where several
nodes share them: there every operation is one transaction, run again on a conflict with
another node (see :mod:`.postgres`). ``start`` opens the store,
creates the tables declared in ``stackyard.yml`` that do not exist yet (existing ones keep their
items; a changed declaration is reported, not applied, except the TTL attribute) and starts the
TTL sweeper; ``stop`` ends the sweeper and closes the store. Every engine call runs on one
thread (:mod:`.worker`), never on the event loop; on SQLite, concurrent item writes are
committed in groups there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .api import DynamoDbApp
from .engine import Engine
from .errors import StoreUnavailable, UnknownOperation
from .reads import Reads
from .schema import TableSchema
from .sqlite import SqliteTableStore
from .store import TableStore
from .worker import Kind, TableWorker
from .writes import Writes

if TYPE_CHECKING:
    from ...config.models import TableStorageConfig
    from .postgres import PostgresTableStore

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], dict[str, Any]]
# operations on tables rather than items: on a shared store they read the stored catalog
# how each operation runs on the worker thread (see .worker); the rest run alone
WRITES = ("PutItem", "DeleteItem", "UpdateItem", "BatchWriteItem", "TransactWriteItems")
READS = ("GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems", "DescribeTable")
KINDS: dict[str, Kind] = {**dict.fromkeys(WRITES, "write"), **dict.fromkeys(READS, "read")}
CATALOG_OPERATIONS = frozenset(
    {
        "CreateTable",
        "DescribeTable",
        "DeleteTable",
        "ListTables",
        "UpdateTable",
        "UpdateTimeToLive",
        "DescribeTimeToLive",
    }
)


class Tables:
    def __init__(
        self,
        data_dir: Path,
        *,
        declared: Mapping[str, dict[str, Any]] | None = None,
        region: str = "us-east-1",
        ttl_interval: float = 30.0,
        storage: TableStorageConfig | None = None,
    ) -> None:
        self.storage = storage
        self.shared: PostgresTableStore | None = None
        store: TableStore
        if storage is not None and storage.backend == "postgres":
            from .postgres import PostgresTableStore  # psycopg: the postgres extra

            assert storage.url is not None
            store = self.shared = PostgresTableStore(storage.url, storage.schema_name)
        else:
            store = SqliteTableStore(data_dir / "tables.sqlite3")
        self.engine = Engine(store, region)
        self.declared = dict(declared or {})
        self.ttl_interval = ttl_interval
        self.app = DynamoDbApp(self.call)
        # group commit on SQLite; on PostgreSQL every operation is a transaction of its own
        self.worker = TableWorker(store if isinstance(store, SqliteTableStore) else None)
        self._sweeper: asyncio.Task[None] | None = None
        reads, writes = Reads(self.engine), Writes(self.engine)
        engine = self.engine
        self.operations: dict[str, Handler] = {
            "CreateTable": engine.create_table,
            "DescribeTable": engine.describe_table,
            "DeleteTable": engine.delete_table,
            "ListTables": engine.list_tables,
            "UpdateTable": writes.update_table,
            "UpdateTimeToLive": engine.update_time_to_live,
            "DescribeTimeToLive": engine.describe_time_to_live,
            "PutItem": engine.put_item,
            "GetItem": engine.get_item,
            "DeleteItem": engine.delete_item,
            "UpdateItem": engine.update_item,
            "Query": reads.query,
            "Scan": reads.scan,
            "BatchGetItem": reads.batch_get_item,
            "TransactGetItems": reads.transact_get_items,
            "BatchWriteItem": writes.batch_write_item,
            "TransactWriteItems": writes.transact_write_items,
            "DescribeEndpoints": lambda _: {
                "Endpoints": [{"Address": "localhost", "CachePeriodInMinutes": 1440}]
            },
            "DescribeLimits": lambda _: {
                "AccountMaxReadCapacityUnits": 80000,
                "AccountMaxWriteCapacityUnits": 80000,
                "TableMaxReadCapacityUnits": 40000,
                "TableMaxWriteCapacityUnits": 40000,
            },
        }

    async def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        handler = self.operations.get(operation)
        if handler is None:
            raise UnknownOperation(f"Unknown operation {operation!r}")
        if self.shared is not None and operation in CATALOG_OPERATIONS:
            return await self.run(self.with_catalog(handler), body)
        return await self.run(handler, body, KINDS.get(operation, "alone"))

    def with_catalog(self, handler: Handler) -> Handler:
        """``handler`` after a reload of the catalog (in its transaction): what another node
        created, changed or deleted a moment ago is seen, not only once its NOTIFY arrived."""

        def call(body: dict[str, Any]) -> dict[str, Any]:
            self._reload()
            return handler(body)

        return call

    async def run(
        self, handler: Handler, body: dict[str, Any], kind: Kind = "alone"
    ) -> dict[str, Any]:
        """``handler(body)`` on the worker thread; ``kind``: see :mod:`.worker`."""
        result: dict[str, Any] = await self.worker.submit(
            lambda: self._transaction(handler, body), kind
        )
        return result

    def _transaction(self, handler: Handler, body: dict[str, Any]) -> dict[str, Any]:
        if self.shared is None:
            return handler(body)
        return self.shared.run(lambda: handler(body), self._reload)

    def _reload(self) -> None:
        assert self.shared is not None
        self.engine.tables = self.shared.load_tables()

    async def start(self) -> None:
        self.worker.start()
        try:
            await self.worker.submit(self._open)
        except StoreUnavailable as exc:
            await asyncio.to_thread(self.worker.stop)
            raise StoreUnavailable(f"storage.tables.url {self._where()}: {exc.message}") from exc
        if self.ttl_interval > 0:
            self._sweeper = asyncio.create_task(self._sweep(), name="tables-ttl")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self.worker.running:
            await self.worker.submit(self.engine.close)
            await asyncio.to_thread(self.worker.stop)

    def _where(self) -> str:
        url = self.storage.url if self.storage is not None else None
        return re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", url or "")

    def _open(self) -> None:
        if self.shared is None:
            self.engine.open()
            self._declare()
            return
        self.shared.open()
        self.shared.run(self._declare, self._reload)

    def _declare(self) -> None:
        for name, request in self.declared.items():
            if name not in self.engine.tables:
                self.engine.create_table(request)
                logger.info("table %s created", name)
            table_id, schema = self.engine.tables[name]
            wanted = request.get("TimeToLiveAttribute")
            if wanted != schema.ttl_attribute:
                schema = self.engine.set_ttl(table_id, schema, wanted)
            stream = request.get("StreamSpecification")
            if stream != schema.stream:
                self.engine.set_stream(table_id, schema, stream)
            if not same_keys(schema, request):
                logger.warning(
                    "table %s exists with another key schema or indexes than stackyard.yml "
                    "declares; it is kept as it is",
                    name,
                )

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_interval)
            try:
                await self.run(lambda _: {"removed": self.engine.sweep_expired()}, {})
            except Exception:
                logger.exception("TTL sweep failed")


def same_keys(schema: TableSchema, request: dict[str, Any]) -> bool:
    keys = [(e["AttributeName"], e["KeyType"]) for e in request["KeySchema"]]
    index_names = {
        i["IndexName"]
        for kind in ("LocalSecondaryIndexes", "GlobalSecondaryIndexes")
        for i in request.get(kind) or []
    }
    return keys == [(n, t) for n, t in zip(schema.key_names, ("HASH", "RANGE"), strict=False)] and (
        index_names == {i.name for i in schema.indexes}
    )
