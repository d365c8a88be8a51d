"""The KV store: Consul-style entries with create/modify indexes, prefix listing, check-and-set.

Entries live in memory (a dict plus a sorted key list for prefix scans) and are written through
to the registry's SQLite store before a write returns. KV indexes come from the registry's
shared ``IndexClock`` (one index space with the catalog, like Consul's raft index); the KV
``ChangeFeed`` holds the index of the last KV change, which is what ``X-Consul-Index`` shows on
KV answers and what blocking KV reads wait on.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable

from .errors import RegistryClosed
from .feed import ChangeFeed, IndexClock, Listener
from .models import KVEntry
from .store import RegistryStore

MAX_FLAGS = (1 << 64) - 1


class KVStore:
    """Keys → ``KVEntry``; writes are persisted through ``store`` (when given) before returning."""

    def __init__(self, clock: IndexClock, store: RegistryStore | None = None) -> None:
        self._clock = clock
        self._store = store
        self._entries: dict[str, KVEntry] = {}
        self._sorted: list[str] = []
        self._feed = ChangeFeed()

    # -- loading / lifecycle -------------------------------------------------------------

    def load(self, entries: Iterable[KVEntry], index: int) -> None:
        self._entries = {e.key: e for e in entries}
        self._sorted = sorted(self._entries)
        last = max((e.modify_index for e in self._entries.values()), default=0)
        self._feed.reset(max(last, index, 1))

    def close(self) -> None:
        self._feed.close()

    # -- reads ---------------------------------------------------------------------------

    @property
    def index(self) -> int:
        """The index of the last KV change (never 0)."""
        return self._feed.index

    def get(self, key: str) -> KVEntry | None:
        return self._entries.get(key)

    def list_prefix(self, prefix: str = "") -> list[KVEntry]:
        """Every entry whose key starts with ``prefix``, in key order."""
        return [self._entries[k] for k in self._prefixed(prefix)]

    def keys(self, prefix: str = "", separator: str | None = None) -> list[str]:
        """Keys under ``prefix``; with ``separator``, folded up to the first separator after it."""
        out: list[str] = []
        for key in self._prefixed(prefix):
            if separator:
                cut = key.find(separator, len(prefix))
                if cut >= 0:
                    key = key[: cut + len(separator)]
            if not out or out[-1] != key:
                out.append(key)
        return out

    async def wait_for_change(self, index: int, timeout: float) -> int:  # noqa: ASYNC109
        return await self._feed.wait_for_change(index, timeout)

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        return self._feed.add_listener(listener)

    # -- writes --------------------------------------------------------------------------

    async def put(self, key: str, value: bytes, *, flags: int = 0, cas: int | None = None) -> bool:
        """Set ``key``. With ``cas``: 0 writes only if absent, N only if ModifyIndex is N."""
        if not key:
            raise ValueError("missing key name")
        if not 0 <= flags <= MAX_FLAGS:
            raise ValueError("flags must be an unsigned 64-bit integer")
        self._require_open()
        existing = self._entries.get(key)
        if cas is not None:
            current = existing.modify_index if existing else 0
            if cas != current:
                return False
        index = self._clock.advance()
        entry = KVEntry(
            key=key,
            value=bytes(value),
            flags=flags,
            create_index=existing.create_index if existing else index,
            modify_index=index,
            lock_index=existing.lock_index if existing else 0,
            session=existing.session if existing else None,
        )
        if existing is None:
            bisect.insort(self._sorted, key)
        self._entries[key] = entry
        pending = self._store.put_kv(entry, index) if self._store else None
        self._feed.publish(index)
        if pending is not None:
            await pending
        return True

    async def delete(self, key: str, *, recurse: bool = False, cas: int | None = None) -> bool:
        """Delete ``key`` (or every key under the prefix with ``recurse``; ``cas`` is then ignored).

        With ``cas`` the key is deleted only if its ModifyIndex equals it; a missing key counts
        as deleted (``True``), as in Consul.
        """
        self._require_open()
        if recurse:
            doomed = self._prefixed(key)
        else:
            existing = self._entries.get(key)
            if existing is None:
                return True
            if cas is not None and cas != existing.modify_index:
                return False
            doomed = [key]
        if not doomed:
            return True
        for k in doomed:
            del self._entries[k]
        doomed_set = set(doomed)
        self._sorted = [k for k in self._sorted if k not in doomed_set]
        index = self._clock.advance()
        pending = self._store.delete_kv(doomed, index) if self._store else None
        self._feed.publish(index)
        if pending is not None:
            await pending
        return True

    def _require_open(self) -> None:
        if self._store is not None and not self._store.is_open:
            raise RegistryClosed("registry is not started")

    def _prefixed(self, prefix: str) -> list[str]:
        start = bisect.bisect_left(self._sorted, prefix)
        out: list[str] = []
        for key in self._sorted[start:]:
            if not key.startswith(prefix):
                break
            out.append(key)
        return out
