"""Buckets in a real node (``stackyard up`` subprocess): declared buckets, data kept across
restarts, and crash safety — kill -9 during a stream of PutObject loses no acknowledged write
and leaves no partial object visible."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from stackyard.testing import NodeProcess

STACK = """\
name: store
buckets:
  photos: {}
  eu-data: {region: eu-west-1}
  plain:
"""


def client(node: NodeProcess) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=node.control_url,
        aws_access_key_id="stackyard",
        aws_secret_access_key="stackyard",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5),
    )


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    path = tmp_path / "app" / "stackyard.yml"
    path.write_text(STACK)
    return path


def test_declared_buckets_and_restart(stack: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with NodeProcess(stack, data_dir=data) as node:
        node.wait_ready()
        s3 = client(node)
        names = sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
        assert names == ["eu-data", "photos", "plain"]
        assert s3.get_bucket_location(Bucket="eu-data")["LocationConstraint"] == "eu-west-1"
        s3.put_object(Bucket="photos", Key="cat.jpg", Body=b"meow", ContentType="image/jpeg")
        s3.create_bucket(Bucket="extra")
    with NodeProcess(stack, data_dir=data) as node:
        node.wait_ready()
        s3 = client(node)
        got = s3.get_object(Bucket="photos", Key="cat.jpg")
        assert got["Body"].read() == b"meow"
        assert got["ContentType"] == "image/jpeg"
        assert "extra" in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_kill_9_keeps_every_acknowledged_put(stack: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    acknowledged: dict[str, str] = {}
    attempted: set[str] = set()
    with NodeProcess(stack, data_dir=data) as node:
        node.wait_ready()
        s3 = client(node)
        stop = threading.Event()

        def writer(prefix: str) -> None:
            index = 0
            while not stop.is_set():
                key = f"{prefix}-{index:05d}"
                body = hashlib.sha256(key.encode()).digest() * (1 + (index % 7) * 4096)
                attempted.add(key)
                try:
                    s3.put_object(Bucket="photos", Key=key, Body=body)
                except Exception:
                    return
                acknowledged[key] = hashlib.md5(body).hexdigest()
                index += 1

        threads = [threading.Thread(target=writer, args=(p,)) for p in ("a", "b")]
        for thread in threads:
            thread.start()
        try:
            threading.Event().wait(2.0)
            assert node.process is not None
            node.process.kill()  # SIGKILL, mid-stream
            node.process.wait()
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
    assert len(acknowledged) > 5
    with NodeProcess(stack, data_dir=data) as node:
        node.wait_ready()
        s3 = client(node)
        listed = {
            item["Key"]: item["ETag"].strip('"')
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket="photos")
            for item in page.get("Contents", [])
        }
        for key, md5 in acknowledged.items():
            assert listed.get(key) == md5, key
            body = s3.get_object(Bucket="photos", Key=key)["Body"].read()
            assert hashlib.md5(body).hexdigest() == md5
        assert set(listed) <= attempted
        for key in set(listed) - set(acknowledged):  # written, answer lost: whole or absent
            body = s3.get_object(Bucket="photos", Key=key)["Body"].read()
            assert hashlib.md5(body).hexdigest() == listed[key]
    leftovers = [p for p in (data / "buckets").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
