"""Stream events and table streams in stackyard.yml and serverless.yml."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from stackyard.config.models import FunctionConfig, TableConfig
from stackyard.config.serverless import parse_serverless
from stackyard.storage.streams.mappings import StreamMapping, stream_mappings
from stackyard.storage.tables.declared import create_request

SERVERLESS = """\
service: shop
provider: {name: aws, runtime: python3.11}
functions:
  byArn:
    handler: h.f
    events:
      - stream:
          type: dynamodb
          arn: arn:aws:dynamodb:us-east-1:000000000000:table/orders/stream/2024-01-01T00:00:00.000
          batchSize: 5
          startingPosition: TRIM_HORIZON
  byGetAtt:
    handler: h.f
    events:
      - stream: {type: dynamodb, arn: {"Fn::GetAtt": [OrdersTable, StreamArn]}}
      - stream: {type: dynamodb, arn: {"Fn::ImportValue": elsewhere}}
      - stream: {type: kinesis, arn: arn:aws:kinesis:us-east-1:1:stream/x}
resources:
  Resources:
    OrdersTable:
      Type: AWS::DynamoDB::Table
      Properties:
        TableName: orders
        KeySchema: [{AttributeName: id, KeyType: HASH}]
        AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
        StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}
"""


def test_serverless_stream_and_s3_events() -> None:
    config, warnings = parse_serverless(SERVERLESS, Path("serverless.yml"), {}, {})
    assert config.tables["orders"].stream == "new_and_old_images"
    by_arn = config.functions["byArn"].events
    assert by_arn[0].stream is not None
    assert (by_arn[0].stream.table, by_arn[0].stream.batch_size) == ("orders", 5)
    assert by_arn[0].stream.starting_position == "TRIM_HORIZON"
    by_get_att = config.functions["byGetAtt"].events
    assert len(by_get_att) == 1 and by_get_att[0].stream is not None
    assert by_get_att[0].stream.table == "orders"
    joined = "\n".join(warnings)
    assert "functions.byGetAtt.events.stream.arn: not a DynamoDB stream ARN" in joined
    assert "Fn::ImportValue" in joined
    assert "stream: type 'kinesis' not supported yet" in joined
    mappings = stream_mappings(config.functions)
    assert mappings == [
        StreamMapping("byArn", "orders", 5, "TRIM_HORIZON"),
        StreamMapping("byGetAtt", "orders", 100, "LATEST"),
    ]


def test_stackyard_table_stream_becomes_a_stream_specification() -> None:
    table = TableConfig.model_validate({"hash_key": "id", "stream": "keys_only"})
    assert create_request("t", table)["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "KEYS_ONLY",
    }
    assert "StreamSpecification" not in create_request("t", TableConfig(hash_key="id"))
    with pytest.raises(ValidationError):
        TableConfig.model_validate({"hash_key": "id", "stream": "everything"})


@pytest.mark.parametrize(
    "event",
    [
        {"stream": {"table": "t", "batch_size": 0}},
        {"stream": {"table": "t", "starting_position": "AT_TIMESTAMP"}},
        {"stream": {"table": "t", "unknown": 1}},
        {"stream": {"table": "t"}, "schedule": "rate(1 minute)"},
        {"s3": {"bucket": "b"}},
    ],
)
def test_bad_events_are_refused(event: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FunctionConfig.model_validate({"handler": "h.f", "events": [event]})


def test_disabled_and_duplicate_subscriptions_make_one_mapping() -> None:
    config = FunctionConfig.model_validate(
        {
            "handler": "h.f",
            "events": [
                {"stream": {"table": "t"}},
                {"stream": {"table": "t", "batch_size": 7}},
                {"stream": {"table": "u", "enabled": False}},
            ],
        }
    )
    assert stream_mappings({"f": config}) == [StreamMapping("f", "t")]
