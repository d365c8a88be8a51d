"""The PostgreSQL stream log under concurrent writers on two nodes (two in-process servers on
one schema): a transaction run again after a conflict logs its change once, a rolled-back one
not at all, and ``seq`` order is the order in which the writes committed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from stackyard.config.models import TableStorageConfig

from ..postgres import fresh_schema
from .conftest import StreamsServer
from .test_trim import iterator, read_on


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
    done = [0, 0]
    errors: list[BaseException] = []

    def increment(index: int, ddb: Any) -> None:
        try:
            while done[index] < 30:
                n = int(ddb.get_item(TableName="counter", Key=key)["Item"]["n"]["N"])
                try:
                    ddb.update_item(
                        TableName="counter",
                        Key=key,
                        UpdateExpression="SET n = :new",
                        ConditionExpression="n = :old",
                        ExpressionAttributeValues={
                            ":new": {"N": str(n + 1)},
                            ":old": {"N": str(n)},
                        },
                    )
                except ClientError as exc:  # lost the race: no record for it
                    if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                        raise
                    continue
                done[index] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=increment, args=(i, ddb)) for i, ddb in enumerate((ddb_a, ddb_b))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    arn = ddb_b.describe_table(TableName="counter")["Table"]["LatestStreamArn"]
    records, _ = read_on(streams_a, iterator(streams_a, arn, "TRIM_HORIZON"))
    assert [r["eventName"] for r in records] == ["INSERT"] + ["MODIFY"] * 60
    # in seq order, each record takes the counter one step on from the one before
    steps = [
        (int(r["dynamodb"]["OldImage"]["n"]["N"]), int(r["dynamodb"]["NewImage"]["n"]["N"]))
        for r in records[1:]
    ]
    assert steps == [(n, n + 1) for n in range(60)]
