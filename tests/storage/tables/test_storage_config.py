"""The ``storage.tables`` section of stackyard.yml: the default, a PostgreSQL URL from the
environment with a default, and the mistakes reported with their line."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard.config import ConfigError
from stackyard.config.loader import parse_stack

FILE = Path("/tmp/stackyard.yml")


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_stack(text, FILE, {})
    return [str(p) for p in raised.value.problems]


def test_sqlite_is_the_default() -> None:
    storage = parse_stack("name: shop\n", FILE, {}).storage.tables
    assert (storage.backend, storage.url) == ("sqlite", None)


def test_postgres_url_from_the_environment_or_its_default() -> None:
    text = (
        "name: shop\nstorage:\n  tables: {backend: postgres, "
        'url: "${env:DATABASE_URL, postgresql://127.0.0.1:5432/test}"}\n'
    )
    assert parse_stack(text, FILE, {}).storage.tables.url == "postgresql://127.0.0.1:5432/test"
    given = parse_stack(text, FILE, {"DATABASE_URL": "postgres://db:5433/prod"})
    assert given.storage.tables.url == "postgres://db:5433/prod"
    assert given.storage.tables.schema_name == "stackyard"


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("{backend: postgres}", "storage.tables: url is given with backend postgres"),
        ("{url: 'postgresql://h/db'}", "storage.tables: url is given with backend postgres"),
        ("{backend: postgres, url: 'mysql://h/db'}", "storage.tables.url: a postgresql://"),
        ("{backend: redis}", "storage.tables.backend"),
        ("{backend: postgres, url: 'postgresql://h/d', schema_name: 'A-b'}", "schema_name"),
    ],
)
def test_mistakes_are_named(section: str, expected: str) -> None:
    found = problems(f"name: shop\nstorage:\n  tables: {section}\n")
    assert any(expected in p and ":3:" in p for p in found), found


def test_table_streams_on_postgres() -> None:
    text = (
        "name: shop\nstorage:\n  tables: {backend: postgres, url: 'postgresql://h/d'}\n"
        "tables:\n  orders: {hash_key: id, stream: new_image}\n"
    )
    assert parse_stack(text, FILE, {}).tables["orders"].stream == "new_image"
