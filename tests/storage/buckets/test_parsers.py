"""Property tests: the aws-chunked decoder, byte ranges, and listing (against a model of S3's
listing rules, through the SQLite index)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackyard.storage.buckets.body import ChunkedDecoder
from stackyard.storage.buckets.errors import IncompleteBody, InvalidRange
from stackyard.storage.buckets.http import parse_range
from stackyard.storage.buckets.scan import key_successor
from stackyard.storage.buckets.sqlite_store import SqliteMetadataStore
from stackyard.storage.buckets.store import ObjectInfo


def encode_chunked(data: bytes, sizes: list[int], signed: bool, trailer: bool) -> bytes:
    out = bytearray()
    position = 0
    for size in itertools.cycle(sizes):
        if position >= len(data):
            break
        chunk = data[position : position + size]
        position += len(chunk)
        header = b"%x" % len(chunk) + (b";chunk-signature=" + b"a" * 64 if signed else b"")
        out += header + b"\r\n" + chunk + b"\r\n"
    out += b"0" + (b";chunk-signature=" + b"b" * 64 if signed else b"") + b"\r\n"
    if trailer:
        out += b"x-amz-checksum-crc32:AAAAAA==\r\n"
    out += b"\r\n"
    return bytes(out)


@given(
    data=st.binary(max_size=3000),
    sizes=st.lists(st.integers(1, 700), min_size=1, max_size=5),
    cuts=st.lists(st.integers(1, 400), min_size=1, max_size=10),
    signed=st.booleans(),
    trailer=st.booleans(),
)
def test_chunked_decoder_round_trip(
    data: bytes, sizes: list[int], cuts: list[int], signed: bool, trailer: bool
) -> None:
    encoded = encode_chunked(data, sizes, signed, trailer)
    decoder = ChunkedDecoder()
    out = []
    position = 0
    for cut in itertools.cycle(cuts):  # fed in arbitrary pieces, as a server hands them over
        if position >= len(encoded):
            break
        out += decoder.feed(encoded[position : position + cut])
        position += cut
    decoder.finish()
    assert b"".join(out) == data
    assert decoder.trailers == ({"x-amz-checksum-crc32": "AAAAAA=="} if trailer else {})


@given(st.binary(min_size=1, max_size=200), st.integers(0, 199))
def test_chunked_decoder_refuses_a_cut_body(data: bytes, cut: int) -> None:
    encoded = encode_chunked(data, [64], True, False)
    decoder = ChunkedDecoder()
    decoder.feed(encoded[: min(cut, len(encoded) - 3)])
    with pytest.raises(IncompleteBody):
        decoder.finish()


@given(st.text(max_size=40))
def test_range_parser_never_crashes(header: str) -> None:
    try:
        span = parse_range(header, 100)
    except InvalidRange:
        return
    if span is not None:
        first, last = span
        assert 0 <= first <= last < 100


@given(st.integers(0, 50), st.integers(0, 60), st.integers(0, 60))
def test_ranges_follow_rfc_7233(size: int, first: int, last: int) -> None:
    header = f"bytes={first}-{last}"
    if last < first:
        assert parse_range(header, size) is None
    elif first >= size:
        with pytest.raises(InvalidRange):
            parse_range(header, size)
    else:
        assert parse_range(header, size) == (first, min(last, size - 1))


@given(st.text(max_size=5), st.text(max_size=5))
def test_key_successor_bounds_every_extension(prefix: str, suffix: str) -> None:
    upper = key_successor(prefix)
    try:
        extended = (prefix + suffix).encode()
    except UnicodeEncodeError:  # lone surrogates are not keys
        return
    if upper is None:
        assert set(prefix) <= {"\U0010ffff"}
    else:
        assert extended < upper.encode()
        assert not upper.startswith(prefix) or prefix == ""


def model_listing(keys: list[str], prefix: str, delimiter: str) -> tuple[list[str], list[str]]:
    objects, prefixes = [], []
    for key in sorted(keys, key=lambda k: k.encode()):
        if not key.startswith(prefix):
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut < 0:
            objects.append(key)
        else:
            common = key[: cut + len(delimiter)]
            if common not in prefixes:
                prefixes.append(common)
    return objects, prefixes


KEY_CHARS = st.sampled_from(["a", "b", "/", "-", "é", "z", "\U0001f600", "."])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> SqliteMetadataStore:
    path: Path = tmp_path_factory.mktemp("index") / "buckets.sqlite3"
    index = SqliteMetadataStore(path)
    asyncio.run(index.open())
    return index


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    keys=st.lists(st.text(KEY_CHARS, min_size=1, max_size=6), max_size=25, unique=True),
    prefix=st.text(KEY_CHARS, max_size=2),
    delimiter=st.sampled_from(["", "/", "-", "é/"]),
    page=st.integers(1, 7),
)
def test_listing_pages_match_the_model(
    store: SqliteMetadataStore, keys: list[str], prefix: str, delimiter: str, page: int
) -> None:
    bucket = uuid.uuid4().hex

    async def run() -> tuple[list[str], list[str]]:
        await store.create_bucket(bucket, "us-east-1")
        for key in keys:
            await store.put_object(ObjectInfo(bucket, key, uuid.uuid4().hex, 0, "e", 0.0))
        objects: list[str] = []
        prefixes: list[str] = []
        after = ""
        while True:
            result = await store.list_objects(bucket, prefix, delimiter, after, page)
            objects += [o.key for o in result.objects]
            prefixes += list(result.prefixes)
            assert len(result.objects) + len(result.prefixes) <= page
            if not result.truncated:
                return objects, prefixes
            assert result.next_marker is not None
            after = result.next_marker

    assert asyncio.run(run()) == model_listing(keys, prefix, delimiter)
