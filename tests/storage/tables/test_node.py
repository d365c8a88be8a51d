"""Tables through a real node (``stackyard up`` subprocess): tables declared in stackyard.yml,
kept across restarts, and acknowledged writes surviving kill -9."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from stackyard.testing import NodeProcess

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


def write_stack(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    (root / "stackyard.yml").write_text(STACK)
    return root


def test_declared_tables_are_created_and_kept(tmp_path: Path) -> None:
    root = write_stack(tmp_path)
    data = tmp_path / "data"
    with NodeProcess(root, data_dir=data) as node:
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
    with NodeProcess(root, data_dir=data) as node:
        node.wait_ready()
        client = make_client(node.control_url)
        item = client.get_item(
            TableName="orders", Key={"customer": {"S": "ann"}, "placed": {"N": "1"}}
        )
        assert item["Item"]["customer"] == {"S": "ann"}


def test_acknowledged_puts_survive_kill_9(tmp_path: Path) -> None:
    root = write_stack(tmp_path)
    data = tmp_path / "data"
    acknowledged: list[int] = []
    node = NodeProcess(root, data_dir=data).start()
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
    with NodeProcess(root, data_dir=data) as again:
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
