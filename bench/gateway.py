"""Gateway throughput/latency benchmark: direct vs Stackyard gateway vs nginx proxy_pass.

Run by hand or with ``make bench`` (needs the Debian packages ``wrk`` and ``nginx``:
``bash scripts/system-deps.sh --bench``). One run:

1. starts a backend: nginx (one worker) answering a fixed 13-byte body itself, so the backend
   costs the same in every mode and is as cheap as it gets (the figures show proxy overhead);
2. runs wrk (``--latency``) for the same duration and connection count three ways:
   - direct to the backend,
   - through the Stackyard gateway: a ``Gateway`` on ``AsgiServer`` (granian, one worker, uvloop)
     in a child process started by this script (``--serve-gateway``), route ``/{proxy+}``,
     ``stackyard.gateway.tune_gc()`` called after start-up, as a node should (``--no-tune-gc``
     to leave the collector as it is),
   - with ``--tracing``, through the gateway three more times with tracing on: once tracing
     every request with a recorder that drops the spans (the gateway's own cost of making
     them), then with a real ``Telemetry`` (span store in the run's temp dir) recording them in
     the gateway process, as in a node: with a node's default sampling (``tracing`` in
     stackyard.yml: the first 100 new traces of each second, then 5 %; ``--sample-ratio`` and
     ``--reservoir`` change it) and tracing every request,
   - with ``--policies``, through the gateway three more times: every request with an API key
     of a usage plan, checked against stage, route and plan throttles and a quota (limits too
     large to be reached, so every request is proxied), without and with tracing (a real
     ``Telemetry``), and on a cached route where every request after the first is a hit,
   - each ``--tracing`` and ``--policies`` mode beside a bare gateway of its own: both
     processes run, wrk loads them in turn, never at once, in one-second slices (A B, B A,
     A B, ...; ``--duration`` slices each), so their ratio compares two gateways under the same
     moment's machine, not two runs a few seconds apart,
   - with ``--server-floor``, the gateway's server alone: the same ``AsgiServer`` in the same
     kind of process answering the backend's 13 bytes itself (no gateway, no upstream call) —
     the floor of what any gateway on this server can reach,
   - through nginx ``proxy_pass`` (one worker) with an ``upstream { keepalive 64; }`` pool;
   - with ``--paced RATE[,RATE...]``, direct, through the bare gateway and through nginx once
     more at each fixed load of about RATE requests/s instead of as fast as they go: the same
     connections, each waiting a random time between its requests (exponential, mean
     ``connections / RATE``: Poisson arrivals, a wrk Lua ``delay()``), so the p99 shows what
     each proxy adds to a request's latency when it is not saturated (at saturation, wrk's
     latency is mostly the queue: ``connections / requests/s`` on average);
3. prints requests/s, p50 and p99 for each, the proxy's CPU time per request (gateway process,
   nginx proxy worker; read from /proc, so Linux only — steadier than requests/s when the
   machine is shared) and that of the gateway's child processes (with tracing: the span
   store's writer process, on another core), gateway rps / nginx rps and the p99 the gateway
   adds.

Only loopback addresses are used; every child process is stopped when the run ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackyard.config.api import ApiConfig
    from stackyard.gateway.policy import RoutePolicy

HOST = "127.0.0.1"
PATH = "/bench/item?x=1"
Sampling = tuple[float, int]
"""A traced gateway's sampling: (sample ratio, reservoir of traces per second)."""
EVERY_REQUEST: Sampling = (1.0, 0)
BARE = "stackyard gateway"
NGINX = "nginx proxy_pass"
DROPPED = "gateway + tracing, spans dropped"
TRACED = "stackyard gateway + tracing"
TRACED_ALL = "gateway + tracing, every request"


def describe(ratio: float, reservoir: int) -> str:
    """A sampling rule in words."""
    if ratio >= 1.0:
        return "every request"
    rest = f"{ratio * 100:.3g} %"
    if reservoir:
        return f"{reservoir} traces/s, then {rest} of the rest"
    return f"{rest} of the requests"


NGINX_BACKEND = """
worker_processes 1;
daemon off;
{user}
pid {tmp}/backend.pid;
error_log {tmp}/backend-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/b-body;
    proxy_temp_path {tmp}/b-proxy;
    fastcgi_temp_path {tmp}/b-fcgi;
    uwsgi_temp_path {tmp}/b-uwsgi;
    scgi_temp_path {tmp}/b-scgi;
    keepalive_requests 1000000;
    server {{
        listen {host}:{port} backlog=4096;
        location / {{ default_type text/plain; return 200 "hello, world\\n"; }}
    }}
}}
"""

NGINX_PROXY = """
worker_processes 1;
daemon off;
{user}
pid {tmp}/proxy.pid;
error_log {tmp}/proxy-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/p-body;
    proxy_temp_path {tmp}/p-proxy;
    fastcgi_temp_path {tmp}/p-fcgi;
    uwsgi_temp_path {tmp}/p-uwsgi;
    scgi_temp_path {tmp}/p-scgi;
    keepalive_requests 1000000;
    upstream backend {{
        server {host}:{backend_port};
        keepalive 64;
    }}
    server {{
        listen {host}:{port} backlog=4096;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: str
    cpu_us: float | None = None  # CPU time of the proxy process per request (Linux only)
    children_us: float | None = None  # CPU of its child processes (span store writer) per request
    baseline_rps: float | None = None  # a bare gateway's, measured beside this mode
    paired: float | None = None  # rps / baseline_rps (with rounds: the median of the rounds')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {HOST}:{port} after {timeout}s")


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not found:
        sys.exit("nginx not found: bash scripts/system-deps.sh --bench")
    return found


PINS: dict[str, list[str]] = {"proxy": [], "load": []}
"""Command prefixes that pin the proxy under test and the load (wrk, the backend) to their
CPUs (``--pin``); empty: the scheduler places every process."""


def start_nginx(tmp: Path, name: str, config: str) -> subprocess.Popen[bytes]:
    conf = tmp / f"{name}.conf"
    conf.write_text(config)
    pin = PINS["load"] if name == "backend" else PINS["proxy"]
    return subprocess.Popen(
        [
            *pin,
            nginx_binary(),
            "-p",
            str(tmp),
            "-c",
            str(conf),
            "-e",
            str(tmp / f"{name}-error.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_gateway(
    port: int,
    backend_port: int,
    tune_gc: bool = True,
    trace_dir: Path | None = None,
    sampling: Sampling = EVERY_REQUEST,
    policy: str = "none",
    key_file: Path | None = None,
) -> subprocess.Popen[bytes]:
    cmd = [*PINS["proxy"], sys.executable, __file__, "--serve-gateway", str(port)]
    cmd += ["--upstream", str(backend_port)]
    cmd += ["--policy", policy]
    if key_file is not None:
        cmd += ["--key-file", str(key_file)]
    if not tune_gc:
        cmd.append("--no-tune-gc")
    if trace_dir is not None:
        ratio, reservoir = sampling
        cmd += ["--trace-dir", str(trace_dir), "--sample-ratio", str(ratio)]
        cmd += ["--reservoir", str(reservoir)]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"cannot read latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(name: str, out: str) -> Result:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = []
    if m := re.search(r"Socket errors: (.*)", out):
        errors.append(m.group(1).strip())
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors.append(f"non-2xx {m.group(1)}")
    return Result(name, rps, p50, p99, "; ".join(errors) or "-")


def process_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` (all threads), from /proc; None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu(pid: int | None) -> float | None:
    """CPU seconds of the child processes of ``pid`` (the gateway's span store writer), from
    /proc/<pid>/task/*/children; None when there is none or elsewhere than Linux."""
    if pid is None:
        return None
    kids: list[str] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                kids += (task / "children").read_text().split()
    found = [cpu for kid in kids if (cpu := process_cpu(int(kid))) is not None]
    return sum(found) if found else None


PACING = """
local mean = {mean_ms}
function delay()
    return math.floor(-mean * math.log(1 - math.random()) + 0.5)
end
"""


def pacing_scripts(tmp: Path, args: argparse.Namespace) -> dict[float, Path]:
    """Per rate of ``--paced``, a wrk script making each connection wait an exponential time
    (mean ``connections / rate``) before each request: about ``rate`` requests/s in all."""
    scripts = {}
    for rate in args.paced:
        path = tmp / f"paced-{rate:g}.lua"
        path.write_text(PACING.format(mean_ms=1000.0 * args.connections / rate))
        scripts[rate] = path
    return scripts


def run_paced(
    paced: dict[float, list[Result]],
    scripts: dict[float, Path],
    name: str,
    port: int,
    args: argparse.Namespace,
    pid: int | None = None,
) -> None:
    for rate, script in scripts.items():
        paced.setdefault(rate, []).append(run_wrk(name, port, args, pid, script=script))


def run_wrk(
    name: str,
    port: int,
    args: argparse.Namespace,
    pid: int | None = None,
    headers: tuple[str, ...] = (),
    script: Path | None = None,
) -> Result:
    load = Load(name, port, pid, headers)
    wrk_slice(load, args, args.warmup, script)
    cpu_before, kids_before = process_cpu(pid), children_cpu(pid)
    result = wrk_slice(load, args, args.duration, script)
    cpu, kids = _spent(cpu_before, process_cpu(pid)), _spent(kids_before, children_cpu(pid))
    if cpu is not None and result.rps > 0:
        result.cpu_us = 1e6 * cpu / (result.rps * args.duration)
        if kids is not None:
            result.children_us = 1e6 * kids / (result.rps * args.duration)
    print_result(result)
    return result


def print_result(result: Result, more: str = "") -> None:
    cpu = f", {result.cpu_us:.0f} µs CPU/request" if result.cpu_us is not None else ""
    if result.children_us is not None:
        cpu += f" (+ {result.children_us:.0f} µs in its span writer process)"
    print(
        f"  {result.name}: {result.rps:,.0f} rps, p50 {result.p50_ms:.2f} ms, "
        f"p99 {result.p99_ms:.2f} ms{cpu}{more}"
    )


@dataclass(frozen=True)
class Load:
    """One side of an interleaved pair: a gateway to load, its process and request headers."""

    name: str
    port: int
    pid: int | None
    headers: tuple[str, ...] = ()


Slice = tuple[Result, float | None, float | None]
"""One wrk run of :func:`run_interleaved`: its result, the CPU seconds of the gateway and of
its child processes meanwhile (None where /proc does not tell)."""

SLICE_PAUSE = 0.2
"""Seconds between two slices of :func:`run_interleaved`: a traced gateway's span writer
finishes the slice's spans (it ships them every 50 ms) before the other side is loaded."""


def run_interleaved(pair: tuple[Load, Load], args: argparse.Namespace) -> tuple[Result, Result]:
    """Both gateways of ``pair`` loaded in turn, never at once: after a warm-up each,
    ``--duration`` one-second wrk runs per side, in the order A B, B A, A B, ... (each side
    first in every other slice, so a machine that drifts during the pair drifts for both).

    Per side: requests/s over all its slices, CPU per request over them, and the median of the
    slices' p50 and p99 (a one-second run's p99 is that of about a second of requests)."""
    for load in pair:
        wrk_slice(load, args, args.warmup)
    slices: dict[str, list[Slice]] = {load.name: [] for load in pair}
    for number in range(args.duration):
        for load in pair if number % 2 == 0 else pair[::-1]:
            cpu, kids = process_cpu(load.pid), children_cpu(load.pid)
            result = wrk_slice(load, args, 1)
            time.sleep(SLICE_PAUSE)  # the CPU read after it counts the writer's last batch
            used = _spent(cpu, process_cpu(load.pid))
            slices[load.name].append((result, used, _spent(kids, children_cpu(load.pid))))
    first, second = (summarize(load.name, slices[load.name]) for load in pair)
    return first, second


def _spent(before: float | None, after: float | None) -> float | None:
    return after - before if before is not None and after is not None else None


def wrk_slice(
    load: Load, args: argparse.Namespace, seconds: int, script: Path | None = None
) -> Result:
    """One wrk run of ``seconds`` against ``load`` (``--threads``, ``--connections``, with
    ``--latency``; ``script``: a wrk Lua script)."""
    url = f"http://{HOST}:{load.port}{PATH}"
    cmd = [*PINS["load"], "wrk", f"-t{args.threads}", f"-c{args.connections}", "--latency"]
    for header in load.headers:
        cmd += ["-H", header]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run(
        [*cmd, "-d", f"{seconds}s", url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    return parse_wrk(load.name, out)


def summarize(name: str, slices: list[Slice]) -> Result:
    """One side's slices as one result (see :func:`run_interleaved`)."""
    requests = sum(r.rps for r, _, _ in slices)  # one-second slices: about the requests of each
    errors = "; ".join(sorted({r.errors for r, _, _ in slices} - {"-"})) or "-"
    result = Result(
        name,
        requests / len(slices),
        statistics.median(r.p50_ms for r, _, _ in slices),
        statistics.median(r.p99_ms for r, _, _ in slices),
        errors,
    )
    cpus = [cpu for _, cpu, _ in slices if cpu is not None]
    kids = [kid for _, _, kid in slices if kid is not None]
    if requests > 0 and len(cpus) == len(slices):
        result.cpu_us = 1e6 * sum(cpus) / requests
        if len(kids) == len(slices):
            result.children_us = 1e6 * sum(kids) / requests
    print_result(result, f" ({len(slices)} slices of 1 s)")
    return result


def proxy_worker(tmp: Path) -> int | None:
    """The pid of the nginx proxy's worker process (the one doing the work), if found."""
    try:
        master = int((tmp / "proxy.pid").read_text())
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except (OSError, ValueError):
        return None
    return int(children[0]) if children else None


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        args = proc.args
        words = [str(a) for a in args] if isinstance(args, list | tuple) else [str(args)]
        nginx = any(Path(word).name == "nginx" for word in words[:4])  # maybe after taskset
        proc.send_signal(signal.SIGQUIT if nginx else signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def report(results: list[Result], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    by = {r.name: r for r in results}
    title = f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, GET {PATH}"
    if args.rounds > 1:
        title += f", medians of {args.rounds} rounds"
    table = Table(title=title)
    columns = ["mode", "requests/s", "p50 ms", "p99 ms", "CPU µs/req", "writer µs/req"]
    columns += ["bare beside", "/ bare", "errors"]
    for col in columns:
        table.add_column(col, justify="left" if col in ("mode", "errors") else "right")
    rows = [_cells(r) for r in results]
    for cells in rows:
        table.add_row(*cells)
    console = Console()
    console.print(table)
    gw, ngx, direct = by[BARE], by[NGINX], by["direct"]
    console.print(f"gateway rps / nginx rps: {gw.rps / ngx.rps:.1%}")
    if traced := by.get(TRACED):
        ratio = versus_bare(traced, gw)
        console.print(
            f"tracing on / off ({describe(args.sample_ratio, args.reservoir)}): "
            f"{ratio:.1%} of the rps (costs {1 - ratio:.1%})"
        )
    if every := by.get(TRACED_ALL):
        ratio = versus_bare(every, gw)
        console.print(
            f"tracing on / off (every request): {ratio:.1%} of the rps (costs {1 - ratio:.1%})"
        )
    if dropped := by.get(DROPPED):
        ratio = versus_bare(dropped, gw)
        console.print(
            f"tracing every request, spans made but not stored / off: {ratio:.1%} of the rps "
            f"(the gateway's own cost: {1 - ratio:.1%})"
        )
    for name in (KEYS, KEYS_TRACED):
        if policed := by.get(name):
            console.print(f"{name} / bare gateway: {versus_bare(policed, gw):.1%} of the rps")
    if hit := by.get(CACHE_HIT):
        console.print(f"cache hit / bare gateway (proxied): {versus_bare(hit, gw):.2f} times")
    console.print(
        f"p99 added vs direct: gateway {gw.p99_ms - direct.p99_ms:+.2f} ms, "
        f"nginx {ngx.p99_ms - direct.p99_ms:+.2f} ms"
    )
    if floor := by.get(SERVER_ALONE):
        console.print(
            f"the server alone: {floor.rps / ngx.rps:.1%} of nginx proxy_pass's rps, p99 "
            f"{floor.p99_ms - direct.p99_ms:+.2f} ms vs direct; the gateway reaches "
            f"{gw.rps / floor.rps:.1%} of its rps"
        )
    if args.markdown:
        print("\n| " + " | ".join(columns) + " |\n|---|" + "---:|" * 7 + "---|")
        for cells in rows:
            print("| " + " | ".join(cells) + " |")


def _cells(r: Result) -> list[str]:
    cpu = f"{r.cpu_us:.0f}" if r.cpu_us is not None else "-"
    kids = f"{r.children_us:.0f}" if r.children_us is not None else "-"
    before = f"{r.baseline_rps:,.0f}" if r.baseline_rps is not None else "-"
    ratio = f"{r.paired:.1%}" if r.paired is not None else "-"
    cells = [r.name, f"{r.rps:,.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", cpu, kids]
    return [*cells, before, ratio, r.errors]


def report_paced(rate: float, results: list[Result], args: argparse.Namespace) -> None:
    """The runs at one fixed load (``--paced``): latency each proxy adds when not saturated."""
    from rich.console import Console
    from rich.table import Table

    title = f"at a fixed load: about {rate:,.0f} requests/s, Poisson arrivals"
    if args.rounds > 1:
        title += f", medians of {args.rounds} rounds"
    table = Table(title=f"{title}, {args.connections} connections, {args.duration}s")
    for col in ("mode", "requests/s", "p50 ms", "p99 ms", "p99 added ms", "CPU µs/req", "errors"):
        table.add_column(col, justify="left" if col in ("mode", "errors") else "right")
    direct = results[0]
    rows = []
    for r in results:
        added = "-" if r is direct else f"{r.p99_ms - direct.p99_ms:+.2f}"
        cpu = f"{r.cpu_us:.0f}" if r.cpu_us is not None else "-"
        rows.append([r.name, f"{r.rps:,.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", added, cpu])
        table.add_row(*rows[-1], r.errors)
    console = Console()
    console.print(table)
    by = {r.name: r for r in results}
    gw, ngx = by[BARE], by[NGINX]
    console.print(
        f"p99 added vs direct at {gw.rps:,.0f} requests/s: gateway "
        f"{gw.p99_ms - direct.p99_ms:+.2f} ms, nginx {ngx.p99_ms - direct.p99_ms:+.2f} ms"
    )
    if args.markdown:
        print(
            f"\n{title}:\n"
            "\n| mode | requests/s | p50 ms | p99 ms | p99 added ms | CPU µs/req | errors |"
            "\n|---|---:|---:|---:|---:|---:|---|"
        )
        for row, r in zip(rows, results, strict=True):
            print("| " + " | ".join([*row, r.errors]) + " |")


def bench(args: argparse.Namespace) -> None:
    """``--rounds`` runs of every mode, one after the other; with more than one, the tables
    show each mode's medians and each round's ratios are printed as it ends."""
    if not shutil.which("wrk"):
        sys.exit("wrk not found: bash scripts/system-deps.sh --bench")
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2 or not shutil.which("taskset"):
            sys.exit("--pin needs two CPUs and taskset (util-linux)")
        PINS["proxy"] = ["taskset", "-c", str(cpus[0])]
        PINS["load"] = ["taskset", "-c", ",".join(str(c) for c in cpus[1:])]
    compiled = sorted(Path(__file__).resolve().parents[1].glob("src/stackyard/**/*.so"))
    print(f"compiled modules (mypyc, scripts/compile.py): {len(compiled)}", flush=True)
    rounds: list[tuple[list[Result], dict[float, list[Result]]]] = []
    for number in range(1, args.rounds + 1):
        if args.rounds > 1:
            print(f"round {number} of {args.rounds}", flush=True)
        rounds.append(one_round(args))
        if args.rounds > 1:
            print_ratios(rounds[-1][0], args)
    results = medians([r for r, _ in rounds])
    report(results, args)
    for rate in args.paced:
        report_paced(rate, medians([paced[rate] for _, paced in rounds]), args)


def medians(runs: list[list[Result]]) -> list[Result]:
    """Per mode, the median of each figure over the runs (the modes in the first run's order)."""
    if len(runs) == 1:
        return runs[0]
    out = []
    for first in runs[0]:
        same = [r for run in runs for r in run if r.name == first.name]

        def mid(values: list[float | None]) -> float | None:
            known = [v for v in values if v is not None]
            return statistics.median(known) if known else None

        out.append(
            Result(
                first.name,
                statistics.median(r.rps for r in same),
                statistics.median(r.p50_ms for r in same),
                statistics.median(r.p99_ms for r in same),
                "; ".join(sorted({r.errors for r in same} - {"-"})) or "-",
                mid([r.cpu_us for r in same]),
                mid([r.children_us for r in same]),
                mid([r.baseline_rps for r in same]),
                mid([r.paired for r in same]),
            )
        )
    return out


def versus_bare(result: Result, bare: Result) -> float:
    """``result``'s rps over the bare gateway's: the one measured beside it if any."""
    return result.paired if result.paired is not None else result.rps / bare.rps


def print_ratios(results: list[Result], args: argparse.Namespace) -> None:
    by = {r.name: r for r in results}
    gw = by[BARE]
    parts = [f"gateway / nginx {gw.rps / by[NGINX].rps:.1%}"]
    for name in (TRACED, TRACED_ALL, DROPPED, KEYS, KEYS_TRACED):
        if name in by:
            parts.append(f"{name} / gateway {versus_bare(by[name], gw):.1%}")
    if CACHE_HIT in by:
        parts.append(f"cache hit / gateway {versus_bare(by[CACHE_HIT], gw):.2f}x")
    print("  ratios: " + ", ".join(parts), flush=True)


def one_round(args: argparse.Namespace) -> tuple[list[Result], dict[float, list[Result]]]:
    """Every mode once: the wrk results at full load and, per ``--paced`` rate, at that load.

    nginx ``proxy_pass`` is measured right after the bare gateway, and every other gateway
    mode against a bare gateway of its own (``Result.baseline_rps``), in interleaved slices
    (:func:`run_interleaved`): a machine that slows down or speeds up during the round (other
    tenants, the kernel writing a span store back) moves both sides alike. A mode's span store
    is deleted once the mode is measured."""
    children: list[subprocess.Popen[bytes]] = []
    user = "user root;" if os.geteuid() == 0 else ""
    with tempfile.TemporaryDirectory(prefix="stackyard-bench-") as tmpdir:
        tmp = Path(tmpdir)

        def launch(
            policy: str = "none",
            trace_dir: Path | None = None,
            sampling: Sampling = EVERY_REQUEST,
        ) -> tuple[int, subprocess.Popen[bytes], tuple[str, ...]]:
            """A gateway in ``policy`` mode, ready: its port, process and request headers."""
            port = free_port()
            gateway = start_gateway(
                port, backend_port, args.tune_gc, trace_dir, sampling, policy, tmp / "api-key"
            )
            children.append(gateway)
            wait_port(port, gateway)
            headers: tuple[str, ...] = ()
            if policy == "keys":
                headers = (f"x-api-key: {(tmp / 'api-key').read_text().strip()}",)
            return port, gateway, headers

        def finish(gateway: subprocess.Popen[bytes], trace_dir: Path | None) -> None:
            stop(gateway)
            if trace_dir is not None and trace_dir.name != NULL_SINK:
                shutil.rmtree(trace_dir, ignore_errors=True)

        def measure(name: str, policy: str = "none") -> Result:
            port, gateway, headers = launch(policy)
            result = run_wrk(name, port, args, gateway.pid, headers)
            if name == BARE:
                run_paced(paced, scripts, name, port, args, gateway.pid)
            finish(gateway, None)
            return result

        def paired(
            name: str,
            policy: str = "none",
            trace_dir: Path | None = None,
            sampling: Sampling = EVERY_REQUEST,
        ) -> Result:
            bare_port, bare, _ = launch()
            port, gateway, headers = launch(policy, trace_dir, sampling)
            baseline, result = run_interleaved(
                (
                    Load(f"{BARE} (beside: {name})", bare_port, bare.pid),
                    Load(name, port, gateway.pid, headers),
                ),
                args,
            )
            finish(gateway, trace_dir)
            finish(bare, None)
            result.baseline_rps = baseline.rps
            result.paired = result.rps / baseline.rps
            return result

        try:
            backend_port, proxy_port = free_port(), free_port()
            backend = start_nginx(
                tmp,
                "backend",
                NGINX_BACKEND.format(user=user, tmp=tmp, host=HOST, port=backend_port),
            )
            children.append(backend)
            wait_port(backend_port, backend)
            results = [run_wrk("direct", backend_port, args)]
            paced: dict[float, list[Result]] = {}
            scripts = pacing_scripts(tmp, args)
            run_paced(paced, scripts, "direct", backend_port, args)

            results.append(measure(BARE))
            proxy_conf = NGINX_PROXY.format(
                user=user, tmp=tmp, host=HOST, port=proxy_port, backend_port=backend_port
            )
            proxy = start_nginx(tmp, "proxy", proxy_conf)
            children.append(proxy)
            wait_port(proxy_port, proxy)
            results.append(run_wrk(NGINX, proxy_port, args, proxy_worker(tmp)))
            run_paced(paced, scripts, NGINX, proxy_port, args, proxy_worker(tmp))
            stop(proxy)

            if args.server_floor:
                results.append(measure(SERVER_ALONE, FLOOR))
            sampling = (args.sample_ratio, args.reservoir)
            if args.tracing:
                results.append(paired(DROPPED, trace_dir=tmp / NULL_SINK))
                results.append(paired(TRACED, trace_dir=tmp / "traces", sampling=sampling))
                if sampling != EVERY_REQUEST:
                    results.append(paired(TRACED_ALL, trace_dir=tmp / "traces-all"))
            if args.policies:
                results.append(paired(KEYS, policy="keys"))
                results.append(
                    paired(
                        KEYS_TRACED, policy="keys", trace_dir=tmp / "traces-keys", sampling=sampling
                    )
                )
                results.append(paired(CACHE_HIT, policy="cache"))
        finally:
            for child in reversed(children):
                stop(child)
    return results, paced


NULL_SINK = "null-sink"


FLOOR = "floor"
SERVER_ALONE = "server alone (ASGI hello world)"
KEYS = "gateway + key, plan, throttle"
KEYS_TRACED = "gateway + key, plan, throttle, tracing"
CACHE_HIT = "gateway, cache hit"


def bench_api(policy: str) -> tuple[ApiConfig, RoutePolicy]:
    """The ``api`` settings and the route policy of a ``--policies`` mode: an API key of a
    usage plan with a throttle and a quota too large to be reached, stage and route throttles
    likewise (every bucket and counter is still checked), or a cached route."""
    from stackyard.config.api import (
        ApiConfig,
        CacheConfig,
        QuotaConfig,
        ThrottleConfig,
        UsagePlanConfig,
    )
    from stackyard.gateway.policy import NO_POLICY, RoutePolicy

    huge = ThrottleConfig(rate=1e9, burst=10**9)
    if policy == "keys":
        plan = UsagePlanConfig(throttle=huge, quota=QuotaConfig(limit=10**12, period="month"))
        api = ApiConfig(throttle=huge, usage_plans={"bench": plan})
        return api, RoutePolicy(api_key=True, throttle=huge)
    if policy == "cache":
        return ApiConfig(), RoutePolicy(cache=CacheConfig(ttl=3600))
    return ApiConfig(), NO_POLICY


class _DropSpans:
    """A span recorder that drops what it gets: the gateway's own tracing cost alone."""

    def record_span(self, span: object) -> None:
        pass

    def record_gateway_request(self, record: object) -> None:
        pass


def serve_gateway(
    port: int,
    upstream: int,
    tune: bool,
    trace_dir: Path | None = None,
    sample_ratio: float = 1.0,
    reservoir: int = 0,
    policy: str = "none",
    key_file: Path | None = None,
) -> None:
    """The gateway process: one Gateway on one AsgiServer, until SIGTERM.

    With ``trace_dir``, a real ``Telemetry`` (span store in that folder) records the gateway's
    spans in this process, as in a node."""
    from types import MappingProxyType

    from stackyard.gateway import Gateway, RouteSpec, RouteTable
    from stackyard.registry.models import Endpoint
    from stackyard.serving import AsgiServer
    from stackyard.telemetry import Telemetry

    telemetry = None
    recorder: Telemetry | _DropSpans | None = None
    if trace_dir is not None and trace_dir.name == NULL_SINK:
        recorder = _DropSpans()
    elif trace_dir is not None:
        trace_dir.mkdir(parents=True, exist_ok=True)
        telemetry = recorder = Telemetry(trace_dir)

    async def main() -> None:
        if policy == FLOOR:
            await serve_alone(port)
            return
        if telemetry is not None:
            await telemetry.start()
        api, route_policy = bench_api(policy)
        gateway = Gateway(spans=recorder, sample_ratio=sample_ratio, reservoir=reservoir, api=api)
        gateway.update(
            RouteTable(
                version=1,
                routes=(RouteSpec("/{proxy+}", "backend", policy=route_policy),),
                endpoints=MappingProxyType({"backend": (Endpoint("b1", HOST, upstream),)}),
            )
        )
        await gateway.start()
        if policy == "keys" and key_file is not None:
            _, raw_key = await gateway.usage.create_key("bench", "bench")
            await asyncio.to_thread(key_file.write_text, raw_key)
        if tune:
            from stackyard.gateway import tune_gc

            tune_gc()
        server = AsgiServer(gateway.serve, HOST, port)  # as a node serves it
        await server.start()
        await until_stopped()
        await server.stop()
        await gateway.stop()
        if telemetry is not None:
            await telemetry.stop()

    def report_store() -> None:
        if telemetry is not None:
            path = telemetry.spans.path
            stored = path.stat().st_size if path.exists() else 0
            print(f"  (tracing: span store {stored / 1e6:.1f} MB)", flush=True)

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
    report_store()


async def until_stopped() -> None:
    """Returns on SIGTERM or SIGINT."""
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGINT, done.set)
    await done.wait()


async def _hello(scope: Any, receive: Any, send: Any) -> None:
    """What the backend answers (13 bytes), from the gateway's server itself."""
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello, world\n"})


async def serve_alone(port: int) -> None:
    """``--server-floor``: the gateway's ``AsgiServer`` with ``_hello``, until SIGTERM."""
    from stackyard.gateway import tune_gc
    from stackyard.serving import AsgiServer

    tune_gc()
    server = AsgiServer(_hello, HOST, port)
    await server.start()
    await until_stopped()
    await server.stop()


def _rates(text: str) -> list[float]:
    rates = [float(part) for part in text.split(",") if part.strip()]
    if not rates or min(rates) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive requests/s, got {text!r}")
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per mode")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs of every mode; the tables show medians"
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="run the proxy under test (with its child processes) on the first CPU, wrk and "
        "the backend on the others",
    )
    parser.add_argument(
        "--no-tune-gc",
        dest="tune_gc",
        action="store_false",
        help="do not call stackyard.gateway.tune_gc() (gc.freeze) in the gateway process",
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="also measure the gateway with tracing on (a real Telemetry in a temp dir)",
    )
    parser.add_argument(
        "--sample-ratio",
        type=float,
        help="the traced gateway's sample ratio beyond the reservoir (default: a node's)",
    )
    parser.add_argument(
        "--reservoir",
        type=int,
        help="new traces per second the traced gateway takes before the ratio (default: a node's)",
    )
    parser.add_argument(
        "--policies",
        action="store_true",
        help="also measure the gateway with an API key + usage plan + throttle (without and "
        "with tracing) and with a cache hit on every request",
    )
    parser.add_argument(
        "--server-floor",
        action="store_true",
        help="also measure the gateway's server alone answering the backend's body itself",
    )
    parser.add_argument(
        "--paced",
        type=_rates,
        default=[],
        metavar="RATE[,RATE...]",
        help="also measure direct, the bare gateway and nginx at about RATE requests/s "
        "(Poisson arrivals): the latency each adds when not saturated",
    )
    parser.add_argument("--policy", default="none", help=argparse.SUPPRESS)
    parser.add_argument("--key-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--serve-gateway", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--trace-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from stackyard.config.models import TracingConfig

    node = TracingConfig()
    if args.sample_ratio is None:
        args.sample_ratio = node.sample_ratio
    if args.reservoir is None:
        args.reservoir = node.reservoir
    if args.serve_gateway:
        serve_gateway(
            args.serve_gateway,
            args.upstream,
            args.tune_gc,
            args.trace_dir,
            args.sample_ratio,
            args.reservoir,
            args.policy,
            args.key_file,
        )
    else:
        bench(args)


if __name__ == "__main__":
    main()
