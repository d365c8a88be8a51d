"""Tables through a real node (``stackyard up`` subprocess), on SQLite and on PostgreSQL
(``storage.tables``): tables declared in stackyard.yml, kept across restarts, acknowledged
writes surviving kill -9; two nodes on one PostgreSQL sharing items; a bad or unreachable
PostgreSQL named in ``up``'s error."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from stackyard.testing import NodeProcess

from ..postgres import fresh_schema
from .conftest import make_client

STACK = """\
name: shop
tables:
  orders:
    hash_key: customer
    range_key: placed
    attributes: {placed: N, email: S, total: N}
    indexes:
      by-email: {hash_key: email, projection: keys_only}
      by-total: {local: true, range_key: total, projection: [status]}
    ttl: expires
"""


POSTGRES = """\
storage:
  tables:
    backend: postgres
    url: "${env:STACKYARD_TEST_TABLES_URL, postgresql://127.0.0.1:1/unset}"
    schema_name: SCHEMA
"""


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, str]]]:
    """(the stack's storage section, the environment of the node) for each backend."""
    if request.param == "sqlite":
        yield "", {}
        return
    with fresh_schema() as (url, schema):
        yield POSTGRES.replace("SCHEMA", schema), {"STACKYARD_TEST_TABLES_URL": url}


def write_stack(tmp_path: Path, storage: str = "", name: str = "app") -> Path:
    root = tmp_path / name
    root.mkdir()
    (root / "stackyard.yml").write_text(STACK + storage)
    return root


def test_declared_tables_are_created_and_kept(
    tmp_path: Path, storage: tuple[str, dict[str, str]]
) -> None:
    root = write_stack(tmp_path, storage[0])
    data = tmp_path / "data"
    with NodeProcess(root, data_dir=data, env=storage[1]) as node:
        node.wait_ready()
        client = make_client(node.control_url)
        table = client.describe_table(TableName="orders")["Table"]
        assert [k["AttributeName"] for k in table["KeySchema"]] == ["customer", "placed"]
        assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {"by-email"}
        assert table["LocalSecondaryIndexes"][0]["Projection"] == {
            "ProjectionType": "INCLUDE",
            "NonKeyAttributes": ["status"],
        }
        ttl = client.describe_time_to_live(TableName="orders")["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}
        client.put_item(TableName="orders", Item={"customer": {"S": "ann"}, "placed": {"N": "1"}})
    with NodeProcess(root, data_dir=data, env=storage[1]) as node:
        node.wait_ready()
        client = make_client(node.control_url)
        item = client.get_item(
            TableName="orders", Key={"customer": {"S": "ann"}, "placed": {"N": "1"}}
        )
        assert item["Item"]["customer"] == {"S": "ann"}


def test_acknowledged_puts_survive_kill_9(
    tmp_path: Path, storage: tuple[str, dict[str, str]]
) -> None:
    root = write_stack(tmp_path, storage[0])
    data = tmp_path / "data"
    acknowledged: list[int] = []
    node = NodeProcess(root, data_dir=data, env=storage[1]).start()
    try:
        node.wait_ready()
        client = make_client(node.control_url)
        stop = threading.Event()

        def writer() -> None:
            n = 0
            while not stop.is_set():
                try:
                    client.put_item(
                        TableName="orders",
                        Item={
                            "customer": {"S": "kill"},
                            "placed": {"N": str(n)},
                            "blob": {"S": "x" * 200},
                        },
                    )
                except (BotoCoreError, ClientError, OSError):
                    return  # the node is gone: this write was not acknowledged
                acknowledged.append(n)
                n += 1

        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(1.5)
        assert node.process is not None
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(10)
        stop.set()
        thread.join(30)
    finally:
        node.stop()
    assert len(acknowledged) > 10
    print(f"{len(acknowledged)} PutItems acknowledged in 1.5 s before kill -9")
    with NodeProcess(root, data_dir=data, env=storage[1]) as again:
        again.wait_ready()
        client = make_client(again.control_url)
        found: set[int] = set()
        pages = client.get_paginator("query").paginate(
            TableName="orders",
            KeyConditionExpression="customer = :c",
            ExpressionAttributeValues={":c": {"S": "kill"}},
        )
        for page in pages:
            found |= {int(i["placed"]["N"]) for i in page["Items"]}
        missing = set(acknowledged) - found
        assert not missing, f"{len(missing)} acknowledged writes lost: {sorted(missing)[:10]}"


def test_two_nodes_on_one_postgres_share_tables(tmp_path: Path) -> None:
    with fresh_schema() as (url, schema):
        section = POSTGRES.replace("SCHEMA", schema)
        env = {"STACKYARD_TEST_TABLES_URL": url}
        roots = [write_stack(tmp_path, section, name) for name in ("one", "two")]
        with (
            NodeProcess(roots[0], data_dir=tmp_path / "d1", env=env) as one,
            NodeProcess(roots[1], data_dir=tmp_path / "d2", env=env) as two,
        ):
            one.wait_ready()
            two.wait_ready()
            a, b = make_client(one.control_url), make_client(two.control_url)
            assert b.list_tables()["TableNames"] == a.list_tables()["TableNames"] == ["orders"]
            key = {"customer": {"S": "bob"}, "placed": {"N": "7"}}
            a.put_item(TableName="orders", Item={**key, "email": {"S": "bob@example.com"}})
            assert (
                b.get_item(TableName="orders", Key=key)["Item"]["email"]["S"] == "bob@example.com"
            )
            found = b.query(
                TableName="orders",
                IndexName="by-email",
                KeyConditionExpression="email = :e",
                ExpressionAttributeValues={":e": {"S": "bob@example.com"}},
            )["Items"]
            assert found == [{**key, "email": {"S": "bob@example.com"}}]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://127.0.0.1:1/test", "storage.tables.url postgresql://127.0.0.1:1/test"),
        ("mysql://127.0.0.1/test", "storage.tables.url"),
    ],
)
def test_up_names_a_bad_or_unreachable_postgres(tmp_path: Path, url: str, expected: str) -> None:
    root = write_stack(tmp_path, POSTGRES.replace("SCHEMA", "stackyard"))
    node = NodeProcess(root, data_dir=tmp_path / "data", env={"STACKYARD_TEST_TABLES_URL": url})
    args = [sys.executable, "-m", "stackyard", "up", str(root), "--data-dir", str(node.data_dir)]
    args += ["--port", str(node.gateway_port), "--control-port", str(node.control_port)]
    args += ["--dns-port", str(node.dns_port)]
    done = subprocess.run(args, env=node.env, capture_output=True, text=True, timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert expected in output
    assert "Traceback" not in output
