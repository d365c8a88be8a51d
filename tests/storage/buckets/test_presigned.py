"""Presigned URLs fetched with plain HTTP (SigV4 query auth checked, expiry enforced), and
virtual-hosted requests (``Host: <bucket>.localhost``)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import httpx
import pytest
from botocore.config import Config

from .conftest import CREDENTIALS, Endpoint


@pytest.fixture(params=["s3v4", "default"])
def signature(request: pytest.FixtureRequest) -> dict[str, Any]:
    """boto3 presigns S3 URLs with SigV2 in us-east-1 unless told ``s3v4``: both are tested."""
    return {"signature_version": "s3v4"} if request.param == "s3v4" else {}


@pytest.fixture
def s3(endpoint: Endpoint, signature: dict[str, Any]) -> Any:
    return endpoint.client(**signature)


@pytest.fixture
def bucket(s3: Any, bucket_name: str) -> str:
    s3.create_bucket(Bucket=bucket_name)
    return bucket_name


def test_presigned_get_and_put(s3: Any, bucket: str) -> None:
    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "up load.txt"}, ExpiresIn=300
    )
    assert httpx.put(put_url, content=b"sent by URL").status_code == 200
    get_url = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": "up load.txt", "ResponseContentType": "text/plain"},
        ExpiresIn=300,
    )
    response = httpx.get(get_url)
    assert response.status_code == 200
    assert response.content == b"sent by URL"
    assert response.headers["content-type"] == "text/plain"
    ranged = httpx.get(get_url, headers={"range": "bytes=0-3"})
    assert ranged.status_code == 206
    assert ranged.content == b"sent"


def test_presigned_missing_key(s3: Any, bucket: str) -> None:
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "nope"})
    response = httpx.get(url)
    assert response.status_code == 404
    assert "<Code>NoSuchKey</Code>" in response.text
    assert "<Key>nope</Key>" in response.text
    assert "<RequestId>" in response.text


def test_expired_url(stackyard: Endpoint, bucket_name: str, signature: dict[str, Any]) -> None:
    s3 = stackyard.client(**signature)
    s3.create_bucket(Bucket=bucket_name)
    s3.put_object(Bucket=bucket_name, Key="k", Body=b"x")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket_name, "Key": "k"}, ExpiresIn=1
    )
    time.sleep(2.1)
    response = httpx.get(url)
    assert response.status_code == 403
    assert "<Code>AccessDenied</Code>" in response.text
    assert "<Message>Request has expired</Message>" in response.text


def test_signature_is_checked(
    stackyard: Endpoint, bucket_name: str, signature: dict[str, Any]
) -> None:
    s3 = stackyard.client(**signature)
    s3.create_bucket(Bucket=bucket_name)
    s3.put_object(Bucket=bucket_name, Key="k", Body=b"x")
    s3.put_object(Bucket=bucket_name, Key="other", Body=b"secret")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket_name, "Key": "k"})
    assert httpx.get(url).status_code == 200
    tampered = url.replace("/k?", "/other?")
    response = httpx.get(tampered)
    assert response.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text
    wrong_secret = stackyard.client(**signature)
    wrong_secret._request_signer._credentials.secret_key = "not-the-node-secret"
    bad = wrong_secret.generate_presigned_url(
        "get_object", Params={"Bucket": bucket_name, "Key": "k"}
    )
    assert httpx.get(bad).status_code == 403
    # header-signed requests are accepted without checking the signature (documented)
    assert wrong_secret.get_object(Bucket=bucket_name, Key="k")["Body"].read() == b"x"


def virtual(url: str) -> tuple[str, str]:
    """The URL to connect to (127.0.0.1) and the Host header of a virtual-hosted URL."""
    parts = urlsplit(url)
    connect = parts._replace(netloc=f"127.0.0.1:{parts.port}")
    return urlunsplit(connect), parts.netloc


def test_virtual_hosted_requests(stackyard: Endpoint, bucket_name: str) -> None:
    port = urlsplit(stackyard.url).port
    s3 = stackyard.client()
    s3.create_bucket(Bucket=bucket_name)
    s3.put_object(Bucket=bucket_name, Key="dir/file.txt", Body=b"virtual")
    hosted = boto3.client(
        "s3",
        endpoint_url=f"http://localhost:{port}",
        config=Config(s3={"addressing_style": "virtual"}, signature_version="s3v4"),
        **CREDENTIALS,
    )
    url = hosted.generate_presigned_url(
        "get_object", Params={"Bucket": bucket_name, "Key": "dir/file.txt"}
    )
    assert urlsplit(url).hostname == f"{bucket_name}.localhost"
    connect, host = virtual(url)
    response = httpx.get(connect, headers={"host": host})
    assert response.status_code == 200
    assert response.content == b"virtual"
    hosted_v2 = boto3.client(
        "s3",
        endpoint_url=f"http://localhost:{port}",
        config=Config(s3={"addressing_style": "virtual"}),
        **CREDENTIALS,
    )
    url_v2 = hosted_v2.generate_presigned_url(
        "get_object", Params={"Bucket": bucket_name, "Key": "dir/file.txt"}
    )
    assert "AWSAccessKeyId=" in url_v2
    connect, host = virtual(url_v2)
    assert httpx.get(connect, headers={"host": host}).content == b"virtual"
    signed = (
        "AWS4-HMAC-SHA256 Credential=stackyard/20250101/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=0"
    )
    listing = httpx.get(
        f"http://127.0.0.1:{port}/?list-type=2",
        headers={"host": f"{bucket_name}.localhost:{port}", "authorization": signed},
    )
    assert listing.status_code == 200
    assert "<Key>dir/file.txt</Key>" in listing.text
    put = httpx.put(
        f"http://127.0.0.1:{port}/new.txt",
        content=b"put virtually",
        headers={"host": f"{bucket_name}.localhost:{port}"},
    )
    assert put.status_code == 200
    assert s3.get_object(Bucket=bucket_name, Key="new.txt")["Body"].read() == b"put virtually"
