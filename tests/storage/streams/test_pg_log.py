"""The PostgreSQL stream log under concurrent writers on two nodes (two in-process servers on
one schema): a transaction run again after a conflict logs its change once, a rolled-back one
not at all, and ``seq`` order is the order in which the writes committed (a write waits for
an earlier append of its table to commit); writes to several streams take their locks in one
order; one node at a time trims."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stackyard.config.models import TableStorageConfig
from stackyard.storage.streams.pglog import (
    APPEND_LOCK,
    TRIM_LOCK,
    PostgresStreamLog,
    append_key,
)
from stackyard.storage.tables.engine import Engine
from stackyard.storage.tables.postgres import PostgresTableStore
from stackyard.testing import wait_until

from ..postgres import fresh_schema
from ..races import race_increments
from .conftest import StreamsServer
from .test_trim import LATER, iterator, read_on


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[StreamsServer, StreamsServer]]:
    with fresh_schema() as (url, schema):
        storage = TableStorageConfig(backend="postgres", url=url, schema_name=schema)
        servers = [StreamsServer(tmp_path / f"n{i}", storage).start() for i in range(2)]
        try:
            yield servers[0], servers[1]
        finally:
            for server in servers:
                server.stop()


def test_concurrent_increments_log_each_committed_change_once_in_commit_order(
    pair: tuple[StreamsServer, StreamsServer],
) -> None:
    (ddb_a, streams_a), (ddb_b, _) = pair[0].clients(), pair[1].clients()
    ddb_a.create_table(
        TableName="counter",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    key = {"id": {"S": "c"}}
    ddb_a.put_item(TableName="counter", Item={**key, "n": {"N": "0"}})
    race_increments([ddb_a, ddb_b], "counter", key, each=30, timeout=120)
    arn = ddb_b.describe_table(TableName="counter")["Table"]["LatestStreamArn"]
    records, _ = read_on(streams_a, iterator(streams_a, arn, "TRIM_HORIZON"))
    assert [r["eventName"] for r in records] == ["INSERT"] + ["MODIFY"] * 60
    # in seq order, each record takes the counter one step on from the one before
    steps = [
        (int(r["dynamodb"]["OldImage"]["n"]["N"]), int(r["dynamodb"]["NewImage"]["n"]["N"]))
        for r in records[1:]
    ]
    assert steps == [(n, n + 1) for n in range(60)]


def stream_table(ddb: Any, name: str, ttl: bool = False) -> None:
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
    )
    if ttl:
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
        )


def keys_in_stream(streams: Any, ddb: Any, table: str) -> list[str]:
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    records, _ = read_on(streams, iterator(streams, arn, "TRIM_HORIZON"))
    return [r["dynamodb"]["Keys"]["id"]["S"] for r in records]


def append_waiters(url: str, key: int) -> int:
    """Transactions waiting for the append lock of the table whose lock key is ``key``."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
            "AND objid = %s AND objsubid = 2 AND NOT granted",
            (APPEND_LOCK, key & 0xFFFF_FFFF),
        ).fetchone()
    assert row is not None
    return int(row[0])


def in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_a_record_is_not_readable_before_an_earlier_append_commits(
    pair: tuple[StreamsServer, StreamsServer],
) -> None:
    """Another store appends a change of item A and keeps its transaction open: a write of
    item B waits for it (B's record would otherwise be visible, and read past, before A's),
    and once A commits the stream holds A then B."""
    server, other = pair
    (ddb, _), (ddb_other, streams_other) = server.clients(), other.clients()
    stream_table(ddb, "ordered")
    storage = server.tables.storage
    assert storage is not None and storage.url is not None
    store = PostgresTableStore(storage.url, storage.schema_name)
    engine = Engine(store)
    engine.open()
    engine.on_write = PostgresStreamLog(store).append
    key = append_key(storage.schema_name, "ordered")
    try:
        with store.atomic():
            engine.put_item({"TableName": "ordered", "Item": {"id": {"S": "A"}}})
            thread, errors = in_thread(
                lambda: ddb.put_item(TableName="ordered", Item={"id": {"S": "B"}})
            )
            wait_until(
                lambda: not thread.is_alive() or append_waiters(storage.url or "", key),
                30,
                what="B waiting for A's append",
            )
            assert thread.is_alive(), "B's write did not wait for A's uncommitted append"
            assert keys_in_stream(streams_other, ddb_other, "ordered") == []
        thread.join(30)
        assert not errors, errors
    finally:
        engine.close()
    assert keys_in_stream(streams_other, ddb_other, "ordered") == ["A", "B"]


def two_tables(schema: str) -> tuple[str, str]:
    """Two table names, the first with the higher append lock key and the lower name (so
    neither the order of a request nor the order of names is the order of the locks)."""
    while True:
        suffix = uuid.uuid4().hex[:8]
        first, second = f"a-{suffix}", f"b-{suffix}"
        if append_key(schema, first) > append_key(schema, second):
            return first, second


@pytest.mark.parametrize("write", ["TransactWriteItems", "BatchWriteItem", "TTL sweep"])
def test_writes_to_two_streams_take_their_append_locks_in_one_order(
    pair: tuple[StreamsServer, StreamsServer], write: str
) -> None:
    """A write to tables H and L (H's lock key the higher; H first in the request, the
    catalog and by name) waits for L's lock, held here, without holding H's: taken in
    another order, two such writes (or TTL sweeps on two nodes) deadlock."""
    server = pair[0]
    ddb, streams = server.clients()
    storage = server.tables.storage
    assert storage is not None and storage.url is not None
    high, low = two_tables(storage.schema_name)
    for name in (high, low):
        stream_table(ddb, name, ttl=write == "TTL sweep")
    if write == "TTL sweep":
        for name in (high, low):
            ddb.put_item(
                TableName=name, Item={"id": {"S": name}, "ttl": {"N": str(int(time.time()) - 100)}}
            )

    def run() -> None:
        if write == "TransactWriteItems":
            ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": name, "Item": {"id": {"S": name}}}}
                    for name in (high, low)
                ]
            )
        elif write == "BatchWriteItem":
            ddb.batch_write_item(
                RequestItems={
                    name: [{"PutRequest": {"Item": {"id": {"S": name}}}}] for name in (high, low)
                }
            )
        else:
            engine = server.tables.engine
            server.run(server.tables.run(lambda _: {"n": engine.sweep_expired()}, {}))

    low_key = append_key(storage.schema_name, low)
    with psycopg.connect(storage.url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s, %s)", (APPEND_LOCK, low_key))
        thread, errors = in_thread(run)
        wait_until(
            lambda: not thread.is_alive() or append_waiters(storage.url or "", low_key),
            30,
            what="the write waiting",
        )
        assert thread.is_alive(), f"{write} did not wait for the lock of {low}"
        high_key = append_key(storage.schema_name, high)
        row = holder.execute(
            "SELECT pg_try_advisory_xact_lock(%s, %s)", (APPEND_LOCK, high_key)
        ).fetchone()
        assert row == (True,), f"{write} held the lock of {high} while waiting for {low}'s"
        holder.rollback()
    thread.join(30)
    assert not errors, errors
    for name in (high, low):
        assert keys_in_stream(streams, ddb, name)[-1] == name


def test_one_node_trims_at_a_time(pair: tuple[StreamsServer, StreamsServer]) -> None:
    server, other = pair
    ddb, streams = server.clients()
    stream_table(ddb, "trimmed")
    for n in range(3):
        ddb.put_item(TableName="trimmed", Item={"id": {"S": f"k{n}"}})
    storage = server.tables.storage
    assert storage is not None and storage.url is not None
    later = time.time() + LATER
    with psycopg.connect(storage.url) as holder:  # as a node trimming right now
        holder.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (TRIM_LOCK, storage.schema_name)
        )
        assert server.expire(later) == 0 and other.expire(later) == 0
        holder.rollback()
    assert len(keys_in_stream(streams, ddb, "trimmed")) == 3
    assert server.expire(later) == 3
    assert keys_in_stream(streams, ddb, "trimmed") == []


def test_a_stream_turned_off_on_one_node_is_read_to_its_end_on_the_other(
    pair: tuple[StreamsServer, StreamsServer],
) -> None:
    server, other = pair
    ddb, _ = server.clients()
    _, streams = other.clients()
    stream_table(ddb, "switched")
    arn = ddb.describe_table(TableName="switched")["Table"]["LatestStreamArn"]
    for n in range(2):
        ddb.put_item(TableName="switched", Item={"id": {"S": f"k{n}"}})
    ddb.update_table(TableName="switched", StreamSpecification={"StreamEnabled": False})
    assert [s["StreamArn"] for s in streams.list_streams()["Streams"]] == [arn]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert shard["StreamStatus"] == "DISABLED"
    page = streams.get_records(ShardIterator=iterator(streams, arn, "TRIM_HORIZON"))
    assert [r["dynamodb"]["Keys"]["id"]["S"] for r in page["Records"]] == ["k0", "k1"]
    assert "NextShardIterator" not in page
    assert other.expire(time.time() + LATER) == 2  # the other node's retention: gone for both
    for client in (streams, server.clients()[1]):
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.describe_stream(StreamArn=arn)
