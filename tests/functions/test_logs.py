"""Function logs: LogWriter's files and records, written in batches at the end of a loop turn."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from stackyard.functions.logs import FunctionLogs
from stackyard.supervisor.logs import LogWriter, read_records


def _lines(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_same_records_as_log_writer_one_write_per_turn(tmp_path: Path) -> None:
    sunk: list[dict[str, str]] = []
    logs = FunctionLogs.like(LogWriter(tmp_path / "f", on_record=sunk.append))
    reference = LogWriter(tmp_path / "r")
    messages = ["START RequestId: 1", 'quote " back \\ é ☃ \t tab', "REPORT RequestId: 1"]
    for index, message in enumerate(messages):
        logs.write("hello", "hello-1", "stdout", message, sink=index != 0)
        reference.write("hello", "hello-1", "stdout", message)
    assert not (tmp_path / "f" / "hello.log").exists()  # nothing before the loop turns
    await asyncio.sleep(0)
    ours, theirs = _lines(tmp_path / "f" / "hello.log"), _lines(tmp_path / "r" / "hello.log")
    assert [{k: v for k, v in r.items() if k != "time"} for r in ours] == [
        {k: v for k, v in r.items() if k != "time"} for r in theirs
    ]
    for mine, other in zip(ours, theirs, strict=True):
        assert len(mine["time"]) == len(other["time"]) and mine["time"].endswith("Z")
    assert [r["message"] for r in sunk] == messages[1:]  # sink=False stays in the file
    assert [r["message"] for r in read_records(tmp_path / "f", "hello", 10)] == messages
    logs.close()
    reference.close()


def test_without_a_loop_records_are_written_at_once(tmp_path: Path) -> None:
    logs = FunctionLogs(tmp_path)
    logs.write("fn", "fn-1", "stderr", "boom")
    assert _lines(tmp_path / "fn.log")[0]["message"] == "boom"
    logs.close()


def test_rotation(tmp_path: Path) -> None:
    logs = FunctionLogs(tmp_path, max_bytes=300)
    for n in range(10):
        logs.write("fn", "fn-1", "stdout", f"line {n} " + "x" * 50)
    assert (tmp_path / "fn.log.1").exists()
    current = tmp_path / "fn.log"  # gone when the last write itself rotated the file
    records = _lines(tmp_path / "fn.log.1") + (_lines(current) if current.exists() else [])
    assert records[-1]["message"].startswith("line 9")
    assert (tmp_path / "fn.log.1").stat().st_size < 300 + 200
    logs.close()
