"""The store interface of the tables component; :mod:`.sqlite` implements it.

The store knows tables by an integer id, items by their encoded keys (see
:func:`.values.encode_key`) and index entries by (index key, base key). It knows nothing of
expressions or DynamoDB semantics: :mod:`.engine` does that on top of it, so another backend
(PostgreSQL) only has to implement this Protocol. Every method is synchronous and is called from
the engine's one worker thread; ``atomic()`` makes the writes inside it one durable transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from .schema import TableSchema
from .values import Item

# (hash key, range key) bytes of an item in a table, or of an entry in an index
Key = tuple[bytes, bytes]


@dataclass(frozen=True, slots=True)
class Bound:
    """One end of a sort-key range: the encoded value and whether it is included."""

    value: bytes
    inclusive: bool


@dataclass(frozen=True, slots=True)
class Row:
    """An item as a range read returns it, with the position to resume after it."""

    item: Item
    position: tuple[bytes, ...]  # (range key[, base hash, base range]) or scan position


class TableStore(Protocol):
    def open(self) -> None: ...

    def close(self) -> None: ...

    def atomic(self) -> AbstractContextManager[None]: ...

    # -- tables ---------------------------------------------------------------------------

    def load_tables(self) -> dict[str, tuple[int, TableSchema]]: ...

    def create_table(self, schema: TableSchema) -> int: ...

    def save_table(self, table_id: int, schema: TableSchema) -> None: ...

    def drop_table(self, table_id: int) -> None: ...

    def stats(self, table_id: int) -> tuple[int, int]:
        """(item count, total item size in bytes)."""
        ...

    # -- items ----------------------------------------------------------------------------

    def get(self, table_id: int, key: Key) -> Item | None: ...

    def put(
        self, table_id: int, key: Key, item: Item, size: int, expires: float | None
    ) -> None: ...

    def delete(self, table_id: int, key: Key) -> None: ...

    def put_index(self, table_id: int, index: str, key: Key, base: Key) -> None: ...

    def delete_index(self, table_id: int, index: str, key: Key, base: Key) -> None: ...

    def drop_index(self, table_id: int, index: str) -> None: ...

    def query(
        self,
        table_id: int,
        index: str | None,
        hash_key: bytes,
        low: Bound | None,
        high: Bound | None,
        forward: bool,
        after: tuple[bytes, ...] | None,
    ) -> Iterator[Row]:
        """Items with this hash key and a range key within the bounds, in range-key order
        (then base key, for an index), starting after ``after``."""
        ...

    def scan(
        self,
        table_id: int,
        index: str | None,
        segment: int,
        total_segments: int,
        after: tuple[bytes, ...] | None,
    ) -> Iterator[Row]:
        """Every item of a table or index (or of one segment of it) in a stable order."""
        ...

    def expired(self, table_id: int, now: float, oldest: float, limit: int) -> list[Item]:
        """Items whose TTL time is in (``oldest``, ``now``]."""
        ...

    def set_expiry(self, table_id: int, key: Key, expires: float | None) -> None: ...
