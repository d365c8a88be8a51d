"""serverless.yml ``resources.Resources``: the CloudFormation resources Stackyard can run.

``AWS::DynamoDB::Table`` becomes a ``tables.<TableName>`` entry (key schema, attribute types,
global and local indexes with their projections, the TTL attribute, billing mode) and
``AWS::S3::Bucket`` a ``buckets.<BucketName>`` entry (a bucket without ``BucketName`` is named
``<service>-<stage>-<logical id>`` in lowercase, as the Serverless Framework's generated names
begin). Every other resource type, and every property Stackyard does not run (encryption,
tags, ...), is named in the warnings; nothing is dropped silently. Values that are
still CloudFormation intrinsics (``Ref``, ``Fn::...``) cannot be resolved here: a table or
bucket whose name is one is skipped with a warning.
"""

from __future__ import annotations

import re
from typing import Any

_TABLE_PROPERTIES = {
    "TableName",
    "KeySchema",
    "AttributeDefinitions",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
    "TimeToLiveSpecification",
    "ProvisionedThroughput",
    "StreamSpecification",
}
_BUCKET_PROPERTIES = {"BucketName"}


def translate_resources(
    resources: Any, service: str, stage: str, warnings: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(tables, buckets)`` of a serverless.yml ``resources`` section."""
    tables: dict[str, Any] = {}
    buckets: dict[str, Any] = {}
    if not isinstance(resources, dict):
        return tables, buckets
    for key in resources:
        if key not in ("Resources", "Outputs"):
            warnings.append(f"resources.{key}: not supported yet, ignored")
    if resources.get("Outputs"):
        warnings.append("resources.Outputs: not used (no CloudFormation stack)")
    declared = resources.get("Resources")
    if not isinstance(declared, dict):
        return tables, buckets
    for logical_id, resource in declared.items():
        where = f"resources.Resources.{logical_id}"
        if not isinstance(resource, dict):
            warnings.append(f"{where}: not a resource mapping, ignored")
            continue
        kind = resource.get("Type")
        properties = resource.get("Properties") or {}
        if not isinstance(properties, dict):
            warnings.append(f"{where}.Properties: not a mapping, ignored")
            continue
        if kind == "AWS::DynamoDB::Table":
            name = properties.get("TableName", logical_id)
            if not isinstance(name, str):
                warnings.append(f"{where}.Properties.TableName: an intrinsic function, skipped")
                continue
            _unknown(where, properties, _TABLE_PROPERTIES, warnings)
            tables[name] = _table(properties, where, warnings)
        elif kind == "AWS::S3::Bucket":
            name = properties.get("BucketName") or _generated_name(service, stage, logical_id)
            if not isinstance(name, str):
                warnings.append(f"{where}.Properties.BucketName: an intrinsic function, skipped")
                continue
            _unknown(where, properties, _BUCKET_PROPERTIES, warnings)
            buckets[name] = {}
        else:
            warnings.append(f"{where}: resource type {kind!r} not supported yet, ignored")
    return tables, buckets


def _table(properties: dict[str, Any], where: str, warnings: list[str]) -> dict[str, Any]:
    hash_key, range_key = _keys(properties.get("KeySchema"))
    table: dict[str, Any] = {"hash_key": hash_key}
    if range_key is not None:
        table["range_key"] = range_key
    types = {
        str(a.get("AttributeName")): a.get("AttributeType")
        for a in properties.get("AttributeDefinitions") or []
        if isinstance(a, dict)
    }
    if types:
        table["attributes"] = types
    indexes: dict[str, Any] = {}
    for field, local in (("GlobalSecondaryIndexes", False), ("LocalSecondaryIndexes", True)):
        for index in properties.get(field) or []:
            if not isinstance(index, dict):
                continue
            index_hash, index_range = _keys(index.get("KeySchema"))
            spec: dict[str, Any] = {"projection": _projection(index.get("Projection"))}
            if local:
                spec.update(local=True, range_key=index_range)
            else:
                spec["hash_key"] = index_hash
                if index_range is not None:
                    spec["range_key"] = index_range
            indexes[str(index.get("IndexName"))] = spec
    if indexes:
        table["indexes"] = indexes
    ttl = properties.get("TimeToLiveSpecification")
    if isinstance(ttl, dict) and ttl.get("Enabled") in (True, "true", "True"):
        table["ttl"] = ttl.get("AttributeName")
    if "BillingMode" in properties:
        table["billing_mode"] = properties["BillingMode"]
    if "ProvisionedThroughput" in properties:
        warnings.append(f"{where}.Properties.ProvisionedThroughput: accepted, not enforced")
    stream = properties.get("StreamSpecification")
    if isinstance(stream, dict) and stream.get("StreamViewType") is not None:
        table["stream"] = str(stream["StreamViewType"]).lower()  # the schema checks the value
    elif stream is not None:
        warnings.append(f"{where}.Properties.StreamSpecification: no StreamViewType, ignored")
    # only key attributes may be declared (CloudFormation says the same); others: the schema
    return table


def _keys(schema: Any) -> tuple[Any, Any]:
    hash_key = range_key = None
    for element in schema or []:
        if isinstance(element, dict):
            if element.get("KeyType") == "HASH":
                hash_key = element.get("AttributeName")
            elif element.get("KeyType") == "RANGE":
                range_key = element.get("AttributeName")
    return hash_key, range_key


def _projection(projection: Any) -> Any:
    if not isinstance(projection, dict):
        return "all"
    kind = projection.get("ProjectionType", "ALL")
    if kind == "INCLUDE":
        return list(projection.get("NonKeyAttributes") or [])
    return {"ALL": "all", "KEYS_ONLY": "keys_only"}.get(kind, kind)


def _unknown(where: str, properties: dict[str, Any], known: set[str], out: list[str]) -> None:
    for key in properties:
        if key not in known:
            out.append(f"{where}.Properties.{key}: not supported yet, ignored")


def _generated_name(service: Any, stage: str, logical_id: str) -> str:
    name = re.sub(r"[^a-z0-9.-]+", "-", f"{service}-{stage}-{logical_id}".lower()).strip("-.")
    return name[:63].rstrip("-.")
