"""Records removed by the 24-hour retention (``TrimmedDataAccessException``, as DynamoDB Streams
answers it) and a stream turned off and on again (a new stream), on SQLite and PostgreSQL.

The retention is made to pass by trimming with a ``now`` a day ahead, so nothing waits 24 hours.
Each test trims every record first, so the log holds only the records it writes.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackyard.storage.streams.log import RETENTION

from .conftest import StreamsServer

LATER = RETENTION + 60.0  # seconds ahead of now: every record written so far is past retention


def new_table(ddb: Any, stream: bool = True) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    extra: dict[str, Any] = {}
    if stream:
        extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )
    return name


def shard_of(streams: Any, arn: str) -> str:
    return str(streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"])


def iterator(streams: Any, arn: str, kind: str, number: str | None = None) -> str:
    extra = {"SequenceNumber": number} if number is not None else {}
    return str(
        streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard_of(streams, arn), ShardIteratorType=kind, **extra
        )["ShardIterator"]
    )


def write(ddb: Any, table: str, count: int) -> None:
    for n in range(count):
        ddb.put_item(TableName=table, Item={"id": {"S": f"k{n}"}})


def numbers(records: list[Any]) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] for r in records]


def read_on(streams: Any, it: str) -> tuple[list[Any], str]:
    """Every record from ``it`` on, and the iterator to go on with."""
    records: list[Any] = []
    while True:
        page = streams.get_records(ShardIterator=it)
        it = page["NextShardIterator"]
        if not page["Records"]:
            return records, it
        records += page["Records"]


def test_iterators_before_the_trim_point_are_refused(streams_server: StreamsServer) -> None:
    ddb, streams = streams_server.clients()
    streams_server.trim(time.time() + LATER)
    table = new_table(ddb)
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    horizon = iterator(streams, arn, "TRIM_HORIZON")
    write(ddb, table, 4)
    records, held = read_on(streams, horizon)  # a reader that has read everything
    seq = numbers(records)
    assert len(seq) == 4
    after_second = iterator(streams, arn, "AFTER_SEQUENCE_NUMBER", seq[1])
    at_third = iterator(streams, arn, "AT_SEQUENCE_NUMBER", seq[2])

    assert streams_server.trim(time.time() + LATER, limit=2) == 2  # the first two go
    trimmed = streams.exceptions.TrimmedDataAccessException
    with pytest.raises(trimmed):
        streams.get_records(ShardIterator=horizon)  # it pointed before the first record
    for kind, number in (("AT_SEQUENCE_NUMBER", seq[1]), ("AFTER_SEQUENCE_NUMBER", seq[0])):
        with pytest.raises(trimmed):
            iterator(streams, arn, kind, number)
    # right after the trim point nothing was lost
    assert numbers(streams.get_records(ShardIterator=after_second)["Records"]) == seq[2:]
    assert numbers(streams.get_records(ShardIterator=at_third)["Records"]) == seq[2:]
    assert numbers(read_on(streams, iterator(streams, arn, "TRIM_HORIZON"))[0]) == seq[2:]
    described = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert described["Shards"][0]["SequenceNumberRange"]["StartingSequenceNumber"] == seq[2]
    assert streams.get_records(ShardIterator=held)["Records"] == []

    # every record goes: the reader that had them all goes on; older iterators are refused
    assert streams_server.trim(time.time() + LATER) == 2
    assert streams.get_records(ShardIterator=held)["Records"] == []
    with pytest.raises(trimmed):
        streams.get_records(ShardIterator=after_second)
    with pytest.raises(trimmed):
        iterator(streams, arn, "AT_SEQUENCE_NUMBER", seq[3])
    ddb.put_item(TableName=table, Item={"id": {"S": "new"}})
    assert len(read_on(streams, held)[0]) == 1
    assert len(read_on(streams, iterator(streams, arn, "TRIM_HORIZON"))[0]) == 1


def test_a_stream_turned_on_again_is_a_new_stream(streams_server: StreamsServer) -> None:
    ddb, streams = streams_server.clients()
    table = new_table(ddb)
    first = ddb.describe_table(TableName=table)["Table"]
    first_stream = streams.describe_stream(StreamArn=first["LatestStreamArn"])
    first_stream = first_stream["StreamDescription"]
    write(ddb, table, 2)
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    off = ddb.describe_table(TableName=table)["Table"]
    assert "LatestStreamArn" not in off and "StreamSpecification" not in off
    write(ddb, table, 1)  # no stream: no record
    spec = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    again = ddb.update_table(TableName=table, StreamSpecification=spec)["TableDescription"]
    described = ddb.describe_table(TableName=table)["Table"]
    assert described["LatestStreamArn"] == again["LatestStreamArn"] != first["LatestStreamArn"]
    assert described["LatestStreamLabel"] > first["LatestStreamLabel"]
    assert described["LatestStreamArn"].endswith("/stream/" + described["LatestStreamLabel"])
    listed = streams.list_streams(TableName=table)["Streams"]  # the old one is kept a day
    assert [s["StreamArn"] for s in listed] == [
        first["LatestStreamArn"],
        described["LatestStreamArn"],
    ]
    # its own shard and creation time
    new_stream = streams.describe_stream(StreamArn=described["LatestStreamArn"])
    new_stream = new_stream["StreamDescription"]
    old_shard = first_stream["Shards"][0]["ShardId"]
    assert new_stream["Shards"][0]["ShardId"] != old_shard
    assert new_stream["CreationRequestDateTime"] > first_stream["CreationRequestDateTime"]
    with pytest.raises(streams.exceptions.ResourceNotFoundException):
        streams.get_shard_iterator(
            StreamArn=described["LatestStreamArn"],
            ShardId=old_shard,
            ShardIteratorType="TRIM_HORIZON",
        )

    # the new stream has the records written since, not the old stream's
    new_arn = described["LatestStreamArn"]
    ddb.put_item(TableName=table, Item={"id": {"S": "after"}})
    records, _ = read_on(streams, iterator(streams, new_arn, "TRIM_HORIZON"))
    assert [r["dynamodb"]["Keys"]["id"]["S"] for r in records] == ["after"]
    assert records[0]["dynamodb"]["StreamViewType"] == "NEW_IMAGE"

    # off and on again at once: yet another stream
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    ddb.update_table(TableName=table, StreamSpecification=spec)
    third = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    assert third not in (new_arn, first["LatestStreamArn"])
    # enabling it again while it is enabled is refused (DynamoDB: ValidationException) and
    # changes nothing
    with pytest.raises(ddb.exceptions.ClientError) as refused:
        ddb.update_table(TableName=table, StreamSpecification=spec)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"] == third


def test_a_retention_pass_trims_in_batches_until_nothing_expired_is_left(
    streams_server: StreamsServer,
) -> None:
    ddb, streams = streams_server.clients()
    streams_server.expire(time.time() + LATER)
    table = new_table(ddb)
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    write(ddb, table, 12)
    seq = numbers(read_on(streams, iterator(streams, arn, "TRIM_HORIZON"))[0])
    assert streams_server.expire(time.time() + LATER, limit=5) == 12  # batches of 5, 5 and 2
    assert read_on(streams, iterator(streams, arn, "TRIM_HORIZON"))[0] == []
    with pytest.raises(streams.exceptions.TrimmedDataAccessException):
        iterator(streams, arn, "AT_SEQUENCE_NUMBER", seq[-1])
    assert streams_server.expire(time.time() + LATER, limit=5) == 0


def test_the_trim_stops_at_a_record_not_yet_expired(streams_server: StreamsServer) -> None:
    """A record whose ``created`` is far ahead (written when a clock was off) keeps the
    records after it, even older ones: the trim removes a prefix of the stream, so a reader
    from the trim horizon reads every record kept."""
    ddb, streams = streams_server.clients()
    streams_server.expire(time.time() + LATER)
    table = new_table(ddb)
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    write(ddb, table, 4)
    seq = numbers(read_on(streams, iterator(streams, arn, "TRIM_HORIZON"))[0])
    streams_server.set_created(int(seq[1]), time.time() + 10 * RETENTION)

    assert streams_server.expire(time.time() + LATER) == 1  # the first; the second stops it
    assert numbers(read_on(streams, iterator(streams, arn, "TRIM_HORIZON"))[0]) == seq[1:]
    assert (
        numbers(read_on(streams, iterator(streams, arn, "AT_SEQUENCE_NUMBER", seq[2]))[0])
        == (seq[2:])
    )
    with pytest.raises(streams.exceptions.TrimmedDataAccessException):
        iterator(streams, arn, "AT_SEQUENCE_NUMBER", seq[0])
    described = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert described["Shards"][0]["SequenceNumberRange"]["StartingSequenceNumber"] == seq[1]

    # once the record in the way is past the retention, the rest goes
    streams_server.set_created(int(seq[1]), time.time())
    assert streams_server.expire(time.time() + LATER) == 3
    assert read_on(streams, iterator(streams, arn, "TRIM_HORIZON"))[0] == []


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(written=st.integers(1, 6), data=st.data())
def test_reading_after_a_trim_fails_exactly_before_the_trim_point(
    streams_server: StreamsServer, written: int, data: st.DataObject
) -> None:
    """Iterators taken before ``kept`` of ``written`` records are trimmed: reading one fails
    with TrimmedDataAccessException exactly when a record after its position was removed;
    otherwise it reads every record after its position."""
    trimmed_count = data.draw(st.integers(0, written), label="trimmed")
    ddb, streams = streams_server.clients()
    streams_server.trim(time.time() + LATER)
    table = new_table(ddb)
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    before = iterator(streams, arn, "TRIM_HORIZON")
    write(ddb, table, written)
    seq = numbers(read_on(streams, before)[0])
    # positions: before the first record (TRIM_HORIZON), then after each record
    positions = [(-1, before)] + [
        (i, iterator(streams, arn, "AFTER_SEQUENCE_NUMBER", number)) for i, number in enumerate(seq)
    ]
    assert streams_server.trim(time.time() + LATER, limit=trimmed_count) == trimmed_count
    last_trimmed = trimmed_count - 1  # index of the trim point (-1: nothing trimmed)
    for index, it in positions:
        if index < last_trimmed:
            with pytest.raises(streams.exceptions.TrimmedDataAccessException):
                streams.get_records(ShardIterator=it)
        else:
            assert numbers(read_on(streams, it)[0]) == seq[index + 1 :]
    for index, number in enumerate(seq):
        for kind, lost in (
            ("AT_SEQUENCE_NUMBER", index <= last_trimmed),
            ("AFTER_SEQUENCE_NUMBER", index < last_trimmed),
        ):
            if lost:
                with pytest.raises(streams.exceptions.TrimmedDataAccessException):
                    iterator(streams, arn, kind, number)
            else:
                start = index if kind == "AT_SEQUENCE_NUMBER" else index + 1
                got = read_on(streams, iterator(streams, arn, kind, number))[0]
                assert numbers(got) == seq[start:]
