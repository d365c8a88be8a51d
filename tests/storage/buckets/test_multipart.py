"""Multipart uploads through boto3 (client calls and the managed transfers of boto3.resource),
against Stackyard and moto (parity)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from .conftest import Endpoint

MIB = 1024 * 1024


@pytest.fixture
def s3(endpoint: Endpoint) -> Any:
    return endpoint.client()


@pytest.fixture
def bucket(s3: Any, bucket_name: str) -> str:
    s3.create_bucket(Bucket=bucket_name)
    return bucket_name


def s3_etag(parts: list[bytes]) -> str:
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts))
    return f'"{digest.hexdigest()}-{len(parts)}"'


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response: Any = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_multipart_upload(s3: Any, bucket: str) -> None:
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB), b"tail"]
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key="big.bin", ContentType="application/x-big", Metadata={"m": "1"}
    )
    upload_id = upload["UploadId"]
    listed = s3.list_multipart_uploads(Bucket=bucket)
    assert [(u["Key"], u["UploadId"]) for u in listed["Uploads"]] == [("big.bin", upload_id)]
    etags = []
    for number, data in enumerate(parts, start=1):
        answer = s3.upload_part(
            Bucket=bucket, Key="big.bin", UploadId=upload_id, PartNumber=number, Body=data
        )
        assert answer["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        etags.append(answer["ETag"])
    listed_parts = s3.list_parts(Bucket=bucket, Key="big.bin", UploadId=upload_id)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed_parts["Parts"]] == [
        (n, e, len(d)) for n, (e, d) in enumerate(zip(etags, parts, strict=True), start=1)
    ]
    page = s3.list_parts(Bucket=bucket, Key="big.bin", UploadId=upload_id, MaxParts=2)
    assert page["IsTruncated"] is True
    assert page["NextPartNumberMarker"] == 2
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="big.bin",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)]
        },
    )
    assert done["ETag"] == s3_etag(parts)
    got = s3.get_object(Bucket=bucket, Key="big.bin")
    assert got["ETag"] == s3_etag(parts)
    assert got["ContentType"] == "application/x-big"
    assert got["Metadata"] == {"m": "1"}
    assert got["Body"].read() == b"".join(parts)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    with pytest.raises(ClientError) as gone:
        s3.list_parts(Bucket=bucket, Key="big.bin", UploadId=upload_id)
    assert error_code(gone) == ("NoSuchUpload", 404)


def test_part_too_small(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    etags = [
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=n, Body=b"x" * 10)[
            "ETag"
        ]
        for n in (1, 2)
    ]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="k",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etags[0]},
                                       {"PartNumber": 2, "ETag": etags[1]}]},
        )  # fmt: skip
    assert error_code(exc) == ("EntityTooSmall", 400)


def test_a_single_small_part_is_fine(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"hi")[
        "ETag"
    ]
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="k",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert done["ETag"] == s3_etag([b"hi"])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"hi"


def test_invalid_part_and_order(s3: Any, bucket: str, endpoint: Endpoint) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    first = s3.upload_part(
        Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"a" * (5 * MIB)
    )["ETag"]
    second = s3.upload_part(
        Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=2, Body=b"b" * (5 * MIB)
    )["ETag"]  # both parts of full size: the order is the only fault below
    with pytest.raises(ClientError) as wrong_etag:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="k",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"' + "0" * 32 + '"'}]},
        )
    assert error_code(wrong_etag) == ("InvalidPart", 400)
    with pytest.raises(ClientError) as missing:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="k",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": first},
                                       {"PartNumber": 3, "ETag": second}]},
        )  # fmt: skip
    assert error_code(missing) == ("InvalidPart", 400)
    if endpoint.name == "moto":
        return  # moto completes parts listed out of order; AWS answers InvalidPartOrder
    with pytest.raises(ClientError) as order:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="k",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": second},
                                       {"PartNumber": 1, "ETag": first}]},
        )  # fmt: skip
    assert error_code(order) == ("InvalidPartOrder", 400)


def test_abort(s3: Any, bucket: str, endpoint: Endpoint) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id)
    if endpoint.name == "moto":
        return  # moto answers 500 to a part of an aborted upload; AWS answers NoSuchUpload
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=2, Body=b"x")
    assert error_code(exc) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as again:
        s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id)
    assert error_code(again) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="k")


def test_managed_transfers(endpoint: Endpoint, bucket: str, tmp_path: Path) -> None:
    data = os.urandom(12 * MIB + 123)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    resource = endpoint.resource()
    target = resource.Bucket(bucket)
    target.upload_file(str(source), "transfer.bin", Config=config)
    obj = resource.Object(bucket, "transfer.bin")
    assert obj.content_length == len(data)
    assert obj.e_tag.endswith('-3"')
    destination = tmp_path / "back.bin"
    target.download_file("transfer.bin", str(destination), Config=config)
    assert destination.read_bytes() == data
    # a managed copy over the threshold is UploadPartCopy with byte ranges
    resource.meta.client.copy(
        {"Bucket": bucket, "Key": "transfer.bin"}, bucket, "copied.bin", Config=config
    )
    copied = resource.meta.client.get_object(Bucket=bucket, Key="copied.bin")
    assert copied["Body"].read() == data
