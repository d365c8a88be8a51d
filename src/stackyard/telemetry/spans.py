"""The span store: ``<data_dir>/telemetry-spans.sqlite3`` (WAL), written by a child process.

Spans are queued by :meth:`SpanStore.add` (cheap: an append to a list, see
:mod:`.store_process`) and shipped every ``LINGER`` seconds to the store's writer process,
which inserts them in batches and, per batch, updates the service/span-name catalogs and the
dependency ``calls`` (:mod:`.span_writer`, :mod:`.dependencies`). Each row keeps the searchable
columns (trace id, service, name, remote service, time, duration, error) plus the span's Zipkin
JSON (``body``, tags and annotations included), so trace reads concatenate stored JSON without
re-encoding. Queries run in this process, on reader threads.

Indexes: ``trace_id`` (trace by id; the writer reads a batch's traces through it for
dependency links and to replace a re-sent span — same trace id, span id, kind and service —
instead of a unique index on those four, whose random keys cost a page write per span on
commit), ``(service, ts)``, ``(name, ts)`` and ``ts`` (time windows, retention; duration
filters are checked on the rows these find). The gateway's spans arrive in compact form
(:mod:`.gateway_spans`) and are built in the writer process. :meth:`SpanStore.flush` does not
wait for the linger. Retention (:meth:`SpanStore.enforce_retention`) deletes by age, by row
count and optionally by file size, in chunks (each a call to the writer process, so writes go
on between them), from ``spans``, ``calls`` and the name catalogs.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from . import dependencies, span_writer
from .gateway_spans import GatewayRecord
from .model import Span, now_us
from .retention import RetentionSettings, trim_store
from .retention import used_bytes as _used_bytes
from .span_writer import SCHEMA
from .store_process import StoreProcess

FILENAME = "telemetry-spans.sqlite3"
LINGER = 0.05
DEFAULT_LOOKBACK_MS = 86_400_000

__all__ = ["LINGER", "SCHEMA", "SpanStore", "TraceQuery", "parse_annotation_query"]


@dataclass(frozen=True)
class TraceQuery:
    """The filters of ``/api/v2/traces`` (durations µs, ``end_ts``/``lookback`` ms)."""

    service: str | None = None
    remote_service: str | None = None
    span_name: str | None = None
    annotations: tuple[tuple[str, str | None], ...] = ()
    min_duration: int | None = None
    max_duration: int | None = None
    end_ts: int | None = None
    lookback: int | None = None
    limit: int = 10


def parse_annotation_query(text: str) -> tuple[tuple[str, str | None], ...]:
    """``error and http.method=GET`` → ``(("error", None), ("http.method", "GET"))``."""
    terms: list[tuple[str, str | None]] = []
    for raw in text.split(" and "):
        term = raw.strip()
        if not term:
            continue
        key, sep, value = term.partition("=")
        terms.append((key.strip(), value.strip() if sep else None))
    return tuple(terms)


class SpanStore:
    """Spans, name catalogs and dependency calls in one SQLite file."""

    def __init__(self, data_dir: Path, *, max_pending: int = 200_000) -> None:
        self.path = Path(data_dir) / FILENAME
        self._worker: StoreProcess[Span | GatewayRecord] = StoreProcess(
            self.path,
            "spans",
            span_writer.encode,
            name="spans",
            max_pending=max_pending,
            linger=LINGER,
        )

    async def start(self) -> None:
        await self._worker.start()

    async def stop(self) -> None:
        await self._worker.stop()

    @property
    def pending(self) -> int:
        return self._worker.pending

    @property
    def writer_pid(self) -> int | None:
        """The writer process's id while the store runs."""
        return self._worker.pid

    def add(self, span: Span | GatewayRecord) -> None:
        """Queue one span, or a gateway request's spans in compact form
        (:mod:`.gateway_spans`); raises ``Overloaded`` when the queue is full, ``StoreClosed``."""
        self._worker.put(span)

    def add_many(self, spans: list[Span]) -> None:
        """Queue a batch of spans, all or none."""
        if spans:
            self._worker.put_many(cast("list[Span | GatewayRecord]", spans))

    async def flush(self) -> None:
        """Wait until every span queued so far is stored and queryable."""
        await self._worker.flush()

    # -- retention ---------------------------------------------------------------------------

    async def enforce_retention(self, settings: RetentionSettings) -> int:
        """Delete spans (and derived rows) beyond the limits; returns the spans deleted."""
        call = self._worker.call
        cutoff = now_us() - int(settings.max_age * 1_000_000)
        deleted = await trim_store(call, cutoff, settings.max_spans, settings.max_bytes)
        await call("trim_derived", cutoff, deleted > 0)
        return deleted

    async def used_bytes(self) -> int:
        return await self._worker.read(_used_bytes)

    # -- queries (reader threads) ------------------------------------------------------------

    async def services(self) -> list[str]:
        return await self._worker.read(
            lambda c: [r[0] for r in c.execute("SELECT DISTINCT service FROM span_names")]
        )

    async def span_names(self, service: str) -> list[str]:
        return await self._worker.read(
            lambda c: [
                r[0]
                for r in c.execute(
                    "SELECT name FROM span_names WHERE service = ? ORDER BY name",
                    (service.lower(),),
                )
            ]
        )

    async def remote_services(self, service: str) -> list[str]:
        return await self._worker.read(
            lambda c: [
                r[0]
                for r in c.execute(
                    "SELECT remote FROM remote_services WHERE service = ? ORDER BY remote",
                    (service.lower(),),
                )
            ]
        )

    async def trace_json(self, trace_id: str) -> str | None:
        """The trace's spans as a Zipkin JSON list (by timestamp), or None when unknown."""

        def work(conn: sqlite3.Connection) -> str | None:
            bodies = [
                r[0]
                for r in conn.execute(
                    "SELECT body FROM spans WHERE trace_id = ? ORDER BY ts", (trace_id,)
                )
            ]
            return "[" + ",".join(bodies) + "]" if bodies else None

        return await self._worker.read(work)

    async def traces_json(self, query: TraceQuery) -> str:
        """The traces matching ``query`` (newest first) as a Zipkin JSON list of lists."""
        return await self._worker.read(lambda c: _traces_json(c, query))

    async def dependencies(
        self, end_ts: int | None, lookback: int | None
    ) -> list[dict[str, object]]:
        end = end_ts if end_ts is not None else int(time.time() * 1000)
        start = end - (lookback if lookback is not None else DEFAULT_LOOKBACK_MS)
        return await self._worker.read(
            lambda c: dependencies.query_links(c, start * 1000, end * 1000 + 999)
        )

    async def count(self) -> int:
        return await self._worker.read(
            lambda c: c.execute("SELECT count(*) FROM spans").fetchone()[0]
        )


def _traces_json(conn: sqlite3.Connection, query: TraceQuery) -> str:
    end = query.end_ts if query.end_ts is not None else int(time.time() * 1000)
    lookback = query.lookback if query.lookback is not None else DEFAULT_LOOKBACK_MS
    where = ["ts BETWEEN ? AND ?"]
    args: list[object] = [(end - lookback) * 1000, end * 1000 + 999]
    for column, value in (
        ("service", query.service),
        ("remote_service", query.remote_service),
        ("name", query.span_name),
    ):
        if value:
            where.append(f"{column} = ?")
            args.append(value.lower())
    if query.min_duration is not None:
        where.append("duration >= ?")
        args.append(query.min_duration)
    if query.max_duration is not None:
        where.append("duration <= ?")
        args.append(query.max_duration)
    for key, value in query.annotations:
        if value is None:
            where.append(
                "(EXISTS (SELECT 1 FROM json_each(body, '$.tags') WHERE key = ?) OR EXISTS"
                " (SELECT 1 FROM json_each(body, '$.annotations')"
                " WHERE json_extract(value, '$.value') = ?))"
            )
            args += [key, key]
        else:
            where.append(
                "EXISTS (SELECT 1 FROM json_each(body, '$.tags') WHERE key = ? AND value = ?)"
            )
            args += [key, value]
    # newest span first through the time index, first sight of each trace: the traces in
    # order of their latest matching span, reading only as far as the limit needs (a GROUP BY
    # would read every span in the window)
    sql = f"SELECT trace_id FROM spans WHERE {' AND '.join(where)} ORDER BY ts DESC"
    trace_ids: list[str] = []
    seen: set[str] = set()
    for (trace_id,) in conn.execute(sql, args):
        if trace_id not in seen:
            seen.add(trace_id)
            trace_ids.append(trace_id)
            if len(trace_ids) >= query.limit:
                break
    if not trace_ids:
        return "[]"
    marks = ",".join("?" * len(trace_ids))
    grouped: dict[str, list[str]] = {t: [] for t in trace_ids}
    for trace_id, body in conn.execute(
        f"SELECT trace_id, body FROM spans WHERE trace_id IN ({marks}) ORDER BY ts", trace_ids
    ):
        grouped[trace_id].append(body)
    return "[" + ",".join("[" + ",".join(b) + "]" for b in grouped.values()) + "]"
