"""Process-level tuning for a node that serves the gateway: the cyclic garbage collector.

A node imports a lot (pydantic models, aiohttp, granian, the components) and keeps it for its
whole life; every full (generation 2) collection walks all of it, which stalled the gateway's
event loop for 10-20 ms at a time under load (p99 16-23 ms at ~20k requests/s, measured with
bench/gateway.py; docs/benchmarks.md). :func:`tune_gc`, called once after the node started,
moves everything alive at that point into the permanent generation (``gc.freeze``), so
collections only walk what was allocated since: p99 fell to ~5 ms, throughput unchanged.
Raising the collection thresholds on top of that did not help measurably, so they are left
alone.
"""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Collects once, then freezes every surviving object out of future collections.

    Call it after start-up (components started, modules imported), in the process that serves
    the gateway; calling it again later freezes what was added since.
    """
    gc.collect()
    gc.freeze()
