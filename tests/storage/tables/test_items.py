"""PutItem, GetItem, DeleteItem: every attribute type, numbers, sizes and key checks — against
Stackyard and moto (``ddb``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import aws_decides

ALL_TYPES = {
    "pk": {"S": "p"},
    "sk": {"S": "s"},
    "text": {"S": "héllo"},
    "empty": {"S": ""},
    "number": {"N": "12.5"},
    "blob": {"B": b"\x00\x01\xff"},
    "yes": {"BOOL": True},
    "nothing": {"NULL": True},
    "list": {"L": [{"S": "a"}, {"N": "1"}, {"M": {"deep": {"BOOL": False}}}]},
    "map": {"M": {"a": {"S": "b"}, "n": {"L": []}}},
    "strings": {"SS": ["a", "b"]},
    "numbers": {"NS": ["1", "2.5"]},
    "blobs": {"BS": [b"x", b"y"]},
}


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_put_get_delete_every_type(ddb: Any, new_table: Callable[..., str]) -> None:
    name = new_table()
    ddb.put_item(TableName=name, Item=ALL_TYPES)
    item = ddb.get_item(TableName=name, Key={"pk": {"S": "p"}, "sk": {"S": "s"}})["Item"]
    assert item["blob"] == {"B": b"\x00\x01\xff"}
    assert sorted(item["numbers"]["NS"]) == ["1", "2.5"]
    assert {k: v for k, v in item.items() if k not in ("numbers", "strings", "blobs")} == {
        k: v for k, v in ALL_TYPES.items() if k not in ("numbers", "strings", "blobs")
    }
    assert sorted(item["blobs"]["BS"]) == [b"x", b"y"]
    consistent = ddb.get_item(
        TableName=name, Key={"pk": {"S": "p"}, "sk": {"S": "s"}}, ConsistentRead=True
    )
    assert consistent["Item"] == item
    old = ddb.delete_item(
        TableName=name, Key={"pk": {"S": "p"}, "sk": {"S": "s"}}, ReturnValues="ALL_OLD"
    )
    assert old["Attributes"]["text"] == {"S": "héllo"}
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "p"}, "sk": {"S": "s"}})


def test_put_returns_the_old_item(ddb: Any, new_table: Callable[..., str]) -> None:
    name = new_table(range_type=None)
    first = ddb.put_item(
        TableName=name, Item={"pk": {"S": "a"}, "v": {"N": "1"}}, ReturnValues="ALL_OLD"
    )
    assert "Attributes" not in first
    second = ddb.put_item(
        TableName=name, Item={"pk": {"S": "a"}, "v": {"N": "2"}}, ReturnValues="ALL_OLD"
    )
    assert second["Attributes"] == {"pk": {"S": "a"}, "v": {"N": "1"}}


def test_projection_expression(ddb: Any, new_table: Callable[..., str]) -> None:
    aws_decides(
        ddb,
        "a #name placeholder followed by a list index ('#l[2]') is a valid "
        "document path; moto reports the placeholder as unused",
    )
    name = new_table()
    ddb.put_item(TableName=name, Item=ALL_TYPES)
    item = ddb.get_item(
        TableName=name,
        Key={"pk": {"S": "p"}, "sk": {"S": "s"}},
        ProjectionExpression="#t, #l[2].deep, #m.a",
        ExpressionAttributeNames={"#t": "text", "#l": "list", "#m": "map"},
    )["Item"]
    assert item == {
        "text": {"S": "héllo"},
        "list": {"L": [{"M": {"deep": {"BOOL": False}}}]},
        "map": {"M": {"a": {"S": "b"}}},
    }


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("1.50", "1.5"),
        ("0001", "1"),
        ("-0", "0"),
        ("1e2", "100"),
        ("15E-1", "1.5"),
        ("-0.000100", "-0.0001"),
        ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
        ("1E+125", "1" + "0" * 125),
        ("1E-130", "0." + "0" * 129 + "1"),
    ],
)
def test_numbers_are_normalised(
    ddb: Any, new_table: Callable[..., str], given: str, stored: str
) -> None:
    aws_decides(
        ddb,
        "DynamoDB trims leading and trailing zeros and answers without exponent; "
        "moto returns the number as sent",
    )
    name = new_table(range_type=None)
    ddb.put_item(TableName=name, Item={"pk": {"S": "n"}, "v": {"N": given}})
    item = ddb.get_item(TableName=name, Key={"pk": {"S": "n"}})["Item"]
    assert item["v"] == {"N": stored}


@pytest.mark.parametrize(
    "number", ["123456789012345678901234567890123456789", "1E+126", "1E-131", "abc", "1.2.3"]
)
def test_numbers_out_of_range_are_refused(
    ddb: Any, new_table: Callable[..., str], number: str
) -> None:
    aws_decides(
        ddb,
        "DynamoDB refuses more than 38 significant digits and magnitudes beyond "
        "1E-130..9.99E+125 (developer guide, 'Number'); moto stores them",
    )
    name = new_table(range_type=None)
    with pytest.raises(ClientError) as exc:
        ddb.put_item(TableName=name, Item={"pk": {"S": "n"}, "v": {"N": number}})
    assert code(exc) == "ValidationException"


def test_number_sort_keys_keep_their_value(ddb: Any, new_table: Callable[..., str]) -> None:
    name = new_table(range_type="N")
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "sk": {"N": "10"}})
    item = ddb.get_item(TableName=name, Key={"pk": {"S": "a"}, "sk": {"N": "10"}})
    assert item["Item"]["sk"] == {"N": "10"}


@pytest.mark.parametrize(
    "item",
    [
        {"sk": {"S": "s"}},  # no hash key
        {"pk": {"S": "p"}},  # no range key
        {"pk": {"N": "1"}, "sk": {"S": "s"}},  # wrong type
        {"pk": {"S": ""}, "sk": {"S": "s"}},  # empty key string
        {"pk": {"S": "p"}, "sk": {"S": "s"}, "set": {"SS": []}},  # empty set
        {"pk": {"S": "p"}, "sk": {"S": "s"}, "set": {"SS": ["a", "a"]}},  # duplicates
        {"pk": {"S": "p"}, "sk": {"S": "s"}, "v": {"NULL": False}},
    ],
)
def test_invalid_items_are_refused(
    ddb: Any, new_table: Callable[..., str], item: dict[str, Any]
) -> None:
    if "set" in item and item["set"]["SS"]:
        aws_decides(
            ddb,
            "set members must be unique (DynamoDB developer guide, 'Sets'); moto keeps duplicates",
        )
    name = new_table()
    with pytest.raises(ClientError) as exc:
        ddb.put_item(TableName=name, Item=item)
    assert code(exc) == "ValidationException"


@pytest.mark.parametrize(
    "key",
    [
        {"pk": {"S": "p"}},  # missing range key
        {"pk": {"S": "p"}, "sk": {"S": "s"}, "other": {"S": "x"}},  # extra attribute
        {"pk": {"S": "p"}, "sk": {"N": "1"}},  # wrong type
    ],
)
def test_keys_must_match_the_schema(
    ddb: Any, new_table: Callable[..., str], key: dict[str, Any]
) -> None:
    aws_decides(
        ddb,
        "DynamoDB answers 'The provided key element does not match the schema'; "
        "moto says 'Validation Exception' or accepts a key of the wrong type",
    )
    name = new_table()
    for call in (ddb.get_item, ddb.delete_item):
        with pytest.raises(ClientError) as exc:
            call(TableName=name, Key=key)
        assert code(exc) == "ValidationException"
        assert "key element does not match the schema" in exc.value.response["Error"]["Message"]


def test_item_size_limit(ddb: Any, new_table: Callable[..., str]) -> None:
    aws_decides(
        ddb,
        "the item size is the sum of attribute name and value lengths "
        "(developer guide, 'Item sizes'); moto counts more and refuses 400 KB",
    )
    name = new_table(range_type=None)
    # 400 KB counts attribute names and values: "pk" + "p" + "v" + value
    fits = 400 * 1024 - len("pk") - len("p") - len("v")
    ddb.put_item(TableName=name, Item={"pk": {"S": "p"}, "v": {"S": "x" * fits}})
    with pytest.raises(ClientError) as exc:
        ddb.put_item(TableName=name, Item={"pk": {"S": "p"}, "v": {"S": "x" * (fits + 1)}})
    assert code(exc) == "ValidationException"
    assert "Item size has exceeded the maximum allowed size" in str(exc.value)


def test_key_size_limits(ddb: Any, new_table: Callable[..., str]) -> None:
    name = new_table()
    ddb.put_item(TableName=name, Item={"pk": {"S": "p" * 2048}, "sk": {"S": "s" * 1024}})
    for item in (
        {"pk": {"S": "p" * 2049}, "sk": {"S": "s"}},
        {"pk": {"S": "p"}, "sk": {"S": "s" * 1025}},
    ):
        with pytest.raises(ClientError) as exc:
            ddb.put_item(TableName=name, Item=item)
        assert code(exc) == "ValidationException"


def test_unknown_return_values(ddb: Any, new_table: Callable[..., str]) -> None:
    name = new_table(range_type=None)
    with pytest.raises(ClientError) as exc:
        ddb.put_item(TableName=name, Item={"pk": {"S": "a"}}, ReturnValues="ALL_NEW")
    assert code(exc) == "ValidationException"
