"""Upload bodies as SDKs send them, over plain HTTP: aws-chunked (signed chunks, unsigned with a
checksum trailer), UNSIGNED-PAYLOAD, a signed payload hash; each checked."""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import Any

import httpx
import pytest

from .conftest import Endpoint

AUTH = (
    "AWS4-HMAC-SHA256 Credential=stackyard/20250101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + "0" * 64
)


def chunked(data: bytes, size: int, signed: bool, trailers: dict[str, str]) -> bytes:
    out = bytearray()
    signature = b";chunk-signature=" + b"f" * 64 if signed else b""
    for start in range(0, len(data), size):
        chunk = data[start : start + size]
        out += b"%x" % len(chunk) + signature + b"\r\n" + chunk + b"\r\n"
    out += b"0" + signature + b"\r\n"
    for name, value in trailers.items():
        out += f"{name}:{value}\r\n".encode()
    return bytes(out + b"\r\n")


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


@pytest.fixture
def bucket(stackyard: Endpoint, bucket_name: str) -> str:
    stackyard.client().create_bucket(Bucket=bucket_name)
    return bucket_name


def put(stackyard: Endpoint, bucket: str, key: str, body: bytes, **headers: str) -> Any:
    return httpx.put(
        f"{stackyard.url}/{bucket}/{key}",
        content=body,
        headers={"authorization": AUTH, "x-amz-date": "20250101T000000Z", **headers},
    )


def test_signed_aws_chunked(stackyard: Endpoint, bucket: str) -> None:
    data = bytes(range(256)) * 1000
    response = put(
        stackyard,
        bucket,
        "signed",
        chunked(data, 65536, True, {}),
        **{
            "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "content-encoding": "aws-chunked",
            "x-amz-decoded-content-length": str(len(data)),
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = stackyard.client().get_object(Bucket=bucket, Key="signed")
    assert got["Body"].read() == data
    assert "ContentEncoding" not in got  # aws-chunked is not stored as the object's encoding


def test_unsigned_chunked_with_crc32_trailer(stackyard: Endpoint, bucket: str) -> None:
    data = b"trailer checked " * 5000
    headers = {
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "content-encoding": "aws-chunked",
        "x-amz-trailer": "x-amz-checksum-crc32",
        "x-amz-decoded-content-length": str(len(data)),
    }
    good = chunked(data, 8192, False, {"x-amz-checksum-crc32": crc32(data)})
    response = put(stackyard, bucket, "trailer", good, **headers)
    assert response.status_code == 200, response.text
    assert response.headers["x-amz-checksum-crc32"] == crc32(data)
    bad = chunked(data, 8192, False, {"x-amz-checksum-crc32": crc32(b"other")})
    refused = put(stackyard, bucket, "bad-trailer", bad, **headers)
    assert refused.status_code == 400
    assert "<Code>BadDigest</Code>" in refused.text
    short = put(stackyard, bucket, "short", good[:-20], **headers)
    assert short.status_code == 400


def test_payload_hashes(stackyard: Endpoint, bucket: str) -> None:
    data = b"hashed body"
    unsigned = put(stackyard, bucket, "u", data, **{"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    assert unsigned.status_code == 200
    good = put(
        stackyard, bucket, "s", data, **{"x-amz-content-sha256": hashlib.sha256(data).hexdigest()}
    )
    assert good.status_code == 200
    bad = put(stackyard, bucket, "x", data, **{"x-amz-content-sha256": "0" * 64})
    assert bad.status_code == 400
    assert "<Code>XAmzContentSHA256Mismatch</Code>" in bad.text
    missing = httpx.get(
        f"{stackyard.url}/{bucket}/x", headers={"authorization": AUTH}
    )  # the refused body was not stored
    assert missing.status_code == 404


def test_error_documents(stackyard: Endpoint, bucket: str) -> None:
    response = httpx.get(f"{stackyard.url}/{bucket}/nope", headers={"authorization": AUTH})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/xml"
    assert response.headers["x-amz-request-id"]
    text = response.text
    for part in ("<Error>", "<Code>NoSuchKey</Code>", "<Key>nope</Key>", "<RequestId>"):
        assert part in text
    unsupported = httpx.get(f"{stackyard.url}/{bucket}?acl", headers={"authorization": AUTH})
    assert unsupported.status_code == 501
    assert "<Code>NotImplemented</Code>" in unsupported.text
    put(stackyard, bucket, "ten", b"0123456789")
    ranged = httpx.get(
        f"{stackyard.url}/{bucket}/ten", headers={"authorization": AUTH, "range": "bytes=10-"}
    )
    assert ranged.status_code == 416
    assert ranged.headers["content-range"] == "bytes */10"
    assert "<Code>InvalidRange</Code>" in ranged.text
    assert "<ActualObjectSize>10</ActualObjectSize>" in ranged.text
    malformed = httpx.post(
        f"{stackyard.url}/{bucket}?delete",
        content=b"<Delete><Object>",
        headers={"authorization": AUTH},
    )
    assert malformed.status_code == 400
    assert "<Code>MalformedXML</Code>" in malformed.text
    entity = httpx.post(
        f"{stackyard.url}/{bucket}?delete",
        content=b'<!DOCTYPE d [<!ENTITY a "x">]><Delete><Object><Key>&a;</Key></Object></Delete>',
        headers={"authorization": AUTH},
    )
    assert entity.status_code == 400
