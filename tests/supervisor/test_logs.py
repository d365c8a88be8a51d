"""Instances' output as JSON-lines records: writing, reading back, following."""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackyard.config.models import HealthConfig, ServiceConfig
from stackyard.supervisor import (
    MAX_LINE,
    InstanceState,
    LogRecord,
    LogWriter,
    RestartPolicy,
    follow_records,
    read_records,
)
from stackyard.supervisor.logs import pump

from .conftest import PY, SupervisorFactory, wait_until

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

CHATTY = textwrap.dedent(
    """
    import sys
    print("hello", flush=True)
    print("oops", file=sys.stderr, flush=True)
    sys.stdout.write("x" * 1_000_000 + "\\n")
    sys.stdout.write("tail without newline")
    """
)


async def test_stdout_and_stderr_become_records(
    tmp_path: Path, make_supervisor: SupervisorFactory
) -> None:
    (tmp_path / "chatty.py").write_text(CHATTY)
    sunk: list[LogRecord] = []
    service = ServiceConfig(command=f"{PY} chatty.py", health=HealthConfig(ttl=30))
    quiet = ServiceConfig(command="echo quiet; exec sleep 300", health=HealthConfig(ttl=30))
    supervisor = make_supervisor(
        {"chatty": service, "quiet": quiet},
        on_record=sunk.append,
        restart_policy=RestartPolicy(initial_delay=60),  # chatty exits: one run is enough
    )
    await supervisor.start()
    log_dir = tmp_path / "logs"
    await wait_until(lambda: {"tail without newline", "quiet"} <= {r["message"] for r in sunk})
    await wait_until(lambda: supervisor.status()[0].state is InstanceState.BACKOFF)

    lines = (log_dir / "chatty.log").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records == [r for r in sunk if r["service"] == "chatty"]
    for record in records:
        assert set(record) == {"time", "service", "instance", "stream", "message"}
        assert TIME.match(record["time"])
        assert (record["service"], record["instance"]) == ("chatty", "chatty-1")
    by_message = {r["message"]: r["stream"] for r in records}
    assert by_message["hello"] == "stdout"
    assert by_message["oops"] == "stderr"
    pieces = [r["message"] for r in records if r["message"].startswith("x")]
    assert [len(p) for p in pieces] == [MAX_LINE] * 15 + [1_000_000 - 15 * MAX_LINE]
    assert records[-1]["message"] == "tail without newline"

    assert [r["message"] for r in read_records(log_dir, "quiet", 10)] == ["quiet"]
    last_two = read_records(log_dir, "chatty", 2)
    assert last_two == records[-2:]
    everything = read_records(log_dir, None, 1000)
    assert len(everything) == len(records) + 1
    assert [r["time"] for r in everything] == sorted(r["time"] for r in everything)
    assert read_records(log_dir, "chatty", 0) == []
    assert read_records(log_dir, "nothing-yet", 5) == []
    with pytest.raises(ValueError):
        read_records(log_dir, "../etc", 5)


async def test_read_records_tails_large_files_and_skips_garbage(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path)
    for n in range(5000):
        writer.write("api", "api-1", "stdout", f"line {n} " + "y" * 50)
    writer.close()
    with (tmp_path / "api.log").open("a") as handle:
        handle.write("not json\n")
    tail = read_records(tmp_path, "api", 3)
    assert [r["message"].split()[1] for r in tail] == ["4997", "4998", "4999"]
    assert len(read_records(tmp_path, "api", 100_000)) == 5000


async def test_rotation_keeps_one_generation(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, max_bytes=10_000)
    for n in range(300):
        writer.write("api", "api-1", "stdout", f"line {n}")
    writer.close()
    assert (tmp_path / "api.log.1").exists()
    assert (tmp_path / "api.log").stat().st_size <= 10_000 + 200
    assert read_records(tmp_path, "api", 1)[0]["message"] == "line 299"
    current = len((tmp_path / "api.log").read_text().splitlines())
    kept = read_records(tmp_path, "api", 1000)  # the current file, then the rotated one
    assert current < len(kept) < 300
    assert [r["message"] for r in kept] == [f"line {n}" for n in range(300 - len(kept), 300)]


async def test_follow_yields_new_records_across_services(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path)
    writer.write("api", "api-1", "stdout", "before")
    received: list[LogRecord] = []
    follower = follow_records(tmp_path, None, poll_interval=0.02)  # offsets taken here

    async def consume() -> None:
        async for record in follower:
            received.append(record)

    task = asyncio.create_task(consume())
    try:
        writer.write("api", "api-1", "stdout", "one")
        writer.write("worker", "worker-1", "stderr", "two")  # a file that did not exist
        await wait_until(lambda: len(received) == 2, within=5)
        assert [r["message"] for r in received] == ["one", "two"]
        writer.write("api", "api-2", "stdout", "three")
        await wait_until(lambda: len(received) == 3, within=5)
        assert received[-1]["instance"] == "api-2"
    finally:
        task.cancel()
        writer.close()

    from_start = follow_records(tmp_path, "api", from_end=False, poll_interval=0.02)
    first = await anext(from_start)
    assert first["message"] == "before"


async def test_pump_splits_long_lines_and_keeps_partial_ones() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"short\r\nab" + b"c" * 10 + b"\n\xff\xfe bad utf8\n")
    reader.feed_data(b"last")
    reader.feed_eof()
    lines: list[str] = []
    await pump(reader, lines.append, max_line=4)
    assert lines == ["shor", "t", "abcc", "cccc", "cccc", "\ufffd\ufffd b", "ad u", "tf8", "last"]


async def test_sink_errors_do_not_break_writing(tmp_path: Path) -> None:
    def broken(record: LogRecord) -> None:
        raise RuntimeError("sink down")

    writer = LogWriter(tmp_path, on_record=broken)
    writer.write("api", "api-1", "stdout", "still written")
    writer.close()
    assert read_records(tmp_path, "api", 1)[0]["message"] == "still written"


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(st.text(alphabet="ab\n", max_size=40), max_size=8),
    max_line=st.integers(min_value=1, max_value=16),
)
def test_pump_pieces_rebuild_the_lines(chunks: list[str], max_line: int) -> None:
    async def run() -> list[str]:
        reader = asyncio.StreamReader()
        for chunk in chunks:
            reader.feed_data(chunk.encode())
        reader.feed_eof()
        out: list[str] = []
        await pump(reader, out.append, max_line=max_line)
        return out

    data = "".join(chunks)
    lines = data.split("\n")
    if lines[-1] == "":
        lines.pop()  # the text ended with a newline (or was empty)
    expected = [
        piece
        for line in lines
        for piece in ([line[i : i + max_line] for i in range(0, len(line), max_line)] or [""])
    ]
    assert asyncio.run(run()) == expected
