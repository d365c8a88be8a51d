"""The buckets component: S3-style buckets and objects on the node's disk.

:class:`Buckets` puts the object files (:mod:`.files`) and the index (a
:class:`~.store.MetadataStore`) together. Every write follows one order — the bytes are
written, fsynced and renamed into place, then the index row is committed, then replaced files
are unlinked — so an acknowledged write survives a crash (kill -9, power loss after the WAL
fsync) and a half-written object is never visible. ``start`` opens the index, sweeps what an
earlier crash may have left (temporary files, files no row refers to) and creates the
buckets declared in the stack (``buckets:``); ``app`` is the S3 REST API (:mod:`.api`).
Each committed write is reported to :attr:`Buckets.notifications` (:mod:`.notifications`),
which triggers the functions the bucket's notification rules name.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from ...config.models import BucketConfig
from .errors import EntityTooSmall, InvalidPart, InvalidPartOrder, NoSuchKey
from .files import BlobFiles, BlobWriter
from .notifications import FunctionTarget, NotificationRule, Notifications, Origin
from .sqlite_store import SqliteMetadataStore
from .store import MetadataStore, ObjectInfo, PartInfo, UploadInfo

logger = logging.getLogger(__name__)

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10000

Verify = Callable[[BlobWriter], dict[str, str]]
"""Checks a written body (raises to refuse it); returns the checksums to keep with it."""


class Buckets:
    """Buckets under ``<data_dir>/buckets`` with their index in ``buckets.sqlite3``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        region: str = "us-east-1",
        declared: Mapping[str, BucketConfig] | None = None,
        secret_key: str = "stackyard",
        store: MetadataStore | None = None,
        notifications: Mapping[str, Sequence[NotificationRule]] | None = None,
        functions: FunctionTarget | None = None,
    ) -> None:
        self.region = region
        self.secret_key = secret_key
        self.declared = dict(declared or {})
        self.store: MetadataStore = store or SqliteMetadataStore(data_dir / "buckets.sqlite3")
        self.files = BlobFiles(data_dir / "buckets")
        self.min_part_size = MIN_PART_SIZE
        self.notifications = Notifications(
            self.store, region=region, rules=notifications, functions=functions
        )
        from .api import S3App  # the API needs the service; built here so the node has one

        self.app = S3App(self)

    async def start(self) -> None:
        await self.store.open()
        await self.notifications.start()
        for bucket in await self.store.buckets():
            removed = await self.files.sweep(bucket.name, await self.store.files(bucket.name))
            if removed:
                logger.info(
                    "bucket %s: removed %d unfinished or orphan files", bucket.name, removed
                )
        for name, settings in self.declared.items():
            await self.create_bucket(name, settings.region or self.region)
        await self.notifications.check_buckets()

    async def apply(
        self,
        declared: Mapping[str, BucketConfig],
        notifications: Mapping[str, Sequence[NotificationRule]],
    ) -> None:
        """A deploy: create the newly declared buckets, take the stack's new rules."""
        for name, settings in declared.items():
            if name not in self.declared:
                await self.create_bucket(name, settings.region or self.region)
        self.declared = dict(declared)
        self.notifications.use_stack(notifications)
        await self.notifications.check_buckets()

    async def stop(self) -> None:
        await self.notifications.stop()
        await self.store.close()

    # buckets

    async def create_bucket(self, name: str, region: str) -> bool:
        """False if the bucket exists already."""
        await self.files.create_bucket(name)
        return await self.store.create_bucket(name, region)

    async def delete_bucket(self, name: str) -> None:
        await self.store.delete_bucket(name)
        self.notifications.forget(name)
        await self.files.delete_bucket(name)

    # objects

    async def put_object(
        self,
        bucket: str,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        headers: Mapping[str, str],
        metadata: Mapping[str, str],
        hashers: dict[str, Any] | None = None,
        verify: Verify | None = None,
        origin: Origin | None = None,
    ) -> ObjectInfo:
        """Stream ``chunks`` into a new object; ``verify`` may refuse it (raise) before it is
        stored. ``origin``: the request, for the notifications."""
        await self.store.bucket(bucket)
        writer, checksums = await self._write(bucket, chunks, hashers, verify)
        info = ObjectInfo(
            bucket=bucket,
            key=key,
            file=writer.path.name,
            size=writer.size,
            etag=writer.md5.hexdigest(),
            modified=time.time(),
            headers=dict(headers),
            metadata=dict(metadata),
            checksums=checksums,
        )
        await self._store_object(info, "ObjectCreated:Put", origin)
        return info

    async def _write(
        self,
        bucket: str,
        chunks: AsyncIterator[bytes],
        hashers: dict[str, Any] | None,
        verify: Verify | None,
    ) -> tuple[BlobWriter, dict[str, str]]:
        """A new file with the bytes of ``chunks``, durable under its final name, and the
        checksums ``verify`` returned."""
        writer = self.files.writer(bucket, hashers)
        await writer.open()
        try:
            async for data in chunks:
                await writer.write(data)
            await writer.flush()  # the hashes cover every byte from here on
            checksums = verify(writer) if verify is not None else {}
            await writer.commit()
        except BaseException:
            await writer.discard()
            raise
        return writer, checksums

    async def _store_object(self, info: ObjectInfo, event: str, origin: Origin | None) -> None:
        try:
            replaced = await self.store.put_object(info)
        except BaseException:
            await self.files.unlink(info.bucket, [info.file])
            raise
        pending = self._created(event, info, origin)
        if replaced is not None:
            await self.files.unlink(info.bucket, [replaced])
        await self.notifications.settle([pending])

    def _created(
        self, event: str, info: ObjectInfo, origin: Origin | None
    ) -> asyncio.Future[None] | None:
        return self.notifications.changed(
            event, info.bucket, info.key, info.size, info.etag, origin
        )

    async def get_object(self, bucket: str, key: str) -> ObjectInfo:
        return await self.store.get_object(bucket, key)

    async def open_object(self, bucket: str, key: str) -> tuple[ObjectInfo, BinaryIO]:
        """The object and its file, opened (a concurrent overwrite may unlink the file between
        the index read and the open: then the index is read again)."""
        for _ in range(5):
            info = await self.store.get_object(bucket, key)
            try:
                return info, await self.files.open(bucket, info.file)
            except FileNotFoundError:
                continue
        raise NoSuchKey(Key=key)

    def read_object(self, handle: BinaryIO, start: int, length: int) -> AsyncIterator[bytes]:
        """The bytes ``[start, start + length)`` of an object :meth:`open_object` opened, in
        chunks read off the event loop; the handle is closed when the generator ends."""
        return self.files.chunks(handle, start, length)

    async def delete_objects(
        self, bucket: str, keys: Sequence[str], origin: Origin | None = None
    ) -> None:
        deleted = await self.store.delete_objects(bucket, keys)
        pending = [
            self.notifications.changed("ObjectRemoved:Delete", bucket, key, None, None, origin)
            for key, _ in deleted
        ]
        await self.files.unlink(bucket, [file for _, file in deleted])
        await self.notifications.settle(pending)

    async def copy_object(
        self,
        source: ObjectInfo,
        bucket: str,
        key: str,
        *,
        headers: Mapping[str, str],
        metadata: Mapping[str, str],
        origin: Origin | None = None,
    ) -> ObjectInfo:
        await self.store.bucket(bucket)
        file_id, size, md5 = await self.files.concatenate(
            bucket, [(source.bucket, source.file, 0, source.size)]
        )
        info = ObjectInfo(
            bucket=bucket,
            key=key,
            file=file_id,
            size=size,
            etag=md5,  # a copy is stored in one part: its ETag is its MD5
            modified=time.time(),
            headers=dict(headers),
            metadata=dict(metadata),
            checksums={} if source.parts else dict(source.checksums),
        )
        await self._store_object(info, "ObjectCreated:Copy", origin)
        return info

    # multipart uploads

    async def create_upload(
        self, bucket: str, key: str, headers: Mapping[str, str], metadata: Mapping[str, str]
    ) -> UploadInfo:
        upload = UploadInfo(
            id=uuid.uuid4().hex + uuid.uuid4().hex,
            bucket=bucket,
            key=key,
            initiated=time.time(),
            headers=dict(headers),
            metadata=dict(metadata),
        )
        await self.store.create_upload(upload)
        return upload

    async def upload_part(
        self,
        upload: UploadInfo,
        number: int,
        chunks: AsyncIterator[bytes],
        *,
        hashers: dict[str, Any] | None = None,
        verify: Verify | None = None,
    ) -> tuple[PartInfo, dict[str, str]]:
        writer, checksums = await self._write(upload.bucket, chunks, hashers, verify)
        part = PartInfo(number, writer.path.name, writer.size, writer.md5.hexdigest(), time.time())
        await self._store_part(upload, part)
        return part, checksums

    async def copy_part(
        self, upload: UploadInfo, number: int, source: ObjectInfo, start: int, length: int
    ) -> PartInfo:
        file_id, size, md5 = await self.files.concatenate(
            upload.bucket, [(source.bucket, source.file, start, length)]
        )
        part = PartInfo(number, file_id, size, md5, time.time())
        await self._store_part(upload, part)
        return part

    async def _store_part(self, upload: UploadInfo, part: PartInfo) -> None:
        try:
            replaced = await self.store.put_part(upload.id, part)
        except BaseException:
            await self.files.unlink(upload.bucket, [part.file])
            raise
        if replaced is not None:
            await self.files.unlink(upload.bucket, [replaced])

    async def complete_upload(
        self, upload: UploadInfo, wanted: Sequence[tuple[int, str]], origin: Origin | None = None
    ) -> ObjectInfo:
        """Join the parts ``wanted`` (number, ETag without quotes) into the object."""
        if not wanted:
            raise InvalidPart("You must specify at least one part")  # S3 says MalformedXML
        numbers = [number for number, _ in wanted]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
            raise InvalidPartOrder(UploadId=upload.id)
        stored = {part.number: part for part in await self.store.parts(upload.id)}
        chosen: list[PartInfo] = []
        for number, etag in wanted:
            part = stored.get(number)
            if part is None or part.etag != etag:
                raise InvalidPart(UploadId=upload.id, PartNumber=str(number), ETag=etag)
            chosen.append(part)
        for part in chosen[:-1]:
            if part.size < self.min_part_size:
                raise EntityTooSmall(
                    ProposedSize=str(part.size),
                    MinSizeAllowed=str(self.min_part_size),
                    PartNumber=str(part.number),
                    ETag=part.etag,
                )
        file_id, size, _ = await self.files.concatenate(
            upload.bucket, [(upload.bucket, part.file, 0, part.size) for part in chosen]
        )
        digest = hashlib.md5(b"".join(bytes.fromhex(part.etag) for part in chosen))
        info = ObjectInfo(
            bucket=upload.bucket,
            key=upload.key,
            file=file_id,
            size=size,
            etag=f"{digest.hexdigest()}-{len(chosen)}",
            modified=time.time(),
            headers=dict(upload.headers),
            metadata=dict(upload.metadata),
            parts=len(chosen),
        )
        try:
            replaced, part_files = await self.store.complete_upload(upload.id, info)
        except BaseException:
            await self.files.unlink(upload.bucket, [file_id])
            raise
        pending = self._created("ObjectCreated:CompleteMultipartUpload", info, origin)
        await self.files.unlink(upload.bucket, [*part_files, *([replaced] if replaced else [])])
        await self.notifications.settle([pending])
        return info

    async def abort_upload(self, upload: UploadInfo) -> None:
        files = await self.store.abort_upload(upload.id)
        await self.files.unlink(upload.bucket, files)
