"""ListObjectsV2 and ListObjects (v1) through boto3, against Stackyard and moto (parity)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import Endpoint

KEYS = [
    "a.txt",
    "photos/2023/jan/1.jpg",
    "photos/2023/jan/2.jpg",
    "photos/2023/feb/1.jpg",
    "photos/2024/mar/1.jpg",
    "photos/cover.jpg",
    "videos/clip 1.mp4",
    "videos/clip+2.mp4",
    "zebra",
    "ü/x",
]


@pytest.fixture
def s3(endpoint: Endpoint) -> Any:
    return endpoint.client()


@pytest.fixture
def bucket(s3: Any, bucket_name: str) -> str:
    s3.create_bucket(Bucket=bucket_name)
    for key in KEYS:
        s3.put_object(Bucket=bucket_name, Key=key, Body=key.encode())
    return bucket_name


def keys(answer: dict[str, Any]) -> list[str]:
    return [item["Key"] for item in answer.get("Contents", [])]


def prefixes(answer: dict[str, Any]) -> list[str]:
    return [item["Prefix"] for item in answer.get("CommonPrefixes", [])]


def test_everything_in_key_order(s3: Any, bucket: str) -> None:
    answer = s3.list_objects_v2(Bucket=bucket)
    assert keys(answer) == sorted(KEYS, key=lambda k: k.encode())
    assert answer["KeyCount"] == len(KEYS)
    assert answer["IsTruncated"] is False
    first = answer["Contents"][0]
    assert first["Size"] == len(b"a.txt")
    assert first["ETag"].startswith('"')
    assert first["StorageClass"] == "STANDARD"


def test_prefix_and_delimiter(s3: Any, bucket: str) -> None:
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert keys(top) == ["a.txt", "zebra"]
    assert prefixes(top) == ["photos/", "videos/", "ü/"]
    assert top["KeyCount"] == 5
    photos = s3.list_objects_v2(Bucket=bucket, Prefix="photos/", Delimiter="/")
    assert keys(photos) == ["photos/cover.jpg"]
    assert prefixes(photos) == ["photos/2023/", "photos/2024/"]
    deep = s3.list_objects_v2(Bucket=bucket, Prefix="photos/2023/")
    assert keys(deep) == [
        "photos/2023/feb/1.jpg",
        "photos/2023/jan/1.jpg",
        "photos/2023/jan/2.jpg",
    ]
    assert keys(s3.list_objects_v2(Bucket=bucket, Prefix="nothing")) == []
    videos = s3.list_objects_v2(Bucket=bucket, Prefix="videos/")
    assert keys(videos) == ["videos/clip 1.mp4", "videos/clip+2.mp4"]


def test_pagination_with_continuation_tokens(s3: Any, bucket: str) -> None:
    page = s3.list_objects_v2(Bucket=bucket, MaxKeys=3)
    assert page["IsTruncated"] is True
    assert page["KeyCount"] == 3
    assert page["MaxKeys"] == 3
    seen = keys(page)
    while page["IsTruncated"]:
        page = s3.list_objects_v2(
            Bucket=bucket, MaxKeys=3, ContinuationToken=page["NextContinuationToken"]
        )
        seen += keys(page)
    assert seen == sorted(KEYS, key=lambda k: k.encode())
    paginator = s3.get_paginator("list_objects_v2")
    pages = list(paginator.paginate(Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 2}))
    assert [k for p in pages for k in keys(p)] == ["a.txt", "zebra"]
    assert [c for p in pages for c in prefixes(p)] == ["photos/", "videos/", "ü/"]


def test_start_after(s3: Any, bucket: str) -> None:
    answer = s3.list_objects_v2(Bucket=bucket, StartAfter="videos/clip 1.mp4")
    assert keys(answer) == ["videos/clip+2.mp4", "zebra", "ü/x"]
    assert answer["StartAfter"] == "videos/clip 1.mp4"


def test_list_objects_v1_with_markers(s3: Any, bucket: str, endpoint: Endpoint) -> None:
    answer = s3.list_objects(Bucket=bucket, MaxKeys=4)
    assert answer["IsTruncated"] is True
    assert len(keys(answer)) == 4
    rest = s3.list_objects(Bucket=bucket, Marker=keys(answer)[-1])
    assert keys(answer) + keys(rest) == sorted(KEYS, key=lambda k: k.encode())
    if endpoint.name == "moto":
        return  # moto counts only keys against MaxKeys; AWS counts keys and common prefixes
    grouped = s3.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=2)
    assert keys(grouped) == ["a.txt"]
    assert prefixes(grouped) == ["photos/"]
    assert grouped["NextMarker"] == "photos/"
    following = s3.list_objects(Bucket=bucket, Delimiter="/", Marker="photos/")
    assert prefixes(following) == ["videos/", "ü/"]
    assert keys(following) == ["zebra"]
    paginator = s3.get_paginator("list_objects")
    pages = paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 3})
    assert [k for p in pages for k in keys(p)] == sorted(KEYS, key=lambda k: k.encode())


def test_encoding_type_url_in_the_raw_answer(s3: Any, bucket: str, endpoint: Endpoint) -> None:
    import httpx

    signed = (
        "AWS4-HMAC-SHA256 Credential=stackyard/20250101/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=0"
    )  # header signatures are not checked; the credential scope says "s3"
    response = httpx.get(
        f"{endpoint.url}/{bucket}",
        params={"list-type": "2", "prefix": "videos/", "encoding-type": "url"},
        headers={"authorization": signed},
    )
    assert response.status_code == 200
    assert "<Key>videos/clip%201.mp4</Key>" in response.text
    assert "<Key>videos/clip%2B2.mp4</Key>" in response.text


def test_listing_a_missing_bucket(s3: Any, bucket_name: str) -> None:
    with pytest.raises(s3.exceptions.NoSuchBucket):
        s3.list_objects_v2(Bucket=bucket_name)


def test_bad_continuation_token(s3: Any, bucket: str, endpoint: Endpoint) -> None:
    if endpoint.name == "moto":
        pytest.skip("moto lists from the start on a token it never issued; AWS refuses it")
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=bucket, ContinuationToken="%%%not-a-token")
    assert exc.value.response["Error"]["Code"] == "InvalidArgument"
