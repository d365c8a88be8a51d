"""A stream turned off or replaced stays for the 24-hour retention, as on DynamoDB Streams:
listed, described as DISABLED with its shard closed, readable to its end (where GetRecords
answers no ``NextShardIterator``); then it goes. On SQLite and PostgreSQL.

The retention is made to pass by trimming with a ``now`` a day ahead, so nothing waits 24 hours.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from .conftest import StreamsServer
from .test_trim import LATER, iterator, new_table, numbers, write


def read_to_end(streams: Any, it: str, limit: int = 1000) -> list[Any]:
    """Every record of a closed shard from ``it`` on: pages until one has no
    ``NextShardIterator``."""
    records: list[Any] = []
    for _ in range(100):
        page = streams.get_records(ShardIterator=it, Limit=limit)
        records += page["Records"]
        if "NextShardIterator" not in page:
            return records
        it = page["NextShardIterator"]
    raise AssertionError("the shard did not end")


def keys(records: list[Any]) -> list[str]:
    return [r["dynamodb"]["Keys"]["id"]["S"] for r in records]


def described(streams: Any, arn: str) -> Any:
    return streams.describe_stream(StreamArn=arn)["StreamDescription"]


def test_a_stream_turned_off_is_listed_disabled_and_read_to_its_end(
    streams_server: StreamsServer,
) -> None:
    ddb, streams = streams_server.clients()
    table = new_table(ddb)
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    label = ddb.describe_table(TableName=table)["Table"]["LatestStreamLabel"]
    horizon = iterator(streams, arn, "TRIM_HORIZON")
    write(ddb, table, 3)
    page = streams.get_records(ShardIterator=horizon, Limit=1)  # a reader midway
    assert keys(page["Records"]) == ["k0"]
    midway = page["NextShardIterator"]
    seq = numbers(read_to_end_open(streams, iterator(streams, arn, "TRIM_HORIZON")))
    shard = described(streams, arn)["Shards"][0]
    assert "EndingSequenceNumber" not in shard["SequenceNumberRange"]

    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    with pytest.raises(ddb.exceptions.ClientError) as refused:  # nothing left to disable
        ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    write(ddb, table, 1)  # no stream: no record
    assert "LatestStreamArn" not in ddb.describe_table(TableName=table)["Table"]
    assert streams.list_streams(TableName=table)["Streams"] == [
        {"StreamArn": arn, "TableName": table, "StreamLabel": label}
    ]
    assert arn in [s["StreamArn"] for s in streams.list_streams()["Streams"]]
    off = described(streams, arn)
    assert off["StreamStatus"] == "DISABLED"
    assert off["StreamViewType"] == "KEYS_ONLY" and off["TableName"] == table
    assert off["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert off["Shards"] == [
        {
            "ShardId": shard["ShardId"],
            "SequenceNumberRange": {
                "StartingSequenceNumber": seq[0],
                "EndingSequenceNumber": seq[-1],
            },
        }
    ]

    # the reader midway reads the rest, then the shard has ended
    assert keys(read_to_end(streams, midway)) == ["k1", "k2"]
    # so does a reader from the start, page by page, and one at its end
    assert numbers(read_to_end(streams, iterator(streams, arn, "TRIM_HORIZON"), 2)) == seq
    assert (
        numbers(read_to_end(streams, iterator(streams, arn, "AT_SEQUENCE_NUMBER", seq[1])))
        == (seq[1:])
    )
    for at_end in (
        iterator(streams, arn, "LATEST"),
        iterator(streams, arn, "AFTER_SEQUENCE_NUMBER", seq[-1]),
    ):
        page = streams.get_records(ShardIterator=at_end)
        assert page["Records"] == [] and "NextShardIterator" not in page
    last = streams.get_records(ShardIterator=iterator(streams, arn, "TRIM_HORIZON"))
    assert numbers(last["Records"]) == seq and "NextShardIterator" not in last

    # kept while a normal retention pass runs (disabled a moment ago)
    streams_server.expire(time.time())
    assert described(streams, arn)["StreamStatus"] == "DISABLED"


def read_to_end_open(streams: Any, it: str) -> list[Any]:
    """Every record of an open shard from ``it`` on (until a page is empty)."""
    records: list[Any] = []
    while True:
        page = streams.get_records(ShardIterator=it)
        assert "NextShardIterator" in page  # an open shard has no end
        if not page["Records"]:
            return records
        records += page["Records"]
        it = page["NextShardIterator"]


def test_replaced_streams_are_kept_and_each_reads_its_own_records(
    streams_server: StreamsServer,
) -> None:
    ddb, streams = streams_server.clients()
    table = new_table(ddb)
    first = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    ddb.put_item(TableName=table, Item={"id": {"S": "a"}})
    # off and on again: a new stream
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    spec = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    ddb.update_table(TableName=table, StreamSpecification=spec)
    second = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    ddb.put_item(TableName=table, Item={"id": {"S": "b"}})
    # enabling a stream while one is enabled (any view type): UpdateTable refuses it, as
    # DynamoDB documents; so is disabling where none is enabled (below) ...
    for view in ("KEYS_ONLY", "NEW_IMAGE"):
        with pytest.raises(ddb.exceptions.ClientError) as refused:
            ddb.update_table(
                TableName=table,
                StreamSpecification={"StreamEnabled": True, "StreamViewType": view},
            )
        error = refused.value.response["Error"]
        assert error["Code"] == "ValidationException"
        assert error["Message"].startswith("Table already has an enabled stream")
    assert ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"] == second
    # ... a table declaration changes it: a new stream again
    streams_server.set_stream(table, {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    third = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    assert len({first, second, third}) == 3
    ddb.put_item(TableName=table, Item={"id": {"S": "c"}})

    listed = streams.list_streams(TableName=table)["Streams"]
    assert [s["StreamArn"] for s in listed] == [first, second, third]
    paged = [streams.list_streams(TableName=table, Limit=1)]
    while "LastEvaluatedStreamArn" in paged[-1]:
        start = paged[-1]["LastEvaluatedStreamArn"]
        paged.append(streams.list_streams(TableName=table, Limit=1, ExclusiveStartStreamArn=start))
    assert [p["Streams"][0]["StreamArn"] for p in paged if p["Streams"]] == [first, second, third]

    views = {first: "KEYS_ONLY", second: "NEW_IMAGE", third: "KEYS_ONLY"}
    statuses = {first: "DISABLED", second: "DISABLED", third: "ENABLED"}
    shards = set()
    for arn, key in ((first, "a"), (second, "b"), (third, "c")):
        description = described(streams, arn)
        assert description["StreamStatus"] == statuses[arn]
        assert description["StreamViewType"] == views[arn]
        shards.add(description["Shards"][0]["ShardId"])
        if statuses[arn] == "DISABLED":
            records = read_to_end(streams, iterator(streams, arn, "TRIM_HORIZON"))
            ending = description["Shards"][0]["SequenceNumberRange"]["EndingSequenceNumber"]
            assert numbers(records) == [ending]
        else:
            records = read_to_end_open(streams, iterator(streams, arn, "TRIM_HORIZON"))
        assert keys(records) == [key]
        assert records[0]["dynamodb"]["StreamViewType"] == views[arn]
    assert len(shards) == 3
    # a shard of one stream is not another's
    with pytest.raises(streams.exceptions.ResourceNotFoundException):
        streams.get_shard_iterator(
            StreamArn=first,
            ShardId=described(streams, second)["Shards"][0]["ShardId"],
            ShardIteratorType="TRIM_HORIZON",
        )


def test_old_streams_go_after_the_retention(streams_server: StreamsServer) -> None:
    ddb, streams = streams_server.clients()
    table = new_table(ddb)
    old = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    write(ddb, table, 2)
    held = iterator(streams, old, "TRIM_HORIZON")
    shard = described(streams, old)["Shards"][0]["ShardId"]
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    ddb.update_table(
        TableName=table,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
    )
    current = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    # a stream without records, turned off
    empty = new_table(ddb)
    empty_arn = ddb.describe_table(TableName=empty)["Table"]["LatestStreamArn"]
    ddb.update_table(TableName=empty, StreamSpecification={"StreamEnabled": False})
    range_ = described(streams, empty_arn)["Shards"][0]["SequenceNumberRange"]
    assert int(range_["EndingSequenceNumber"]) == int(range_["StartingSequenceNumber"]) - 1
    assert read_to_end(streams, iterator(streams, empty_arn, "TRIM_HORIZON")) == []

    streams_server.expire(time.time() + LATER)
    missing = streams.exceptions.ResourceNotFoundException
    for arn in (old, empty_arn):
        with pytest.raises(missing):
            streams.describe_stream(StreamArn=arn)
        with pytest.raises(missing):
            streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
            )
    with pytest.raises(missing):
        streams.get_records(ShardIterator=held)
    listed = [s["StreamArn"] for s in streams.list_streams()["Streams"]]
    assert current in listed and old not in listed and empty_arn not in listed
    assert described(streams, current)["StreamStatus"] == "ENABLED"  # the table's own stays


def test_an_old_stream_whose_records_are_all_removed_goes(
    streams_server: StreamsServer,
) -> None:
    """Records written a day ago by a stream turned off a moment ago: once the retention has
    removed them all, the stream goes (before 24 hours have passed since it was turned off)."""
    ddb, streams = streams_server.clients()
    streams_server.expire(time.time() + LATER)
    table = new_table(ddb)
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    write(ddb, table, 2)
    seq = numbers(read_to_end_open(streams, iterator(streams, arn, "TRIM_HORIZON")))
    ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})
    streams_server.set_created(int(seq[0]), time.time() - LATER)
    assert streams_server.expire(time.time()) == 1  # one left: the stream stays
    assert numbers(read_to_end(streams, iterator(streams, arn, "TRIM_HORIZON"))) == seq[1:]
    streams_server.set_created(int(seq[1]), time.time() - LATER)
    assert streams_server.expire(time.time()) == 1
    with pytest.raises(streams.exceptions.ResourceNotFoundException):
        streams.describe_stream(StreamArn=arn)
