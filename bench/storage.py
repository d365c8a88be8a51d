"""Storage benchmark: DynamoDB and S3 operations through boto3 against Stackyard and moto, and a
bucket static site through the gateway's response cache against nginx.

Run by hand (needs ``moto[server]`` in the environment and the Debian packages ``wrk`` and
``nginx``). One run:

1. starts a node (``stackyard up`` on a scratch stack in a temporary directory: a bucket
   ``site`` served by a cached ``bucket`` route) and moto's server (``python -m moto.server``);
2. on both, creates a table (hash key ``pk``, range key ``sk``; ``--per-key`` items per hash
   key) and fills it with BatchWriteItem (25 items per request, ``--threads`` client threads):
   ``--items`` items on Stackyard (1M by default), ``--moto-items`` on moto (moto keeps
   everything in memory in one Python process and is slow to fill; the figures name the
   sizes);
3. times, with ``--threads`` client threads (one boto3 client each), ``--ops`` calls of each
   of PutItem, GetItem (random existing keys), Query (one random hash key, all its items),
   PutObject and GetObject of 4 KB, and ``--ops / 10`` of PutObject/GetObject of 1 MB (each
   operation stops early after ``--max-seconds``), then ``--ops / 2`` Queries from a single
   client thread (the latency without client threads queued behind each other's GIL);
   then, with the client out of the way, each server's own throughput: ``wrk -t1
   -c{--raw-connections}`` for ``--duration`` seconds per operation sending the same DynamoDB
   JSON requests boto3 sends (PutItem, GetItem and Query on random keys of the filled range,
   made by a Lua script; unsigned, which both servers accept), with the server's CPU per call;
4. uploads the same files to the bucket and to a directory, and runs wrk on a 4 KB file
   through the gateway (cached route: every request after the first is a hit) and nginx (one
   worker, ``sendfile``, ``open_file_cache``) serving the directory; with ``--server-floor``
   also through the gateway's own server alone (the node's ``AsgiServer``, granian, in a
   process of its own) answering the file from memory with the same headers: the ceiling any
   gateway on that server can reach;
5. prints ops/s, p50 and p99 per operation and target, the Stackyard/moto ratios, the static
   site's gateway/nginx ratio, the load averages before and after, and whether each of the
   issue's targets is met (≥ 5x moto's throughput on item operations — judged on the wrk
   figures, as the boto3 figures are capped by the client: 4 threads of boto3 in one
   interpreter on a 2-core machine; Query p99 ≤ 10 ms at the full table size; static files
   ≥ 50 % of nginx). ``--markdown`` also prints markdown tables.

``--backend postgres`` keeps Stackyard's tables in PostgreSQL (``--postgres-url``, a schema of
its own created for the run and dropped after it) instead of SQLite; the server CPU per call
then counts the node's process only, not PostgreSQL's.

Latencies are measured in the client around each boto3 call, so they include boto3's own
signing and parsing (a few hundred microseconds per call) — the same for both servers. Only
loopback addresses are used; every child process is stopped when the run ends.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
TABLE = "bench"
STACK = """
name: storage-bench
buckets:
  site: {}
api:
  routes:
    - {path: "/{proxy+}", bucket: site, cache: 300}
"""
LEAN = """
  access_log: {file: false, central: false}
tracing: {sample_ratio: 0}
"""
NGINX = """
{user}
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=1000 inactive=60s;
    default_type application/octet-stream;
    types {{ text/html html; text/css css; application/javascript js; }}
    server {{
        listen {host}:{port};
        root {root};
        location / {{ add_header Cache-Control "public, max-age=60"; }}
    }}
}}
"""
SITE_FILES = {
    "index.html": b"<!doctype html><title>bench</title><h1>home</h1>" + b" " * 1000,
    "f4k.css": b"body{color:#333}\n" * 240,  # 4080 bytes
    "app.js": b"console.log('bench');\n" * 1500,
}


HEADER = ("operation", "Stackyard ops/s", "p50 ms", "p99 ms", "server CPU ms/op", "moto ops/s",
          "p50 ms", "p99 ms", "server CPU ms/op", "ops/s ratio", "CPU/op ratio")  # fmt: skip


@dataclass
class Result:
    target: str
    op: str
    count: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    cpu_ms: float = float("nan")  # the server process's CPU time per call

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{proc.args!r} exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.1)
    sys.exit(f"port {port} did not open")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT if "nginx" in str(proc.args) else signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port, proc)
    return proc, f"http://{HOST}:{port}"


# -- boto3 -------------------------------------------------------------------------------------


def client(service: str, url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="stackyard",
        aws_secret_access_key="stackyard",
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            max_pool_connections=64,
        ),
    )


def item(i: int, per_key: int) -> dict[str, Any]:
    return {
        "pk": {"S": f"user#{i // per_key:07d}"},
        "sk": {"S": f"{i % per_key:04d}"},
        "n": {"N": str(i)},
        "v": {"S": "x" * 64},
    }


def create_table(url: str) -> None:
    ddb = client("dynamodb", url)
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def fill(url: str, count: int, per_key: int, threads: int) -> float:
    """BatchWriteItem ``count`` items (25 a request, ``threads`` clients); returns items/s."""
    batches = [range(start, min(start + 25, count)) for start in range(0, count, 25)]
    local = threading.local()

    def write(batch: range) -> None:
        if not hasattr(local, "ddb"):
            local.ddb = client("dynamodb", url)
        requests = [{"PutRequest": {"Item": item(i, per_key)}} for i in batch]
        pending: dict[str, Any] = {TABLE: requests}
        while pending:
            answer = local.ddb.batch_write_item(RequestItems=pending)
            pending = answer.get("UnprocessedItems") or {}

    began = time.perf_counter()
    done = 0
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(write, batches):
            done += 1
            if done % 4000 == 0:
                elapsed = time.perf_counter() - began
                print(f"  {url}: {done * 25:,} items, {done * 25 / elapsed:,.0f}/s", flush=True)
    return count / (time.perf_counter() - began)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(
    target: str,
    op: str,
    count: int,
    threads: int,
    make: Callable[[], Callable[[int], None]],
    pid: int,
    max_seconds: float = 60.0,
) -> Result:
    """``count`` calls of the function ``make()`` returns (one per thread; fewer when
    ``max_seconds`` have passed), latencies kept, and the CPU time the server process ``pid``
    spent meanwhile."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    per_thread = [count // threads + (1 if t < count % threads else 0) for t in range(threads)]

    def run(n: int) -> None:
        nonlocal errors
        call = make()
        mine: list[float] = []
        failed = 0
        for i in range(n):
            if time.perf_counter() > deadline:
                break
            began = time.perf_counter()
            try:
                call(i)
            except Exception:
                failed += 1
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)
            errors += failed

    cpu = process_cpu(pid)
    began = time.perf_counter()
    deadline = began + max_seconds
    workers = [threading.Thread(target=run, args=(n,)) for n in per_thread]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - began
    count = len(latencies)
    cpu_ms = (process_cpu(pid) - cpu) / count * 1e3
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    p50 = statistics.median(latencies)
    result = Result(target, op, count, seconds, p50 * 1e3, p99 * 1e3, errors, cpu_ms)
    print(f"  {target} {op}: {count} calls, {result.rate:,.0f}/s, p50 {result.p50_ms:.2f} ms, "
          f"p99 {result.p99_ms:.2f} ms, server CPU {cpu_ms:.2f} ms/op, errors {errors}",
          flush=True)  # fmt: skip
    return result


def item_ops(target: str, url: str, pid: int, items: int, args: argparse.Namespace) -> list[Result]:
    per_key, keys = args.per_key, max(1, items // args.per_key)

    def put() -> Callable[[int], None]:
        ddb, tag = client("dynamodb", url), f"put#{threading.get_ident()}"
        return lambda i: ddb.put_item(
            TableName=TABLE,
            Item={"pk": {"S": tag}, "sk": {"S": f"{i:08d}"}, "v": {"S": "x" * 64}},
        )

    def get() -> Callable[[int], None]:
        ddb, rnd = client("dynamodb", url), random.Random()

        def call(_: int) -> None:
            i = rnd.randrange(items)
            key = item(i, per_key)
            answer = ddb.get_item(TableName=TABLE, Key={"pk": key["pk"], "sk": key["sk"]})
            assert "Item" in answer

        return call

    def query() -> Callable[[int], None]:
        ddb, rnd = client("dynamodb", url), random.Random()

        def call(_: int) -> None:
            pk = f"user#{rnd.randrange(keys):07d}"
            answer = ddb.query(
                TableName=TABLE,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}},
            )
            assert answer["Count"] == per_key

        return call

    size = f"{items:,} items"
    return [
        timed(target, "PutItem", args.ops, args.threads, put, pid, args.max_seconds),
        timed(target, "GetItem", args.ops, args.threads, get, pid, args.max_seconds),
        timed(
            target,
            f"Query ({per_key} items, {size})",
            args.ops,
            args.threads,
            query,
            pid,
            args.max_seconds,
        ),
        timed(  # the latency without other client threads queued in the same interpreter
            target,
            f"Query, 1 client thread ({size})",
            args.ops // 2,
            1,
            query,
            pid,
            args.max_seconds,
        ),
    ]


RAW_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-amz-json-1.0"
wrk.headers["X-Amz-Target"] = "DynamoDB_20120810.%(op)s"
wrk.headers["Authorization"] =
  "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/dynamodb/aws4_request, " ..
  "SignedHeaders=host;x-amz-date, Signature=0"
local keys, per_key = %(keys)d, %(per_key)d
local pad = string.rep("x", 64)
request = function()
  local pk = string.format("user#%%07d", math.random(0, keys - 1))
  local sk = string.format("%%04d", math.random(0, per_key - 1))
  return wrk.format(nil, "/", nil, string.format(%(body)s))
end
"""
RAW_BODIES = {
    "PutItem": """'{"TableName":"%(table)s","Item":{"pk":{"S":"%%s"},"sk":{"S":"%%s"},'
        .. '"n":{"N":"1"},"v":{"S":"%%s"}}}', pk, sk, pad""",
    "GetItem": """'{"TableName":"%(table)s","Key":{"pk":{"S":"%%s"},"sk":{"S":"%%s"}}}', pk, sk""",
    "Query": """'{"TableName":"%(table)s","KeyConditionExpression":"pk = :p",'
        .. '"ExpressionAttributeValues":{":p":{"S":"%%s"}}}', pk""",
}


def raw_item_ops(
    target: str, url: str, pid: int, items: int, tmp: Path, args: argparse.Namespace
) -> list[Result]:
    """The server's own throughput: wrk sends the requests (see the module docstring)."""
    out = []
    for op, body in RAW_BODIES.items():
        script = tmp / f"raw-{target}-{op}.lua"
        script.write_text(
            RAW_SCRIPT
            % {
                "op": op,
                "keys": max(1, items // args.per_key),
                "per_key": args.per_key,
                "body": body % {"table": TABLE},
            }
        )
        name = f"{op}, wrk -c{args.raw_connections}"
        result = wrk(target, url + "/", args, pid, name, script, args.raw_connections)
        print(f"  {target} {name}: {result.rate:,.0f}/s, p50 {result.p50_ms:.2f} ms, "
              f"p99 {result.p99_ms:.2f} ms, server CPU {result.cpu_ms:.3f} ms/op, "
              f"non-2xx {result.errors}", flush=True)  # fmt: skip
        out.append(result)
    return out


def object_ops(target: str, url: str, pid: int, args: argparse.Namespace) -> list[Result]:
    s3 = client("s3", url)
    s3.create_bucket(Bucket="objects")
    out = []
    for label, size, count in (("4 KB", 4096, args.ops), ("1 MB", 1 << 20, max(1, args.ops // 10))):
        body = os.urandom(size)
        keys = max(1, min(count, 200))

        def put(body: bytes = body, label: str = label) -> Callable[[int], None]:
            mine, tag = client("s3", url), threading.get_ident()

            def call(n: int) -> None:
                mine.put_object(Bucket="objects", Key=f"{label}/{tag}/{n}", Body=body)  # noqa: B023

            return call

        def get(label: str = label, size: int = size, keys: int = keys) -> Callable[[int], None]:
            mine, rnd = client("s3", url), random.Random()

            def call(_: int) -> None:
                data = mine.get_object(Bucket="objects", Key=f"{label}/get/{rnd.randrange(keys)}")
                assert len(data["Body"].read()) == size

            return call

        for n in range(keys):
            s3.put_object(Bucket="objects", Key=f"{label}/get/{n}", Body=body)
        out.append(
            timed(target, f"PutObject {label}", count, args.threads, put, pid, args.max_seconds)
        )
        out.append(
            timed(target, f"GetObject {label}", count, args.threads, get, pid, args.max_seconds)
        )
    return out


# -- static site -------------------------------------------------------------------------------


def wrk(
    name: str,
    url: str,
    args: argparse.Namespace,
    pid: int | None = None,
    op: str = "static 4 KB file",
    script: Path | None = None,
    connections: int | None = None,
) -> Result:
    command = ["wrk", "-t1", f"-c{connections or args.connections}", f"-d{args.duration}s"]
    command += ["--latency", url, *(["-s", str(script)] if script else [])]
    cpu = process_cpu(pid) if pid is not None else float("nan")
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu = process_cpu(pid) - cpu if pid is not None else float("nan")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    units = {"us": 1e-3, "ms": 1.0, "s": 1e3}

    def ms(pct: str) -> float:
        found = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)", out, re.M)
        return float(found.group(1)) * units[found.group(2)] if found else float("nan")

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = int(rps * args.duration)
    return Result(name, op, total, args.duration, ms("50"), ms("99"),
                  int(errors.group(1)) if errors else 0, cpu / max(1, total) * 1e3)  # fmt: skip


def static_site(nodes: list[tuple[str, Any]], tmp: Path, args: argparse.Namespace) -> list[Result]:
    """wrk on the 4 KB file through each node's gateway (cached route) and through nginx."""
    root = tmp / "www"
    root.mkdir()
    kinds = {"html": "text/html", "css": "text/css", "js": "application/javascript"}
    for name, data in SITE_FILES.items():
        (root / name).write_bytes(data)
    for _, node in nodes:
        s3 = client("s3", node.control_url)
        for name, data in SITE_FILES.items():
            kind = kinds[name.rsplit(".", 1)[1]]
            s3.put_object(Bucket="site", Key=name, Body=data, ContentType=kind)
    port = free_port()
    conf = tmp / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(NGINX.format(user=user, tmp=tmp, host=HOST, port=port, root=root))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen(
        [nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "nginx-error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out = []
    try:
        wait_port(port, proc)
        for label, node in nodes:
            url = f"{node.gateway_url}/f4k.css"
            for expected in ("miss", "hit"):  # the first fills the cache
                with urllib.request.urlopen(url) as answer:
                    assert answer.read() == SITE_FILES["f4k.css"]
                    assert answer.headers["x-cache"] == expected, answer.headers
            out.append(wrk(f"gateway, cached bucket route ({label})", url, args, node.process.pid))
        if args.server_floor:
            out.append(server_floor(root / "f4k.css", args))
        out.append(wrk("nginx (1 worker, static files)", f"http://{HOST}:{port}/f4k.css", args))
    finally:
        stop(proc)
    return out


FLOOR = "server alone (the file from memory)"


def server_floor(path: Path, args: argparse.Namespace) -> Result:
    """wrk on the gateway's server alone answering ``path`` (a child process of this script)."""
    port = free_port()
    cmd = [sys.executable, __file__, "--serve-floor", str(port), "--floor-file", str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        return wrk(FLOOR, f"http://{HOST}:{port}/{path.name}", args, proc.pid)
    finally:
        stop(proc)


def serve_floor(port: int, path: Path) -> None:
    """``--serve-floor``: an ``AsgiServer`` whose app answers every request with ``path``'s
    bytes and the headers the bucket integration sends, until SIGTERM."""
    import asyncio
    from email.utils import formatdate

    import uvloop

    from stackyard.gateway import tune_gc
    from stackyard.serving import AsgiServer

    body = path.read_bytes()
    headers = [
        (b"content-type", b"text/css"),
        (b"etag", b'"0123456789abcdef0123456789abcdef"'),
        (b"last-modified", formatdate(path.stat().st_mtime, usegmt=True).encode()),
        (b"cache-control", b"public, max-age=60"),
        (b"accept-ranges", b"bytes"),
        (b"content-length", str(len(body)).encode()),
    ]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def main() -> None:
        tune_gc()
        server = AsgiServer(app, HOST, port)
        await server.start()
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set)
        await done.wait()
        await server.stop()

    uvloop.run(main())


# -- report ------------------------------------------------------------------------------------


def report(
    results: list[Result], static: list[Result], loads: list[str], args: argparse.Namespace
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    by = {(r.target, r.op): r for r in results}
    ops = list(dict.fromkeys(r.op for r in results))
    limits = f"up to {args.ops} calls or {args.max_seconds:g} s per operation"
    table = Table(title=f"boto3, {args.threads} client threads, {limits}")
    for column in HEADER:
        table.add_column(column, justify="left" if column == "operation" else "right")
    rows = []
    for op in ops:
        ours, theirs = by.get(("stackyard", op)), by.get(("moto", op))
        if ours is None:
            continue
        moto_op = (
            op
            if theirs is not None
            else next(
                (o for (t, o) in by if t == "moto" and o.split(" (")[0] == op.split(" (")[0]), None
            )
        )
        theirs = by.get(("moto", moto_op)) if moto_op else None
        row = [op, f"{ours.rate:,.0f}", f"{ours.p50_ms:.2f}", f"{ours.p99_ms:.2f}",
               f"{ours.cpu_ms:.2f}"]  # fmt: skip
        if theirs is not None:
            row += [f"{theirs.rate:,.0f}", f"{theirs.p50_ms:.2f}", f"{theirs.p99_ms:.2f}",
                    f"{theirs.cpu_ms:.2f}", f"{ours.rate / theirs.rate:.1f}x",
                    f"{theirs.cpu_ms / ours.cpu_ms:.1f}x" if ours.cpu_ms > 0 else "-"]  # fmt: skip
        else:
            row += ["-"] * 6
        if ours.errors or (theirs and theirs.errors):
            row[0] += f" (errors {ours.errors}/{theirs.errors if theirs else 0})"
        rows.append(row)
        table.add_row(*row)
    console.print(table)
    static_rows = [[r.target, f"{r.rate:,.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}",
                    f"{r.cpu_ms * 1e3:.0f}" if r.cpu_ms == r.cpu_ms else "-",
                    str(r.errors)] for r in static]  # fmt: skip
    if static:
        st = Table(title=f"static 4 KB file, wrk -t1 -c{args.connections} -d{args.duration}s")
        for column in ("server", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "non-2xx"):
            st.add_column(column)
        for row in static_rows:
            st.add_row(*row)
        console.print(st)
    verdicts = targets(by, static, args)
    for line in [*loads, *verdicts]:
        console.print(line)
    if args.markdown:
        print()
        print("| " + " | ".join(HEADER) + " |")
        print("|---" + "|--:" * (len(HEADER) - 1) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        if static:
            print()
            print("| static 4 KB file | req/s | p50 ms | p99 ms | CPU µs/req | non-2xx |")
            print("|---|--:|--:|--:|--:|--:|")
            for row in static_rows:
                print("| " + " | ".join(row) + " |")
        print()
        for line in [*loads, *verdicts]:
            print(f"- {line}")


def targets(
    by: dict[tuple[str, str], Result], static: list[Result], args: argparse.Namespace
) -> list[str]:
    out = []
    for op in ("PutItem", "GetItem", "Query"):
        for how in (f"{op}, wrk", op):  # the servers' own throughput first, then boto3's
            ours = next(
                (r for (t, o), r in by.items() if t == "stackyard" and o.startswith(how)), None
            )
            theirs = next(
                (r for (t, o), r in by.items() if t == "moto" and o.startswith(how)), None
            )
            if ours is not None and theirs is not None:
                ratio = ours.rate / theirs.rate
                verdict = "met" if ratio >= 5 else "NOT met"
                out.append(f"{ours.op}: {ratio:.1f}x moto (target ≥ 5x): {verdict}")
                break
    for (t, o), query in by.items():
        if t == "stackyard" and o.startswith("Query"):
            met = "met" if query.p99_ms <= 10 else "NOT met"
            out.append(f"{o}: p99 {query.p99_ms:.2f} ms (target ≤ 10 ms): {met}")
    if len(static) >= 2:
        nginx = static[-1]
        floor = next((r for r in static if r.target == FLOOR), None)
        for gateway in static[:-1]:
            ratio = gateway.rate / nginx.rate
            if gateway is floor:
                out.append(f"static, {FLOOR}: {ratio:.0%} of nginx (the ceiling of the gateway)")
                continue
            verdict = "met" if ratio >= 0.5 else "NOT met"
            line = f"static, {gateway.target}: {ratio:.0%} of nginx (target ≥ 50%): {verdict}"
            if floor is not None:
                line += f"; {gateway.rate / floor.rate:.0%} of the server alone"
            out.append(line)
    return out


def loadavg(when: str) -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {when}: {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def storage_section(args: argparse.Namespace) -> str:
    if args.backend == "sqlite":
        return ""
    return (
        f'storage:\n  tables: {{backend: postgres, url: "{args.postgres_url}", '
        f"schema_name: {args.schema}}}\n"
    )


def drop_schema(args: argparse.Namespace) -> None:
    if args.backend == "postgres":
        import psycopg

        with psycopg.connect(args.postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {args.schema} CASCADE")


def bench(args: argparse.Namespace) -> None:
    try:
        run(args)
    finally:
        drop_schema(args)


def run(args: argparse.Namespace) -> None:
    from stackyard.testing import NodeProcess

    loads = [loadavg("before")]
    results: list[Result] = []
    static: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="stackyard-bench-storage-") as name:
        tmp = Path(name)
        (tmp / "stackyard.yml").write_text(STACK + storage_section(args))
        moto = None
        with NodeProcess(tmp / "stackyard.yml", data_dir=tmp / "data") as node:
            try:
                node.wait_ready(60)
                assert node.process is not None
                targets_ = [("stackyard", node.control_url, node.process.pid, args.items)]
                if not args.no_moto:
                    moto, moto_url = start_moto()
                    targets_.append(("moto", moto_url, moto.pid, args.moto_items))
                for target, url, pid, items in targets_:
                    create_table(url)
                    print(f"filling {target} with {items:,} items (BatchWriteItem)…", flush=True)
                    rate = fill(url, items, args.per_key, args.threads)
                    print(f"  {target}: {rate:,.0f} items/s", flush=True)
                    results.extend(item_ops(target, url, pid, items, args))
                    if not args.no_raw:
                        results.extend(raw_item_ops(target, url, pid, items, tmp, args))
                    results.extend(object_ops(target, url, pid, args))
                if not args.no_static:
                    (tmp / "lean").mkdir()
                    (tmp / "lean" / "stackyard.yml").write_text(STACK + LEAN)
                    lean = NodeProcess(tmp / "lean" / "stackyard.yml", data_dir=tmp / "lean-data")
                    with lean:
                        lean.wait_ready(60)
                        nodes = [("node defaults", node), ("tracing, access log off", lean)]
                        static = static_site(nodes, tmp, args)
            finally:
                if moto is not None:
                    stop(moto)
    loads.append(loadavg("after"))
    report(results, static, loads, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="items in Stackyard's table")
    parser.add_argument("--moto-items", type=int, default=20_000, help="items in moto's table")
    parser.add_argument("--per-key", type=int, default=20, help="items per hash key")
    parser.add_argument("--ops", type=int, default=2000, help="calls per operation")
    parser.add_argument("--threads", type=int, default=4, help="client threads")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="time cap per operation")
    parser.add_argument("--duration", type=int, default=10, help="wrk seconds")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument(
        "--raw-connections", type=int, default=16, help="wrk connections of the raw item runs"
    )
    parser.add_argument("--no-raw", action="store_true", help="skip the raw (wrk) item runs")
    parser.add_argument("--no-moto", action="store_true", help="Stackyard only")
    parser.add_argument("--no-static", action="store_true", help="skip the static site run")
    parser.add_argument(
        "--server-floor",
        action="store_true",
        help="also measure the gateway's server alone answering the static file from memory",
    )
    parser.add_argument("--serve-floor", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--floor-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--markdown", action="store_true", help="also print markdown tables")
    parser.add_argument(
        "--backend", choices=["sqlite", "postgres"], default="sqlite", help="Stackyard's tables"
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="the PostgreSQL of --backend postgres",
    )
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor(args.serve_floor, args.floor_file)
        return
    args.schema = f"stackyard_bench_{os.getpid()}"
    print(f"Stackyard's tables on {args.backend}", flush=True)
    if not (args.no_static and args.no_raw) and not shutil.which("wrk"):
        sys.exit("wrk not found (apt-get install wrk nginx)")
    bench(args)


if __name__ == "__main__":
    main()
