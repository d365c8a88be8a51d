"""serverless.yml ``resources.Resources``: the CloudFormation resources Stackyard can run.

``AWS::DynamoDB::Table`` becomes a ``tables.<TableName>`` entry (key schema, attribute types,
global and local indexes with their projections, the TTL attribute, billing mode) and
``AWS::S3::Bucket`` a ``buckets.<BucketName>`` entry (a bucket without ``BucketName`` is named
``<service>-<stage>-<logical id>`` in lowercase, as the Serverless Framework's generated names
begin). A bucket's ``NotificationConfiguration.LambdaConfigurations`` become ``s3`` events
of the functions they name (``existing: true``: the bucket is the declared one), the function
given as ``Fn::GetAtt: [<Name>LambdaFunction, Arn]`` (the framework's logical ids) or as its
ARN (``...:function:<service>-<stage>-<name>``). Every other resource type, and every property
Stackyard does not run (encryption, tags, queue and topic notifications, ...), is named in
the warnings; nothing is dropped silently. Values that are still CloudFormation intrinsics
(``Ref``, ``Fn::...``) cannot be resolved here: a table or bucket whose name is one is
skipped with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Collection
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
_BUCKET_PROPERTIES = {"BucketName", "NotificationConfiguration"}


class Resources:
    """What a ``resources`` section declares: tables, buckets, and function events (``s3``
    events from bucket notifications) by function name."""

    def __init__(self) -> None:
        self.tables: dict[str, Any] = {}
        self.buckets: dict[str, Any] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}


def translate_resources(
    resources: Any, service: str, stage: str, functions: Collection[str], warnings: list[str]
) -> Resources:
    """The tables, buckets and function events of a serverless.yml ``resources`` section
    (``functions``: the names of the service's functions)."""
    out = Resources()
    tables, buckets = out.tables, out.buckets
    if not isinstance(resources, dict):
        return out
    for key in resources:
        if key not in ("Resources", "Outputs"):
            warnings.append(f"resources.{key}: not supported yet, ignored")
    if resources.get("Outputs"):
        warnings.append("resources.Outputs: not used (no CloudFormation stack)")
    declared = resources.get("Resources")
    if not isinstance(declared, dict):
        return out
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
            notifications = properties.get("NotificationConfiguration")
            if notifications is not None:
                where = f"{where}.Properties.NotificationConfiguration"
                names = _FunctionNames(service, stage, functions)
                for function, event in _notifications(name, notifications, names, where, warnings):
                    out.events.setdefault(function, []).append(event)
        else:
            warnings.append(f"{where}: resource type {kind!r} not supported yet, ignored")
    return out


class _FunctionNames:
    """A serverless.yml function's name from what a CloudFormation document calls it."""

    def __init__(self, service: str, stage: str, functions: Collection[str]) -> None:
        self.functions = set(functions)
        self.logical = {_logical_id(name) + "LambdaFunction": name for name in functions}
        self.deployed = {f"{service}-{stage}-{name}": name for name in functions}

    def of(self, reference: Any) -> str | None:
        """``Fn::GetAtt: [Logical, Arn]`` (or ``!GetAtt Logical.Arn``), an ARN or a name."""
        if isinstance(reference, dict) and len(reference) == 1 and "Fn::GetAtt" in reference:
            target = reference["Fn::GetAtt"]
            if isinstance(target, str):
                target = target.split(".")
            if isinstance(target, list) and len(target) == 2 and target[1] == "Arn":
                return self.logical.get(str(target[0]))
            return None
        if isinstance(reference, str):
            name = reference.rsplit(":function:", 1)[-1].split(":")[0]
            return self.deployed.get(name) or (name if name in self.functions else None)
        return None


def _logical_id(name: str) -> str:
    """The framework's normalised function name (``resize-image`` → ``ResizeDashimage``)."""
    normal = name[:1].upper() + name[1:]
    return normal.replace("-", "Dash").replace("_", "Underscore")


def _notifications(
    bucket: str, spec: Any, names: _FunctionNames, where: str, warnings: list[str]
) -> list[tuple[str, dict[str, Any]]]:
    """``(function, s3 event)`` of each ``LambdaConfigurations`` entry."""
    if not isinstance(spec, dict):
        warnings.append(f"{where}: not a mapping, ignored")
        return []
    for key in sorted(set(spec) - {"LambdaConfigurations"}):
        warnings.append(f"{where}.{key}: only function notifications are supported, ignored")
    out = []
    for index, entry in enumerate(spec.get("LambdaConfigurations") or []):
        here = f"{where}.LambdaConfigurations[{index}]"
        if not isinstance(entry, dict):
            warnings.append(f"{here}: not a mapping, ignored")
            continue
        function = names.of(entry.get("Function"))
        if function is None:
            warnings.append(f"{here}.Function: not a function of this service, ignored")
            continue
        event: dict[str, Any] = {"bucket": bucket, "existing": True}
        if entry.get("Event") is not None:
            event["event"] = entry["Event"]  # the schema checks it
        rules = []
        for rule in _filter_rules(entry.get("Filter")):
            name = str(rule.get("Name", "")).lower() if isinstance(rule, dict) else ""
            if name in ("prefix", "suffix"):
                rules.append({name: rule.get("Value")})
            else:
                warnings.append(f"{here}.Filter: rule {rule!r} not understood, ignored")
        if rules:
            event["rules"] = rules
        out.append((function, {"s3": event}))
    return out


def _filter_rules(spec: Any) -> list[Any]:
    """The ``Filter.S3Key.Rules`` of a notification (empty when absent or malformed)."""
    key = spec.get("S3Key") if isinstance(spec, dict) else None
    rules = key.get("Rules") if isinstance(key, dict) else None
    return rules if isinstance(rules, list) else []


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
