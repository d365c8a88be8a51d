"""The span store's fast write path: the JSON a span is stored as, dependency links worked out
per batch, and the writer's linger (few large commits, yet ``flush`` and ``stop`` stay prompt)."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stackyard.telemetry import span_writer
from stackyard.telemetry import spans as span_store
from stackyard.telemetry.model import Endpoint, Span
from stackyard.telemetry.worker import SqliteWorker

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
T = "1" * 32


def test_to_json_matches_to_zipkin_for_every_field_combination() -> None:
    local = Endpoint("gateway")
    remote = Endpoint("backend", "127.0.0.1", "::1", 8000)
    for i in range(256):
        item = Span(
            T,
            "b" * 16,
            'GET /x"é\n' if i & 1 else "",
            "c" * 16 if i & 2 else None,
            "CLIENT" if i & 4 else None,
            123 if i & 8 else None,
            5 if i & 16 else None,
            local if i & 32 else Endpoint() if i & 64 else None,
            remote if i & 64 else None,
            {"a": 'b"\\', "error": "x"} if i & 128 else {},
            [(1, "cs")] if i & 1 else [],
            bool(i & 2),
            bool(i & 4),
        )
        assert item.to_json() == _encode(item.to_zipkin())


@given(
    name=st.text(),
    service=st.text(),
    tags=st.dictionaries(st.text(), st.text(), max_size=4),
    notes=st.lists(st.tuples(st.integers(0, 2**62), st.text()), max_size=3),
)
def test_to_json_escapes_any_text(
    name: str, service: str, tags: dict[str, str], notes: list[tuple[int, str]]
) -> None:
    item = Span(T, "b" * 16, name, local_endpoint=Endpoint(service), tags=tags, annotations=notes)
    assert item.to_json() == _encode(item.to_zipkin())
    assert json.loads(item.to_json()) == item.to_zipkin()


def _spans() -> list[Span]:
    def make(sid: str, service: str, parent: str | None, kind: str | None, **kw: object) -> Span:
        remote = kw.pop("remote", None)
        return Span(
            T,
            sid * 16,
            "op",
            parent * 16 if parent else None,
            kind,
            1_000 + len(sid),
            10,
            Endpoint(service),
            Endpoint(str(remote)) if remote else None,
            {"error": "boom"} if kw.pop("error", False) else {},
            shared=bool(kw.pop("shared", False)),
        )

    return [
        make("a", "web", None, "SERVER"),
        make("b", "web", "a", "CLIENT", remote="api"),
        make("c", "api", "b", "SERVER"),
        make("d", "api", "c", "CLIENT", remote="postgres"),
        make("e", "api", "c", "CLIENT", error=True),
        make("f", "auth", "e", "SERVER"),
        make("9", "front", None, "CLIENT", remote="back"),
        make("9", "back", None, "SERVER", shared=True),
        make("8", "queue", "f", "CONSUMER", remote="auth"),
        make("7", "lonely", "0", "SERVER", remote="caller"),
    ]


def _calls_after(batches: list[list[Span]]) -> list[tuple[object, ...]]:
    writer = span_writer.SpanWriter()
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(span_writer.SCHEMA)
    for batch in batches:
        conn.execute("BEGIN")
        writer.write(conn, span_writer.encode(batch))  # as shipped to the writer process
        conn.execute("COMMIT")
    return conn.execute("SELECT * FROM calls ORDER BY trace_id, call_key").fetchall()


def test_links_do_not_depend_on_how_spans_are_batched() -> None:
    spans = _spans()
    expected = _calls_after([[item] for item in spans])
    assert {(row[3], row[4]) for row in expected} == {
        ("web", "api"),
        ("api", "postgres"),
        ("api", "auth"),
        ("front", "back"),
        ("auth", "queue"),
        ("caller", "lonely"),
    }
    assert _calls_after([spans]) == expected
    assert _calls_after([[item] for item in reversed(spans)]) == expected
    assert _calls_after([spans, spans]) == expected  # re-sent spans replace themselves
    rng = random.Random(4)
    for _ in range(30):
        shuffled = spans[:]
        rng.shuffle(shuffled)
        cut = sorted(rng.sample(range(1, len(shuffled)), 3))
        parts = [shuffled[i:j] for i, j in zip([0, *cut], [*cut, len(shuffled)], strict=True)]
        assert _calls_after(parts) == expected


async def test_linger_batches_yet_flush_and_stop_are_prompt(tmp_path: Path) -> None:
    batches: list[int] = []

    def apply(conn: sqlite3.Connection, items: list[int]) -> None:
        batches.append(len(items))
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in items])

    worker: SqliteWorker[int] = SqliteWorker(
        tmp_path / "w.sqlite3", "CREATE TABLE t (v INTEGER);", apply, name="t", linger=30.0
    )
    await worker.start()
    for i in range(100):
        worker.put(i)
        await asyncio.sleep(0)
    started = time.perf_counter()
    await worker.flush()  # a call does not wait for the linger
    assert time.perf_counter() - started < 5
    assert batches == [100]  # one commit for the trickle
    assert await worker.read(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]) == 100
    worker.put_many(list(range(50)))
    started = time.perf_counter()
    await worker.stop()  # commits what is queued without waiting for the linger
    assert time.perf_counter() - started < 5
    conn = sqlite3.connect(tmp_path / "w.sqlite3")
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 150
    conn.close()


async def test_a_full_batch_does_not_wait_for_the_linger(tmp_path: Path) -> None:
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    def apply(conn: sqlite3.Connection, items: list[int]) -> None:
        loop.call_soon_threadsafe(done.set)

    worker: SqliteWorker[int] = SqliteWorker(
        tmp_path / "w.sqlite3", "", apply, name="t", linger=30.0, max_batch=10
    )
    await worker.start()
    try:
        worker.put_many(list(range(10)))
        await asyncio.wait_for(done.wait(), 5)
    finally:
        await worker.stop()


@pytest.mark.parametrize("remote", [None, Endpoint("db", port=5432)])
async def test_stored_body_is_the_zipkin_json(tmp_path: Path, remote: Endpoint | None) -> None:
    store = span_store.SpanStore(tmp_path)
    await store.start()
    try:
        item = Span(
            T, "a" * 16, "Q", kind="CLIENT", timestamp=5, duration=2, remote_endpoint=remote
        )
        store.add(item)
        await store.flush()
        text = await store.trace_json(T)
        assert text is not None and json.loads(text) == [item.to_zipkin()]
    finally:
        await store.stop()
