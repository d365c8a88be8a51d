"""BatchGetItem, BatchWriteItem, TransactWriteItems, TransactGetItems — against Stackyard and
moto (``ddb``); TTL expiry and the boto3 resource API against Stackyard."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from .conftest import TablesServer, aws_decides, make_client, unique


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def test_batch_write_and_get(ddb: Any, new_table: Callable[..., str]) -> None:
    name = new_table(range_type=None)
    other = new_table(range_type=None)
    ddb.put_item(TableName=name, Item={"pk": {"S": "gone"}})
    answer = ddb.batch_write_item(
        RequestItems={
            name: [
                {"PutRequest": {"Item": {"pk": {"S": f"k{i}"}, "v": {"N": str(i)}}}}
                for i in range(20)
            ]
            + [{"DeleteRequest": {"Key": key("gone")}}],
            other: [{"PutRequest": {"Item": {"pk": {"S": "o"}}}}],
        }
    )
    assert answer["UnprocessedItems"] == {}
    got = ddb.batch_get_item(
        RequestItems={
            name: {
                "Keys": [key("k1"), key("k7"), key("gone"), key("nope")],
                "ProjectionExpression": "v",
            },
            other: {"Keys": [key("o")], "ConsistentRead": True},
        }
    )
    assert sorted(i["v"]["N"] for i in got["Responses"][name]) == ["1", "7"]
    assert got["Responses"][other] == [{"pk": {"S": "o"}}]
    assert got["UnprocessedKeys"] == {}


def test_batch_errors(ddb: Any, new_table: Callable[..., str]) -> None:
    aws_decides(
        ddb,
        "BatchWriteItem refuses two requests for one key and more than 25 "
        "requests (API reference); moto accepts the first",
    )
    name = new_table(range_type=None)
    with pytest.raises(ClientError) as exc:
        ddb.batch_write_item(
            RequestItems={
                name: [
                    {"PutRequest": {"Item": {"pk": {"S": "same"}}}},
                    {"DeleteRequest": {"Key": key("same")}},
                ]
            }
        )
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ddb.batch_write_item(
            RequestItems={
                name: [{"PutRequest": {"Item": {"pk": {"S": f"k{i}"}}}} for i in range(26)]
            }
        )
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ddb.batch_get_item(RequestItems={name: {"Keys": [key("a"), key("a")]}})
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ddb.exceptions.ResourceNotFoundException):
        ddb.batch_get_item(RequestItems={unique("missing"): {"Keys": [key("a")]}})


def test_transact_write_is_atomic(ddb: Any, new_table: Callable[..., str]) -> None:
    name = new_table(range_type=None)
    ddb.put_item(TableName=name, Item={"pk": {"S": "acct"}, "balance": {"N": "10"}})
    ddb.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": name,
                    "Key": key("acct"),
                    "UpdateExpression": "SET balance = balance - :n",
                    "ConditionExpression": "balance >= :n",
                    "ExpressionAttributeValues": {":n": {"N": "4"}},
                }
            },
            {
                "Put": {
                    "TableName": name,
                    "Item": {"pk": {"S": "log1"}, "amount": {"N": "4"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
    )
    with pytest.raises(ddb.exceptions.TransactionCanceledException) as exc:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": name, "Item": {"pk": {"S": "log2"}}}},
                {
                    "Update": {
                        "TableName": name,
                        "Key": key("acct"),
                        "UpdateExpression": "SET balance = balance - :n",
                        "ConditionExpression": "balance >= :n",
                        "ExpressionAttributeValues": {":n": {"N": "100"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": name,
                        "Key": key("log1"),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    reasons = exc.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed", "None"]
    assert reasons[1]["Item"]["balance"] == {"N": "6"}
    assert "log2" not in str(ddb.scan(TableName=name)["Items"])  # nothing written
    got = ddb.transact_get_items(
        TransactItems=[
            {"Get": {"TableName": name, "Key": key("acct")}},
            {"Get": {"TableName": name, "Key": key("missing")}},
            {"Get": {"TableName": name, "Key": key("log1"), "ProjectionExpression": "amount"}},
        ]
    )["Responses"]
    assert got[0]["Item"]["balance"] == {"N": "6"}
    assert got[1] == {}
    if ddb.meta.target != "moto":  # moto ignores a Get's ProjectionExpression
        assert got[2]["Item"] == {"amount": {"N": "4"}}


def test_transact_write_deletes(ddb: Any, new_table: Callable[..., str]) -> None:
    name = new_table(range_type=None)
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}})
    ddb.transact_write_items(
        TransactItems=[
            {
                "Delete": {
                    "TableName": name,
                    "Key": key("a"),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
        ]
    )
    assert "Item" not in ddb.get_item(TableName=name, Key=key("a"))


def test_transaction_may_not_touch_an_item_twice(ddb: Any, new_table: Callable[..., str]) -> None:
    name = new_table(range_type=None)
    with pytest.raises(ClientError) as exc:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": name, "Item": {"pk": {"S": "a"}}}},
                {"Delete": {"TableName": name, "Key": key("a")}},
            ]
        )
    assert exc.value.response["Error"]["Code"] == "ValidationException"


# -- Stackyard only -----------------------------------------------------------------------------


def test_time_to_live_expiry(tmp_path: Path) -> None:
    server = TablesServer(tmp_path, ttl_interval=0.2).start()
    try:
        client = make_client(server.url)
        client.create_table(
            TableName="sessions",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        )
        now = int(time.time())
        client.put_item(TableName="sessions", Item={"pk": {"S": "old"}, "exp": {"N": str(now - 5)}})
        client.update_time_to_live(
            TableName="sessions", TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"}
        )
        for pk, exp in (
            ("soon", now - 1),
            ("later", now + 3600),
            ("ancient", now - 6 * 365 * 86400),
        ):
            client.put_item(TableName="sessions", Item={"pk": {"S": pk}, "exp": {"N": str(exp)}})
        client.put_item(TableName="sessions", Item={"pk": {"S": "text"}, "exp": {"S": "0"}})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = {i["pk"]["S"] for i in client.scan(TableName="sessions")["Items"]}
            if left == {"later", "ancient", "text"}:
                break
            time.sleep(0.1)
        # expired items go; items expired over five years ago and non-numbers stay (as in AWS)
        assert left == {"later", "ancient", "text"}
    finally:
        server.stop()


def test_resource_api(resource: Any) -> None:
    name = unique()
    table = resource.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "user", "KeyType": "HASH"},
            {"AttributeName": "at", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "user", "AttributeType": "S"},
            {"AttributeName": "at", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    table.wait_until_exists()
    with table.batch_writer() as batch:
        for i in range(30):
            batch.put_item(
                Item={
                    "user": "ann",
                    "at": i,
                    "score": Decimal(i) / 4,
                    "tags": {"x", f"t{i % 3}"},
                    "raw": b"\x00" * (i % 2),
                }
            )
    table.put_item(Item={"user": "bob", "at": 1, "score": Decimal("0.1")})
    assert table.get_item(Key={"user": "bob", "at": 1})["Item"]["score"] == Decimal("0.1")
    found = table.query(
        KeyConditionExpression=Key("user").eq("ann") & Key("at").between(10, 14),
        FilterExpression=Attr("tags").contains("t1"),
    )["Items"]
    assert [int(i["at"]) for i in found] == [10, 13]
    assert found[0]["tags"] == {"x", "t1"}
    updated = table.update_item(
        Key={"user": "ann", "at": 0},
        UpdateExpression="ADD score :one",
        ExpressionAttributeValues={":one": Decimal(1)},
        ReturnValues="UPDATED_NEW",
    )["Attributes"]
    assert updated == {"score": Decimal(1)}
    with pytest.raises(table.meta.client.exceptions.ConditionalCheckFailedException):
        table.put_item(Item={"user": "bob", "at": 1}, ConditionExpression=Attr("user").not_exists())
    scanned = table.scan(FilterExpression=Attr("score").gt(Decimal(7)))["Items"]
    assert sorted(int(i["at"]) for i in scanned) == [29]
    assert table.item_count == 31
    table.delete()
