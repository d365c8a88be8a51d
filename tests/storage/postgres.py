"""The PostgreSQL of the storage tests: 127.0.0.1:5432, database ``test``, trust auth.

``postgres_url()`` answers a URL that connects, as user ``postgres`` or the current user. When
none does, the test is skipped — unless the environment variable ``CI`` is ``true``, where it
fails: CI must run the PostgreSQL backend's tests. ``fresh_schema()`` gives a schema name of its
own (``stackyard_test_<random>``) and drops the schema afterwards.
"""

from __future__ import annotations

import getpass
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

HOST = "127.0.0.1:5432"
DATABASE = "test"


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is needed in CI: {why}")
    pytest.skip(f"PostgreSQL is not reachable: {why}")


def postgres_url() -> str:
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed (the postgres extra)")
        raise
    problems = []
    for user in dict.fromkeys(["postgres", getpass.getuser()]):
        url = f"postgresql://{user}@{HOST}/{DATABASE}"
        try:
            with psycopg.connect(url, connect_timeout=3):
                return url
        except psycopg.Error as exc:
            problems.append(f"{url}: {str(exc).strip().splitlines()[0]}")
    _unavailable("; ".join(problems))
    raise AssertionError("unreachable")


@contextmanager
def fresh_schema() -> Iterator[tuple[str, str]]:
    """(url, schema name) of a schema no other run uses; dropped with everything in it after."""
    import psycopg

    url = postgres_url()
    schema = f"stackyard_test_{uuid.uuid4().hex[:12]}"
    try:
        yield url, schema
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
