"""Functions benchmark: a serverless.yml app on Stackyard vs serverless-offline, handler as floor.

Run by hand: ``.venv/bin/python bench/functions.py [--markdown]`` (needs ``wrk`` —
``bash scripts/system-deps.sh --bench`` — and Node.js ≥ 18 with ``npm``). One run, loopback only:

1. keeps the hello-world app ``bench/apps/hello`` (``serverless.yml``, ``provider.runtime:
   python3.11``, one handler behind an ``http`` route, ``GET /dev/hello``, and an ``httpApi``
   route, ``GET /hello``); writes it if it is missing;
2. installs ``serverless@3`` and ``serverless-offline@13`` with npm into a scratch folder outside
   the repository (``~/.cache/stackyard-bench/serverless``, ``--scratch``) unless already there,
   and copies the app beside them with ``plugins: [serverless-offline]`` added (Stackyard runs
   the app folder itself, without the plugin);
3. measures three ways:
   - **direct**: the handler imported and called in a Python loop (the floor);
   - **stackyard**: ``stackyard up bench/apps/hello`` (a :class:`stackyard.testing.NodeProcess`
     on free ports, output to a file);
   - **serverless-offline**: ``serverless offline`` with a new user's defaults — only
     ``--host 127.0.0.1`` and free ``--httpPort``/``--lambdaPort``/``--websocketPort`` are
     given; no ``--reloadHandler``, no ``--noPrependStageInUrl`` (REST routes stay under
     ``/dev`` as on Stackyard), ``--useInProcess`` does not apply to Python: handlers always
     run in ``python3 invoke.py`` child processes, one per concurrent request, kept for
     ``terminateIdleLambdaTime`` (60 s). ``python3`` is made the bench's own interpreter by
     putting its folder first on ``PATH`` (what an activated virtualenv does), so both tools
     run the handler on the same Python;

   for each: sequential latency (p50/p99) over ``--requests`` GETs on one keep-alive
   ``http.client`` connection, after a warm-up; ``wrk -t1 -cC --latency`` for ``--duration``
   seconds at each of ``--connections`` (after a ``--warmup`` run), with the CPU time the
   server's whole process tree (node + workers) spent per request, read from /proc; boto3
   ``Invoke`` (sequential mean/p50 over ``--invokes`` calls, ``endpoint_url`` = Stackyard's
   control port / serverless-offline's Lambda port); cold start (see ``cold_start_*``);
   with ``--rounds N`` (N > 1), both servers run side by side and the sequential and wrk
   measurements are taken in turns, N times (who goes first alternates), so both see the same
   moments of a shared machine; each round's ratios are printed and the table holds the
   medians (the sequential timings of all rounds pooled);
4. prints a rich table (``--markdown``: also a markdown table) with Stackyard ÷
   serverless-offline, each ÷ direct, and the issue's targets: requests/s ≥ serverless-offline's
   at every concurrency, sequential p50 ≤ its p50, cold start ≤ 150 ms.

Cold start, the same way for both tools: a fresh server process is started and, once it says it
is ready, the first request is timed end to end (GET through the HTTP gateway, new connection);
repeated ``--cold-samples`` times, median shown. serverless-offline spawns the handler's Python
process on that first request. A ``serverless.yml`` function on Stackyard always gets one warm
worker started with the node (the first request is then warm: shown in its own row), so for the
cold figure Stackyard runs the same handler from a scratch ``stackyard.yml`` with ``warm: 0``:
the first request starts the worker (process spawn, bootstrap, import, first frame to the node).
The tools' own logs of that first invocation are shown beside (Stackyard's ``REPORT`` line:
``Init Duration`` + ``Duration``; serverless-offline's ``Duration``). The direct floor is a new
``python -c 'import handler; handler.hello(...)'`` process.

Every child process (nodes, serverless-offline and its Python processes, wrk) is stopped when the
run ends, also on Ctrl-C, SIGTERM or an error (servers run in their own process groups).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from gateway import parse_wrk  # bench/gateway.py: the same wrk output parser

HOST = "127.0.0.1"
BENCH = Path(__file__).resolve().parent
APP = BENCH / "apps" / "hello"
ROOT = BENCH.parent
FUNCTION = "hello"
SLS_FUNCTION = "bench-hello-dev-hello"  # serverless-offline's name: <service>-<stage>-<function>
ROUTES = (("httpApi", "/hello"), ("http", "/dev/hello"))
COLD_TARGET_MS = 150.0
DEFAULT_SCRATCH = Path.home() / ".cache" / "stackyard-bench" / "serverless"
NPM_PACKAGES = ("serverless@3", "serverless-offline@13")
START_TIMEOUT = 90.0

APP_FILES = {
    "serverless.yml": """\
# The hello-world app of bench/functions.py: one Python 3.11 handler behind a REST (`http`,
# payload 1.0, served under /dev) and an HTTP API (`httpApi`, payload 2.0, at the root) route.
# Stackyard runs this file as it is; the bench gives serverless-offline a copy of it with
# `plugins: [serverless-offline]` added.
service: bench-hello
frameworkVersion: "3"

provider:
  name: aws
  runtime: python3.11
  region: us-east-1

functions:
  hello:
    handler: handler.hello
    events:
      - http:
          path: hello
          method: get
      - httpApi: "GET /hello"
""",
    "handler.py": '''\
"""The bench's hello-world Lambda handler: a small JSON answer, nothing else."""

import json

BODY = json.dumps({"message": "hello, world"})
HEADERS = {"content-type": "application/json"}


def hello(event, context):
    return {"statusCode": 200, "headers": HEADERS, "body": BODY}
''',
}

COLD_STACK = """\
# bench/functions.py: the bench app's handler with no warm worker, for the cold-start figure.
version: 1
name: bench-cold
functions:
  hello:
    handler: handler.hello
    timeout: 6
    memory_mb: 1024
    warm: 0
    events:
      - httpApi: GET /hello
"""


# -- figures ---------------------------------------------------------------------------------------


@dataclass
class Latency:
    """Sequential timings in milliseconds."""

    samples: list[float]

    @property
    def p50(self) -> float:
        return percentile(self.samples, 50)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)


@dataclass
class Load:
    rps: float
    p99_ms: float
    cpu_us: float | None
    errors: str


@dataclass
class Figures:
    """Everything measured for one mode (direct, stackyard, serverless-offline)."""

    sequential: dict[str, Latency] = field(default_factory=dict)  # by route kind
    load: dict[tuple[str, int], Load] = field(default_factory=dict)  # (route kind, connections)
    invoke: Latency | None = None
    cold_ms: list[float] = field(default_factory=list)
    cold_logged_ms: list[float] = field(default_factory=list)  # the tool's own log of it
    first_request_ms: float | None = None  # first request after start, serverless.yml app
    ready_s: list[float] = field(default_factory=list)  # launch → ready
    calls_per_s: float | None = None  # direct only
    rounds: list[dict[tuple[str, int], Load]] = field(default_factory=list)  # --rounds
    _sequential_samples: dict[str, list[float]] = field(default_factory=dict)

    def add_round(self, sequential: dict[str, Latency], load: dict[tuple[str, int], Load]) -> None:
        """One more round: ``sequential`` pools the timings of every round, ``load`` holds
        the medians of every round's requests/s, p99 and CPU per request."""
        self.rounds.append(load)
        for kind, latency in sequential.items():
            pooled = self._sequential_samples.setdefault(kind, [])
            pooled.extend(latency.samples)
            self.sequential[kind] = Latency(pooled)
        for key in load:
            taken = [r[key] for r in self.rounds if key in r]
            cpus = [x.cpu_us for x in taken if x.cpu_us is not None]
            self.load[key] = Load(
                statistics.median(x.rps for x in taken),
                statistics.median(x.p99_ms for x in taken),
                statistics.median(cpus) if cpus else None,
                "; ".join(sorted({x.errors for x in taken if x.errors != "-"})) or "-",
            )


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# -- processes -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.2):
        return True
    return False


def wait_for(predicate: Callable[[], bool], what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not predicate():
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {START_TIMEOUT:.0f} s")
        time.sleep(0.01)


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process group led by ``proc``, SIGKILL what is left after ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers (handler processes) and a stuck leader
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def tree_cpu(root: int) -> float | None:
    """User + system CPU seconds of ``root`` and all its live descendants (+ reaped children)."""
    stats: dict[int, tuple[int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        cpu = sum(int(fields[i]) for i in (11, 12, 13, 14)) / tick
        stats[int(entry.name)] = (int(fields[1]), cpu)
    if root not in stats:
        return None
    total, todo = 0.0, [root]
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    while todo:
        pid = todo.pop()
        total += stats[pid][1]
        todo.extend(children.get(pid, ()))
    return total


@dataclass
class Server:
    """A running server under test: where to send requests, how to read and stop it."""

    name: str
    proc: subprocess.Popen[bytes]
    http_port: int
    lambda_port: int
    function: str
    output: Path
    started: float
    ready_s: float = 0.0


class Children:
    """Every server this run started; ``close`` stops those still running (idempotent)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        self.procs.append(proc)

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop_group(proc)
        self.procs.clear()


def start_stackyard(stack: Path, tmp: Path, children: Children, tag: str) -> Server:
    from stackyard.testing import NodeProcess

    data = tmp / f"stackyard-{tag}"
    node = NodeProcess(stack, data_dir=data)
    began = time.perf_counter()
    node.start()
    assert node.process is not None
    children.add(node.process)
    server = Server(
        "stackyard",
        node.process,
        node.gateway_port,
        node.control_port,
        FUNCTION,
        node.output_path,
        began,
    )

    def ready() -> bool:
        try:
            return bool(node.health()[0] == 200)
        except OSError:
            return False

    wait_for(ready, f"stackyard ({server.output})", node.process)
    server.ready_s = time.perf_counter() - began
    return server


def start_serverless_offline(scratch: Path, tmp: Path, children: Children, tag: str) -> Server:
    http_port, lambda_port, ws_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        # python3 = this interpreter (what an activated virtualenv does); serverless-offline
        # spawns `python3 -u invoke.py handler hello` through a shell
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # no network beyond loopback: no telemetry, no update or dashboard notifications
        "SLS_TELEMETRY_DISABLED": "1",
        "SLS_NOTIFICATIONS_MODE": "off",
        "SLS_DEPRECATION_DISABLE": "*",
    }
    env.pop("VIRTUAL_ENV", None)  # would put another venv first on serverless-offline's PATH
    output = tmp / f"serverless-offline-{tag}.out"
    argv = [
        str(scratch / "node_modules" / ".bin" / "serverless"), "offline",
        "--host", HOST,
        "--httpPort", str(http_port),
        "--lambdaPort", str(lambda_port),
        "--websocketPort", str(ws_port),
    ]  # fmt: skip
    began = time.perf_counter()
    with output.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=scratch / "app",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    children.add(proc)
    server = Server("serverless-offline", proc, http_port, lambda_port, SLS_FUNCTION, output, began)
    wait_for(
        lambda: listening(lambda_port) and listening(http_port),
        f"serverless-offline ({output})",
        proc,
    )
    server.ready_s = time.perf_counter() - began
    return server


# -- set-up ----------------------------------------------------------------------------------------


def ensure_app() -> None:
    """Write bench/apps/hello if a file of it is missing (an existing file is kept)."""
    APP.mkdir(parents=True, exist_ok=True)
    for name, text in APP_FILES.items():
        if not (APP / name).exists():
            (APP / name).write_text(text)
            print(f"wrote {(APP / name).relative_to(ROOT)}")


def installed_version(scratch: Path, package: str) -> str | None:
    try:
        data = json.loads((scratch / "node_modules" / package / "package.json").read_text())
    except (OSError, ValueError):
        return None
    return str(data.get("version"))


def ensure_serverless(scratch: Path) -> None:
    """npm-install serverless@3 + serverless-offline@13 into ``scratch`` unless already there."""
    wanted = {"serverless": "3.", "serverless-offline": "13."}
    if all((installed_version(scratch, p) or "").startswith(v) for p, v in wanted.items()):
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm not found: install Node.js 20 (with npm)")
    scratch.mkdir(parents=True, exist_ok=True)
    package = scratch / "package.json"
    if not package.exists():
        package.write_text('{"name": "stackyard-bench-serverless", "private": true}\n')
    print(f"npm install {' '.join(NPM_PACKAGES)} in {scratch} ...", flush=True)
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", *NPM_PACKAGES],
        cwd=scratch,
        check=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )


def prepare_sls_app(scratch: Path) -> None:
    """Copy the app into ``scratch/app`` with ``plugins: [serverless-offline]`` added."""
    target = scratch / "app"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(APP / "handler.py", target / "handler.py")
    text = (APP / "serverless.yml").read_text()
    if not re.search(r"^plugins:", text, re.M):
        text = text.rstrip("\n") + "\n\nplugins:\n  - serverless-offline\n"
    (target / "serverless.yml").write_text(text)


def versions(scratch: Path) -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        except OSError:
            return "?"
        lines = (done.stdout or done.stderr).strip().splitlines()
        return lines[0] if lines else ""

    commit = first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = first_line(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"])
    return {
        "stackyard": commit + (" + uncommitted changes in src" if dirty not in ("", "?") else ""),
        "compiled modules (mypyc)": str(len(list((ROOT / "src" / "stackyard").rglob("*.so")))),
        "serverless": installed_version(scratch, "serverless") or "?",
        "serverless-offline": installed_version(scratch, "serverless-offline") or "?",
        "node": first_line(["node", "--version"]),
        "python": sys.version.split()[0],
        "wrk": first_line(["wrk", "-v"]).split(" [")[0],
    }


# -- measurements ----------------------------------------------------------------------------------


def get(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
    return body


def first_request(port: int, path: str) -> float:
    """Milliseconds for one GET on a new connection (the connection set-up included)."""
    began = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        get(conn, path)
    finally:
        conn.close()
    return (time.perf_counter() - began) * 1000


def sequential(port: int, path: str, n: int, warmup: int) -> Latency:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        for _ in range(warmup):
            get(conn, path)
        samples = []
        for _ in range(n):
            began = time.perf_counter()
            get(conn, path)
            samples.append((time.perf_counter() - began) * 1000)
    finally:
        conn.close()
    return Latency(samples)


def wrk(server: Server, path: str, connections: int, args: argparse.Namespace) -> Load:
    url = f"http://{HOST}:{server.http_port}{path}"
    base = ["wrk", "-t1", f"-c{connections}", "--latency"]
    subprocess.run(
        [*base, "-d", f"{args.warmup}s", url],
        capture_output=True,
        timeout=args.warmup + 60,
        check=True,
    )
    cpu_before = tree_cpu(server.proc.pid)
    out = subprocess.run(
        [*base, "-d", f"{args.duration}s", url],
        capture_output=True,
        text=True,
        timeout=args.duration + 60,
        check=True,
    ).stdout
    cpu_after = tree_cpu(server.proc.pid)
    result = parse_wrk(server.name, out)
    cpu = None
    if cpu_before is not None and cpu_after is not None and result.rps > 0:
        cpu = 1e6 * (cpu_after - cpu_before) / (result.rps * args.duration)
    return Load(result.rps, result.p99_ms, cpu, result.errors)


def invoke(server: Server, n: int, warmup: int) -> Latency:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "lambda",
        endpoint_url=f"http://{HOST}:{server.lambda_port}",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )

    def call() -> None:
        response = client.invoke(FunctionName=server.function, Payload=b"{}")
        payload = response["Payload"].read()
        if response.get("FunctionError") or b'"statusCode":' not in payload.replace(b" ", b""):
            raise RuntimeError(f"{server.name} Invoke: {response.get('FunctionError')} {payload!r}")

    for _ in range(warmup):
        call()
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    return Latency(samples)


def stackyard_logged_cold_ms(server: Server) -> float | None:
    """``Init Duration`` + ``Duration`` of the function's first REPORT line."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            conn = http.client.HTTPConnection(HOST, server.lambda_port, timeout=5)
            try:
                records = json.loads(get(conn, f"/_stackyard/logs?service={FUNCTION}&tail=50"))
            finally:
                conn.close()
            for record in records:
                m = re.search(
                    r"Duration: ([\d.]+) ms.*Init Duration: ([\d.]+) ms", record["message"]
                )
                if m:
                    return float(m.group(1)) + float(m.group(2))
        time.sleep(0.05)
    return None


def sls_logged_cold_ms(server: Server) -> float | None:
    """The ``Duration`` serverless-offline printed for its first invocation."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        m = re.search(r"Duration: ([\d.]+) ms", server.output.read_text(errors="replace"))
        if m:
            return float(m.group(1))
        time.sleep(0.05)
    return None


def measure_direct(args: argparse.Namespace) -> Figures:
    """The floor: the handler imported here and called in a loop; cold = a new Python process."""
    spec = importlib.util.spec_from_file_location("bench_hello_handler", APP / "handler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Callable[[Any, Any], Any] = module.hello
    event = {"version": "2.0", "routeKey": "GET /hello", "rawPath": "/hello", "headers": {}}
    context = SimpleNamespace(aws_request_id="x", function_name=FUNCTION)
    figures = Figures()
    n = max(args.requests, 100_000)
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        handler(event, context)
        samples.append((time.perf_counter() - began) * 1000)
    for kind, _ in ROUTES:
        figures.sequential[kind] = Latency(samples)
    began = time.perf_counter()
    for _ in range(n):
        handler(event, context)
    figures.calls_per_s = n / (time.perf_counter() - began)
    payload = b"{}"
    invokes = []
    for _ in range(n):  # what any Invoke must do: decode the payload, call, encode the result
        began = time.perf_counter()
        json.dumps(handler(json.loads(payload), context)).encode()
        invokes.append((time.perf_counter() - began) * 1000)
    figures.invoke = Latency(invokes)
    code = "import handler; handler.hello({}, None)"
    for _ in range(args.cold_samples):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=APP, check=True, timeout=60)
        figures.cold_ms.append((time.perf_counter() - began) * 1000)
    return figures


def measure_server(server: Server, figures: Figures, args: argparse.Namespace) -> None:
    figures.first_request_ms = first_request(server.http_port, ROUTES[0][1])
    figures.ready_s.append(server.ready_s)
    measure_load(server, figures, args)
    figures.invoke = invoke(server, args.invokes, 20)
    print(f"  {server.name} Invoke: mean {figures.invoke.mean:.2f} ms", flush=True)


def measure_load(server: Server, figures: Figures, args: argparse.Namespace) -> None:
    """Sequential latency and wrk at each connection count, on each route: added to
    ``figures.rounds`` (as one more round) and summed up in ``figures.sequential`` and
    ``figures.load`` (over every round so far, see :meth:`Figures.add_round`)."""
    sequential_round: dict[str, Latency] = {}
    load_round: dict[tuple[str, int], Load] = {}
    for kind, path in ROUTES:
        sequential_round[kind] = sequential(server.http_port, path, args.requests, 100)
        print(
            f"  {server.name} {path}: sequential p50 {sequential_round[kind].p50:.2f} ms",
            flush=True,
        )
        for connections in args.connections:
            load = wrk(server, path, connections, args)
            load_round[(kind, connections)] = load
            cpu = f", {load.cpu_us:.0f} µs CPU/request" if load.cpu_us is not None else ""
            print(
                f"  {server.name} {path} -c{connections}: {load.rps:,.0f} rps, "
                f"p99 {load.p99_ms:.2f} ms{cpu}",
                flush=True,
            )
    figures.add_round(sequential_round, load_round)


def cold_samples(
    start: Callable[[str], Server],
    logged: Callable[[Server], float | None],
    figures: Figures,
    n: int,
) -> None:
    for i in range(n):
        server = start(f"cold{i}")
        figures.ready_s.append(server.ready_s)
        figures.cold_ms.append(first_request(server.http_port, "/hello"))
        if (value := logged(server)) is not None:
            figures.cold_logged_ms.append(value)
        stop_group(server.proc)
        print(f"  {server.name} cold start {i + 1}: {figures.cold_ms[-1]:.1f} ms", flush=True)


# -- report ----------------------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    values: tuple[float | None, float | None, float | None]  # direct, stackyard, sls
    unit: str  # "ms", "rps", "us", "s"
    target: str = ""  # "", "≥" (stackyard ≥ sls), "≤" (stackyard ≤ sls), "cold"


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.2f}"
    if value >= 1000 or (unit == "rps" and value >= 1):
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 0.1:
        return f"{value:.2f}"
    return f"{value:.2g}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    r = a / b
    if r >= 100:
        return f"{r:,.0f}x"
    return f"{r:.2f}x" if r >= 0.01 else f"{r:.2g}x"


def verdict(row: Row) -> str:
    _, sy, sls = row.values
    if not row.target or sy is None:
        return ""
    if row.target == "cold":
        return "met" if sy <= COLD_TARGET_MS else f"missed by {sy - COLD_TARGET_MS:.0f} ms"
    if sls is None:
        return ""
    if row.target == "≥":
        return "met" if sy >= sls else f"missed by {1 - sy / sls:.0%}"
    return "met" if sy <= sls else f"missed by {sy - sls:.2f} ms ({sy / sls - 1:.0%})"


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def rows(direct: Figures, sy: Figures, sls: Figures, args: argparse.Namespace) -> list[Row]:
    out: list[Row] = []
    for kind, path in ROUTES:
        d, s, o = (f.sequential.get(kind) for f in (direct, sy, sls))
        name = f"{kind} GET {path}"
        out.append(Row(f"{name} seq p50 ms", (d and d.p50, s and s.p50, o and o.p50), "ms", "≤"))
        out.append(Row(f"{name} seq p99 ms", (d and d.p99, s and s.p99, o and o.p99), "ms"))
        for c in args.connections:
            ls, lo = sy.load.get((kind, c)), sls.load.get((kind, c))
            label = f"{name} -c{c}"
            out.append(
                Row(
                    f"{label} req/s", (direct.calls_per_s, ls and ls.rps, lo and lo.rps), "rps", "≥"
                )
            )
            out.append(Row(f"{label} p99 ms", (None, ls and ls.p99_ms, lo and lo.p99_ms), "ms"))
            direct_cpu = 1e6 / direct.calls_per_s if direct.calls_per_s else None
            out.append(
                Row(
                    f"{label} CPU µs/req",
                    (direct_cpu, ls and ls.cpu_us, lo and lo.cpu_us),
                    "us",
                )
            )
    di, si, oi = direct.invoke, sy.invoke, sls.invoke
    out.append(Row("boto3 Invoke mean ms", (di and di.mean, si and si.mean, oi and oi.mean), "ms"))
    out.append(Row("boto3 Invoke p50 ms", (di and di.p50, si and si.p50, oi and oi.p50), "ms"))
    out.append(
        Row(
            f"cold start ms (median of {args.cold_samples})",
            (median(direct.cold_ms), median(sy.cold_ms), median(sls.cold_ms)),
            "ms",
            "cold",
        )
    )
    out.append(
        Row(
            f"  cold start, worst of {args.cold_samples} ms",
            (
                max(direct.cold_ms, default=None),
                max(sy.cold_ms, default=None),
                max(sls.cold_ms, default=None),
            ),
            "ms",
            "cold",
        )
    )
    out.append(
        Row(
            "  cold start, tool's own log ms",
            (None, median(sy.cold_logged_ms), median(sls.cold_logged_ms)),
            "ms",
        )
    )
    out.append(
        Row(
            "first request after start ms",
            (None, sy.first_request_ms, sls.first_request_ms),
            "ms",
        )
    )
    out.append(Row("launch → ready s", (None, median(sy.ready_s), median(sls.ready_s)), "s"))
    return out


HEADERS = (
    "measure",
    "direct",
    "stackyard",
    "serverless-offline",
    "stackyard ÷ sls",
    "stackyard ÷ direct",
    "sls ÷ direct",
    "target",
)


def cells(row: Row) -> list[str]:
    d, s, o = row.values
    return [
        row.label,
        fmt(d, row.unit),
        fmt(s, row.unit),
        fmt(o, row.unit),
        ratio(s, o),
        ratio(s, d),
        ratio(o, d),
        verdict(row),
    ]


def report(table_rows: list[Row], meta: dict[str, str], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    title = (
        f"hello-world serverless.yml app: {args.requests} sequential GETs, "
        f"wrk -t1 -d{args.duration}s, {args.invokes} Invokes"
    )
    table = Table(title=title)
    for i, col in enumerate(HEADERS):
        table.add_column(col, justify="left" if i in (0, 7) else "right")
    for row in table_rows:
        table.add_row(*cells(row))
    console.print(table)
    print(", ".join(f"{k} {v}" for k, v in meta.items()))
    for row in table_rows:
        if row.target:
            print(f"target {row.label.strip()}: {verdict(row) or 'n/a'}")
    if args.markdown:
        print("\n| " + " | ".join(HEADERS) + " |")
        print("|---|" + "---:|" * (len(HEADERS) - 2) + "---|")
        for row in table_rows:
            print("| " + " | ".join(cells(row)) + " |")


# -- main ------------------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@contextlib.contextmanager
def signals_unwind() -> Iterator[None]:
    """SIGTERM and SIGINT unwind the stack, so the ``finally`` blocks stop the children.

    SIGINT is set explicitly: a shell starts a background job with SIGINT ignored, and Python
    then leaves it ignored.
    """
    previous_term = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


def alternate(
    scratch: Path,
    tmp: Path,
    children: Children,
    sy: Figures,
    sls: Figures,
    args: argparse.Namespace,
) -> None:
    """``--rounds N``: both servers up, their loads measured in turns, N times (who goes first
    alternates), then one Invoke series each; prints each round's ratios."""
    print("stackyard (bench/apps/hello) and serverless-offline (+ plugin), in turns", flush=True)
    ours = start_stackyard(APP, tmp, children, "main")
    theirs = start_serverless_offline(scratch, tmp, children, "main")
    sides = [(ours, sy), (theirs, sls)]
    for server, figures in sides:
        figures.first_request_ms = first_request(server.http_port, ROUTES[0][1])
        figures.ready_s.append(server.ready_s)
    for round_ in range(1, args.rounds + 1):
        print(f"round {round_}", flush=True)
        for server, figures in sides if round_ % 2 else reversed(sides):
            measure_load(server, figures, args)
        ratios = []
        for (kind, connections), mine in sy.rounds[-1].items():
            other = sls.rounds[-1][(kind, connections)]
            cpu = (
                f", CPU/request {mine.cpu_us / other.cpu_us:.2f}x"
                if mine.cpu_us and other.cpu_us
                else ""
            )
            ratios.append(f"{kind} -c{connections} {mine.rps / other.rps:.2f}x{cpu}")
        print(f"  round {round_}, stackyard ÷ sls req/s: " + "; ".join(ratios), flush=True)
    for server, figures in sides:
        figures.invoke = invoke(server, args.invokes, 20)
        print(f"  {server.name} Invoke: mean {figures.invoke.mean:.2f} ms", flush=True)
        stop_group(server.proc)


def bench(args: argparse.Namespace) -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk not found: bash scripts/system-deps.sh --bench")
    ensure_app()
    scratch: Path = args.scratch.expanduser().resolve()
    if scratch.is_relative_to(ROOT):
        sys.exit(f"--scratch must be outside the repository ({ROOT})")
    ensure_serverless(scratch)
    prepare_sls_app(scratch)
    meta = {
        **versions(scratch),
        "cpus": str(os.cpu_count()),
        "cpu": cpu_model(),
        "load before": loadavg(),
    }
    print(", ".join(f"{k} {v}" for k, v in meta.items()), flush=True)
    children = Children()
    with tempfile.TemporaryDirectory(prefix="stackyard-bench-fn-") as tmpdir, signals_unwind():
        tmp = Path(tmpdir)
        cold_dir = tmp / "cold-app"
        cold_dir.mkdir()
        shutil.copy2(APP / "handler.py", cold_dir / "handler.py")
        (cold_dir / "stackyard.yml").write_text(COLD_STACK)
        sy, sls = Figures(), Figures()
        try:
            print("direct (handler called in-process)", flush=True)
            direct = measure_direct(args)

            print("cold starts", flush=True)
            cold_samples(
                lambda tag: start_stackyard(cold_dir, tmp, children, tag),
                stackyard_logged_cold_ms,
                sy,
                args.cold_samples,
            )
            cold_samples(
                lambda tag: start_serverless_offline(scratch, tmp, children, tag),
                sls_logged_cold_ms,
                sls,
                args.cold_samples,
            )

            if args.rounds > 1:
                alternate(scratch, tmp, children, sy, sls, args)
            else:
                print("stackyard (bench/apps/hello)", flush=True)
                server = start_stackyard(APP, tmp, children, "main")
                measure_server(server, sy, args)
                stop_group(server.proc)

                print("serverless-offline (bench/apps/hello + plugin)", flush=True)
                server = start_serverless_offline(scratch, tmp, children, "main")
                measure_server(server, sls, args)
                stop_group(server.proc)
        finally:
            children.close()
    meta["load after"] = loadavg()
    report(rows(direct, sy, sls, args), meta, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="sequential GETs per route")
    parser.add_argument("--invokes", type=int, default=300, help="sequential boto3 Invokes")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk measurement")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of wrk warm-up before each")
    parser.add_argument(
        "--connections",
        type=lambda text: [int(c) for c in text.split(",")],
        default=[8, 32],
        help="wrk connection counts, comma-separated (default 8,32)",
    )
    parser.add_argument("--cold-samples", type=int, default=3, help="fresh starts per tool")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="with N > 1, both servers run side by side and their loads are measured in turns, "
        "N times; the table shows the medians (sequential: all rounds' timings pooled)",
    )
    parser.add_argument(
        "--scratch",
        type=Path,
        default=DEFAULT_SCRATCH,
        help=f"where serverless + serverless-offline are installed (default {DEFAULT_SCRATCH})",
    )
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    bench(parser.parse_args())


if __name__ == "__main__":
    main()
