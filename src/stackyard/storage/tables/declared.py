"""Tables declared in ``stackyard.yml`` (``tables:``) as the CreateTable requests that make them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...config.models import TableConfig, TableIndexConfig


def create_request(name: str, config: TableConfig) -> dict[str, Any]:
    """The CreateTable body of one declared table (plus ``TimeToLiveAttribute``)."""
    keys = [(config.hash_key, config.range_key)]
    keys += [(i.hash_key or config.hash_key, i.range_key) for i in config.indexes.values()]
    names = dict.fromkeys(n for pair in keys for n in pair if n is not None)
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": key_schema(config.hash_key, config.range_key),
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": config.attributes.get(n, "S")} for n in names
        ],
        "BillingMode": config.billing_mode,
        "TimeToLiveAttribute": config.ttl,
    }
    if config.stream is not None:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": config.stream.upper(),
        }
    if config.billing_mode == "PROVISIONED":
        request["ProvisionedThroughput"] = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    local = [index(n, i, config) for n, i in config.indexes.items() if i.local]
    glob = [index(n, i, config) for n, i in config.indexes.items() if not i.local]
    if local:
        request["LocalSecondaryIndexes"] = local
    if glob:
        request["GlobalSecondaryIndexes"] = glob
    return request


def index(name: str, config: TableIndexConfig, table: TableConfig) -> dict[str, Any]:
    if isinstance(config.projection, list):
        projection = {"ProjectionType": "INCLUDE", "NonKeyAttributes": config.projection}
    else:
        projection = {"ProjectionType": config.projection.upper()}
    out: dict[str, Any] = {
        "IndexName": name,
        "KeySchema": key_schema(config.hash_key or table.hash_key, config.range_key),
        "Projection": projection,
    }
    if table.billing_mode == "PROVISIONED" and not config.local:
        out["ProvisionedThroughput"] = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    return out


def key_schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key is not None:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return schema


def create_requests(tables: Mapping[str, TableConfig]) -> dict[str, dict[str, Any]]:
    return {name: create_request(name, config) for name, config in tables.items()}
