"""Table definitions: CreateTable's checks, the stored form, DescribeTable's answer, key checks.

A :class:`TableSchema` is what the store keeps per table (as JSON); :func:`schema_from_request`
checks a CreateTable request as DynamoDB does (names, key schema, attribute definitions used
exactly by the keys, billing mode, at most 5 local and 20 global secondary indexes).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from .errors import LimitExceeded, ValidationError
from .values import Item, Value, encode_key, value_type

TABLE_NAME = re.compile(r"^[a-zA-Z0-9_.-]{3,255}$")
KEY_TYPES = frozenset({"S", "N", "B"})
MAX_HASH_KEY = 2048
MAX_RANGE_KEY = 1024
ACCOUNT = "000000000000"


@dataclass(frozen=True)
class IndexSchema:
    name: str
    hash_key: str
    range_key: str | None
    projection: str = "ALL"  # ALL, KEYS_ONLY, INCLUDE
    non_key: tuple[str, ...] = ()
    local: bool = False
    throughput: tuple[int, int] | None = None


@dataclass(frozen=True)
class TableSchema:
    name: str
    hash_key: str
    range_key: str | None
    attributes: dict[str, str]
    indexes: tuple[IndexSchema, ...] = ()
    billing_mode: str = "PROVISIONED"
    throughput: tuple[int, int] | None = None
    ttl_attribute: str | None = None
    stream: dict[str, Any] | None = None
    created: float = field(default_factory=time.time)
    stream_created: float | None = None  # when the stream was last turned on (None: created)
    table_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    region: str = "us-east-1"

    # -- stored form --------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TableSchema:
        indexes = tuple(
            IndexSchema(
                **{
                    **i,
                    "non_key": tuple(i["non_key"]),
                    "throughput": tuple(i["throughput"]) if i["throughput"] else None,
                }
            )
            for i in data["indexes"]
        )
        throughput = tuple(data["throughput"]) if data["throughput"] else None
        return cls(**{**data, "indexes": indexes, "throughput": throughput})

    def with_changes(self, **changes: Any) -> TableSchema:
        return replace(self, **changes)

    def with_stream(self, stream: dict[str, Any] | None) -> TableSchema:
        """The table with its stream turned on (``StreamSpecification``) or off (None). Turning
        it on when it was off, or with another view type, makes a new stream, as DynamoDB does:
        a new label (hence ARN), later than the previous one even within one millisecond."""
        if stream is None or stream == self.stream:
            return replace(self, stream=stream)
        before = self.stream_created if self.stream_created is not None else self.created
        return replace(self, stream=stream, stream_created=max(time.time(), before + 0.0015))

    # -- keys ---------------------------------------------------------------------------

    @property
    def key_names(self) -> tuple[str, ...]:
        return (self.hash_key,) if self.range_key is None else (self.hash_key, self.range_key)

    def index(self, name: str) -> IndexSchema | None:
        return next((i for i in self.indexes if i.name == name), None)

    def key_of(self, item: Item) -> Item:
        return {name: item[name] for name in self.key_names}

    def check_key(self, key: object) -> tuple[bytes, bytes]:
        """A ``Key`` parameter (exactly the key attributes) as its encoded (hash, range)."""
        if not isinstance(key, dict) or set(key) != set(self.key_names):
            raise ValidationError("The provided key element does not match the schema")
        for name in self.key_names:
            value = key[name]
            if (
                not isinstance(value, dict)
                or len(value) != 1
                or (value_type(value) != self.attributes[name])
            ):
                raise ValidationError("The provided key element does not match the schema")
        return self.encoded_key(key)

    def encoded_key(self, item: Item) -> tuple[bytes, bytes]:
        """The (hash, range) bytes of an item; ValidationError for a missing or bad key."""
        encoded = []
        for name, limit in ((self.hash_key, MAX_HASH_KEY), (self.range_key, MAX_RANGE_KEY)):
            if name is None:
                encoded.append(b"")
                continue
            value = item.get(name)
            if value is None:
                raise ValidationError(
                    f"One or more parameter values were invalid: Missing the key {name} in the item"
                )
            expected = self.attributes[name]
            if value_type(value) != expected:
                raise ValidationError(
                    "One or more parameter values were invalid: Type mismatch for key "
                    f"{name} expected: {expected} actual: {value_type(value)}"
                )
            data = encode_key(value)
            if not data and expected != "N":
                raise ValidationError(
                    "One or more parameter values are not valid. The AttributeValue for a key "
                    f"attribute cannot contain an empty {'string' if expected == 'S' else 'binary'}"
                    f" value. Key: {name}"
                )
            if len(data) > limit and expected != "N":
                kind = "Hash primary key" if name == self.hash_key else "Range Key"
                raise ValidationError(
                    f"One or more parameter values were invalid: Size of {kind} is too large"
                )
            encoded.append(data)
        return encoded[0], encoded[1]

    def index_keys(self, item: Item) -> dict[str, tuple[bytes, bytes]]:
        """The (hash, range) bytes of ``item`` in each index that holds it (indexes are sparse:
        an item without an index's key attributes is not in it)."""
        out = {}
        for index in self.indexes:
            parts = []
            for name in (index.hash_key, index.range_key):
                if name is None:
                    parts.append(b"")
                    continue
                value = item.get(name)
                if value is None:
                    break
                expected = self.attributes[name]
                if value_type(value) != expected:
                    raise ValidationError(
                        "One or more parameter values were invalid: Type mismatch for Index Key "
                        f"{name} Expected: {expected} Actual: {value_type(value)} IndexName: "
                        f"{index.name}"
                    )
                data = encode_key(value)
                if not data and expected != "N":
                    raise ValidationError(
                        "One or more parameter values are not valid. A value specified for a "
                        "secondary index key is not supported. The AttributeValue for a key "
                        f"attribute cannot contain an empty string value. IndexName: "
                        f"{index.name}, IndexKey: {name}"
                    )
                parts.append(data)
            else:
                out[index.name] = (parts[0], parts[1])
        return out

    def index_key_names(self, index: IndexSchema) -> tuple[str, ...]:
        names = [index.hash_key] + ([index.range_key] if index.range_key else [])
        return tuple(dict.fromkeys([*names, *self.key_names]))

    def project_for_index(self, index: IndexSchema, item: Item) -> Item:
        if index.projection == "ALL":
            return item
        wanted = set(self.index_key_names(index)) | set(index.non_key)
        return {k: v for k, v in item.items() if k in wanted}

    # -- DescribeTable ------------------------------------------------------------------

    @property
    def arn(self) -> str:
        return f"arn:aws:dynamodb:{self.region}:{ACCOUNT}:table/{self.name}"

    def describe(self, item_count: int = 0, size: int = 0, status: str = "ACTIVE") -> Item:
        description: dict[str, Any] = {
            "TableName": self.name,
            "TableStatus": status,
            "KeySchema": _key_schema(self.hash_key, self.range_key),
            "AttributeDefinitions": [
                {"AttributeName": n, "AttributeType": t} for n, t in self.attributes.items()
            ],
            "CreationDateTime": self.created,
            "ProvisionedThroughput": _throughput(self.throughput),
            "TableSizeBytes": size,
            "ItemCount": item_count,
            "TableArn": self.arn,
            "TableId": self.table_id,
            "BillingModeSummary": {"BillingMode": self.billing_mode},
            "DeletionProtectionEnabled": False,
        }
        if self.billing_mode == "PAY_PER_REQUEST":
            description["BillingModeSummary"]["LastUpdateToPayPerRequestDateTime"] = self.created
        local = [self._describe_index(i) for i in self.indexes if i.local]
        glob = [self._describe_index(i) for i in self.indexes if not i.local]
        if local:
            description["LocalSecondaryIndexes"] = local
        if glob:
            description["GlobalSecondaryIndexes"] = glob
        if self.stream:
            description["StreamSpecification"] = self.stream
            description["LatestStreamLabel"] = self.stream_label
            description["LatestStreamArn"] = f"{self.arn}/stream/{self.stream_label}"
        return description

    @property
    def stream_label(self) -> str:
        """The label of the table's stream: the time it was turned on (the table's creation
        time for a stream created with the table), as DynamoDB labels a stream
        (``2026-11-28T01:02:03.456``)."""
        when = self.stream_created if self.stream_created is not None else self.created
        moment = datetime.fromtimestamp(when, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"

    def _describe_index(self, index: IndexSchema) -> Item:
        projection: dict[str, Any] = {"ProjectionType": index.projection}
        if index.non_key:
            projection["NonKeyAttributes"] = list(index.non_key)
        out: dict[str, Any] = {
            "IndexName": index.name,
            "KeySchema": _key_schema(index.hash_key, index.range_key),
            "Projection": projection,
            "IndexSizeBytes": 0,
            "ItemCount": 0,
            "IndexArn": f"{self.arn}/index/{index.name}",
        }
        if not index.local:
            out["IndexStatus"] = "ACTIVE"
            out["ProvisionedThroughput"] = _throughput(index.throughput)
        return out


def _key_schema(hash_key: str, range_key: str | None) -> list[Value]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key is not None:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return schema


def _throughput(throughput: tuple[int, int] | None) -> Value:
    read, write = throughput or (0, 0)
    return {"NumberOfDecreasesToday": 0, "ReadCapacityUnits": read, "WriteCapacityUnits": write}


# -- CreateTable ----------------------------------------------------------------------------------


def check_table_name(name: object) -> str:
    if not isinstance(name, str) or not TABLE_NAME.match(name):
        raise ValidationError(
            f"1 validation error detected: Value '{name}' at 'tableName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and "
            "length between 3 and 255"
        )
    return name


def parse_key_schema(schema: object, where: str = "") -> tuple[str, str | None]:
    if not isinstance(schema, list) or not 1 <= len(schema) <= 2:
        raise ValidationError(f"Invalid KeySchema{where}: 1 or 2 elements (HASH, RANGE) expected")
    kinds = [e.get("KeyType") if isinstance(e, dict) else None for e in schema]
    names = [e.get("AttributeName") if isinstance(e, dict) else None for e in schema]
    if kinds[0] != "HASH" or (len(kinds) == 2 and kinds[1] != "RANGE"):
        raise ValidationError(
            f"Invalid KeySchema{where}: The first KeySchemaElement is not a HASH key type"
            if kinds[0] != "HASH"
            else f"Invalid KeySchema{where}: The second KeySchemaElement is not a RANGE key type"
        )
    if not all(isinstance(n, str) and n for n in names):
        raise ValidationError(f"Invalid KeySchema{where}: AttributeName is required")
    if len(names) == 2 and names[0] == names[1]:
        raise ValidationError(
            f"Invalid KeySchema{where}: Both the Hash Key and the Range Key element in the "
            "KeySchema have the same name"
        )
    return str(names[0]), str(names[1]) if len(names) == 2 else None


def parse_throughput(value: object, billing_mode: str, what: str = "") -> tuple[int, int] | None:
    if billing_mode == "PAY_PER_REQUEST":
        if value is not None:
            raise ValidationError(
                "One or more parameter values were invalid: Neither ReadCapacityUnits nor "
                f"WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST{what}"
            )
        return None
    if not isinstance(value, dict):
        raise ValidationError(
            "One or more parameter values were invalid: ReadCapacityUnits and "
            f"WriteCapacityUnits must both be specified when BillingMode is PROVISIONED{what}"
        )
    read, write = value.get("ReadCapacityUnits"), value.get("WriteCapacityUnits")
    if not isinstance(read, int) or not isinstance(write, int) or read < 1 or write < 1:
        raise ValidationError(
            "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits "
            "must be at least 1"
        )
    return read, write


def parse_index(spec: object, local: bool, billing_mode: str) -> IndexSchema:
    if not isinstance(spec, dict) or not isinstance(spec.get("IndexName"), str):
        raise ValidationError("Every secondary index needs an IndexName")
    name = spec["IndexName"]
    if not TABLE_NAME.match(name):
        raise ValidationError(f"Invalid index name: {name}")
    hash_key, range_key = parse_key_schema(spec.get("KeySchema"), f" for index {name}")
    projection = spec.get("Projection") or {}
    kind = projection.get("ProjectionType", "ALL") if isinstance(projection, dict) else None
    if kind not in ("ALL", "KEYS_ONLY", "INCLUDE"):
        raise ValidationError(f"Unknown ProjectionType {kind!r} for index {name}")
    non_key = projection.get("NonKeyAttributes") or []
    if (kind == "INCLUDE") != bool(non_key):
        raise ValidationError(
            "One or more parameter values were invalid: NonKeyAttributes must be specified "
            "with ProjectionType INCLUDE, and only then"
        )
    throughput = None
    if not local:
        throughput = parse_throughput(
            spec.get("ProvisionedThroughput"), billing_mode, f" (index {name})"
        )
    return IndexSchema(name, hash_key, range_key, kind, tuple(non_key), local, throughput)


def schema_from_request(body: dict[str, Any], region: str) -> TableSchema:
    name = check_table_name(body.get("TableName"))
    hash_key, range_key = parse_key_schema(body.get("KeySchema"))
    billing_mode = body.get("BillingMode") or "PROVISIONED"
    if billing_mode not in ("PROVISIONED", "PAY_PER_REQUEST"):
        raise ValidationError(f"Unknown BillingMode {billing_mode!r}")
    if body.get("ProvisionedThroughput") is None and billing_mode == "PROVISIONED":
        raise ValidationError(
            "One or more parameter values were invalid: ReadCapacityUnits "
            "and WriteCapacityUnits must both be specified when BillingMode "
            "is PROVISIONED"
        )
    throughput = parse_throughput(body.get("ProvisionedThroughput"), billing_mode)
    attributes = parse_attribute_definitions(body.get("AttributeDefinitions"))
    local = [parse_index(s, True, billing_mode) for s in body.get("LocalSecondaryIndexes") or []]
    glob = [parse_index(s, False, billing_mode) for s in body.get("GlobalSecondaryIndexes") or []]
    if len(local) > 5:
        raise LimitExceeded(
            "One or more parameter values were invalid: Number of "
            "LocalSecondaryIndexes exceeds per-table limit of 5"
        )
    if len(glob) > 20:
        raise LimitExceeded(
            "One or more parameter values were invalid: Number of "
            "GlobalSecondaryIndexes exceeds per-table limit of 20"
        )
    for index in local:
        if range_key is None:
            raise ValidationError(
                "One or more parameter values were invalid: Table KeySchema "
                "does not have a range key, which is required when "
                "specifying a LocalSecondaryIndex"
            )
        if index.hash_key != hash_key or index.range_key is None:
            raise ValidationError(
                "One or more parameter values were invalid: Index KeySchema "
                "does not have the same leading hash key as table KeySchema "
                f"for index: {index.name}"
            )
    names = [i.name for i in (*local, *glob)]
    if len(set(names)) != len(names):
        raise ValidationError("One or more parameter values were invalid: Duplicate index name")
    stream = body.get("StreamSpecification")
    schema = TableSchema(
        name=name,
        hash_key=hash_key,
        range_key=range_key,
        attributes=attributes,
        indexes=(*local, *glob),
        billing_mode=billing_mode,
        throughput=throughput,
        stream=stream if isinstance(stream, dict) and stream.get("StreamEnabled") else None,
        region=region,
    )
    check_definitions_used(schema)
    return schema


def parse_attribute_definitions(definitions: object) -> dict[str, str]:
    if not isinstance(definitions, list) or not definitions:
        raise ValidationError("AttributeDefinitions must be a non-empty list")
    attributes: dict[str, str] = {}
    for entry in definitions:
        name = entry.get("AttributeName") if isinstance(entry, dict) else None
        kind = entry.get("AttributeType") if isinstance(entry, dict) else None
        if not isinstance(name, str) or kind not in KEY_TYPES:
            raise ValidationError(
                f"1 validation error detected: Value '{kind}' at 'attributeDefinitions' failed "
                "to satisfy constraint: Member must satisfy enum value set: [B, N, S]"
            )
        if name in attributes:
            raise ValidationError(
                "Cannot have two attributes with the same name; attribute name: " + name
            )
        attributes[name] = kind
    return attributes


def check_definitions_used(schema: TableSchema) -> None:
    used = [schema.hash_key, schema.range_key]
    for index in schema.indexes:
        used += [index.hash_key, index.range_key]
    keys = {n for n in used if n is not None}
    missing = sorted(keys - set(schema.attributes))
    if missing:
        raise ValidationError(
            "One or more parameter values were invalid: Some index key attributes are not "
            f"defined in AttributeDefinitions. Keys: [{', '.join(missing)}], AttributeDefinitions:"
            f" [{', '.join(schema.attributes)}]"
        )
    if set(schema.attributes) - keys:
        raise ValidationError(
            "One or more parameter values were invalid: Number of attributes in KeySchema does "
            "not exactly match number of attributes defined in AttributeDefinitions"
        )
