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
