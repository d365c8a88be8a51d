"""Object bytes on disk: ``<data dir>/buckets/<bucket>/<id[:2]>/<id>``, written atomically.

A file is named by a random id, never by its key, so any key is safe on any file system. A
writer streams into ``<id>.tmp`` in the final directory (hashing as it goes), then fsyncs the
file, renames it into place and fsyncs the directory — only then does the index refer to it.
So a crash leaves at worst a ``.tmp`` file or a file no row refers to; :meth:`BlobFiles.sweep`
removes both at start. File work runs on threads (the default executor), a buffer of up to
1 MiB at a time, so neither a large body nor a slow disk blocks the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import shutil
import uuid
import zlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from .errors import NoSuchBucket

_FLUSH = 1024 * 1024
READ_CHUNK = 256 * 1024


class Crc32:
    """CRC32 with the hashlib-style interface (``update``, ``digest``)."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


def new_hasher(algorithm: str) -> Any | None:
    """A hasher for an S3 checksum algorithm (``crc32``, ``sha1``, ``sha256``); None for the
    ones the standard library lacks (``crc32c``, ``crc64nvme``), which are stored unchecked."""
    if algorithm == "crc32":
        return Crc32()
    if algorithm in ("sha1", "sha256"):
        return hashlib.new(algorithm)
    return None


def new_file_id() -> str:
    return uuid.uuid4().hex


class BlobWriter:
    """One file being written: ``write`` chunks, then ``commit`` (or ``discard``)."""

    def __init__(self, path: Path, hashers: dict[str, Any]) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        self.md5 = hashlib.md5()
        self.hashers = hashers
        self.size = 0
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._file: BinaryIO | None = None

    async def open(self) -> None:
        def create() -> BinaryIO:
            self.tmp.parent.mkdir(parents=True, exist_ok=True)
            return self.tmp.open("wb")

        try:
            self._file = await asyncio.to_thread(create)
        except FileNotFoundError as exc:  # the bucket's folder went away
            raise NoSuchBucket() from exc

    async def write(self, data: bytes) -> None:
        if not data:
            return
        self._buffer.append(data)
        self._buffered += len(data)
        self.size += len(data)
        if self._buffered >= _FLUSH:
            await self.flush()

    async def flush(self) -> None:
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        self._buffer, self._buffered = [], 0
        await asyncio.to_thread(self._write, data)

    def _write(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)
        self.md5.update(data)
        for hasher in self.hashers.values():
            hasher.update(data)

    async def commit(self) -> None:
        """Make the file durable under its final name."""
        await self.flush()
        await asyncio.to_thread(self._commit)

    def _commit(self) -> None:
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        os.replace(self.tmp, self.path)
        fsync_dir(self.path.parent)

    async def discard(self) -> None:
        def remove() -> None:
            if self._file is not None:
                self._file.close()
                self._file = None
            with contextlib.suppress(FileNotFoundError):
                self.tmp.unlink()

        await asyncio.to_thread(remove)

    def checksums(self) -> dict[str, str]:
        return {name: base64.b64encode(h.digest()).decode() for name, h in self.hashers.items()}


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobFiles:
    """The bucket folders under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, bucket: str, file_id: str) -> Path:
        return self.root / bucket / file_id[:2] / file_id

    async def create_bucket(self, bucket: str) -> None:
        await asyncio.to_thread((self.root / bucket).mkdir, parents=True, exist_ok=True)

    async def delete_bucket(self, bucket: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.root / bucket, True)

    def writer(self, bucket: str, hashers: dict[str, Any] | None = None) -> BlobWriter:
        return BlobWriter(self.path(bucket, new_file_id()), hashers or {})

    async def unlink(self, bucket: str, file_ids: Iterable[str]) -> None:
        paths = [self.path(bucket, file_id) for file_id in file_ids]

        def remove() -> None:
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

        if paths:
            await asyncio.to_thread(remove)

    async def read(
        self, bucket: str, file_id: str, start: int, length: int
    ) -> AsyncIterator[bytes]:
        """The bytes ``[start, start + length)`` of a file, in chunks. The file is opened
        before the first chunk is asked for (see :meth:`open`)."""
        handle = await self.open(bucket, file_id)
        return self.chunks(handle, start, length)

    async def open(self, bucket: str, file_id: str) -> BinaryIO:
        """Raises FileNotFoundError."""
        return await asyncio.to_thread(self.path(bucket, file_id).open, "rb")

    @staticmethod
    async def chunks(handle: BinaryIO, start: int, length: int) -> AsyncIterator[bytes]:
        try:
            await asyncio.to_thread(handle.seek, start)
            while length > 0:
                data = await asyncio.to_thread(handle.read, min(READ_CHUNK, length))
                if not data:
                    break
                length -= len(data)
                yield data
        finally:
            await asyncio.to_thread(handle.close)

    async def concatenate(
        self, bucket: str, sources: list[tuple[str, str, int, int]]
    ) -> tuple[str, int, str]:
        """A new file made of ``(bucket, file id, start, length)`` slices, written atomically;
        returns its id, size and MD5 hex."""
        writer = self.writer(bucket)
        await writer.open()
        try:
            for source_bucket, file_id, start, length in sources:
                handle = await self.open(source_bucket, file_id)
                async for data in self.chunks(handle, start, length):
                    await writer.write(data)
            await writer.commit()
        except BaseException:
            await writer.discard()
            raise
        return writer.path.name, writer.size, writer.md5.hexdigest()

    async def sweep(self, bucket: str, known: set[str]) -> int:
        """Remove the temporary files and the files no index row refers to; returns how many."""

        def sweep() -> int:
            removed = 0
            folder = self.root / bucket
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                return 0
            for sub in folder.iterdir():
                if not sub.is_dir():
                    continue
                for path in sub.iterdir():
                    if path.name not in known:
                        with contextlib.suppress(OSError):
                            path.unlink()
                            removed += 1
            return removed

        return await asyncio.to_thread(sweep)
