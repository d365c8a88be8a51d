"""Buckets in a real node (``stackyard up`` subprocess): declared buckets, data kept across
restarts, and crash safety — kill -9 during a stream of PutObject loses no acknowledged write
and leaves no partial object visible."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest

from stackyard.testing import NodeProcess

STACK = """\
name: store
buckets:
  photos: {}
  eu-data: {region: eu-west-1}
  plain:
"""


def client(node: NodeProcess) -> Any:
    return node.aws_client("s3", read_timeout=5)


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


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_large_bodies_stream(stack: Path, tmp_path: Path) -> None:
    """A 256 MiB PUT and GET move through the node without it holding the body in memory."""
    import httpx

    size, piece = 256 * 1024 * 1024, b"\xab" * (1024 * 1024)
    with NodeProcess(stack, data_dir=tmp_path / "data") as node:
        node.wait_ready()
        assert node.process is not None
        before = _peak_rss_kib(node.process.pid)
        url = client(node).generate_presigned_url(
            "put_object", Params={"Bucket": "photos", "Key": "huge"}, ExpiresIn=300
        )
        put = httpx.put(url, content=(piece for _ in range(size // len(piece))), timeout=120)
        assert put.status_code == 200
        get_url = client(node).generate_presigned_url(
            "get_object", Params={"Bucket": "photos", "Key": "huge"}, ExpiresIn=300
        )
        received = 0
        with httpx.stream("GET", get_url, timeout=120) as response:
            for chunk in response.iter_bytes():
                received += len(chunk)
        assert received == size
        grown_mib = (_peak_rss_kib(node.process.pid) - before) / 1024
        assert grown_mib < 64, f"the node's peak memory grew by {grown_mib:.0f} MiB"
