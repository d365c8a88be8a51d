"""The span and log stores' writer processes: lifecycle, flush, backpressure, failures, and
no process left behind when the node goes away."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from stackyard.telemetry import LogQuery, LogStore, Overloaded, SpanStore, StoreClosed, new_span
from stackyard.telemetry.log_writer import SCHEMA as LOG_SCHEMA

T = "3" * 32


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not reaped yet) counts as gone
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still running"
        time.sleep(0.05)


async def test_writer_process_lifecycle_and_flush(tmp_path: Path) -> None:
    store = SpanStore(tmp_path)
    with pytest.raises(StoreClosed):
        store.add(new_span(T, "a" * 16, "early", service="s"))
    await store.start()
    pid = store.writer_pid
    assert pid is not None and pid != os.getpid() and _alive(pid)
    for i in range(50):
        store.add(new_span(T, f"{i + 1:016x}", f"op{i}", service="svc"))
    started = time.perf_counter()
    await store.flush()  # answered by the child after its commit, not after its linger
    assert time.perf_counter() - started < 5
    assert await store.count() == 50
    store.add(new_span(T, "f" * 16, "last", service="svc"))
    await store.stop()  # commits what is queued
    _wait_gone(pid)
    assert store.writer_pid is None
    with pytest.raises(StoreClosed):
        store.add(new_span(T, "e" * 16, "late", service="s"))
    conn = sqlite3.connect(tmp_path / "telemetry-spans.sqlite3")
    assert conn.execute("SELECT count(*) FROM spans").fetchone()[0] == 51
    conn.close()
    await store.start()  # a store starts again after a stop, with a new process
    try:
        assert store.writer_pid not in (None, pid)
        assert await store.count() == 51
    finally:
        await store.stop()


async def test_puts_from_other_threads_are_stored(tmp_path: Path) -> None:
    store = SpanStore(tmp_path)
    await store.start()
    try:

        def produce(base: int) -> None:
            for i in range(100):
                store.add(new_span(T, f"{base + i + 1:016x}", "t", service="threads"))

        threads = [threading.Thread(target=produce, args=(k * 1000,)) for k in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        await store.flush()
        assert await store.count() == 300
    finally:
        await store.stop()


async def test_a_full_queue_raises_overloaded(tmp_path: Path) -> None:
    store = SpanStore(tmp_path, max_pending=10)
    await store.start()
    try:
        spans = [new_span(T, f"{i + 1:016x}", "x", service="s") for i in range(11)]
        for item in spans[:10]:
            store.add(item)  # no await in between: nothing is shipped yet
        with pytest.raises(Overloaded):
            store.add(spans[10])
        with pytest.raises(Overloaded):
            store.add_many(spans[:1])
        await store.flush()
        assert await store.count() == 10
        store.add(spans[10])  # room again once shipped
        await store.flush()
        assert await store.count() == 11
    finally:
        await store.stop()


async def test_a_dead_writer_is_replaced(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    await store.start()
    try:
        pid = store.writer_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while store.writer_pid in (None, pid):
            assert time.monotonic() < deadline, "no new writer process"
            store.add({"time": "2099-01-01T00:00:00Z", "message": "meanwhile"})
            await asyncio.sleep(0.05)
        _wait_gone(pid)
        store.add({"time": "2099-01-01T00:00:01Z", "message": "afterwards"})
        await store.flush()
        records, _ = await store.search(LogQuery(text="afterwards"))
        assert len(records) == 1
        records, _ = await store.search(LogQuery(text="meanwhile", limit=1000))
        assert records  # queued while no writer ran: kept for the new one
    finally:
        await store.stop()


def test_writers_exit_when_the_node_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from stackyard.telemetry import Telemetry, new_span

        async def main():
            telemetry = Telemetry(Path({str(tmp_path)!r}), process_metrics=False)
            await telemetry.start()
            telemetry.record_span(new_span("{T}", "a" * 16, "x", service="s"))
            await telemetry.flush()
            print(telemetry.spans.writer_pid, telemetry.logs.writer_pid, flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
        """
    )
    node = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert node.stdout is not None
        pids = [int(p) for p in node.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        node.kill()
        node.wait(10)
        for pid in pids:
            _wait_gone(pid)
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
    conn = sqlite3.connect(tmp_path / "telemetry-spans.sqlite3")
    assert conn.execute("SELECT count(*) FROM spans").fetchone()[0] == 1
    conn.close()


async def test_log_index_migrates_from_the_insert_trigger(tmp_path: Path) -> None:
    """A file made with the per-row insert trigger: the trigger is dropped, old rows stay
    searchable, new rows are indexed once."""
    path = tmp_path / "telemetry-logs.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(
        LOG_SCHEMA.replace(
            "DROP TRIGGER IF EXISTS logs_ai;",
            "CREATE TRIGGER logs_ai AFTER INSERT ON logs BEGIN INSERT INTO logs_fts"
            " (rowid, message, fields) VALUES (new.id, new.message, new.fields); END;",
        )
    )
    conn.execute(
        "INSERT INTO logs (ts, service, instance, stream, level, severity, message, fields)"
        " VALUES (4102444800000000, 'old', 'i', 'stdout', 'info', 9, 'legacy needle', '')"
    )
    conn.commit()
    conn.close()
    store = LogStore(tmp_path)
    await store.start()
    try:
        store.add({"time": "2099-01-01T00:00:01Z", "service": "new", "message": "fresh needle"})
        await store.flush()
        records, _ = await store.search(LogQuery(text="needle"))
        assert sorted(r["service"] for r in records) == ["new", "old"]
        records, _ = await store.search(LogQuery(text="fresh"))
        assert len(records) == 1
    finally:
        await store.stop()
    conn = sqlite3.connect(path)
    triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    assert triggers == {"logs_ad"}
    conn.close()


async def test_an_unencodable_item_costs_only_itself(tmp_path: Path) -> None:
    store = SpanStore(tmp_path)
    await store.start()
    try:
        bad = new_span(T, "b" * 16, "bad", service="s")
        bad.tags["x"] = object()  # type: ignore[assignment]
        store.add_many([new_span(T, "a" * 16, "good", service="s"), bad])
        store.add(new_span(T, "c" * 16, "also good", service="s"))
        await store.flush()
        assert await store.count() == 2
    finally:
        await store.stop()
