"""Condition expressions and UpdateItem (SET/REMOVE/ADD/DELETE, ReturnValues) — against
Stackyard and moto (``ddb``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import aws_decides

ITEM = {
    "pk": {"S": "p"},
    "title": {"S": "widget"},
    "price": {"N": "10"},
    "tags": {"SS": ["a", "b"]},
    "nums": {"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}]},
    "info": {"M": {"sub_": {"S": "x"}, "n": {"N": "5"}}},
    "blob_": {"B": b"\x01\x02"},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
}


@pytest.fixture
def table(ddb: Any, new_table: Callable[..., str]) -> str:
    name = new_table(range_type=None)
    ddb.put_item(TableName=name, Item=ITEM)
    return name


def holds(
    ddb: Any,
    table: str,
    condition: str,
    values: dict[str, Any] | None = None,
    names: dict[str, str] | None = None,
) -> bool:
    """Whether ``condition`` holds for ITEM (a conditional no-op put tells)."""
    extra: dict[str, Any] = {}
    if values:
        extra["ExpressionAttributeValues"] = values
    if names:
        extra["ExpressionAttributeNames"] = names
    try:
        ddb.put_item(TableName=table, Item=ITEM, ConditionExpression=condition, **extra)
    except ddb.exceptions.ConditionalCheckFailedException:
        return False
    return True


@pytest.mark.parametrize(
    ("condition", "values", "expected"),
    [
        ("price = :v", {":v": {"N": "10.0"}}, True),
        ("price <> :v", {":v": {"N": "10"}}, False),
        ("price < :v", {":v": {"N": "11"}}, True),
        ("price <= :v", {":v": {"N": "9"}}, False),
        ("price > :v", {":v": {"N": "9"}}, True),
        ("price >= :v", {":v": {"N": "10"}}, True),
        ("price < :v", {":v": {"S": "11"}}, False),  # different types never compare
        ("price BETWEEN :a AND :b", {":a": {"N": "1"}, ":b": {"N": "10"}}, True),
        ("price IN (:a, :b)", {":a": {"N": "1"}, ":b": {"N": "10"}}, True),
        ("title IN (:a)", {":a": {"S": "gadget"}}, False),
        ("attribute_exists(price) AND attribute_not_exists(nope)", None, True),
        ("attribute_exists(info.sub_) AND attribute_exists(nums[2])", None, True),
        ("attribute_exists(nums[3])", None, False),
        ("NOT attribute_exists(price) OR price = :v", {":v": {"N": "10"}}, True),
        ("attribute_type(tags, :t)", {":t": {"S": "SS"}}, True),
        ("attribute_type(price, :t)", {":t": {"S": "S"}}, False),
        ("begins_with(title, :p)", {":p": {"S": "wid"}}, True),
        ("begins_with(blob_, :p)", {":p": {"B": b"\x01"}}, True),
        ("contains(title, :p)", {":p": {"S": "dge"}}, True),
        ("contains(tags, :p)", {":p": {"S": "b"}}, True),
        ("contains(nums, :p)", {":p": {"N": "2"}}, True),
        ("contains(tags, :p)", {":p": {"S": "z"}}, False),
        ("size(title) = :n", {":n": {"N": "6"}}, True),
        ("size(tags) > :n", {":n": {"N": "1"}}, True),
        ("size(nums) = :n AND size(info) = :m", {":n": {"N": "3"}, ":m": {"N": "2"}}, True),
        ("info.n > nums[1]", None, True),
        (
            "(price = :v OR flag = :f) AND NOT nothing = :f",
            {":v": {"N": "1"}, ":f": {"BOOL": True}},
            True,
        ),
        ("nope = :v", {":v": {"N": "1"}}, False),
    ],
)
def test_condition_semantics(
    ddb: Any, table: str, condition: str, values: dict[str, Any] | None, expected: bool
) -> None:
    if condition == "price < :v" and not expected:
        aws_decides(
            ddb,
            "a comparison of values of different types is false (developer "
            "guide, 'Comparison operator and function reference'); moto fails",
        )
    if condition.startswith("begins_with(blob_"):
        aws_decides(ddb, "begins_with applies to binary values too; moto only to strings")
    assert holds(ddb, table, condition, values) is expected


def test_reserved_words_need_placeholders(ddb: Any, table: str) -> None:
    with pytest.raises(ClientError) as exc:
        holds(ddb, table, "attribute_exists(name)")
    assert "reserved keyword" in exc.value.response["Error"]["Message"]
    assert holds(ddb, table, "attribute_not_exists(#n)", names={"#n": "name"})


def test_missing_attribute_is_not_equal(ddb: Any, table: str) -> None:
    assert holds(ddb, table, "nope <> :v", {":v": {"N": "1"}}) is True


def test_names_placeholders(ddb: Any, table: str) -> None:
    assert holds(ddb, table, "#n = :v", {":v": {"S": "widget"}}, {"#n": "title"})
    assert holds(ddb, table, "#m.#i = :v", {":v": {"S": "x"}}, {"#m": "info", "#i": "sub_"})


def test_conditional_put_and_delete(ddb: Any, new_table: Callable[..., str]) -> None:
    name = new_table(range_type=None)
    ddb.put_item(
        TableName=name,
        Item={"pk": {"S": "a"}, "v": {"N": "1"}},
        ConditionExpression="attribute_not_exists(pk)",
    )
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException) as exc:
        ddb.put_item(
            TableName=name, Item={"pk": {"S": "a"}}, ConditionExpression="attribute_not_exists(pk)"
        )
    assert exc.value.response["Error"]["Message"] == "The conditional request failed"
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.delete_item(
            TableName=name,
            Key={"pk": {"S": "a"}},
            ConditionExpression="v = :two",
            ExpressionAttributeValues={":two": {"N": "2"}},
        )
    ddb.delete_item(
        TableName=name,
        Key={"pk": {"S": "a"}},
        ConditionExpression="v = :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "a"}})


def test_condition_failure_returns_the_item_when_asked(ddb: Any, table: str) -> None:
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException) as exc:
        ddb.put_item(
            TableName=table,
            Item=ITEM,
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert exc.value.response["Item"]["title"] == {"S": "widget"}


@pytest.mark.parametrize(
    ("condition", "values", "names"),
    [
        ("price = :missing", None, None),  # value not defined
        ("#missing = :v", {":v": {"N": "1"}}, None),  # name not defined
        ("price = :v", {":v": {"N": "1"}, ":unused": {"N": "2"}}, None),  # unused value
        ("price = :v", {":v": {"N": "1"}}, {"#unused": "x"}),  # unused name
        ("price = = :v", {":v": {"N": "1"}}, None),  # syntax
        ("price", None, None),
        ("nofunction(price)", None, None),
        ("attribute_exists(price, price)", None, None),
        ("attribute_type(price, :t)", {":t": {"S": "NOPE"}}, None),
    ],
)
def test_invalid_conditions(
    ddb: Any, table: str, condition: str, values: dict[str, Any] | None, names: Any
) -> None:
    aws_decides(
        ddb, "DynamoDB answers ValidationException; moto answers most with a 500 or accepts them"
    )
    with pytest.raises(ClientError) as exc:
        holds(ddb, table, condition, values, names)
    assert exc.value.response["Error"]["Code"] == "ValidationException"


def update(
    ddb: Any,
    table: str,
    expression: str,
    values: dict[str, Any] | None = None,
    returns: str = "ALL_NEW",
    **extra: Any,
) -> dict[str, Any]:
    if values:
        extra["ExpressionAttributeValues"] = values
    answer = ddb.update_item(
        TableName=table,
        Key={"pk": {"S": "p"}},
        UpdateExpression=expression,
        ReturnValues=returns,
        **extra,
    )
    return dict(answer.get("Attributes", {}))


def test_update_set_arithmetic_and_functions(ddb: Any, table: str) -> None:
    new = update(
        ddb,
        table,
        "SET price = price + :d, qty = if_not_exists(qty, :z) - :d, "
        "nums = list_append(nums, :more), info.extra = :s",
        {":d": {"N": "2.5"}, ":z": {"N": "0"}, ":more": {"L": [{"N": "4"}]}, ":s": {"S": "fresh"}},
    )
    assert new["price"] == {"N": "12.5"}
    assert new["qty"] == {"N": "-2.5"}
    assert new["nums"] == {"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}, {"N": "4"}]}
    new = update(ddb, table, "SET nums[1] = :s, nums[9] = :s", {":s": {"S": "fresh"}})
    want = [{"N": "1"}, {"S": "fresh"}, {"N": "3"}, {"N": "4"}, {"S": "fresh"}]
    assert new["nums"] == {"L": want}
    assert new["info"]["M"]["extra"] == {"S": "fresh"}


def test_update_remove_add_delete(ddb: Any, table: str) -> None:
    new = update(
        ddb,
        table,
        "REMOVE flag, nums[0], info.sub_ ADD price :n, tags :more, tally :n",
        {":n": {"N": "1"}, ":more": {"SS": ["c"]}},
    )
    assert "flag" not in new
    assert new["nums"] == {"L": [{"N": "2"}, {"N": "3"}]}
    assert new["info"] == {"M": {"n": {"N": "5"}}}
    assert new["price"] == {"N": "11"}
    assert new["tally"] == {"N": "1"}
    assert sorted(new["tags"]["SS"]) == ["a", "b", "c"]
    new = update(ddb, table, "DELETE tags :gone", {":gone": {"SS": ["a"]}})
    assert sorted(new["tags"]["SS"]) == ["b", "c"]
    new = update(ddb, table, "DELETE tags :all", {":all": {"SS": ["b", "c"]}})
    assert "tags" not in new


@pytest.mark.parametrize(
    ("returns", "expected"),
    [
        ("NONE", {}),
        ("ALL_OLD", {**ITEM}),
        ("UPDATED_OLD", {"price": {"N": "10"}, "info": {"M": {"n": {"N": "5"}}}}),
        (
            "UPDATED_NEW",
            {"price": {"N": "11"}, "info": {"M": {"n": {"N": "6"}}}, "fresh": {"S": "x"}},
        ),
    ],
)
def test_update_return_values(ddb: Any, table: str, returns: str, expected: dict[str, Any]) -> None:
    if returns == "UPDATED_OLD":
        aws_decides(
            ddb,
            "UPDATED_OLD returns only the updated attributes (API reference, "
            "UpdateItem ReturnValues); moto returns the whole top-level map",
        )
    answer = update(
        ddb,
        table,
        "SET price = price + :one, info.n = info.n + :one, fresh = :x",
        {":one": {"N": "1"}, ":x": {"S": "x"}},
        returns,
    )
    if returns == "ALL_OLD":
        answer["tags"]["SS"].sort()
    assert answer == expected


def test_update_creates_the_item(ddb: Any, new_table: Callable[..., str]) -> None:
    name = new_table(range_type=None)
    new = ddb.update_item(
        TableName=name,
        Key={"pk": {"S": "n"}},
        UpdateExpression="ADD visits :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert new == {"pk": {"S": "n"}, "visits": {"N": "1"}}


def test_update_with_condition(ddb: Any, table: str) -> None:
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        update(
            ddb,
            table,
            "SET price = :v",
            {":v": {"N": "1"}, ":max": {"N": "5"}},
            ConditionExpression="price < :max",
        )
    assert update(
        ddb,
        table,
        "SET price = :v",
        {":v": {"N": "1"}, ":max": {"N": "50"}},
        ConditionExpression="price < :max",
    )["price"] == {"N": "1"}


@pytest.mark.parametrize(
    ("expression", "values"),
    [
        ("SET pk = :v", {":v": {"S": "x"}}),  # a key attribute
        ("SET price = :v, price = :v", {":v": {"N": "1"}}),  # the same path twice
        ("SET info = :v REMOVE info.sub_", {":v": {"N": "1"}}),  # overlapping paths
        ("SET price = title + :v", {":v": {"N": "1"}}),  # arithmetic on a string
        ("SET nope.deeper = :v", {":v": {"N": "1"}}),  # parent path missing
        ("SET price = missing + :v", {":v": {"N": "1"}}),  # operand missing
        ("ADD title :v", {":v": {"N": "1"}}),  # ADD to a string
        ("ADD price :v", {":v": {"S": "x"}}),  # ADD a string
        ("DELETE price :v", {":v": {"N": "1"}}),  # DELETE needs a set
        ("SET a = :v SET b = :v", {":v": {"N": "1"}}),  # a clause twice
        ("SET price = list_append(price, :v)", {":v": {"L": []}}),
    ],
)
def test_invalid_updates(ddb: Any, table: str, expression: str, values: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as exc:
        update(ddb, table, expression, values)
    assert exc.value.response["Error"]["Code"] == "ValidationException"


def test_number_precision_in_updates(ddb: Any, table: str) -> None:
    aws_decides(ddb, "DynamoDB refuses a result beyond 38 significant digits; moto rounds")
    big = "9" * 38
    with pytest.raises(ClientError) as exc:
        update(ddb, table, "SET price = :a + :b", {":a": {"N": big}, ":b": {"N": "0.1"}})
    assert exc.value.response["Error"]["Code"] == "ValidationException"
