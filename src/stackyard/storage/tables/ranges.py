"""The SQL of range reads (Query, Scan), shared by the SQLite and PostgreSQL stores.

Both stores have the same layout — ``items(tid, h, hk, rk, ...)`` and
``index_items(tid, idx, h, hk, rk, bh, bhk, brk)``, keys compared bytewise — so a Query is one
range of the primary key in range-key order (then base key, for an index) and a Scan walks it
in ``(h, hk, rk)`` order, a segment being a range of ``h``. :func:`pages` runs such a read
``PAGE`` rows at a time, each page resuming after the last row, so that the caller may write
between pages and stop early. ``mark`` is the driver's parameter placeholder (``?`` or ``%s``).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .store import Bound, Row

PAGE = 256  # rows fetched per statement while a query or scan runs


def partition(hash_key: bytes) -> int:
    """``h``: the CRC-32 of the hash-key bytes (a Scan's order, a segment's range)."""
    return zlib.crc32(hash_key)


@dataclass(frozen=True)
class RangeRead:
    source: str
    columns: str
    where: list[str]
    params: list[object]
    order_columns: str
    order: str
    forward: bool


def _index_source(prefix: str) -> str:
    return (
        f"{prefix}index_items x JOIN {prefix}items i ON i.tid = x.tid AND i.h = x.bh "
        "AND i.hk = x.bhk AND i.rk = x.brk"
    )


def query_read(
    prefix: str,
    mark: str,
    table_id: int,
    index: str | None,
    hash_key: bytes,
    low: Bound | None,
    high: Bound | None,
    forward: bool,
) -> RangeRead:
    """Items with this hash key and a range key within the bounds (``prefix``: the schema of
    the tables, with its dot, or empty)."""
    if index is None:
        source, columns, order_columns = f"{prefix}items x", "x.item, x.rk", "x.rk"
        where = [f"x.tid = {mark}", f"x.h = {mark}", f"x.hk = {mark}"]
        params: list[object] = [table_id, partition(hash_key), hash_key]
    else:
        source, columns = _index_source(prefix), "i.item, x.rk, x.bhk, x.brk"
        order_columns = "x.rk, x.bhk, x.brk"
        where = [f"x.tid = {mark}", f"x.idx = {mark}", f"x.h = {mark}", f"x.hk = {mark}"]
        params = [table_id, index, partition(hash_key), hash_key]
    if low is not None:
        where.append(f"x.rk {'>=' if low.inclusive else '>'} {mark}")
        params.append(low.value)
    if high is not None:
        where.append(f"x.rk {'<=' if high.inclusive else '<'} {mark}")
        params.append(high.value)
    direction = "ASC" if forward else "DESC"
    order = ", ".join(f"{c} {direction}" for c in order_columns.split(", "))
    return RangeRead(source, columns, where, params, order_columns, order, forward)


def scan_read(
    prefix: str, mark: str, table_id: int, index: str | None, segment: int, total_segments: int
) -> RangeRead:
    """Every item of a table or index, or of one segment of it, in ``(h, hk, rk)`` order."""
    if index is None:
        source, columns = f"{prefix}items x", "x.item, x.h, x.hk, x.rk"
        where = [f"x.tid = {mark}"]
        params: list[object] = [table_id]
        order_columns = "x.h, x.hk, x.rk"
    else:
        source, columns = _index_source(prefix), "i.item, x.h, x.hk, x.rk, x.bhk, x.brk"
        where = [f"x.tid = {mark}", f"x.idx = {mark}"]
        params = [table_id, index]
        order_columns = "x.h, x.hk, x.rk, x.bhk, x.brk"
    if total_segments > 1:
        where.append(f"x.h >= {mark} AND x.h < {mark}")
        params += [(segment << 32) // total_segments, ((segment + 1) << 32) // total_segments]
    return RangeRead(source, columns, where, params, order_columns, order_columns, True)


def pages(
    fetch: Callable[[str, list[object]], Sequence[Sequence[object]]],
    read: RangeRead,
    mark: str,
    after: tuple[object, ...] | None,
) -> Iterator[Row]:
    """The rows of ``read`` in order, after ``after``, fetched ``PAGE`` at a time."""
    comparison = ">" if read.forward else "<"
    while True:
        conditions = list(read.where)
        params = list(read.params)
        if after is not None:
            marks = ", ".join([mark] * len(after))
            conditions.append(f"({read.order_columns}) {comparison} ({marks})")
            params += after
        sql = (
            f"SELECT {read.columns} FROM {read.source} WHERE {' AND '.join(conditions)} "
            f"ORDER BY {read.order} LIMIT {PAGE}"
        )
        rows = fetch(sql, params)
        for row in rows:
            yield Row(json.loads(str(row[0])), tuple(row[1:]))  # type: ignore[arg-type]
        if len(rows) < PAGE:
            return
        after = tuple(rows[-1][1:])
