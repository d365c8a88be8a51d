"""Which AWS service a request on the control port is for."""

from __future__ import annotations

from typing import Any

import pytest

from stackyard.storage.dispatch import aws_service

SIGNED = (
    b"AWS4-HMAC-SHA256 Credential=stackyard/20261127/us-east-1/{service}/aws4_request, "
    b"SignedHeaders=host;x-amz-date, Signature=abc"
)


def scope(headers: dict[bytes, bytes], query: bytes = b"") -> dict[str, Any]:
    return {"type": "http", "headers": list(headers.items()), "query_string": query}


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ({b"x-amz-target": b"DynamoDB_20120810.PutItem"}, b"", ("dynamodb", None)),
        ({b"x-amz-target": b"DynamoDBStreams_20120810.GetRecords"}, b"", ("dynamodbstreams", None)),
        ({b"authorization": SIGNED.replace(b"{service}", b"s3")}, b"", ("s3", None)),
        ({b"authorization": SIGNED.replace(b"{service}", b"lambda")}, b"", ("lambda", None)),
        (
            {},
            b"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=stackyard%2F20261127%2F"
            b"us-east-1%2Fs3%2Faws4_request&X-Amz-Signature=abc",
            ("s3", None),
        ),
        ({}, b"AWSAccessKeyId=stackyard&Signature=abc%3D&Expires=1795813573", ("s3", None)),
        ({b"host": b"photos.localhost:4566"}, b"", ("s3", b"photos")),
        ({b"host": b"my.site.s3.us-east-1.example:80"}, b"", ("s3", b"my.site")),
        (
            {b"host": b"photos.localhost", b"authorization": SIGNED.replace(b"{service}", b"s3")},
            b"",
            ("s3", b"photos"),
        ),
        ({b"host": b"127.0.0.1:4566"}, b"", (None, None)),
        ({b"host": b"localhost:4566"}, b"", (None, None)),
        ({b"authorization": b"Bearer abc"}, b"", (None, None)),
        ({}, b"X-Amz-Credential=broken", (None, None)),
    ],
)
def test_services_are_told_apart(
    headers: dict[bytes, bytes], query: bytes, expected: tuple[str | None, bytes | None]
) -> None:
    assert aws_service(scope(headers, query)) == expected
