"""The DynamoDB Streams API over the stream log (JSON 1.0 on the control port,
``X-Amz-Target: DynamoDBStreams_20120810.<Operation>``, served by the tables' ``DynamoDbApp``).

``ListStreams``, ``DescribeStream``, ``GetShardIterator`` and ``GetRecords``, so a consumer
written against AWS (boto3's ``dynamodbstreams`` client, the Kinesis adapter) reads the same
records the functions subscribed to a table get.

- A table with a stream has one stream (ARN = table ARN + ``/stream/<label>``, the label being
  time it was turned on, as ``LatestStreamArn`` in DescribeTable says) with one open shard,
  ``shardId-<that time in ms, 20 digits>-<first 8 characters of the table id>``.
- A stream turned off and on again is a new stream (a new label and ARN): its readers get the
  records written since, not the previous stream's.
- Sequence numbers are the log's row ids (21 digits), increasing with every write.
- A shard iterator is an opaque token naming the table, its stream label and the position (the
  last sequence number read); it expires after 15 minutes, as DynamoDB's do
  (``ExpiredIteratorException``). ``TRIM_HORIZON`` starts before the oldest record kept,
  ``LATEST`` after the newest, ``AT_``/``AFTER_SEQUENCE_NUMBER`` at a given one.
- Trimmed records (older than the 24-hour retention, removed) are ``TrimmedDataAccessException``
  as on AWS: a sequence number at or before the stream's trim point in GetShardIterator
  (``AFTER_SEQUENCE_NUMBER`` of the last record removed still reads on), and GetRecords with an
  iterator (any kind, also a ``NextShardIterator``) positioned where records have been removed
  since it was given.
- ``GetRecords`` answers up to ``Limit`` records (default and maximum 1,000; at most 1 MB of
  records beyond the first) in write order, and always a ``NextShardIterator`` (the shard
  stays open while the table has its stream).

Each handler runs on the tables' worker thread (``Tables.run``), beside the writes; on the
PostgreSQL backend after a reload of the table catalog, in one transaction.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..tables.errors import TableNotFound, TablesError, ValidationError
from ..tables.schema import TableSchema
from .log import StreamLog
from .records import sequence_number, stream_arn

if TYPE_CHECKING:
    from ..tables import Tables

TARGET = "DynamoDBStreams_20120810"
ITERATOR_TTL = 15 * 60.0
MAX_RECORDS = 1000
MAX_BYTES = 1024 * 1024
ITERATOR_TYPES = ("TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER")

Body = dict[str, Any]


class ExpiredIterator(TablesError):
    aws_type = "ExpiredIteratorException"


class TrimmedDataAccess(TablesError):
    aws_type = "TrimmedDataAccessException"


def stream_created(schema: TableSchema) -> float:
    """When the table's current stream was turned on (with the table: its creation)."""
    return schema.stream_created if schema.stream_created is not None else schema.created


def shard_id(schema: TableSchema) -> str:
    """The shard of the table's current stream (a stream turned on again has a new one)."""
    return f"shardId-{int(stream_created(schema) * 1000):020d}-{schema.table_id[:8]}"


class StreamsApi:
    """The four operations (see the module docstring); ``call`` is ``DynamoDbApp``'s."""

    def __init__(self, tables: Tables, log: StreamLog) -> None:
        self.tables = tables
        self.log = log
        self._operations = {
            "ListStreams": self.list_streams,
            "DescribeStream": self.describe_stream,
            "GetShardIterator": self.get_shard_iterator,
            "GetRecords": self.get_records,
        }

    async def call(self, operation: str, body: Body) -> Body:
        found = self._operations.get(operation)
        if found is None:
            raise ValidationError(f"Unknown operation {TARGET}.{operation}")
        handler: Callable[[Body], Body] = found
        if self.tables.shared is not None:  # see what other nodes created or changed
            handler = self.tables.with_catalog(found)
        return await self.tables.run(handler, body, "read")

    # -- operations (on the tables' worker thread) ----------------------------------------

    def list_streams(self, body: Body) -> Body:
        limit = _limit(body, 100, 100)
        table = _text(body, "TableName")
        start = _text(body, "ExclusiveStartStreamArn")
        streams = sorted(
            (stream_arn(schema), schema)
            for _, schema in self.tables.engine.tables.values()
            if schema.stream and (table is None or schema.name == table)
        )
        after = [(arn, schema) for arn, schema in streams if start is None or arn > start]
        out: Body = {
            "Streams": [
                {"StreamArn": arn, "TableName": schema.name, "StreamLabel": schema.stream_label}
                for arn, schema in after[:limit]
            ]
        }
        if len(after) > limit:
            out["LastEvaluatedStreamArn"] = after[limit - 1][0]
        return out

    def describe_stream(self, body: Body) -> Body:
        schema = self._stream(body.get("StreamArn"))
        bounds = self.log.bounds(schema.name, schema.stream_label)
        first = bounds.oldest if bounds.oldest is not None else bounds.horizon + 1
        view = str((schema.stream or {}).get("StreamViewType") or "NEW_AND_OLD_IMAGES")
        return {
            "StreamDescription": {
                "StreamArn": stream_arn(schema),
                "StreamLabel": schema.stream_label,
                "StreamStatus": "ENABLED",
                "StreamViewType": view,
                "CreationRequestDateTime": stream_created(schema),
                "TableName": schema.name,
                "KeySchema": schema.describe()["KeySchema"],
                "Shards": [
                    {
                        "ShardId": shard_id(schema),
                        "SequenceNumberRange": {"StartingSequenceNumber": sequence_number(first)},
                    }
                ],
            }
        }

    def get_shard_iterator(self, body: Body) -> Body:
        schema = self._stream(body.get("StreamArn"))
        if body.get("ShardId") != shard_id(schema):
            raise TableNotFound(
                f"Requested resource not found: Shard does not exist: {body.get('ShardId')}"
            )
        kind = body.get("ShardIteratorType")
        if kind not in ITERATOR_TYPES:
            raise ValidationError(
                f"1 validation error detected: Value '{kind}' at 'shardIteratorType' failed to "
                f"satisfy constraint: Member must satisfy enum value set: {list(ITERATOR_TYPES)}"
            )
        bounds = self.log.bounds(schema.name, schema.stream_label)
        if kind == "TRIM_HORIZON":
            position = bounds.oldest - 1 if bounds.oldest is not None else bounds.horizon
        elif kind == "LATEST":
            position = bounds.newest if bounds.newest is not None else bounds.horizon
        else:
            number = body.get("SequenceNumber")
            if not isinstance(number, str) or not number.isdigit() or len(number) > 40:
                raise ValidationError(f"{kind} needs a SequenceNumber of decimal digits")
            seq = int(number)
            position = seq - 1 if kind == "AT_SEQUENCE_NUMBER" else seq
            if position < bounds.horizon:
                raise TrimmedDataAccess(
                    f"Sequence number {number} is older than the stream's trim point: "
                    "the data you are trying to access has been trimmed"
                )
            if seq > max(bounds.newest or 0, bounds.horizon):
                raise ValidationError(f"Invalid SequenceNumber {number}: beyond the stream's end")
        return {"ShardIterator": _iterator(schema, position)}

    def get_records(self, body: Body) -> Body:
        limit = _limit(body, MAX_RECORDS, MAX_RECORDS)
        table, label, position, expires = _decode(body.get("ShardIterator"))
        if expires < time.time():
            raise ExpiredIterator("Iterator expired: it is older than 15 minutes")
        found = self.tables.engine.tables.get(table)
        if found is None or not found[1].stream or found[1].stream_label != label:
            raise TableNotFound("Requested resource not found: Stream does not exist")
        schema = found[1]
        if position < self.log.bounds(table, label).horizon:
            raise TrimmedDataAccess(
                "The data you are trying to access has been trimmed: records after the "
                "iterator's position are older than the stream's 24-hour retention"
            )
        logged = self.log.read(table, position, limit, MAX_BYTES, label)
        records = []
        for entry in logged:
            record = dict(entry.record)
            record.pop("eventSourceARN", None)  # Lambda's events have it; GetRecords' do not
            records.append(record)
        if logged:
            position = logged[-1].seq
        return {"Records": records, "NextShardIterator": _iterator(schema, position)}

    def _stream(self, arn: object) -> TableSchema:
        if isinstance(arn, str):
            for _, schema in self.tables.engine.tables.values():
                if schema.stream and stream_arn(schema) == arn:
                    return schema
        raise TableNotFound(f"Requested resource not found: Stream: {arn} not found")


def _text(body: Body, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{name}: a string is expected")
    return value


def _limit(body: Body, default: int, maximum: int) -> int:
    limit = body.get("Limit", default)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= maximum:
        raise ValidationError(
            f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy "
            f"constraint: Member must have value between 1 and {maximum}"
        )
    return limit


def _iterator(schema: TableSchema, position: int) -> str:
    token = [schema.name, schema.stream_label, position, time.time() + ITERATOR_TTL]
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


def _decode(token: object) -> tuple[str, str, int, float]:
    """The parts of a shard iterator; ValidationException for anything else."""
    try:
        if not isinstance(token, str) or not 1 <= len(token) <= 2048:
            raise ValueError
        table, label, position, expires = json.loads(base64.urlsafe_b64decode(token))
        if not (
            isinstance(table, str)
            and isinstance(label, str)
            and type(position) is int
            and position >= 0
            and isinstance(expires, float)
        ):
            raise ValueError
    except (ValueError, TypeError, binascii.Error):
        raise ValidationError("Invalid ShardIterator") from None
    return table, label, position, expires
