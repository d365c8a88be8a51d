"""API keys: generation, the SQLite key store and the in-memory index the gateway checks.

A key is 40 URL-safe characters from :mod:`secrets`, shown once when it is created. The store
(``<data_dir>/api-keys.db``, WAL; in memory without a data dir) keeps only its SHA-256 digest,
with the key's name, usage plan, creation and revocation times and a short prefix for display;
it also keeps the usage plans' quota counters (:mod:`.quota`). :class:`ApiKeys` reads every
active key into a dict keyed by digest, so checking a request's key is one hash and one dict
lookup (a value found once is remembered, so a valid key is hashed once per change); each
change (create, revoke) is written first, then the dict is rebuilt from the store.

Errors of the admin operations (:class:`KeyAdminError` and subclasses) carry the HTTP status
and code the admin API answers with.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from ..backends.sqlite import SqliteThread, open_wal
from ..config.api import POLICY_NAME_PATTERN

DB_NAME = "api-keys.db"
KEY_BYTES = 30  # 40 URL-safe characters
PREFIX_LENGTH = 6

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    name TEXT PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    plan TEXT NOT NULL,
    created REAL NOT NULL,
    revoked REAL
);
CREATE TABLE IF NOT EXISTS quota_usage (
    name TEXT PRIMARY KEY,
    period TEXT NOT NULL,
    period_start REAL NOT NULL,
    used INTEGER NOT NULL
);
"""


class KeyAdminError(Exception):
    """A refused key operation; ``status`` and ``code`` are the admin API's answer."""

    status = 400
    code = "BadRequest"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidKeyRequest(KeyAdminError):
    code = "InvalidRequest"


class UnknownPlan(KeyAdminError):
    code = "UnknownPlan"


class DuplicateKey(KeyAdminError):
    status = 409
    code = "KeyExists"


class UnknownKey(KeyAdminError):
    status = 404
    code = "UnknownKey"


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never its value): ``name``, usage ``plan``, display ``prefix``,
    ``created`` and ``revoked`` (epoch seconds; None while active)."""

    name: str
    plan: str
    prefix: str
    created: float
    revoked: float | None = None

    def public(self) -> dict[str, object]:
        return {
            "name": self.name,
            "plan": self.plan,
            "prefix": self.prefix,
            "created": self.created,
            "revoked": self.revoked,
        }


def new_key() -> str:
    """A fresh random key value."""
    return secrets.token_urlsafe(KEY_BYTES)


def digest(value: str | bytes) -> bytes:
    """The stored form of a key value: its SHA-256 digest."""
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).digest()


def valid_name(name: object) -> str:
    if not isinstance(name, str) or not re.fullmatch(POLICY_NAME_PATTERN, name):
        raise InvalidKeyRequest(
            "name: 1-64 letters, digits, '.', '-' or '_', starting with a letter or digit"
        )
    return name


class KeyStore:
    """The SQLite file of keys and quota counters; one thread owns the connection."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._db = SqliteThread(
            "the key store",
            thread_name="api-keys",
            translate=lambda exc: OSError(f"api key store {self.path or ':memory:'}: {exc}"),
        )

    async def open(self) -> None:
        await self._db.open(self._connect)

    async def close(self) -> None:
        await self._db.close()

    async def keys(self) -> list[tuple[ApiKey, bytes]]:
        def read() -> list[tuple[ApiKey, bytes]]:
            rows = self._db.conn.execute(
                "SELECT name, plan, prefix, created, revoked, digest FROM api_keys ORDER BY created"
            )
            return [(ApiKey(*row[:5]), bytes(row[5])) for row in rows]

        return await self._db.run(read)

    async def insert(self, key: ApiKey, key_digest: bytes) -> None:
        def insert() -> None:
            try:
                with self._db.conn:
                    self._db.conn.execute(
                        "INSERT INTO api_keys (name, digest, prefix, plan, created)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (key.name, key_digest, key.prefix, key.plan, key.created),
                    )
            except sqlite3.IntegrityError as exc:
                raise DuplicateKey(f"a key named {key.name!r} exists") from exc

        await self._db.run(insert)

    async def revoke(self, name: str, when: float) -> None:
        def revoke() -> None:
            with self._db.conn:
                cursor = self._db.conn.execute(
                    "UPDATE api_keys SET revoked = ? WHERE name = ? AND revoked IS NULL",
                    (when, name),
                )
                if (
                    cursor.rowcount == 0
                    and not self._db.conn.execute(
                        "SELECT 1 FROM api_keys WHERE name = ?", (name,)
                    ).fetchone()
                ):
                    raise UnknownKey(f"no key named {name!r}")

        await self._db.run(revoke)

    async def quota_rows(self) -> list[tuple[str, str, float, int]]:
        def read() -> list[tuple[str, str, float, int]]:
            return list(
                self._db.conn.execute("SELECT name, period, period_start, used FROM quota_usage")
            )

        return await self._db.run(read)

    async def save_quota(self, rows: Iterable[tuple[str, str, float, int]]) -> None:
        batch = list(rows)
        if not batch:
            return

        def write() -> None:
            with self._db.conn:
                self._db.conn.executemany(
                    "INSERT OR REPLACE INTO quota_usage (name, period, period_start, used)"
                    " VALUES (?, ?, ?, ?)",
                    batch,
                )

        await self._db.run(write)

    # -- on the database thread --------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.path is None:
            db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            db.executescript(_SCHEMA)
        else:
            db = open_wal(self.path, _SCHEMA)
        db.isolation_level = "DEFERRED"
        return db


class ApiKeys:
    """The keys: the store plus the in-memory index of active keys by digest."""

    def __init__(self, data_dir: Path | None, clock: Callable[[], float] = time.time) -> None:
        self.store = KeyStore(data_dir / DB_NAME if data_dir is not None else None)
        self._clock = clock
        self._active: MappingProxyType[bytes, ApiKey] = MappingProxyType({})
        self._all: tuple[ApiKey, ...] = ()
        self._lock = asyncio.Lock()
        self.generation = 0
        """Counts the index's changes: what a caller resolved from a :meth:`lookup` stays true
        while this has not moved."""

    async def start(self) -> None:
        await self.store.open()
        await self.reload()

    async def stop(self) -> None:
        await self.store.close()

    async def reload(self) -> None:
        """Reads the store again and swaps the index in whole."""
        rows = await self.store.keys()
        self._all = tuple(key for key, _ in rows)
        self._active = MappingProxyType(
            {key_digest: key for key, key_digest in rows if key.revoked is None}
        )
        self.generation += 1

    def lookup(self, value: bytes | str) -> ApiKey | None:
        """The active key with this value, or None. It hashes the value: a caller that looks
        a value up on every request keeps what it found while :attr:`generation` stays the
        same (the usage step does)."""
        return self._active.get(digest(value))

    def list(self) -> tuple[ApiKey, ...]:
        return self._all

    def get(self, name: str) -> ApiKey:
        for key in self._all:
            if key.name == name:
                return key
        raise UnknownKey(f"no key named {name!r}")

    async def create(self, name: str, plan: str) -> tuple[ApiKey, str]:
        """Stores a new key; answers it and its value (the only time the value is known)."""
        value = new_key()
        key = ApiKey(valid_name(name), plan, value[:PREFIX_LENGTH], self._clock())
        async with self._lock:
            await self.store.insert(key, digest(value))
            await self.reload()
        return key, value

    async def revoke(self, name: str) -> ApiKey:
        """Revokes ``name`` (no effect on an already revoked key); answers the stored key."""
        async with self._lock:
            await self.store.revoke(name, self._clock())
            await self.reload()
        return self.get(name)
