"""The PostgreSQL feed's connections (real feeds on a real server): TCP keepalives asked of
both sides, and a lease checked with the database before each invocation — a node whose
session PostgreSQL ended no longer counts itself the deliverer, and another node takes over."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from stackyard.storage.streams.pgfeed import PostgresFeed, session_conninfo
from stackyard.storage.tables.postgres import PostgresTableStore
from stackyard.testing import wait_until

from ..postgres import fresh_schema
from .leases import lease_holders


@pytest.fixture
def schema() -> Iterator[tuple[str, str]]:
    with fresh_schema() as (url, name):
        store = PostgresTableStore(url, name)
        store.open()  # the stream log's tables
        store.close()
        yield url, name


@pytest.fixture
async def feeds(schema: tuple[str, str]) -> AsyncIterator[tuple[PostgresFeed, PostgresFeed]]:
    url, name = schema
    a, b = PostgresFeed(url, name), PostgresFeed(url, name)
    for feed in (a, b):
        await feed.start(lambda table: None)
    try:
        yield a, b
    finally:
        for feed in (a, b):
            await feed.stop()


def test_feed_connections_ask_for_keepalives_and_keep_the_urls_options(
    schema: tuple[str, str],
) -> None:
    url, _ = schema
    with psycopg.connect(session_conninfo(url + "?options=-c%20search_path%3Delsewhere")) as conn:
        params = conn.info.get_parameters()
        assert (params["keepalives"], params["keepalives_idle"]) == ("1", "10")
        assert (params["keepalives_interval"], params["keepalives_count"]) == ("5", "3")
        assert params["tcp_user_timeout"] == "30000"
        for name, value in (
            ("tcp_keepalives_idle", "10"),
            ("tcp_keepalives_interval", "5"),
            ("tcp_keepalives_count", "3"),
            ("search_path", "elsewhere"),
        ):
            assert conn.execute(f"SHOW {name}").fetchone() == (value,)
    # a setting the URL gives is kept
    assert "keepalives_idle=60" in session_conninfo(url + "?keepalives_idle=60")


async def test_the_lease_connection_has_keepalives(
    feeds: tuple[PostgresFeed, PostgresFeed],
) -> None:
    a, _ = feeds
    assert await a.claim("m") is not None
    conn = a._conn  # the session holding the lease
    assert conn is not None
    cursor = await conn.execute("SHOW tcp_keepalives_idle")
    assert await cursor.fetchone() == ("10",)
    assert conn.info.get_parameters()["tcp_user_timeout"] == "30000"


async def test_a_lease_whose_session_ended_is_not_confirmed(
    feeds: tuple[PostgresFeed, PostgresFeed], schema: tuple[str, str]
) -> None:
    a, b = feeds
    url, name = schema
    lease = await a.claim("m")
    assert lease is not None
    assert await b.claim("m") is None
    assert await a.confirm("m", lease)
    assert await b.confirm("m", lease) is False  # b never held it

    (pid,) = lease_holders(url, name, "m")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    wait_until(lambda: not lease_holders(url, name, "m"), 10, what="the session to end")
    # a's remembered lease is no proof: the database says the session is gone
    assert await a.confirm("m", lease) is False
    taken = await b.claim("m")
    assert taken is not None and await b.confirm("m", taken)
    assert await a.claim("m") is None  # a's new connection does not get it back
    assert await a.confirm("m", lease) is False
