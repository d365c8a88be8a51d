"""The PostgreSQL backend shared by two nodes: two :class:`Tables` components (each with its
own data dir, port and connection) on one database and schema, called with boto3.

What one node writes the other reads; a table created, changed or deleted on one is seen by the
other; conditional writes from both at once lose no update; and a bad or unreachable URL fails
``start`` naming the setting.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from stackyard.config.models import TableStorageConfig
from stackyard.storage.tables import Tables
from stackyard.storage.tables.errors import StoreUnavailable

from ..races import race_increments
from .conftest import TablesServer, make_client, unique


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, postgres_storage: TableStorageConfig
) -> Iterator[list[TablesServer]]:
    started = [
        TablesServer(tmp_path_factory.mktemp(f"node{i}"), storage=postgres_storage).start()
        for i in range(2)
    ]
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def pair(servers: list[TablesServer]) -> tuple[Any, Any]:
    return make_client(servers[0].url), make_client(servers[1].url)


def create(client: Any, name: str, **extra: Any) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
            *extra.pop("more_attributes", []),
        ],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


def test_items_written_on_one_node_are_read_on_the_other(pair: tuple[Any, Any]) -> None:
    a, b = pair
    name = unique()
    create(a, name)
    assert name in b.list_tables()["TableNames"]
    for n in range(5):
        a.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"N": str(n)}, "v": {"S": "a"}})
    got = b.get_item(TableName=name, Key={"pk": {"S": "p"}, "sk": {"N": "3"}})
    assert got["Item"]["v"] == {"S": "a"}
    page = b.query(
        TableName=name,
        KeyConditionExpression="pk = :p AND sk >= :s",
        ExpressionAttributeValues={":p": {"S": "p"}, ":s": {"N": "2"}},
        ScanIndexForward=False,
    )
    assert [i["sk"]["N"] for i in page["Items"]] == ["4", "3", "2"]
    b.delete_item(TableName=name, Key={"pk": {"S": "p"}, "sk": {"N": "0"}})
    assert "Item" not in a.get_item(TableName=name, Key={"pk": {"S": "p"}, "sk": {"N": "0"}})
    assert a.describe_table(TableName=name)["Table"]["ItemCount"] == 4


def test_table_changes_on_one_node_apply_on_the_other(pair: tuple[Any, Any]) -> None:
    a, b = pair
    name = unique()
    create(a, name)
    b.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"N": "1"}, "email": {"S": "x@y"}})
    a.update_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "email", "AttributeType": "S"}],
        GlobalSecondaryIndexUpdates=[
            {
                "Create": {
                    "IndexName": "by-email",
                    "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            }
        ],
    )
    # b's next write indexes the item: its catalog is reloaded before it writes
    b.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"N": "2"}, "email": {"S": "x@y"}})
    for client in (a, b):
        found = client.query(
            TableName=name,
            IndexName="by-email",
            KeyConditionExpression="email = :e",
            ExpressionAttributeValues={":e": {"S": "x@y"}},
        )["Items"]
        assert sorted(i["sk"]["N"] for i in found) == ["1", "2"]
    b.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"}
    )
    ttl = a.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "exp"}
    a.delete_table(TableName=name)
    with pytest.raises(ClientError) as raised:
        b.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"N": "3"}})
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    create(b, name)  # the same name again, another table id
    a.put_item(TableName=name, Item={"pk": {"S": "new"}, "sk": {"N": "1"}})
    assert b.scan(TableName=name)["Items"] == [{"pk": {"S": "new"}, "sk": {"N": "1"}}]


def test_concurrent_conditional_updates_lose_nothing(pair: tuple[Any, Any]) -> None:
    """Both nodes increment one counter with a version check (optimistic locking), as fast as
    they can: every acknowledged increment is in the final count."""
    name = unique()
    create(pair[0], name)
    key = {"pk": {"S": "counter"}, "sk": {"N": "0"}}
    pair[0].put_item(TableName=name, Item={**key, "n": {"N": "0"}})
    done = race_increments(list(pair), name, key, each=40, timeout=60)
    final = pair[1].get_item(TableName=name, Key=key, ConsistentRead=True)["Item"]["n"]["N"]
    assert int(final) == sum(done) == 80


def test_concurrent_creates_of_one_declared_table(
    tmp_path: Path, postgres_storage: TableStorageConfig
) -> None:
    """Two nodes starting at once with the same declared table: one creates it, both use it."""
    name = unique("declared")
    declared = {
        name: {
            "TableName": name,
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        }
    }
    servers = [
        TablesServer(tmp_path / f"n{i}", storage=postgres_storage, declared=declared)
        for i in range(2)
    ]
    for server in servers:
        server.thread.start()
    starts = [threading.Thread(target=s.run, args=(s.tables.start(),)) for s in servers]
    for thread in starts:
        thread.start()
    for thread in starts:
        thread.join(30)
    try:
        for server in servers:
            server.run(server.server.start())
        a, b = (make_client(s.url) for s in servers)
        a.put_item(TableName=name, Item={"id": {"S": "one"}})
        assert b.get_item(TableName=name, Key={"id": {"S": "one"}})["Item"] == {"id": {"S": "one"}}
        assert b.list_tables()["TableNames"].count(name) == 1
    finally:
        for server in servers:
            server.stop()


def test_a_dropped_connection_is_opened_again(
    servers: list[TablesServer], pair: tuple[Any, Any], postgres_storage: TableStorageConfig
) -> None:
    """PostgreSQL ends the idle connection of node b (as a restart would): b's next request
    connects again and succeeds (with no retry by the client)."""
    a = pair[0]
    b = boto3.client(
        "dynamodb",
        endpoint_url=servers[1].url,
        region_name="us-east-1",
        aws_access_key_id="stackyard",
        aws_secret_access_key="stackyard",
        config=Config(retries={"total_max_attempts": 1}),
    )
    name = unique()
    create(a, name)
    key = {"pk": {"S": "p"}, "sk": {"N": "1"}}
    a.put_item(TableName=name, Item=key)
    shared = servers[1].tables.shared
    assert shared is not None and postgres_storage.url is not None
    pid = shared.conn.info.backend_pid
    with psycopg.connect(postgres_storage.url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.2)
    assert b.get_item(TableName=name, Key=key)["Item"] == key
    assert shared.conn.info.backend_pid != pid
    b.put_item(TableName=name, Item={**key, "v": {"S": "again"}})
    assert a.get_item(TableName=name, Key=key)["Item"]["v"] == {"S": "again"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://127.0.0.1:1/test", "storage.tables.url postgresql://127.0.0.1:1/test"),
        ("postgresql://u:secret@127.0.0.1:1/test", "postgresql://u:***@127.0.0.1:1/test"),
        ("postgresql://127.0.0.1:5432/no_such_database_here", "no_such_database_here"),
    ],
)
def test_unreachable_url_fails_start_naming_the_setting(
    tmp_path: Path, url: str, expected: str
) -> None:
    storage = TableStorageConfig(backend="postgres", url=url)
    tables = Tables(tmp_path, storage=storage)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as raised:
        asyncio.run(tables.start())
    assert expected in str(raised.value)
    assert "secret" not in str(raised.value)
    assert time.monotonic() - started < 15
