"""serverless.yml ``resources``: DynamoDB tables and S3 buckets become declared ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard.config import ConfigError
from stackyard.config.serverless import parse_serverless

DOC = """\
service: shop
provider:
  name: aws
  runtime: python3.11
  stage: ${opt:stage, 'dev'}
  environment:
    TABLE: ${self:service}-items-${sls:stage}
functions:
  f: {handler: h.f}
resources:
  Resources:
    ItemsTable:
      Type: AWS::DynamoDB::Table
      Properties:
        TableName: ${self:provider.environment.TABLE}
        BillingMode: PAY_PER_REQUEST
        AttributeDefinitions:
          - {AttributeName: id, AttributeType: S}
          - {AttributeName: sku, AttributeType: S}
          - {AttributeName: created, AttributeType: N}
        KeySchema:
          - {AttributeName: id, KeyType: HASH}
          - {AttributeName: created, KeyType: RANGE}
        GlobalSecondaryIndexes:
          - IndexName: by-sku
            KeySchema: [{AttributeName: sku, KeyType: HASH}]
            Projection: {ProjectionType: INCLUDE, NonKeyAttributes: [price]}
        LocalSecondaryIndexes:
          - IndexName: by-sku-local
            KeySchema:
              - {AttributeName: id, KeyType: HASH}
              - {AttributeName: sku, KeyType: RANGE}
            Projection: {ProjectionType: KEYS_ONLY}
        TimeToLiveSpecification: {AttributeName: expires, Enabled: true}
        StreamSpecification: {StreamViewType: NEW_IMAGE}
    Uploads:
      Type: AWS::S3::Bucket
      Properties:
        BucketName: shop-uploads-${sls:stage}
    Assets:
      Type: AWS::S3::Bucket
    Topic:
      Type: AWS::SNS::Topic
  Outputs:
    TableName: {Value: x}
"""


def test_tables_and_buckets_are_declared() -> None:
    config, warnings = parse_serverless(DOC, Path("serverless.yml"), {}, {"stage": "prod"})
    table = config.tables["shop-items-prod"]
    assert (table.hash_key, table.range_key) == ("id", "created")
    assert table.attributes == {"id": "S", "sku": "S", "created": "N"}
    by_sku = table.indexes["by-sku"]
    assert (by_sku.hash_key, by_sku.range_key, by_sku.local) == ("sku", None, False)
    assert by_sku.projection == ["price"]
    local = table.indexes["by-sku-local"]
    assert (local.local, local.range_key, local.projection) == (True, "sku", "keys_only")
    assert table.ttl == "expires" and table.billing_mode == "PAY_PER_REQUEST"
    assert table.stream == "new_image"
    assert set(config.buckets) == {"shop-uploads-prod", "shop-prod-assets"}
    joined = "\n".join(warnings)
    for expected in (
        "resources.Resources.Topic: resource type 'AWS::SNS::Topic' not supported yet",
        "resources.Outputs: not used",
    ):
        assert expected in joined, warnings


def test_a_table_without_a_key_schema_is_refused() -> None:
    text = DOC.replace("        KeySchema:\n          - {AttributeName: id, KeyType: HASH}\n", "")
    text = text.replace("          - {AttributeName: created, KeyType: RANGE}\n", "", 1)
    with pytest.raises(ConfigError) as info:
        parse_serverless(text, Path("serverless.yml"), {}, {})
    assert "tables.shop-items-dev.hash_key" in str(info.value)


NOTIFIED = """\
service: shop
provider: {name: aws, runtime: python3.11}
functions:
  resize-image: {handler: h.resize}
  thumb: {handler: h.thumb}
resources:
  Resources:
    Photos:
      Type: AWS::S3::Bucket
      Properties:
        BucketName: shop-photos
        NotificationConfiguration:
          LambdaConfigurations:
            - Event: s3:ObjectCreated:*
              Function: !GetAtt ResizeDashimageLambdaFunction.Arn
              Filter:
                S3Key:
                  Rules:
                    - {Name: prefix, Value: uploads/}
                    - {Name: Suffix, Value: .jpg}
                    - {Name: size, Value: "1"}
            - Event: s3:ObjectRemoved:*
              Function: arn:aws:lambda:us-east-1:123456789012:function:shop-dev-thumb
            - Event: s3:ObjectCreated:*
              Function: {"Fn::GetAtt": [ElsewhereLambdaFunction, Arn]}
          QueueConfigurations:
            - {Event: "s3:ObjectCreated:*", Queue: !Ref Queue}
    Queue:
      Type: AWS::SQS::Queue
"""


def test_bucket_notifications_become_s3_events_of_the_functions_they_name() -> None:
    config, warnings = parse_serverless(NOTIFIED, Path("serverless.yml"), {}, {})
    assert set(config.buckets) == {"shop-photos"}
    (resize,) = config.functions["resize-image"].events
    assert resize.s3 is not None
    assert (resize.s3.bucket, resize.s3.event, resize.s3.existing) == (
        "shop-photos",
        "s3:ObjectCreated:*",
        True,
    )
    assert (resize.s3.prefix, resize.s3.suffix) == ("uploads/", ".jpg")
    (thumb,) = config.functions["thumb"].events
    assert thumb.s3 is not None and thumb.s3.event == "s3:ObjectRemoved:*"
    joined = "\n".join(warnings)
    for expected in (
        "LambdaConfigurations[0].Filter: rule {'Name': 'size', 'Value': '1'} not understood",
        "LambdaConfigurations[2].Function: not a function of this service, ignored",
        "NotificationConfiguration.QueueConfigurations: only function notifications",
    ):
        assert expected in joined, warnings


def test_a_notification_with_a_bad_event_names_the_field() -> None:
    text = NOTIFIED.replace("Event: s3:ObjectRemoved:*", "Event: s3:ObjectRestore:*")
    with pytest.raises(ConfigError) as info:
        parse_serverless(text, Path("serverless.yml"), {}, {})
    assert "functions.thumb.events" in str(info.value) and "ObjectRestore" in str(info.value)
