"""ItemCount and TableSizeBytes: exact while counting is quick, kept a while once it is not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stackyard.storage.tables import engine as engine_module
from stackyard.storage.tables.engine import Engine
from stackyard.storage.tables.sqlite import SqliteTableStore


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    opened = Engine(SqliteTableStore(tmp_path / "tables.sqlite3"))
    opened.open()
    opened.create_table(
        {
            "TableName": "things",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        }
    )
    yield opened
    opened.close()


def count(engine: Engine) -> int:
    return int(engine.describe_table({"TableName": "things"})["Table"]["ItemCount"])


def put(engine: Engine, key: str) -> None:
    engine.put_item({"TableName": "things", "Item": {"id": {"S": key}}})


def test_a_quickly_counted_table_is_counted_on_every_describe(engine: Engine) -> None:
    put(engine, "a")
    assert count(engine) == 1
    put(engine, "b")
    assert count(engine) == 2


def test_a_slowly_counted_table_keeps_its_figures_for_a_while(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "SLOW_STATS_S", -1.0)  # every count counts as slow
    put(engine, "a")
    assert count(engine) == 1
    put(engine, "b")
    assert count(engine) == 1  # the kept figures, as DynamoDB's own lag behind
    monkeypatch.setattr(engine_module, "STATS_MAX_AGE_S", 0.0)
    assert count(engine) == 2
