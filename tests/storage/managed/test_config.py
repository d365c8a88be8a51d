"""The ``caches:``/``databases:`` and ``uses`` stack config, and the managed servers' errors that
need no running node (a missing program)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from stackyard.config import ConfigError, StackConfig
from stackyard.config.loader import parse_stack
from stackyard.storage.managed import (
    ManagedError,
    ManagedPostgres,
    ManagedResources,
    postgres,
    redis,
)

FILE = Path("stackyard.yml")


def parse(text: str) -> StackConfig:
    return parse_stack(text, FILE, {})


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return [str(problem) for problem in info.value.problems]


def test_uses_as_list_or_mapping() -> None:
    config = parse(
        """\
name: s
caches:
  sessions:
  queue: {engine: redis, url: "redis://cache.internal:6379/2"}
databases:
  main: {engine: postgres}
services:
  web: {command: run, uses: [sessions, main]}
functions:
  job: {handler: h.main, uses: {queue: QUEUE_URL, main: null}}
"""
    )
    assert config.caches["sessions"].url is None
    assert config.caches["queue"].url == "redis://cache.internal:6379/2"
    assert config.databases["main"].engine == "postgres"
    assert config.services["web"].uses == {"sessions": None, "main": None}
    assert config.functions["job"].uses == {"queue": "QUEUE_URL", "main": None}


def test_env_names_of_uses(tmp_path: Path) -> None:
    config = parse(
        """\
name: s
caches: {sessions: {}, queue: {url: "redis://q:6379/0"}}
databases: {main: {url: "postgresql://u@db/main"}}
services:
  web: {command: run, uses: {sessions: null, main: null, queue: QUEUE_URL}, env: {X: "1"}}
  own: {command: run, uses: [main], env: {DATABASE_URL: "postgresql://mine/db"}}
"""
    )
    resources = ManagedResources(tmp_path, config.caches, config.databases)
    services = resources.services(config.services)
    web = services["web"].env
    assert web["REDIS_URL"].startswith("redis://127.0.0.1:") and web["X"] == "1"
    assert web["DATABASE_URL"] == "postgresql://u@db/main"
    assert web["QUEUE_URL"] == "redis://q:6379/0"
    assert services["own"].env["DATABASE_URL"] == "postgresql://mine/db"  # its own env wins
    assert [c["state"] for c in resources.status("cache")] == ["stopped", "external"]


def test_unknown_uses_is_an_error_with_its_line() -> None:
    found = problems(
        """\
name: s
caches:
  sessions: {}
services:
  web:
    command: run
    uses: [sessions, nope]
functions:
  job:
    handler: h.main
    uses:
      missing: X
"""
    )
    assert found == [
        "stackyard.yml:7: services.web.uses.1: no cache or database named 'nope'",
        "stackyard.yml:12: functions.job.uses.missing: no cache or database named 'missing'",
    ]


def test_conflicting_resources() -> None:
    found = problems(
        """\
name: s
caches: {a: {}, b: {}}
databases:
  a: {}
services:
  web: {command: run, uses: [a, b]}
"""
    )
    assert any("'a' is both a cache and a database" in p for p in found)
    assert any("both set REDIS_URL" in p for p in found)


@pytest.mark.parametrize(
    "text, message",
    [
        ("caches: {c: {engine: memcached}}", "caches.c.engine"),
        ("caches: {c: {url: 'http://x'}}", "caches.c.url"),
        ("databases: {d: {url: 'mysql://x/y'}}", "databases.d.url"),
        ("databases: {Bad: {}}", "name 'Bad'"),
        ("caches: {c: {}}\nservices: {w: {command: x, uses: {c: 1-BAD}}}", "no environment"),
        ("caches: {c: {port: 1}}", "unknown field"),
    ],
)
def test_invalid_declarations(text: str, message: str) -> None:
    assert any(message in p for p in problems(f"name: s\n{text}\n"))


def test_missing_programs_name_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(postgres, "PG_LIB", tmp_path / "postgresql")
    monkeypatch.setattr(redis, "REDIS_SERVER", str(tmp_path / "redis-server"))
    config = parse("name: s\ncaches: {c: {}}\ndatabases: {d: {}}\n")
    resources = ManagedResources(tmp_path / "data", config.caches, config.databases)
    with pytest.raises(ManagedError) as info:
        asyncio.run(resources.start())
    message = str(info.value)
    assert "apt-get install redis-server" in message
    assert "apt-get install postgresql" in message
    assert [r["state"] for r in resources.status("database")] == ["stopped"]


@pytest.mark.skipif(os.geteuid() != 0, reason="PostgreSQL runs as the postgres user under root")
def test_a_data_dir_the_postgres_user_cannot_enter_is_named(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    server = ManagedPostgres("shop", private / "data" / "databases" / "shop")
    with pytest.raises(ManagedError) as info:
        asyncio.run(server.start())
    assert f"cannot enter {private}" in str(info.value) or "cannot enter /tmp" in str(info.value)
    assert "chmod o+x" in str(info.value)
    assert server.state == "stopped"
