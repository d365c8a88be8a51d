"""Span store writer benchmark (not a test): the cost of storing a traced gateway request,
with X-Ray-shaped trace ids (what the gateway makes) against fully random ones.

    python bench/span_writer.py [--records 300000] [--batch 5000] [--report 60000,300000]
                                [--callee]

In this process, for each kind of trace id: a fresh span store file in a temp dir (the span
store's schema, WAL, ``synchronous=NORMAL`` as the writer process opens it), then ``--records``
gateway records (a SERVER span and one upstream CLIENT try each, as the gateway hands them
over) written by ``SpanWriter.write`` in transactions of ``--batch`` records. Prints the
CPU time per record (``time.process_time``: row building, inserts, the trace index, dependency
rows, commits) once the store holds each of the ``--report`` counts, and the ratio between
the two kinds of id. The records differ only in their trace ids.

With ``--callee`` each request is a function call instead (a CLIENT ``invoke`` span and the
function's invocation SERVER span, as a node ships them: the gateway record and a span tuple),
with X-Ray-shaped ids, written as shipped and, for reference, as three plain span tuples (the
writer's general path).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from stackyard.telemetry.gateway_spans import FUNCTION_CALL, HTTP_TRY, REQUEST, expand
from stackyard.telemetry.span_writer import SpanTuple, SpanWriter

START = 1_764_000_000  # a Unix time; X-Ray-shaped ids advance one second per RATE records
RATE = 5_000


def trace_id(kind: str, n: int, rnd: random.Random) -> str:
    if kind == "random":
        return f"{rnd.getrandbits(128):032x}"  # the other kinds have X-Ray-shaped ids
    return f"{START + n // RATE:08x}{rnd.getrandbits(96):024x}"


def request(kind: str, n: int, rnd: random.Random) -> list[SpanTuple]:
    """What the node ships for request ``n``: its gateway record (``kind`` random or xray),
    or (``callee`` and ``tuples``) a function call's record and invocation span."""
    start_ns = (START + n // RATE) * 1_000_000_000 + n % RATE * 200_000
    call_id = f"{rnd.getrandbits(64):016x}"
    client: tuple[object, ...] = (
        HTTP_TRY,
        call_id,
        "GET /{proxy+}",
        start_ns + 20_000,
        900_000,
        "backend",
        "127.0.0.1",
        8081,
        1,
        200,
        None,
    )
    if kind in ("callee", "tuples"):
        client = (FUNCTION_CALL, call_id, "invoke hello", start_ns + 20_000, 900_000, "hello")
        client += (200, None)
    record = (
        REQUEST,
        trace_id(kind, n, rnd),
        f"{rnd.getrandbits(64):016x}",
        None,
        "gateway",
        start_ns,
        1_000_000,
        "GET",
        b"/items/42",
        b"",
        "/{proxy+}",
        "r0",
        "dev",
        200,
        None,
        f"{rnd.getrandbits(128):032x}",
        [client],
    )
    if kind not in ("callee", "tuples"):
        return [record]
    invocation = (
        record[1],
        f"{rnd.getrandbits(64):016x}",
        "hello",
        call_id,
        "SERVER",
        (start_ns + 40_000) // 1000,
        800,
        ("hello", None, None, None),
        None,
        {"faas.invocation_id": f"{rnd.getrandbits(128):032x}", "faas.name": "hello"},
        [],
        False,
        False,
    )
    return [record, invocation] if kind == "callee" else [*expand(record), invocation]


def run(kind: str, records: int, batch: int, report: list[int], folder: Path) -> dict[int, float]:
    conn = sqlite3.connect(folder / f"spans-{kind}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    writer = SpanWriter()
    conn.executescript(writer.schema)
    writer.open(conn)
    rnd = random.Random(7)
    cpu = 0.0
    out: dict[int, float] = {}
    for first in range(0, records, batch):
        items = [
            item
            for n in range(first, min(first + batch, records))
            for item in request(kind, n, rnd)
        ]
        began = time.process_time()
        conn.execute("BEGIN")
        writer.write(conn, items)
        conn.execute("COMMIT")
        cpu += time.process_time() - began
        done = min(first + batch, records)
        for mark in report:
            if first < mark <= done:
                out[mark] = cpu / done * 1e6
                print(f"  {kind}: {done:,} requests stored, {out[mark]:.1f} µs CPU per request")
    conn.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--report", default="60000,300000", help="store sizes to report at")
    parser.add_argument("--callee", action="store_true", help="function calls (see above)")
    args = parser.parse_args()
    report = sorted(int(x) for x in args.report.split(",") if int(x) <= args.records)
    slow_kind, fast_kind = ("tuples", "callee") if args.callee else ("random", "xray")
    with tempfile.TemporaryDirectory(prefix="stackyard-bench-") as tmp:
        results = {
            kind: run(kind, args.records, args.batch, report, Path(tmp))
            for kind in (slow_kind, fast_kind)
        }
    if args.callee:
        print("\n| requests stored | as span tuples µs/request | as shipped µs/request | ratio |")
    else:
        print("\n| records stored | random ids µs/record | X-Ray-shaped ids µs/record | ratio |")
    print("|---:|---:|---:|---:|")
    for mark in report:
        slow, fast = results[slow_kind][mark], results[fast_kind][mark]
        print(f"| {mark:,} | {slow:.1f} | {fast:.1f} | {slow / fast:.2f}x |")


if __name__ == "__main__":
    main()
