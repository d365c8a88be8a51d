"""Buckets and objects through boto3, against Stackyard and moto (parity): the core operations
and their error shapes."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import Endpoint


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response: Any = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def s3(endpoint: Endpoint) -> Any:
    return endpoint.client()


@pytest.fixture
def bucket(s3: Any, bucket_name: str) -> str:
    s3.create_bucket(Bucket=bucket_name)
    return bucket_name


def test_bucket_lifecycle(s3: Any, bucket_name: str) -> None:
    s3.create_bucket(Bucket=bucket_name)
    assert bucket_name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    head = s3.head_bucket(Bucket=bucket_name)
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 200
    s3.delete_bucket(Bucket=bucket_name)
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=bucket_name)
    assert error_code(exc) == ("404", 404)
    with pytest.raises(s3.exceptions.NoSuchBucket) as missing:
        s3.delete_bucket(Bucket=bucket_name)
    assert error_code(missing) == ("NoSuchBucket", 404)


def test_create_bucket_with_location_constraint(s3: Any, bucket_name: str) -> None:
    s3.create_bucket(
        Bucket=bucket_name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    location = s3.get_bucket_location(Bucket=bucket_name)
    assert location["LocationConstraint"] == "eu-west-1"
    # AWS: outside us-east-1, re-creating a bucket you own is BucketAlreadyOwnedByYou (409)
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(
            Bucket=bucket_name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    assert error_code(exc) == ("BucketAlreadyOwnedByYou", 409)


def test_invalid_bucket_name(s3: Any, endpoint: Endpoint) -> None:
    if endpoint.name == "moto":
        pytest.skip("moto creates 'Not_Valid'; AWS's bucket naming rules refuse it (400)")
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket="Not_Valid")
    assert error_code(exc)[1] == 400


def test_delete_bucket_not_empty(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=bucket)
    assert error_code(exc) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket=bucket, Key="k")
    s3.delete_bucket(Bucket=bucket)


def test_put_get_head_delete(s3: Any, bucket: str) -> None:
    body = b"hello world" * 1000
    put = s3.put_object(
        Bucket=bucket,
        Key="dir/hello.txt",
        Body=body,
        ContentType="text/plain",
        ContentDisposition='attachment; filename="hello.txt"',
        CacheControl="max-age=60",
        Metadata={"owner": "me", "purpose": "test"},
    )
    etag = f'"{hashlib.md5(body).hexdigest()}"'
    assert put["ETag"] == etag
    got = s3.get_object(Bucket=bucket, Key="dir/hello.txt")
    assert got["Body"].read() == body
    assert got["ETag"] == etag
    assert got["ContentType"] == "text/plain"
    assert got["ContentDisposition"] == 'attachment; filename="hello.txt"'
    assert got["CacheControl"] == "max-age=60"
    assert got["Metadata"] == {"owner": "me", "purpose": "test"}
    assert got["ContentLength"] == len(body)
    assert isinstance(got["LastModified"], dt.datetime)
    head = s3.head_object(Bucket=bucket, Key="dir/hello.txt")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == etag
    assert head["Metadata"] == {"owner": "me", "purpose": "test"}
    s3.delete_object(Bucket=bucket, Key="dir/hello.txt")
    with pytest.raises(s3.exceptions.NoSuchKey) as exc:
        s3.get_object(Bucket=bucket, Key="dir/hello.txt")
    assert error_code(exc) == ("NoSuchKey", 404)
    assert exc.value.response["Error"]["Key"] == "dir/hello.txt"
    with pytest.raises(ClientError) as head_missing:
        s3.head_object(Bucket=bucket, Key="dir/hello.txt")
    assert error_code(head_missing) == ("404", 404)
    # deleting a missing key is no error (S3 answers 204)
    assert s3.delete_object(Bucket=bucket, Key="never")["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_empty_object_and_default_content_type(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["Body"].read() == b""
    assert got["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert got["ContentType"] == "binary/octet-stream"


def test_object_in_missing_bucket(s3: Any, bucket_name: str) -> None:
    with pytest.raises(s3.exceptions.NoSuchBucket) as exc:
        s3.put_object(Bucket=bucket_name, Key="k", Body=b"x")
    assert error_code(exc) == ("NoSuchBucket", 404)
    with pytest.raises(s3.exceptions.NoSuchBucket):
        s3.get_object(Bucket=bucket_name, Key="k")


def test_overwrite_replaces(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"one", Metadata={"v": "1"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"two")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"two"
    assert got["Metadata"] == {}


def test_content_md5(s3: Any, bucket: str, endpoint: Endpoint) -> None:
    if endpoint.name == "moto":
        pytest.skip("moto stores a body whose Content-MD5 differs; AWS answers BadDigest")
    body = b"checked"
    good = base64.b64encode(hashlib.md5(body).digest()).decode()
    s3.put_object(Bucket=bucket, Key="k", Body=body, ContentMD5=good)
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=body, ContentMD5=bad)
    assert error_code(exc) == ("BadDigest", 400)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == body


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256", "SHA1"])
def test_flexible_checksums(s3: Any, bucket: str, algorithm: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"data" * 100, ChecksumAlgorithm=algorithm)
    assert put[f"Checksum{algorithm}"]
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"data" * 100
    assert got[f"Checksum{algorithm}"] == put[f"Checksum{algorithm}"]


def test_wrong_checksum_is_refused(s3: Any, bucket: str, endpoint: Endpoint) -> None:
    if endpoint.name == "moto":
        pytest.skip("moto does not check x-amz-checksum-*; AWS refuses a mismatch (400)")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"data", ChecksumCRC32="AAAAAA==")
    assert error_code(exc)[1] == 400


def test_ranges(s3: Any, bucket: str) -> None:
    body = bytes(range(256)) * 4
    s3.put_object(Bucket=bucket, Key="k", Body=body)
    for header, expected, content_range in [
        ("bytes=0-9", body[:10], "bytes 0-9/1024"),
        ("bytes=1000-", body[1000:], "bytes 1000-1023/1024"),
        ("bytes=-24", body[-24:], "bytes 1000-1023/1024"),
        ("bytes=1000-5000", body[1000:], "bytes 1000-1023/1024"),
    ]:
        got = s3.get_object(Bucket=bucket, Key="k", Range=header)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["ContentRange"] == content_range
        assert got["Body"].read() == expected
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k", Range="bytes=2000-")
    assert error_code(exc) == ("InvalidRange", 416)


def test_conditional_get(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"x")["ETag"]
    modified = s3.head_object(Bucket=bucket, Key="k")["LastModified"]
    assert s3.get_object(Bucket=bucket, Key="k", IfMatch=etag)["Body"].read() == b"x"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k", IfMatch='"0000"')
    assert error_code(exc) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as not_modified:
        s3.get_object(Bucket=bucket, Key="k", IfNoneMatch=etag)
    assert error_code(not_modified) == ("304", 304)
    with pytest.raises(ClientError) as since:
        s3.get_object(Bucket=bucket, Key="k", IfModifiedSince=modified)
    assert error_code(since) == ("304", 304)
    earlier = modified - dt.timedelta(days=1)
    assert s3.get_object(Bucket=bucket, Key="k", IfModifiedSince=earlier)["Body"].read() == b"x"
    with pytest.raises(ClientError) as unmodified:
        s3.get_object(Bucket=bucket, Key="k", IfUnmodifiedSince=earlier)
    assert error_code(unmodified) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as head:
        s3.head_object(Bucket=bucket, Key="k", IfNoneMatch=etag)
    assert error_code(head) == ("304", 304)


def test_delete_objects(s3: Any, bucket: str, endpoint: Endpoint) -> None:
    for key in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    answer = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "missing"}]}
    )
    assert sorted(d["Key"] for d in answer["Deleted"]) == ["a", "b", "missing"]
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "c"}], "Quiet": True})
    # AWS: quiet mode lists only the errors; moto lists the deleted keys too
    if endpoint.name != "moto":
        assert "Deleted" not in quiet
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_copy_object(s3: Any, bucket: str, endpoint: Endpoint) -> None:
    s3.put_object(
        Bucket=bucket, Key="src", Body=b"copy me", ContentType="text/plain", Metadata={"a": "1"}
    )
    copied = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"copy me").hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == b"copy me"
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"a": "1"}
    s3.copy_object(
        Bucket=bucket,
        Key="dst",
        CopySource=f"{bucket}/src",
        MetadataDirective="REPLACE",
        Metadata={"b": "2"},
        ContentType="application/json",
    )
    replaced = s3.head_object(Bucket=bucket, Key="dst")
    assert replaced["Metadata"] == {"b": "2"}
    assert replaced["ContentType"] == "application/json"
    with pytest.raises(ClientError) as itself:
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert error_code(itself) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as missing:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "nope"})
    assert error_code(missing) == ("NoSuchKey", 404)
    if endpoint.name == "moto":
        return  # moto ignores x-amz-copy-source-if-*; AWS answers 412 PreconditionFailed
    with pytest.raises(ClientError) as failed:
        s3.copy_object(
            Bucket=bucket,
            Key="x",
            CopySource={"Bucket": bucket, "Key": "src"},
            CopySourceIfMatch='"0000"',
        )
    assert error_code(failed) == ("PreconditionFailed", 412)


@pytest.mark.parametrize(
    "key", ["with space", "a+b", "ünïcödé/ключ", "a%2Fb", "x//y", "dots/../up", "q?x=1&y", "~t"]
)
def test_unusual_keys(s3: Any, bucket: str, key: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
