"""The embedded :class:`~.store.MetadataStore`: ``<data dir>/buckets.sqlite3`` (SQLite, WAL).

Durability: WAL with ``synchronous=FULL``, so every commit is on disk (the WAL fsynced) before
the call returns and the S3 answer goes out; object files are renamed into place and fsynced
before their row is committed (see :mod:`.service`). Objects are one row each in a ``WITHOUT
ROWID`` table keyed by ``(bucket, key)``, so a listing is a range scan of the primary key in
the byte order of UTF-8 keys, which is S3's order. Every call runs on one dedicated thread that
owns the connection, so the event loop never blocks on SQLite.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ...backends.sqlite import SqliteThread, open_wal
from .errors import BucketNotEmpty, NoSuchBucket, NoSuchKey, NoSuchUpload
from .scan import OBJECT_COLUMNS, key_successor, list_page, object_row
from .store import BucketInfo, ListPage, ObjectInfo, PartInfo, UploadInfo

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY, region TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL, key TEXT NOT NULL, file TEXT NOT NULL, size INTEGER NOT NULL,
    etag TEXT NOT NULL, modified REAL NOT NULL, headers TEXT NOT NULL, metadata TEXT NOT NULL,
    checksums TEXT NOT NULL, parts INTEGER NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, initiated REAL NOT NULL,
    headers TEXT NOT NULL, metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (bucket, key, initiated);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL, number INTEGER NOT NULL, file TEXT NOT NULL,
    size INTEGER NOT NULL, etag TEXT NOT NULL, modified REAL NOT NULL,
    PRIMARY KEY (upload_id, number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notifications (bucket TEXT PRIMARY KEY, config TEXT NOT NULL);
"""


def _upload(row: Sequence[Any]) -> UploadInfo:
    return UploadInfo(row[0], row[1], row[2], row[3], json.loads(row[4]), json.loads(row[5]))


class SqliteMetadataStore:
    """The index in one SQLite file; ``open`` before use, ``close`` after."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = SqliteThread("the bucket index", thread_name="buckets-db")

    async def open(self) -> None:
        await self._db.open(self._connect)

    async def close(self) -> None:
        await self._db.close()

    def _connect(self) -> sqlite3.Connection:
        return open_wal(self.path, _SCHEMA)

    def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = self._db.conn
        db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    def _check_bucket(self, db: sqlite3.Connection, name: str) -> None:
        if db.execute("SELECT 1 FROM buckets WHERE name = ?", (name,)).fetchone() is None:
            raise NoSuchBucket(BucketName=name)

    # buckets

    async def create_bucket(self, name: str, region: str) -> bool:
        def create(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "INSERT OR IGNORE INTO buckets VALUES (?, ?, ?)", (name, region, time.time())
            )
            return cursor.rowcount == 1

        return await self._db.run(lambda: self._transaction(create))

    async def delete_bucket(self, name: str) -> list[str]:
        def delete(db: sqlite3.Connection) -> list[str]:
            self._check_bucket(db, name)
            if db.execute("SELECT 1 FROM objects WHERE bucket = ? LIMIT 1", (name,)).fetchone():
                raise BucketNotEmpty(BucketName=name)
            files = [
                row[0]
                for row in db.execute(
                    "SELECT p.file FROM parts p JOIN uploads u ON u.id = p.upload_id"
                    " WHERE u.bucket = ?",
                    (name,),
                )
            ]
            db.execute(
                "DELETE FROM parts WHERE upload_id IN (SELECT id FROM uploads WHERE bucket = ?)",
                (name,),
            )
            db.execute("DELETE FROM uploads WHERE bucket = ?", (name,))
            db.execute("DELETE FROM notifications WHERE bucket = ?", (name,))
            db.execute("DELETE FROM buckets WHERE name = ?", (name,))
            return files

        return await self._db.run(lambda: self._transaction(delete))

    async def bucket(self, name: str) -> BucketInfo:
        row = await self._db.run(
            lambda: self._db.conn.execute(
                "SELECT name, region, created FROM buckets WHERE name = ?", (name,)
            ).fetchone()
        )
        if row is None:
            raise NoSuchBucket(BucketName=name)
        return BucketInfo(*row)

    async def buckets(self) -> list[BucketInfo]:
        rows = await self._db.run(
            lambda: self._db.conn.execute(
                "SELECT name, region, created FROM buckets ORDER BY name"
            ).fetchall()
        )
        return [BucketInfo(*row) for row in rows]

    # objects

    @staticmethod
    def _insert_object(db: sqlite3.Connection, info: ObjectInfo) -> str | None:
        old = db.execute(
            "SELECT file FROM objects WHERE bucket = ? AND key = ?", (info.bucket, info.key)
        ).fetchone()
        db.execute(
            f"INSERT OR REPLACE INTO objects ({OBJECT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                info.bucket,
                info.key,
                info.file,
                info.size,
                info.etag,
                info.modified,
                json.dumps(dict(info.headers)),
                json.dumps(dict(info.metadata)),
                json.dumps(dict(info.checksums)),
                info.parts,
            ),
        )
        return str(old[0]) if old is not None and old[0] != info.file else None

    async def put_object(self, info: ObjectInfo) -> str | None:
        def put(db: sqlite3.Connection) -> str | None:
            self._check_bucket(db, info.bucket)
            return self._insert_object(db, info)

        return await self._db.run(lambda: self._transaction(put))

    async def get_object(self, bucket: str, key: str) -> ObjectInfo:
        def get() -> ObjectInfo:
            row = self._db.conn.execute(
                f"SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key = ?",
                (bucket, key),
            ).fetchone()
            if row is None:
                self._check_bucket(self._db.conn, bucket)
                raise NoSuchKey(Key=key)
            return object_row(row)

        return await self._db.run(get)

    async def delete_objects(self, bucket: str, keys: Sequence[str]) -> list[tuple[str, str]]:
        def delete(db: sqlite3.Connection) -> list[tuple[str, str]]:
            self._check_bucket(db, bucket)
            deleted = []
            for key in keys:
                row = db.execute(
                    "DELETE FROM objects WHERE bucket = ? AND key = ? RETURNING file",
                    (bucket, key),
                ).fetchone()
                if row is not None:
                    deleted.append((key, str(row[0])))
            return deleted

        return await self._db.run(lambda: self._transaction(delete))

    async def list_objects(
        self, bucket: str, prefix: str, delimiter: str, after: str, limit: int
    ) -> ListPage:
        def scan() -> ListPage:
            self._check_bucket(self._db.conn, bucket)
            return list_page(self._db.conn, bucket, prefix, delimiter, after, limit)

        return await self._db.run(scan)

    # multipart uploads

    async def create_upload(self, upload: UploadInfo) -> None:
        def create(db: sqlite3.Connection) -> None:
            self._check_bucket(db, upload.bucket)
            db.execute(
                "INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?)",
                (
                    upload.id,
                    upload.bucket,
                    upload.key,
                    upload.initiated,
                    json.dumps(dict(upload.headers)),
                    json.dumps(dict(upload.metadata)),
                ),
            )

        await self._db.run(lambda: self._transaction(create))

    async def upload(self, bucket: str, key: str, upload_id: str) -> UploadInfo:
        def get() -> UploadInfo:
            row = self._db.conn.execute(
                "SELECT id, bucket, key, initiated, headers, metadata FROM uploads"
                " WHERE id = ? AND bucket = ? AND key = ?",
                (upload_id, bucket, key),
            ).fetchone()
            if row is None:
                self._check_bucket(self._db.conn, bucket)
                raise NoSuchUpload(UploadId=upload_id)
            return _upload(row)

        return await self._db.run(get)

    @staticmethod
    def _check_upload(db: sqlite3.Connection, upload_id: str) -> None:
        if db.execute("SELECT 1 FROM uploads WHERE id = ?", (upload_id,)).fetchone() is None:
            raise NoSuchUpload(UploadId=upload_id)

    async def put_part(self, upload_id: str, part: PartInfo) -> str | None:
        def put(db: sqlite3.Connection) -> str | None:
            self._check_upload(db, upload_id)
            old = db.execute(
                "SELECT file FROM parts WHERE upload_id = ? AND number = ?",
                (upload_id, part.number),
            ).fetchone()
            db.execute(
                "INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?, ?)",
                (upload_id, part.number, part.file, part.size, part.etag, part.modified),
            )
            return str(old[0]) if old is not None else None

        return await self._db.run(lambda: self._transaction(put))

    async def parts(self, upload_id: str) -> list[PartInfo]:
        rows = await self._db.run(
            lambda: self._db.conn.execute(
                "SELECT number, file, size, etag, modified FROM parts WHERE upload_id = ?"
                " ORDER BY number",
                (upload_id,),
            ).fetchall()
        )
        return [PartInfo(*row) for row in rows]

    def _drop_upload(self, db: sqlite3.Connection, upload_id: str) -> list[str]:
        self._check_upload(db, upload_id)
        files = [
            str(row[0])
            for row in db.execute(
                "DELETE FROM parts WHERE upload_id = ? RETURNING file", (upload_id,)
            )
        ]
        db.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
        return files

    async def complete_upload(
        self, upload_id: str, info: ObjectInfo
    ) -> tuple[str | None, list[str]]:
        def complete(db: sqlite3.Connection) -> tuple[str | None, list[str]]:
            files = self._drop_upload(db, upload_id)
            return self._insert_object(db, info), files

        return await self._db.run(lambda: self._transaction(complete))

    async def abort_upload(self, upload_id: str) -> list[str]:
        return await self._db.run(
            lambda: self._transaction(lambda db: self._drop_upload(db, upload_id))
        )

    async def uploads(
        self, bucket: str, prefix: str, key_marker: str, id_marker: str, limit: int
    ) -> tuple[list[UploadInfo], bool]:
        def scan() -> tuple[list[UploadInfo], bool]:
            self._check_bucket(self._db.conn, bucket)
            sql = (
                "SELECT id, bucket, key, initiated, headers, metadata FROM uploads"
                " WHERE bucket = ? AND key >= ? AND (key > ? OR (key = ? AND id > ?))"
            )
            args: list[Any] = [bucket, prefix, key_marker, key_marker, id_marker]
            upper = key_successor(prefix)
            if upper is not None:
                sql += " AND key < ?"
                args.append(upper)
            rows = self._db.conn.execute(
                sql + " ORDER BY key, initiated, id LIMIT ?", (*args, limit + 1)
            ).fetchall()
            return [_upload(row) for row in rows[:limit]], len(rows) > limit

        return await self._db.run(scan)

    async def files(self, bucket: str) -> set[str]:
        def scan() -> set[str]:
            db = self._db.conn
            found = {
                row[0] for row in db.execute("SELECT file FROM objects WHERE bucket = ?", (bucket,))
            }
            found.update(
                row[0]
                for row in db.execute(
                    "SELECT p.file FROM parts p JOIN uploads u ON u.id = p.upload_id"
                    " WHERE u.bucket = ?",
                    (bucket,),
                )
            )
            return found

        return await self._db.run(scan)

    # notification configurations

    async def notifications(self) -> dict[str, str]:
        rows = await self._db.run(
            lambda: self._db.conn.execute("SELECT bucket, config FROM notifications").fetchall()
        )
        return {str(bucket): str(config) for bucket, config in rows}

    async def set_notifications(self, bucket: str, config: str | None) -> None:
        def store(db: sqlite3.Connection) -> None:
            self._check_bucket(db, bucket)
            if config is None:
                db.execute("DELETE FROM notifications WHERE bucket = ?", (bucket,))
            else:
                db.execute("INSERT OR REPLACE INTO notifications VALUES (?, ?)", (bucket, config))

        await self._db.run(lambda: self._transaction(store))
