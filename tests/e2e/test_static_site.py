"""A bucket served as a static site by a real node: files uploaded with boto3, fetched through
the gateway (index and error documents, validators and 304s, ranges, the response cache), and
the declared bucket and table shown by ``stackyard status``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from stackyard.testing import NodeProcess

STACK = """
name: site
buckets:
  www: {}
tables:
  pages: {hash_key: id}
api:
  routes:
    - {path: /, bucket: www}
    - {path: "/{proxy+}", bucket: www, error: 404.html, cache: 60}
    - {path: "/raw/{proxy+}", bucket: www}
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    root = tmp_path_factory.mktemp("static-site")
    (root / "stackyard.yml").write_text(STACK)
    with NodeProcess(root / "stackyard.yml", data_dir=root / "data") as running:
        running.wait_ready(60)
        yield running


@pytest.fixture(scope="module")
def s3(node: NodeProcess) -> Any:
    client = boto3.client(
        "s3",
        endpoint_url=node.control_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}),
    )
    client.put_object(Bucket="www", Key="index.html", Body=b"<h1>home</h1>",
                      ContentType="text/html")  # fmt: skip
    client.put_object(Bucket="www", Key="404.html", Body=b"<h1>lost</h1>", ContentType="text/html")
    client.put_object(Bucket="www", Key="blog/index.html", Body=b"<h1>blog</h1>",
                      ContentType="text/html")  # fmt: skip
    client.put_object(Bucket="www", Key="app.css", Body=b"body{color:red}", ContentType="text/css",
                      CacheControl="public, max-age=86400")  # fmt: skip
    return client


def test_files_index_and_error_documents(node: NodeProcess, s3: Any) -> None:
    with httpx.Client(base_url=node.gateway_url, timeout=10) as http:
        home = http.get("/")
        assert (home.status_code, home.text) == (200, "<h1>home</h1>")
        assert home.headers["content-type"] == "text/html"
        assert home.headers["cache-control"] == "public, max-age=60"
        css = http.get("/app.css")
        assert (css.status_code, css.text) == (200, "body{color:red}")
        assert css.headers["cache-control"] == "public, max-age=86400"
        head = s3.head_object(Bucket="www", Key="app.css")
        assert css.headers["etag"] == head["ETag"]
        assert http.get("/blog/").text == "<h1>blog</h1>"
        redirect = http.get("/blog")
        assert (redirect.status_code, redirect.headers["location"]) == (302, "/blog/")
        missing = http.get("/nope.html")
        assert (missing.status_code, missing.text) == (404, "<h1>lost</h1>")
        no_error_document = http.get("/raw/nope.html")
        assert no_error_document.status_code == 404
        assert no_error_document.json()["error"]["code"] == "NotFound"


def test_validators_and_ranges(node: NodeProcess, s3: Any) -> None:
    with httpx.Client(base_url=node.gateway_url, timeout=10) as http:
        for path in ("/raw/app.css", "/app.css"):  # from the bucket, and from the cache
            first = http.get(path)
            etag, modified = first.headers["etag"], first.headers["last-modified"]
            again = http.get(path, headers={"If-None-Match": etag})
            assert (again.status_code, again.content) == (304, b""), path
            assert again.headers["etag"] == etag
            since = http.get(path, headers={"If-Modified-Since": modified})
            assert since.status_code == 304, path
            part = http.get(path, headers={"Range": "bytes=5-9"})
            assert (part.status_code, part.text) == (206, "color"), path
            assert part.headers["content-range"] == "bytes 5-9/15"


def test_cached_route_serves_hits_until_the_cache_is_flushed(node: NodeProcess, s3: Any) -> None:
    s3.put_object(Bucket="www", Key="news.html", Body=b"v1", ContentType="text/html")
    with httpx.Client(base_url=node.gateway_url, timeout=10) as http:
        assert http.get("/news.html").headers["x-cache"] == "miss"
        s3.put_object(Bucket="www", Key="news.html", Body=b"v2", ContentType="text/html")
        hit = http.get("/news.html")
        assert (hit.headers["x-cache"], hit.text) == ("hit", "v1")
        assert http.get("/raw/news.html").text == "v2"  # the uncached route reads the bucket
        flushed = httpx.delete(f"{node.control_url}/_stackyard/api/cache", timeout=10)
        assert flushed.status_code == 200
        fresh = http.get("/news.html")
        assert (fresh.headers["x-cache"], fresh.text) == ("miss", "v2")


def test_status_shows_declared_tables_and_buckets(node: NodeProcess) -> None:
    doc = node.status()
    assert doc["buckets"] == [{"name": "www", "region": "us-east-1"}]
    assert [t["name"] for t in doc["tables"]] == ["pages"]
    assert {r["target"] for r in doc["routes"] if r["integration"] == "bucket"} == {"www"}
    shown = subprocess.run(
        [sys.executable, "-m", "stackyard", "status", "--url", node.control_url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "www" in shown and "pages" in shown and "bucket www" in shown
