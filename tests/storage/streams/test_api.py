"""The DynamoDB Streams API through a real node, read with boto3's ``dynamodbstreams`` client."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackyard.testing import NodeProcess, wait_until

from ..tables.conftest import CONFIG, make_client

STACK = """\
name: stream-readers
tables:
  notes: {{hash_key: id, stream: new_and_old_images}}
  plain: {{hash_key: id}}
functions:
  tally:
    handler: handler.tally
    env: {{OUT: "{out}"}}
    events:
      - stream: {{table: notes, starting_position: TRIM_HORIZON}}
"""

HANDLER = """\
import os

def tally(event, context):
    with open(os.environ["OUT"], "a") as out:
        out.write(f"{len(event['Records'])}\\n")
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    tmp = tmp_path_factory.mktemp("stream-api")
    root = tmp / "app"
    root.mkdir()
    (root / "stackyard.yml").write_text(STACK.format(out=tmp / "tally.txt"))
    (root / "handler.py").write_text(HANDLER)
    with NodeProcess(root, data_dir=tmp / "data") as running:
        running.wait_ready()
        running.out = tmp / "tally.txt"  # type: ignore[attr-defined]
        yield running


def streams_client(node: NodeProcess) -> Any:
    return boto3.client(
        "dynamodbstreams",
        endpoint_url=node.control_url,
        region_name="us-east-1",
        aws_access_key_id="stackyard",
        aws_secret_access_key="stackyard",
        config=CONFIG,
    )


def read_all(streams: Any, iterator: str, limit: int = 1000) -> tuple[list[Any], str]:
    """Every record from ``iterator`` on, page by page; the iterator to go on with."""
    records: list[Any] = []
    while True:
        page = streams.get_records(ShardIterator=iterator, Limit=limit)
        iterator = page["NextShardIterator"]
        if not page["Records"]:
            return records, iterator
        records += page["Records"]


def code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_a_table_stream_is_listed_described_and_read_in_write_order(node: NodeProcess) -> None:
    ddb, streams = make_client(node.control_url), streams_client(node)
    table = ddb.describe_table(TableName="notes")["Table"]
    arn, label = table["LatestStreamArn"], table["LatestStreamLabel"]
    assert arn == f"{table['TableArn']}/stream/{label}"
    assert "LatestStreamArn" not in ddb.describe_table(TableName="plain")["Table"]
    listed = streams.list_streams()["Streams"]
    assert listed == [{"StreamArn": arn, "TableName": "notes", "StreamLabel": label}]
    assert streams.list_streams(TableName="plain")["Streams"] == []

    described = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert described["StreamStatus"] == "ENABLED"
    assert described["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert described["TableName"] == "notes"
    assert described["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    (shard,) = described["Shards"]

    horizon = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    latest = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
    )["ShardIterator"]
    for n in range(3):
        ddb.put_item(TableName="notes", Item={"id": {"S": f"k{n}"}, "v": {"N": str(n)}})
    ddb.update_item(
        TableName="notes",
        Key={"id": {"S": "k0"}},
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"N": "10"}},
    )
    ddb.delete_item(TableName="notes", Key={"id": {"S": "k1"}})

    records, horizon = read_all(streams, horizon, limit=2)  # three pages of at most two
    events = [(r["eventName"], r["dynamodb"]["Keys"]["id"]["S"]) for r in records]
    assert events[-5:] == [
        ("INSERT", "k0"),
        ("INSERT", "k1"),
        ("INSERT", "k2"),
        ("MODIFY", "k0"),
        ("REMOVE", "k1"),
    ]
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    modify = records[-2]["dynamodb"]
    assert modify["OldImage"]["v"] == {"N": "0"} and modify["NewImage"]["v"] == {"N": "10"}
    assert "eventSourceARN" not in records[-1] and records[-1]["eventSource"] == "aws:dynamodb"
    assert (records[-1]["dynamodb"]["ApproximateCreationDateTime"]).year >= 2026
    assert [r["eventID"] for r in read_all(streams, latest)[0]] == [
        r["eventID"] for r in records[-5:]
    ]

    # the iterator given with the last page goes on with the writes that follow
    ddb.put_item(TableName="notes", Item={"id": {"S": "k9"}})
    more, _ = read_all(streams, horizon)
    assert [(r["eventName"], r["dynamodb"]["Keys"]["id"]["S"]) for r in more] == [("INSERT", "k9")]

    # at / after a sequence number
    third = records[-3]["dynamodb"]["SequenceNumber"]
    at = streams.get_shard_iterator(
        StreamArn=arn,
        ShardId=shard["ShardId"],
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        SequenceNumber=third,
    )["ShardIterator"]
    after = streams.get_shard_iterator(
        StreamArn=arn,
        ShardId=shard["ShardId"],
        ShardIteratorType="AFTER_SEQUENCE_NUMBER",
        SequenceNumber=third,
    )["ShardIterator"]
    assert (
        streams.get_records(ShardIterator=at, Limit=1)["Records"][0]["dynamodb"]["SequenceNumber"]
        == third
    )
    assert len(read_all(streams, after)[0]) == len(read_all(streams, at)[0]) - 1


def test_records_a_subscribed_function_got_stay_readable(node: NodeProcess) -> None:
    ddb, streams = make_client(node.control_url), streams_client(node)
    ddb.put_item(TableName="notes", Item={"id": {"S": "seen"}})
    out: Path = node.out  # type: ignore[attr-defined]
    wait_until(lambda: out.exists() and out.read_text().strip(), 30, what="the function's batch")
    arn = ddb.describe_table(TableName="notes")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    keys = [r["dynamodb"]["Keys"]["id"]["S"] for r in read_all(streams, iterator)[0]]
    assert "seen" in keys  # kept for the stream's 24 hours, not dropped once delivered


def test_bad_calls_get_the_errors_dynamodb_streams_answers(node: NodeProcess) -> None:
    ddb, streams = make_client(node.control_url), streams_client(node)
    arn = ddb.describe_table(TableName="notes")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    with pytest.raises(ClientError) as error:
        streams.describe_stream(StreamArn=arn.replace("notes", "nosuch"))
    assert code(error) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as error:
        streams.get_shard_iterator(
            StreamArn=arn,
            ShardId="shardId-00000000000000000000-00000000",
            ShardIteratorType="LATEST",
        )
    assert code(error) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as error:
        streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard, ShardIteratorType="AT_SEQUENCE_NUMBER"
        )
    assert code(error) == "ValidationException"
    with pytest.raises(ClientError) as error:
        streams.get_shard_iterator(
            StreamArn=arn,
            ShardId=shard,
            ShardIteratorType="AFTER_SEQUENCE_NUMBER",
            SequenceNumber="9" * 30,
        )
    assert code(error) == "ValidationException"
    for iterator in ("not-an-iterator", "e30=", "W10="):
        with pytest.raises(ClientError) as error:
            streams.get_records(ShardIterator=iterator)
        assert code(error) == "ValidationException"
    # what botocore would refuse before sending, sent as a plain request
    request = urllib.request.Request(
        node.control_url,
        data=json.dumps({"ShardIterator": "x", "Limit": 0}).encode(),
        headers={
            "x-amz-target": "DynamoDBStreams_20120810.GetRecords",
            "content-type": "application/x-amz-json-1.0",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    answer = json.loads(refused.value.read())
    assert refused.value.code == 400 and answer["__type"].endswith("#ValidationException")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    operation=st.sampled_from(["ListStreams", "DescribeStream", "GetShardIterator", "GetRecords"]),
    body=st.dictionaries(
        st.sampled_from(
            [
                "StreamArn",
                "ShardId",
                "ShardIteratorType",
                "ShardIterator",
                "Limit",
                "SequenceNumber",
                "TableName",
                "ExclusiveStartStreamArn",
            ]
        ),
        _json,
    ),
)
def test_any_body_gets_an_answer_or_a_4xx(
    node: NodeProcess, operation: str, body: dict[str, Any]
) -> None:
    request = urllib.request.Request(
        node.control_url,
        data=json.dumps(body).encode(),
        headers={"x-amz-target": f"DynamoDBStreams_20120810.{operation}"},
    )
    try:
        with urllib.request.urlopen(request) as answer:
            assert answer.status == 200 and isinstance(json.loads(answer.read()), dict)
    except urllib.error.HTTPError as refused:
        assert refused.code == 400, refused.read()
        assert "#" in json.loads(refused.read())["__type"]
