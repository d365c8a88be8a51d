"""The wire format itself (status, content type, ``__type``), bad requests, and the
``tables:`` config model."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from pydantic import ValidationError

from stackyard.config.models import StackConfig
from stackyard.storage.tables.declared import create_request

from .conftest import TablesServer

PREFIX = "com.amazonaws.dynamodb.v20120810#"


def post(url: str, target: str | None, body: bytes) -> tuple[int, Any, Any]:
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.loads(exc.read())


def test_error_shape(stackyard_server: TablesServer) -> None:
    status, headers, body = post(
        stackyard_server.url, "DynamoDB_20120810.DescribeTable", b'{"TableName": "nope"}'
    )
    assert status == 400
    assert headers.get("Content-Type") == "application/x-amz-json-1.0"
    assert body["__type"] == PREFIX + "ResourceNotFoundException"
    assert "nope" in body["message"]


@pytest.mark.parametrize(
    ("target", "body", "error"),
    [
        ("DynamoDB_20120810.ListTables", b"not json", "SerializationException"),
        ("DynamoDB_20120810.ListTables", b"[1]", "SerializationException"),
        ("DynamoDB_20120810.Explode", b"{}", "UnknownOperationException"),
        ("DynamoDB_20120810.GetItem", b'{"TableName": 5}', "ResourceNotFoundException"),
        ("DynamoDB_20120810.ListTables", b'{"Limit": 0}', "ValidationException"),
        (
            "DynamoDB_20120810.Scan",
            b'{"TableName": "t-legacy", "ScanFilter": {}}',
            "ValidationException",
        ),
    ],
)
def test_bad_requests(stackyard_server: TablesServer, target: str, body: bytes, error: str) -> None:
    post(
        stackyard_server.url,
        "DynamoDB_20120810.CreateTable",
        json.dumps(
            {
                "TableName": "t-legacy",
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            }
        ).encode(),
    )
    status, _, answer = post(stackyard_server.url, target, body)
    assert status == 400
    assert answer["__type"] == PREFIX + error


def test_list_tables_on_the_wire(stackyard_server: TablesServer) -> None:
    status, _, body = post(stackyard_server.url, "DynamoDB_20120810.ListTables", b"")
    assert status == 200 and isinstance(body["TableNames"], list)


def test_table_config_model() -> None:
    stack = StackConfig.model_validate(
        {
            "name": "s",
            "tables": {
                "Orders.v1": {
                    "hash_key": "pk",
                    "range_key": "sk",
                    "attributes": {"sk": "N", "g": "S"},
                    "indexes": {
                        "by-g": {"hash_key": "g", "projection": ["x"]},
                        "by-l": {"local": True, "range_key": "l", "projection": "keys_only"},
                    },
                    "ttl": "expires",
                }
            },
        }
    )
    request = create_request("Orders.v1", stack.tables["Orders.v1"])
    assert request["AttributeDefinitions"] == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "N"},
        {"AttributeName": "g", "AttributeType": "S"},
        {"AttributeName": "l", "AttributeType": "S"},
    ]
    assert request["GlobalSecondaryIndexes"][0]["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["x"],
    }
    assert request["LocalSecondaryIndexes"][0]["KeySchema"][0]["AttributeName"] == "pk"
    assert request["TimeToLiveAttribute"] == "expires"


@pytest.mark.parametrize(
    "table",
    [
        {"hash_key": "pk", "attributes": {"other": "S"}},  # not a key
        {"hash_key": "pk", "indexes": {"l": {"local": True, "range_key": "x"}}},  # no range key
        {"hash_key": "pk", "indexes": {"gsi": {"range_key": "x"}}},  # global without hash key
        {"hash_key": "pk", "attributes": {"pk": "BOOL"}},
    ],
)
def test_invalid_table_configs(table: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        StackConfig.model_validate({"name": "s", "tables": {"orders": table}})


def test_invalid_table_name() -> None:
    with pytest.raises(ValidationError):
        StackConfig.model_validate({"name": "s", "tables": {"no": {"hash_key": "pk"}}})
