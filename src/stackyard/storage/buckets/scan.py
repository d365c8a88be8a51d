"""Listing scans of the SQLite index: keys in UTF-8 byte order under a prefix, rolled up into
common prefixes at a delimiter (seeking past each one instead of reading its keys)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from .store import ListPage, ObjectInfo

OBJECT_COLUMNS = "bucket, key, file, size, etag, modified, headers, metadata, checksums, parts"
_SCAN_BATCH = 256


def key_successor(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix`` (None: no bound)."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            following = last + 1
            if 0xD800 <= following <= 0xDFFF:  # surrogates are not keys
                following = 0xE000
            return prefix[:-1] + chr(following)
        prefix = prefix[:-1]
    return None


def _range(bucket: str, start: str, inclusive: bool, upper: str | None) -> tuple[str, list[Any]]:
    """The WHERE clause of a key range scan and its arguments."""
    where = f"bucket = ? AND key {'>=' if inclusive else '>'} ?"
    args: list[Any] = [bucket, start]
    if upper is not None:
        where += " AND key < ?"
        args.append(upper)
    return where, args


def object_row(row: Sequence[Any]) -> ObjectInfo:
    return ObjectInfo(
        bucket=row[0],
        key=row[1],
        file=row[2],
        size=row[3],
        etag=row[4],
        modified=row[5],
        headers=json.loads(row[6]),
        metadata=json.loads(row[7]),
        checksums=json.loads(row[8]),
        parts=row[9],
    )


def list_page(
    db: sqlite3.Connection, bucket: str, prefix: str, delimiter: str, after: str, limit: int
) -> ListPage:
    """At most ``limit`` keys and common prefixes under ``prefix`` strictly after ``after``."""
    objects: list[ObjectInfo] = []
    prefixes: list[str] = []
    upper = key_successor(prefix)
    start, inclusive = (after, False) if after >= prefix else (prefix, True)
    last: str | None = None
    while True:
        if len(objects) + len(prefixes) >= limit:
            more = _more(db, bucket, start, inclusive, upper)
            return ListPage(objects, prefixes, more, last)
        where, args = _range(bucket, start, inclusive, upper)
        rows = db.execute(
            f"SELECT {OBJECT_COLUMNS} FROM objects WHERE {where} ORDER BY key LIMIT ?",
            (*args, _SCAN_BATCH),
        ).fetchall()
        if not rows:
            return ListPage(objects, prefixes, False, last)
        for row in rows:
            key: str = row[1]
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut < 0:
                objects.append(object_row(row))
                start, inclusive, last = key, False, key
            else:
                common = key[: cut + len(delimiter)]
                if common != after:
                    prefixes.append(common)
                    last = common
                successor = key_successor(common)
                if successor is None:
                    return ListPage(objects, prefixes, False, last)
                start, inclusive = successor, True
                break  # seek past the common prefix
            if len(objects) + len(prefixes) >= limit:
                break


def _more(
    db: sqlite3.Connection, bucket: str, start: str, inclusive: bool, upper: str | None
) -> bool:
    where, args = _range(bucket, start, inclusive, upper)
    sql = f"SELECT 1 FROM objects WHERE {where} LIMIT 1"
    return db.execute(sql, args).fetchone() is not None
