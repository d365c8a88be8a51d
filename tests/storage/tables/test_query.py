"""Query and Scan: key conditions, order, limits and pages, filters, Select COUNT, indexes,
segments — against Stackyard and moto (``ddb``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import aws_decides


@pytest.fixture
def numbers_table(ddb: Any, new_table: Callable[..., str]) -> str:
    """pk a: sk -5..14 (N), grp = even/odd; pk b: sk 0..2; a GSI on grp/sk and an LSI on at."""
    name = new_table(
        range_type="N",
        more_attributes=[
            {"AttributeName": "grp", "AttributeType": "S"},
            {"AttributeName": "at", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-grp",
                "KeySchema": [
                    {"AttributeName": "grp", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "by-at",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    for n in range(-5, 15):
        item = {
            "pk": {"S": "a"},
            "sk": {"N": str(n)},
            "grp": {"S": "even" if n % 2 == 0 else "odd"},
            "v": {"N": str(n * 10)},
        }
        if n >= 10:
            item["at"] = {"S": f"t{20 - n:02d}"}
        ddb.put_item(TableName=name, Item=item)
    for n in range(3):
        ddb.put_item(TableName=name, Item={"pk": {"S": "b"}, "sk": {"N": str(n)}})
    return name


def query(ddb: Any, table: str, condition: str, values: dict[str, Any], **extra: Any) -> Any:
    values = {k: ({"N": str(v)} if isinstance(v, int) else {"S": v}) for k, v in values.items()}
    return ddb.query(
        TableName=table, KeyConditionExpression=condition, ExpressionAttributeValues=values, **extra
    )


def sks(answer: Any) -> list[int]:
    return [int(i["sk"]["N"]) for i in answer["Items"]]


@pytest.mark.parametrize(
    ("condition", "values", "expected"),
    [
        ("pk = :p", {}, list(range(-5, 15))),
        ("pk = :p AND sk = :x", {":x": 3}, [3]),
        ("pk = :p AND sk < :x", {":x": -3}, [-5, -4]),
        ("pk = :p AND sk <= :x", {":x": -3}, [-5, -4, -3]),
        ("pk = :p AND sk > :x", {":x": 12}, [13, 14]),
        ("pk = :p AND sk >= :x", {":x": 12}, [12, 13, 14]),
        ("pk = :p AND sk BETWEEN :x AND :y", {":x": -1, ":y": 2}, [-1, 0, 1, 2]),
        ("sk BETWEEN :x AND :y AND pk = :p", {":x": 13, ":y": 100}, [13, 14]),
    ],
)
def test_key_conditions(
    ddb: Any, numbers_table: str, condition: str, values: dict[str, Any], expected: list[int]
) -> None:
    if condition.startswith("sk"):
        aws_decides(ddb, "the key conditions may come in any order; moto fails (500)")
    assert sks(query(ddb, numbers_table, condition, {":p": "a", **values})) == expected
    backwards = query(ddb, numbers_table, condition, {":p": "a", **values}, ScanIndexForward=False)
    assert sks(backwards) == expected[::-1]


def test_begins_with_on_string_sort_keys(ddb: Any, new_table: Callable[..., str]) -> None:
    name = new_table()
    for sk in ["order#1", "order#2", "order$", "orde", "invoice#1", "order\U0001f600"]:
        ddb.put_item(TableName=name, Item={"pk": {"S": "c"}, "sk": {"S": sk}})
    found = query(ddb, name, "pk = :p AND begins_with(sk, :s)", {":p": "c", ":s": "order"})
    assert [i["sk"]["S"] for i in found["Items"]] == [
        "order#1",
        "order#2",
        "order$",
        "order\U0001f600",
    ]


def test_limit_and_pages(ddb: Any, numbers_table: str) -> None:
    seen: list[int] = []
    extra: dict[str, Any] = {"Limit": 7}
    pages = 0
    while True:
        page = query(ddb, numbers_table, "pk = :p", {":p": "a"}, **extra)
        pages += 1
        seen += sks(page)
        if "LastEvaluatedKey" not in page:
            break
        assert set(page["LastEvaluatedKey"]) == {"pk", "sk"}
        extra["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert seen == list(range(-5, 15))
    assert pages == 3
    paginator = ddb.get_paginator("query")
    items = [
        int(i["sk"]["N"])
        for p in paginator.paginate(
            TableName=numbers_table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "a"}},
            ScanIndexForward=False,
            PaginationConfig={"PageSize": 6},
        )
        for i in p["Items"]
    ]
    assert items == list(range(14, -6, -1))


def test_filter_counts_and_select(ddb: Any, numbers_table: str) -> None:
    found = query(
        ddb,
        numbers_table,
        "pk = :p",
        {":p": "a", ":min": 100},
        FilterExpression="v >= :min",
        Limit=16,
    )
    assert sks(found) == [10]
    assert found["Count"] == 1 and found["ScannedCount"] == 16
    count = query(ddb, numbers_table, "pk = :p", {":p": "a"}, Select="COUNT")
    assert count["Count"] == 20 and "Items" not in count
    projected = query(
        ddb, numbers_table, "pk = :p AND sk = :x", {":p": "a", ":x": 1}, ProjectionExpression="v"
    )
    assert projected["Items"] == [{"v": {"N": "10"}}]


def test_query_filter_may_not_name_key_attributes(ddb: Any, numbers_table: str) -> None:
    aws_decides(
        ddb,
        "a Query's FilterExpression cannot contain key attributes (developer "
        "guide, 'Filter expressions for Query'); moto accepts them",
    )
    with pytest.raises(ClientError) as exc:
        query(ddb, numbers_table, "pk = :p", {":p": "a", ":x": 1}, FilterExpression="sk = :x")
    assert exc.value.response["Error"]["Code"] == "ValidationException"


def test_global_index_query(ddb: Any, numbers_table: str) -> None:
    found = query(
        ddb, numbers_table, "grp = :g AND sk > :x", {":g": "odd", ":x": 8}, IndexName="by-grp"
    )
    assert sks(found) == [9, 11, 13]
    assert set(found["Items"][0]) == {"pk", "sk", "grp"}  # KEYS_ONLY
    page = query(ddb, numbers_table, "grp = :g", {":g": "odd"}, IndexName="by-grp", Limit=2)
    assert set(page["LastEvaluatedKey"]) == {"pk", "sk", "grp"}
    rest = query(
        ddb,
        numbers_table,
        "grp = :g",
        {":g": "odd"},
        IndexName="by-grp",
        ExclusiveStartKey=page["LastEvaluatedKey"],
    )
    assert sks(page) + sks(rest) == [-5, -3, -1, 1, 3, 5, 7, 9, 11, 13]


def test_local_index_query(ddb: Any, numbers_table: str) -> None:
    found = query(
        ddb,
        numbers_table,
        "pk = :p AND begins_with(#at, :t)",
        {":p": "a", ":t": "t"},
        IndexName="by-at",
        ExpressionAttributeNames={"#at": "at"},
    )
    assert sks(found) == [14, 13, 12, 11, 10]  # sorted by "at": t06 .. t10
    assert found["Items"][0]["v"] == {"N": "140"}  # projection ALL


def test_index_errors(ddb: Any, numbers_table: str) -> None:
    aws_decides(
        ddb,
        "an unknown IndexName is a ValidationException ('The table does not have "
        "the specified index'); moto answers ResourceNotFoundException",
    )
    with pytest.raises(ClientError) as exc:
        query(ddb, numbers_table, "grp = :g", {":g": "odd"}, IndexName="nope")
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        query(
            ddb, numbers_table, "grp = :g", {":g": "odd"}, IndexName="by-grp", ConsistentRead=True
        )
    assert exc.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.parametrize(
    ("condition", "values"),
    [
        ("sk = :x", {":x": 1}),  # no hash key condition
        ("pk = :p OR sk = :x", {":p": "a", ":x": 1}),
        ("pk = :p AND v = :x", {":p": "a", ":x": 1}),  # not a key attribute
        ("pk = :p AND sk = :x", {":p": "a", ":x": "1"}),  # wrong type
        ("pk < :p", {":p": "a"}),
        ("pk = :p AND sk BETWEEN :y AND :x", {":p": "a", ":x": 1, ":y": 5}),
        ("pk = :p AND begins_with(sk, :x)", {":p": "a", ":x": 1}),  # begins_with on a number
    ],
)
def test_invalid_key_conditions(
    ddb: Any, numbers_table: str, condition: str, values: dict[str, Any]
) -> None:
    if (
        " OR " in condition
        or "BETWEEN" in condition
        or "begins_with" in condition
        or (values.get(":x") == "1")
    ):
        aws_decides(
            ddb,
            "DynamoDB refuses these key conditions with a ValidationException; "
            "moto accepts them or fails with a 500",
        )
    with pytest.raises(ClientError) as exc:
        query(ddb, numbers_table, condition, values)
    assert exc.value.response["Error"]["Code"] == "ValidationException"


def test_scan_pages_filters_and_segments(ddb: Any, numbers_table: str) -> None:
    everything = ddb.scan(TableName=numbers_table)
    assert everything["Count"] == 23
    keys = [(i["pk"]["S"], i["sk"]["N"]) for i in everything["Items"]]
    paged: list[tuple[str, str]] = []
    for page in ddb.get_paginator("scan").paginate(
        TableName=numbers_table, PaginationConfig={"PageSize": 5}
    ):
        paged += [(i["pk"]["S"], i["sk"]["N"]) for i in page["Items"]]
    assert paged == keys
    segments: list[tuple[str, str]] = []
    for segment in range(3):
        for page in ddb.get_paginator("scan").paginate(
            TableName=numbers_table, Segment=segment, TotalSegments=3
        ):
            segments += [(i["pk"]["S"], i["sk"]["N"]) for i in page["Items"]]
    assert sorted(segments) == sorted(keys)
    filtered = ddb.scan(
        TableName=numbers_table,
        FilterExpression="pk = :b",
        ExpressionAttributeValues={":b": {"S": "b"}},
    )
    assert filtered["Count"] == 3 and filtered["ScannedCount"] == 23
    index = ddb.scan(TableName=numbers_table, IndexName="by-at")
    assert index["Count"] == 5


def test_scan_segment_errors(ddb: Any, numbers_table: str) -> None:
    for extra in ({"Segment": 3, "TotalSegments": 3}, {"Segment": 0}):
        with pytest.raises(ClientError) as exc:
            ddb.scan(TableName=numbers_table, **extra)
        assert exc.value.response["Error"]["Code"] == "ValidationException"


def test_one_megabyte_pages(ddb: Any, new_table: Callable[..., str]) -> None:
    aws_decides(
        ddb,
        "a Query page ends after 1 MB of items read (developer guide, 'Paginating "
        "table query results'); moto returns every item in one page",
    )
    name = new_table(range_type="N")
    blob = "x" * 100_000
    for n in range(15):
        ddb.put_item(
            TableName=name, Item={"pk": {"S": "big"}, "sk": {"N": str(n)}, "d": {"S": blob}}
        )
    first = query(ddb, name, "pk = :p", {":p": "big"})
    assert 9 <= first["Count"] <= 11 and "LastEvaluatedKey" in first
    rest = query(ddb, name, "pk = :p", {":p": "big"}, ExclusiveStartKey=first["LastEvaluatedKey"])
    assert first["Count"] + rest["Count"] == 15 and "LastEvaluatedKey" not in rest
