"""What the buckets component keeps about buckets, objects and uploads, and the store interface.

The object bytes live in files (see :mod:`.files`); a :class:`MetadataStore` keeps the index:
buckets, one row per object (its key, file id, size, ETag, headers, user metadata), the
multipart uploads in progress and their parts, and each bucket's notification configuration.
:class:`~.sqlite_store.SqliteMetadataStore` is the embedded implementation; a PostgreSQL one can
plug in behind the same interface.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class BucketInfo:
    name: str
    region: str
    created: float


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object. ``headers`` holds the content headers S3 stores with an object
    (Content-Type, Content-Disposition, Cache-Control, Content-Encoding, Content-Language,
    Expires) by their canonical names; ``metadata`` the ``x-amz-meta-*`` values without the
    prefix; ``checksums`` the ``x-amz-checksum-*`` values sent with it (algorithm → base64)."""

    bucket: str
    key: str
    file: str
    size: int
    etag: str  # without quotes
    modified: float
    headers: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)
    checksums: Mapping[str, str] = field(default_factory=dict)
    parts: int = 0  # the number of parts of a multipart object, else 0


@dataclass(frozen=True)
class UploadInfo:
    id: str
    bucket: str
    key: str
    initiated: float
    headers: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PartInfo:
    number: int
    file: str
    size: int
    etag: str  # without quotes
    modified: float


@dataclass(frozen=True)
class ListPage:
    """One page of a listing: objects and common prefixes in key order; ``next_marker`` is the
    last key or prefix returned when the listing is truncated."""

    objects: Sequence[ObjectInfo]
    prefixes: Sequence[str]
    truncated: bool
    next_marker: str | None


class MetadataStore(Protocol):
    """The index of a node's buckets. Every write is durable when its call returns."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def create_bucket(self, name: str, region: str) -> bool:
        """Create ``name``; False if it exists already."""

    async def delete_bucket(self, name: str) -> list[str]:
        """Delete an empty bucket and its uploads; returns the files of their parts.
        Raises NoSuchBucket, BucketNotEmpty."""

    async def bucket(self, name: str) -> BucketInfo:
        """Raises NoSuchBucket."""

    async def buckets(self) -> list[BucketInfo]: ...

    async def put_object(self, info: ObjectInfo) -> str | None:
        """Store ``info`` (replacing the key's object); returns the replaced object's file.
        Raises NoSuchBucket."""

    async def get_object(self, bucket: str, key: str) -> ObjectInfo:
        """Raises NoSuchBucket, NoSuchKey."""

    async def delete_objects(self, bucket: str, keys: Sequence[str]) -> list[tuple[str, str]]:
        """Delete ``keys`` (absent ones are no error); returns the deleted objects' keys and
        files. Raises NoSuchBucket."""

    async def list_objects(
        self, bucket: str, prefix: str, delimiter: str, after: str, limit: int
    ) -> ListPage:
        """Keys (and, with a delimiter, common prefixes) under ``prefix`` strictly after
        ``after``, at most ``limit`` of both together. Raises NoSuchBucket."""

    async def create_upload(self, upload: UploadInfo) -> None:
        """Raises NoSuchBucket."""

    async def upload(self, bucket: str, key: str, upload_id: str) -> UploadInfo:
        """Raises NoSuchBucket, NoSuchUpload."""

    async def put_part(self, upload_id: str, part: PartInfo) -> str | None:
        """Store a part (replacing one of the same number); returns the replaced part's file.
        Raises NoSuchUpload."""

    async def parts(self, upload_id: str) -> list[PartInfo]: ...

    async def complete_upload(
        self, upload_id: str, info: ObjectInfo
    ) -> tuple[str | None, list[str]]:
        """Replace the upload by the object ``info`` in one transaction; returns the replaced
        object's file and the files of the upload's parts. Raises NoSuchUpload."""

    async def abort_upload(self, upload_id: str) -> list[str]:
        """Forget the upload; returns its parts' files. Raises NoSuchUpload."""

    async def uploads(
        self, bucket: str, prefix: str, key_marker: str, id_marker: str, limit: int
    ) -> tuple[list[UploadInfo], bool]:
        """Uploads in progress by key, then initiation; and whether there are more."""

    async def files(self, bucket: str) -> set[str]:
        """Every file the index refers to in ``bucket`` (objects and parts)."""

    async def notifications(self) -> dict[str, str]:
        """Every bucket's notification configuration (JSON text) set through the API."""

    async def set_notifications(self, bucket: str, config: str | None) -> None:
        """Store (None: remove) the bucket's notification configuration; deleting the bucket
        removes it too. Raises NoSuchBucket."""
