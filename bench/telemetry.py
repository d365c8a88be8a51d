"""Telemetry ingest/query benchmark (not a test): spans/s, log lines/s, trace-by-id latency.

    python bench/telemetry.py [--spans 100000] [--batch 500] [--logs 200000] [--stored 100000]

1. starts a child process serving ``Telemetry.routes()`` on ``AsgiServer`` (granian, uvloop);
2. for OTLP protobuf, OTLP JSON and Zipkin JSON: posts ``--spans`` spans in batches of
   ``--batch`` (4 concurrent clients), waits until the last span is queryable, and prints
   spans/s by wall time and per CPU-second of the server (read from /proc: the server process —
   event loop, decode threads — plus its store writer processes; steadier than wall time on a
   shared machine);
3. records ``--spans`` gateway-like spans (a SERVER span and its CLIENT span per request) through
   ``Telemetry.record_span`` in this process, as the gateway does, and prints spans/s until
   they are stored and queryable, the CPU per span of this process (what the gateway pays) and
   of the span writer process, and spans per CPU-second of both together;
4. pushes ``--logs`` supervisor records through ``log_sink`` in this process and prints lines/s
   until they are committed and searchable, and per CPU-second of this process and the log
   writer process together;
5. with ``--stored`` spans in the store (8 per trace), measures ``GET /api/v2/trace/{id}`` p50/p99
   and a full-text log search.

Only loopback is used; the child is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

SPANS_PER_TRACE = 8


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants (the store writer processes)."""
    total = 0.0
    for proc in [pid, *_children(pid)]:
        with contextlib.suppress(OSError):
            total += _cpu_seconds(proc)
            if proc != pid:
                total += sum(_cpu_seconds(c) for c in _children(proc))
    return total


def _ids(run: int, n: int) -> tuple[str, str, str | None]:
    trace = f"{run:08x}{n // SPANS_PER_TRACE:024x}"
    span = f"{run:04x}{n + 1:012x}"
    parent = None if n % SPANS_PER_TRACE == 0 else f"{run:04x}{n - n % SPANS_PER_TRACE + 1:012x}"
    return trace, span, parent


def zipkin_batch(run: int, start: int, count: int) -> bytes:
    now = int(time.time() * 1e6)
    spans = []
    for n in range(start, start + count):
        trace, span, parent = _ids(run, n)
        item = {
            "traceId": trace,
            "id": span,
            "name": "get /api/items",
            "kind": "SERVER",
            "timestamp": now,
            "duration": 1200,
            "localEndpoint": {"serviceName": f"svc{n % 8}"},
            "tags": {"http.method": "GET", "http.status_code": "200"},
        }
        if parent:
            item["parentId"] = parent
        spans.append(item)
    return json.dumps(spans).encode()


def otlp_json_batch(run: int, start: int, count: int) -> bytes:
    now = time.time_ns()
    spans = []
    for n in range(start, start + count):
        trace, span, parent = _ids(run, n)
        spans.append(
            {
                "traceId": trace,
                "spanId": span,
                "parentSpanId": parent or "",
                "name": "GET /api/items",
                "kind": 2,
                "startTimeUnixNano": str(now),
                "endTimeUnixNano": str(now + 1_200_000),
                "attributes": [
                    {"key": "http.method", "value": {"stringValue": "GET"}},
                    {"key": "http.status_code", "value": {"intValue": "200"}},
                ],
            }
        )
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]}
    doc = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}
    return json.dumps(doc).encode()


def otlp_protobuf_batch(run: int, start: int, count: int) -> bytes:
    now = time.time_ns()
    spans = []
    for n in range(start, start + count):
        trace, span, parent = _ids(run, n)
        spans.append(
            Span(
                trace_id=bytes.fromhex(trace),
                span_id=bytes.fromhex(span),
                parent_span_id=bytes.fromhex(parent) if parent else b"",
                name="GET /api/items",
                kind=Span.SPAN_KIND_SERVER,
                start_time_unix_nano=now,
                end_time_unix_nano=now + 1_200_000,
                attributes=[
                    KeyValue(key="http.method", value=AnyValue(string_value="GET")),
                    KeyValue(key="http.status_code", value=AnyValue(int_value=200)),
                ],
            )
        )
    resource_spans = ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])
    resource_spans.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value="svc"))
    )
    return ExportTraceServiceRequest(resource_spans=[resource_spans]).SerializeToString()


FORMATS = {
    "otlp-protobuf": ("/v1/traces", "application/x-protobuf", otlp_protobuf_batch),
    "otlp-json": ("/v1/traces", "application/json", otlp_json_batch),
    "zipkin-json": ("/api/v2/spans", "application/json", zipkin_batch),
}


async def _wait_stored(session: aiohttp.ClientSession, url: str, trace: str) -> None:
    while True:
        async with session.get(f"{url}/api/v2/trace/{trace}") as response:
            if response.status == 200:
                return
        await asyncio.sleep(0.01)


async def ingest(url: str, pid: int, run: int, fmt: str, total: int, batch: int) -> None:
    path, media, build = FORMATS[fmt]
    bodies = [build(run, start, min(batch, total - start)) for start in range(0, total, batch)]
    queue = list(reversed(bodies))
    async with aiohttp.ClientSession() as session:

        async def client() -> None:
            while queue:
                body = queue.pop()
                while True:
                    async with session.post(
                        url + path, data=body, headers={"Content-Type": media}
                    ) as r:
                        await r.read()
                        if r.status != 503:
                            assert r.status in (200, 202), r.status
                            break
                    await asyncio.sleep(0.05)

        cpu0, t0 = _tree_cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(client() for _ in range(4)))
        await _wait_stored(session, url, _ids(run, total - 1)[0])
        wall, cpu = time.perf_counter() - t0, _tree_cpu_seconds(pid) - cpu0
    print(
        f"{fmt:14s} {total:>8d} spans  {total / wall:>9.0f} spans/s wall"
        f"  {total / cpu:>9.0f} spans per server CPU-second"
    )


async def logs_bench(count: int) -> None:
    from stackyard.telemetry import LogQuery, Telemetry

    with tempfile.TemporaryDirectory() as tmp:
        telemetry = Telemetry(Path(tmp))
        await telemetry.start()
        records = [
            {
                "time": "2024-05-01T12:00:00.123Z",
                "service": f"svc{i % 4}",
                "instance": "i-1",
                "stream": "stdout",
                "message": (
                    f'{{"level":"info","msg":"handled request {i}","trace_id":"{i:032x}"}}'
                    if i % 2
                    else f"INFO GET /items/{i} 200 in 3ms"
                ),
            }
            for i in range(count)
        ]
        sink = telemetry.log_sink
        me = os.getpid()
        cpu0, t0 = _tree_cpu_seconds(me), time.perf_counter()
        for record in records:
            sink(record)
        queued = time.perf_counter() - t0
        await telemetry.flush()
        wall, cpu = time.perf_counter() - t0, _tree_cpu_seconds(me) - cpu0
        print(
            f"log_sink       {count:>8d} lines  {count / wall:>9.0f} lines/s stored"
            f"  ({count / queued:.0f}/s queued; {count / cpu:.0f} per CPU-second,"
            " node + log writer)"
        )
        latencies = []
        for i in range(20):
            t = time.perf_counter()
            await telemetry.logs.search(LogQuery(text=f"request {i * 7}", limit=50))
            latencies.append((time.perf_counter() - t) * 1000)
        print(
            f"log search     p50 {statistics.median(latencies):.1f} ms"
            f"  max {max(latencies):.1f} ms over {count} lines"
        )
        await telemetry.stop()


async def record_span_bench(count: int) -> None:
    from stackyard.telemetry import Telemetry
    from stackyard.telemetry.model import Endpoint
    from stackyard.telemetry.model import Span as ModelSpan

    local, remote = Endpoint("gateway"), Endpoint("backend", "127.0.0.1", None, 8000)
    now = time.time_ns() // 1000
    spans = []
    for i in range(count // 2):
        trace, server, client = f"{i + 1:032x}", f"{2 * i + 1:016x}", f"{2 * i + 2:016x}"
        spans.append(
            ModelSpan(
                trace,
                client,
                "GET",
                server,
                "CLIENT",
                now,
                900,
                local,
                remote,
                {"http.method": "GET", "http.status_code": "200"},
            )
        )
        spans.append(
            ModelSpan(
                trace,
                server,
                "GET /{proxy+}",
                None,
                "SERVER",
                now,
                1000,
                local,
                None,
                {"http.method": "GET", "http.route": "/{proxy+}"},
            )
        )
    with tempfile.TemporaryDirectory() as tmp:
        telemetry = Telemetry(Path(tmp), process_metrics=False)
        await telemetry.start()
        record = telemetry.record_span
        me = os.getpid()
        node0, tree0, t0 = time.process_time(), _tree_cpu_seconds(me), time.perf_counter()
        for n, item in enumerate(spans):
            record(item)
            if n % 200 == 0:
                await asyncio.sleep(0)  # a producer on an event loop, as the gateway
        await telemetry.flush()
        wall = time.perf_counter() - t0
        node, tree = time.process_time() - node0, _tree_cpu_seconds(me) - tree0
        await telemetry.stop()
    count = len(spans)
    print(
        f"record_span    {count:>8d} spans  {count / wall:>9.0f} spans/s wall"
        f"  {count / tree:>9.0f} spans per CPU-second (node + writer);"
        f" CPU per span: node {node / count * 1e6:.1f} µs,"
        f" writer process {(tree - node) / count * 1e6:.1f} µs"
    )


async def trace_latency(url: str, run: int, stored: int, batch: int) -> None:
    path, media, build = FORMATS["otlp-protobuf"]
    async with aiohttp.ClientSession() as session:
        for start in range(0, stored, batch):
            body = build(run, start, min(batch, stored - start))
            while True:
                async with session.post(
                    url + path, data=body, headers={"Content-Type": media}
                ) as r:
                    await r.read()
                    if r.status != 503:
                        break
                await asyncio.sleep(0.05)
        await _wait_stored(session, url, _ids(run, stored - 1)[0])
        latencies = []
        for _ in range(300):
            trace = _ids(run, random.randrange(stored))[0]
            t = time.perf_counter()
            async with session.get(f"{url}/api/v2/trace/{trace}") as response:
                spans = await response.json()
            latencies.append((time.perf_counter() - t) * 1000)
            assert len(spans) == SPANS_PER_TRACE
    latencies.sort()
    print(
        f"trace by id    p50 {latencies[149]:.2f} ms  p99 {latencies[296]:.2f} ms"
        f"  ({stored} spans of this run stored)"
    )


async def serve(port: int, data_dir: str) -> None:
    from starlette.applications import Starlette

    from stackyard.serving import AsgiServer
    from stackyard.telemetry import Telemetry

    telemetry = Telemetry(Path(data_dir))
    await telemetry.start()
    server = AsgiServer(Starlette(routes=telemetry.routes()), "127.0.0.1", port)
    await server.start()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop()
    await telemetry.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--logs", type=int, default=200_000)
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        uvloop = None
    run_loop = uvloop.run if uvloop else asyncio.run
    if args.serve:
        run_loop(serve(int(args.serve[0]), args.serve[1]))
        return
    from stackyard.serving import free_port

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port), tmp],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            url = f"http://127.0.0.1:{port}"
            for run, fmt in enumerate(FORMATS, start=1):
                run_loop(ingest(url, child.pid, run, fmt, args.spans, args.batch))
            run_loop(trace_latency(url, 99, args.stored, args.batch))
        finally:
            assert child.stdin is not None
            child.stdin.close()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
    run_loop(record_span_bench(args.spans))
    run_loop(logs_bench(args.logs))


if __name__ == "__main__":
    main()
