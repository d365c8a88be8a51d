"""Group commit on SQLite: concurrent writes share a commit, each keeps its own outcome, and
what a group's reads see is what its writes did."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from stackyard.storage.tables import Tables
from stackyard.storage.tables.errors import ConditionFailed

TABLE = {
    "TableName": "counters",
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
    "BillingMode": "PAY_PER_REQUEST",
}


@pytest.fixture
async def tables(tmp_path: Path) -> AsyncIterator[Tables]:
    started = Tables(tmp_path, ttl_interval=0)
    await started.start()
    await started.call("CreateTable", TABLE)
    yield started
    await started.stop()


def put(key: str, value: int, **extra: Any) -> dict[str, Any]:
    item = {"id": {"S": key}, "v": {"N": str(value)}}
    return {"TableName": "counters", "Item": item, **extra}


async def get(tables: Tables, key: str) -> dict[str, Any] | None:
    found = await tables.call("GetItem", {"TableName": "counters", "Key": {"id": {"S": key}}})
    item: dict[str, Any] | None = found.get("Item")
    return item


async def test_concurrent_writes_share_commits_and_are_all_stored(
    tables: Tables, tmp_path: Path
) -> None:
    worker = tables.worker
    before_groups, before_jobs = worker.groups, worker.grouped_jobs
    await asyncio.gather(*(tables.call("PutItem", put(f"k{n}", n)) for n in range(300)))
    groups = worker.groups - before_groups
    assert worker.grouped_jobs - before_jobs == 300
    assert groups < 300  # some writes waited in the queue and shared a commit
    await tables.stop()  # what was acknowledged is in the file, read by a new component
    again = Tables(tmp_path, ttl_interval=0)
    await again.start()
    try:
        found = await asyncio.gather(*(get(again, f"k{n}") for n in range(300)))
        assert [item and item["v"]["N"] for item in found] == [str(n) for n in range(300)]
    finally:
        await again.stop()
        await tables.start()  # for the fixture's stop


async def test_a_failed_write_of_a_group_leaves_the_others(tables: Tables) -> None:
    first_only = {"ConditionExpression": "attribute_not_exists(id)"}
    calls = [tables.call("PutItem", put("contested", n, **first_only)) for n in range(40)]
    calls += [tables.call("PutItem", put(f"free{n}", n)) for n in range(40)]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    contested = outcomes[:40]
    winners = [n for n, out in enumerate(contested) if not isinstance(out, BaseException)]
    assert len(winners) == 1
    assert sum(isinstance(out, ConditionFailed) for out in contested) == 39
    assert not any(isinstance(out, BaseException) for out in outcomes[40:])
    item = await get(tables, "contested")
    assert item is not None and item["v"]["N"] == str(winners[0])
    assert [await get(tables, f"free{n}") is not None for n in range(40)] == [True] * 40


async def test_reads_queued_behind_writes_see_them_in_order(tables: Tables) -> None:
    calls: list[Any] = []
    for n in range(30):
        calls.append(tables.call("PutItem", put("seq", n)))
        calls.append(get(tables, "seq"))
    outcomes = await asyncio.gather(*calls)
    seen = [item["v"]["N"] for item in outcomes[1::2]]
    assert seen == [str(n) for n in range(30)]


async def test_table_changes_run_alone_between_groups(tables: Tables) -> None:
    other = {**TABLE, "TableName": "others"}
    calls = [tables.call("PutItem", put(f"a{n}", n)) for n in range(20)]
    calls.append(tables.call("CreateTable", other))
    calls += [tables.call("PutItem", {**put(f"b{n}", n), "TableName": "others"}) for n in range(20)]
    await asyncio.gather(*calls)
    listed = await tables.call("ListTables", {})
    assert listed["TableNames"] == ["counters", "others"]
    scanned = await tables.call("Scan", {"TableName": "others", "Select": "COUNT"})
    assert scanned["Count"] == 20
