"""Process-level tuning for a node that serves the gateway: the cyclic garbage collector.

A node imports a lot (pydantic models, aiohttp, granian, the components) and keeps it for its
whole life; every full (generation 2) collection walks all of it, which stalled the gateway's
event loop for 10-20 ms at a time under load (p99 16-23 ms at ~20k requests/s, measured with
bench/gateway.py; docs/benchmarks.md). :func:`tune_gc`, called once after the node started,
moves everything alive at that point into the permanent generation (``gc.freeze``), so
collections only walk what was allocated since: p99 fell to ~5 ms, throughput unchanged.

A request allocates dozens of container objects (scope, headers, coroutines; a function
request its event and result as well), so with the default threshold of 700 the youngest
generation is collected every few requests, walking every request in flight each time.
:func:`tune_gc` raises that threshold to :data:`YOUNG_THRESHOLD`: on a function route the
event loop's CPU per request fell by ≈ 7 % (107 → 100 µs, requests/s +7.5 %), on a proxied
route by ≈ 1 µs (docs/benchmarks.md). Cycles are still collected, a few thousand objects later.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Allocations (net) between collections of the youngest generation (Python's default: 700)."""


def tune_gc() -> None:
    """Collects once, freezes every surviving object out of future collections and collects
    the youngest generation less often (the older ones keep their default ratios).

    Call it after start-up (components started, modules imported), in the process that serves
    the gateway; calling it again later freezes what was added since.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
