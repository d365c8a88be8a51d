"""The DynamoDB Streams API over the stream log (JSON 1.0 on the control port,
``X-Amz-Target: DynamoDBStreams_20120810.<Operation>``, served by the tables' ``DynamoDbApp``).

``ListStreams``, ``DescribeStream``, ``GetShardIterator`` and ``GetRecords``, so a consumer
written against AWS (boto3's ``dynamodbstreams`` client, the Kinesis adapter) reads the same
records the functions subscribed to a table get.

- A table with a stream has one stream (ARN = table ARN + ``/stream/<label>``, the label being
  time it was turned on, as ``LatestStreamArn`` in DescribeTable says) with one open shard,
  ``shardId-<that time in ms, 20 digits>-<first 8 characters of the table id>``.
- A stream turned off and on again, or with another view type (a table's declaration; by
  UpdateTable, as on AWS, ``ValidationException`` while a stream is enabled), is a new stream (a
  new label, ARN and shard): its readers get the records written since, not the previous
  stream's.
- A stream turned off or replaced stays for the 24-hour retention, as on AWS: listed, described
  as ``DISABLED`` with its shard closed (``EndingSequenceNumber``: its last record's; a stream
  without records: one less than ``StartingSequenceNumber``, an empty range), and readable to
  its end. It goes when the retention passes 24 hours after it was disabled, or once its
  records have all been removed (``ResourceNotFoundException`` then).
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
  records beyond the first) in write order, and a ``NextShardIterator`` while the shard is open
  (the table has the stream); a disabled stream's answer has none once the reader is past its
  last record (the closed shard's end).

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
from .log import StreamLog
from .records import StreamInfo, sequence_number

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
            (info.arn, info) for info in self._streams(table) if start is None or info.arn > start
        )
        out: Body = {
            "Streams": [
                {"StreamArn": arn, "TableName": info.table, "StreamLabel": info.label}
                for arn, info in streams[:limit]
            ]
        }
        if len(streams) > limit:
            out["LastEvaluatedStreamArn"] = streams[limit - 1][0]
        return out

    def describe_stream(self, body: Body) -> Body:
        info = self._stream(body.get("StreamArn"))
        bounds = self.log.bounds(info.table, info.label)
        first = bounds.oldest if bounds.oldest is not None else bounds.horizon + 1
        numbers = {"StartingSequenceNumber": sequence_number(first)}
        if info.disabled is not None:  # a closed shard (no records: an empty range)
            last = bounds.newest if bounds.newest is not None else first - 1
            numbers["EndingSequenceNumber"] = sequence_number(last)
        keys = [{"AttributeName": info.hash_key, "KeyType": "HASH"}]
        if info.range_key is not None:
            keys.append({"AttributeName": info.range_key, "KeyType": "RANGE"})
        return {
            "StreamDescription": {
                "StreamArn": info.arn,
                "StreamLabel": info.label,
                "StreamStatus": "ENABLED" if info.disabled is None else "DISABLED",
                "StreamViewType": info.view,
                "CreationRequestDateTime": info.created,
                "TableName": info.table,
                "KeySchema": keys,
                "Shards": [{"ShardId": info.shard, "SequenceNumberRange": numbers}],
            }
        }

    def get_shard_iterator(self, body: Body) -> Body:
        info = self._stream(body.get("StreamArn"))
        if body.get("ShardId") != info.shard:
            raise TableNotFound(
                f"Requested resource not found: Shard does not exist: {body.get('ShardId')}"
            )
        kind = body.get("ShardIteratorType")
        if kind not in ITERATOR_TYPES:
            raise ValidationError(
                f"1 validation error detected: Value '{kind}' at 'shardIteratorType' failed to "
                f"satisfy constraint: Member must satisfy enum value set: {list(ITERATOR_TYPES)}"
            )
        bounds = self.log.bounds(info.table, info.label)
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
        return {"ShardIterator": _iterator(info, position)}

    def get_records(self, body: Body) -> Body:
        limit = _limit(body, MAX_RECORDS, MAX_RECORDS)
        table, label, position, expires = _decode(body.get("ShardIterator"))
        if expires < time.time():
            raise ExpiredIterator("Iterator expired: it is older than 15 minutes")
        info = self._find(table, label)
        if info is None:
            raise TableNotFound("Requested resource not found: Stream does not exist")
        bounds = self.log.bounds(table, label)
        if position < bounds.horizon:
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
        out: Body = {"Records": records}
        # a disabled stream gets no more records: past its last one, its shard has ended
        if info.disabled is None or position < (bounds.newest or 0):
            out["NextShardIterator"] = _iterator(info, position)
        return out

    def _streams(self, table: str | None) -> list[StreamInfo]:
        """The current streams (of ``table`` only, if given) and the disabled ones kept."""
        current = [
            StreamInfo.of(schema)
            for _, schema in self.tables.engine.tables.values()
            if schema.stream and (table is None or schema.name == table)
        ]
        return current + self.log.old_streams(table)

    def _find(self, table: str, label: str) -> StreamInfo | None:
        """The stream ``label`` of ``table``: its current one, else a disabled one kept."""
        found = self.tables.engine.tables.get(table)
        if found is not None and found[1].stream and found[1].stream_label == label:
            return StreamInfo.of(found[1])
        return next((i for i in self.log.old_streams(table) if i.label == label), None)

    def _stream(self, arn: object) -> StreamInfo:
        if isinstance(arn, str) and "/stream/" in arn:
            # ``<table ARN>/stream/<label>``, a table's name has no ``/``
            table_arn, _, label = arn.rpartition("/stream/")
            _, _, table = table_arn.partition(":table/")
            info = self._find(table, label)
            if info is not None and info.arn == arn:
                return info
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


def _iterator(info: StreamInfo, position: int) -> str:
    token = [info.table, info.label, position, time.time() + ITERATOR_TTL]
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
