"""CreateTable, DescribeTable, ListTables, DeleteTable, UpdateTable, TTL — against Stackyard and
moto (``ddb``), with the errors boto3 maps to exceptions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import aws_decides, unique

KEYS = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
ATTRS = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "N"},
]


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_create_describe_delete(ddb: Any) -> None:
    name = unique()
    created = ddb.create_table(
        TableName=name,
        KeySchema=KEYS,
        AttributeDefinitions=[
            *ATTRS,
            {"AttributeName": "email", "AttributeType": "S"},
            {"AttributeName": "at", "AttributeType": "N"},
        ],
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-email",
                "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
                "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
            }
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "by-at",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["title"]},
            }
        ],
    )["TableDescription"]
    assert created["TableName"] == name
    assert created["KeySchema"] == KEYS
    assert created["TableStatus"] == "ACTIVE"
    assert created["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["TableArn"].endswith(f":table/{name}")
    assert table["ItemCount"] == 0
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["by-email"]
    assert table["GlobalSecondaryIndexes"][0]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    lsi = table["LocalSecondaryIndexes"][0]
    assert lsi["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["title"]}
    pages = ddb.get_paginator("list_tables").paginate()
    assert name in [n for page in pages for n in page["TableNames"]]
    deleted = ddb.delete_table(TableName=name)["TableDescription"]
    assert deleted["TableName"] == name
    with pytest.raises(ddb.exceptions.ResourceNotFoundException):
        ddb.describe_table(TableName=name)


def test_create_existing_is_resource_in_use(ddb: Any, new_table: Callable[..., str]) -> None:
    name = new_table()
    with pytest.raises(ddb.exceptions.ResourceInUseException):
        ddb.create_table(
            TableName=name,
            KeySchema=KEYS,
            AttributeDefinitions=ATTRS,
            BillingMode="PAY_PER_REQUEST",
        )


def test_unknown_table_errors(ddb: Any) -> None:
    name = unique("missing")
    for call in (
        lambda: ddb.describe_table(TableName=name),
        lambda: ddb.delete_table(TableName=name),
        lambda: ddb.get_item(TableName=name, Key={"pk": {"S": "a"}}),
        lambda: ddb.put_item(TableName=name, Item={"pk": {"S": "a"}}),
    ):
        with pytest.raises(ddb.exceptions.ResourceNotFoundException):
            call()


@pytest.mark.parametrize(
    "definitions",
    [
        [{"AttributeName": "pk", "AttributeType": "S"}],  # sk not defined
        [*ATTRS, {"AttributeName": "extra", "AttributeType": "S"}],  # extra not used
    ],
)
def test_attribute_definitions_must_match_keys(ddb: Any, definitions: list[Any]) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.create_table(
            TableName=unique(),
            KeySchema=KEYS,
            AttributeDefinitions=definitions,
            BillingMode="PAY_PER_REQUEST",
        )
    assert error_code(exc) == "ValidationException"


def test_billing_mode_checks(ddb: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ddb.create_table(
            TableName=unique(),
            KeySchema=KEYS,
            AttributeDefinitions=ATTRS,
            BillingMode="PAY_PER_REQUEST",
            ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
        )
    assert error_code(exc) == "ValidationException"
    name = unique()
    table = ddb.create_table(
        TableName=name, KeySchema=KEYS, AttributeDefinitions=ATTRS, BillingMode="PAY_PER_REQUEST"
    )["TableDescription"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_local_index_needs_the_table_hash_key(ddb: Any) -> None:
    aws_decides(
        ddb,
        "a local secondary index must have the table's partition key (DynamoDB "
        "developer guide, 'Local secondary indexes'); moto accepts any",
    )
    with pytest.raises(ClientError) as exc:
        ddb.create_table(
            TableName=unique(),
            KeySchema=KEYS,
            AttributeDefinitions=[*ATTRS, {"AttributeName": "other", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            LocalSecondaryIndexes=[
                {
                    "IndexName": "bad",
                    "KeySchema": [
                        {"AttributeName": "other", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
    assert error_code(exc) == "ValidationException"


def test_list_tables_pages(ddb: Any, new_table: Callable[..., str]) -> None:
    names = sorted(new_table() for _ in range(3))
    seen: list[str] = []
    kwargs: dict[str, Any] = {"Limit": 2}
    while True:
        page = ddb.list_tables(**kwargs)
        assert len(page["TableNames"]) <= 2
        seen += page["TableNames"]
        if "LastEvaluatedTableName" not in page:
            break
        kwargs["ExclusiveStartTableName"] = page["LastEvaluatedTableName"]
    assert set(names) <= set(seen)
    if ddb.meta.target != "moto":
        assert seen == sorted(seen)  # DynamoDB lists names in order; moto in creation order
    paginated = [
        n for p in ddb.get_paginator("list_tables").paginate(Limit=2) for n in p["TableNames"]
    ]
    assert paginated == seen


def test_time_to_live_settings(ddb: Any, new_table: Callable[..., str]) -> None:
    name = new_table()
    status = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert status["TimeToLiveStatus"] == "DISABLED"
    spec = {"Enabled": True, "AttributeName": "expires"}
    answer = ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=spec)
    assert answer["TimeToLiveSpecification"] == spec
    status = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert status == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}


def test_update_table_adds_and_removes_a_global_index(
    ddb: Any, new_table: Callable[..., str]
) -> None:
    name = new_table()
    for i in range(3):
        ddb.put_item(
            TableName=name,
            Item={"pk": {"S": f"p{i}"}, "sk": {"S": "x"}, "color": {"S": "red" if i else "blue"}},
        )
    table = ddb.update_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "color", "AttributeType": "S"}],
        GlobalSecondaryIndexUpdates=[
            {
                "Create": {
                    "IndexName": "by-color",
                    "KeySchema": [{"AttributeName": "color", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            }
        ],
    )["TableDescription"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["by-color"]
    found = ddb.query(
        TableName=name,
        IndexName="by-color",
        KeyConditionExpression="color = :c",
        ExpressionAttributeValues={":c": {"S": "red"}},
    )
    assert sorted(i["pk"]["S"] for i in found["Items"]) == ["p1", "p2"]
    table = ddb.update_table(
        TableName=name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by-color"}}]
    )["TableDescription"]
    assert not table.get("GlobalSecondaryIndexes")
