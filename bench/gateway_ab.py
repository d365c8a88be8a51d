"""Gateway A/B benchmark: two gateways loaded at the same time — this tree against an earlier
commit's, or two modes of this tree (bare against tracing, policies, a cache hit).

Run by hand (needs ``wrk`` and ``nginx``: ``bash scripts/system-deps.sh --bench``):

- ``.venv/bin/python bench/gateway_ab.py --before REV [--mode tracing]``: REV's gateway against
  this tree's, both in the same mode;
- ``.venv/bin/python bench/gateway_ab.py --before-mode bare --mode tracing``: this tree's bare
  gateway against its traced one — the cost of a feature, measured the same way.

On a shared machine two runs of ``bench/gateway.py`` a minute apart differ by more than a change
worth measuring; two gateways loaded at the same moment see the same machine, so the ratio of
their CPU time per request moves far less. One run, loopback only:

1. with ``--before``, ``git archive REV`` of ``src`` and ``bench`` into a scratch folder — the
   "before" tree — compiled by its own ``scripts/compile.py``, as ``make`` compiles this
   checkout (``--interpreted``: left interpreted);
2. starts one backend, the nginx of ``bench/gateway.py`` answering 13 bytes itself;
3. each round, starts both gateways (each tree's ``bench/gateway.py --serve-gateway``, the
   before one with its ``src`` first on ``PYTHONPATH``; who starts first alternates) and loads
   both at once, one ``wrk -t1 -cC`` each for ``--duration`` seconds after ``--warmup``; the
   CPU time of each gateway process per request is read from ``/proc``, with that of its child
   processes (a traced gateway's span store writer) beside it and in the total. Modes
   (``--mode`` for the after side, ``--before-mode`` for the before one, default the same):
   ``bare`` (route ``/{proxy+}``, nothing else), ``tracing`` (a real span store, a node's
   default sampling), ``keys`` (an API key of a usage plan, stage, route and plan throttles
   and a quota, limits never reached), ``keys-tracing`` (both) and ``cache`` (a cached route:
   every request after the first is a hit);
4. prints every sample and the medians of after ÷ before: requests/s, and CPU per request of
   the gateway alone and with its child processes.

The two gateways share the machine's cores with each other, the backend and the two wrk: the
absolute figures are lower than alone; the ratios are what to read. Both get about the same
CPU time, so the requests/s ratio follows the inverse of the CPU ratio; a child process's CPU
comes out of the pool all processes share, which is why the total is printed too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from functions_ab import archive

from gateway import (
    HOST,
    NGINX_BACKEND,
    Load,
    children_cpu,
    free_port,
    process_cpu,
    start_nginx,
    stop,
    wait_port,
    wrk_slice,
)

ROOT = Path(__file__).resolve().parents[1]
SIDES = ("before", "after")
MODES = {
    # mode: (--policy of bench/gateway.py, traced)
    "bare": ("none", False),
    "tracing": ("none", True),
    "keys": ("keys", False),
    "keys-tracing": ("keys", True),
    "cache": ("cache", False),
}


class Sample(NamedTuple):
    rps: float
    cpu: float  # µs per request, the gateway process
    total: float  # µs per request, with its child processes


def start_gateway(
    tree: Path, src: Path | None, port: int, backend: int, mode: str, tmp: Path
) -> subprocess.Popen[bytes]:
    """``tree``'s ``bench/gateway.py --serve-gateway`` (``src`` first on ``PYTHONPATH``)."""
    from stackyard.config.models import TracingConfig

    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src) + (
            os.pathsep + env["PYTHONPATH"] if "PYTHONPATH" in env else ""
        )
    policy, traced = MODES[mode]
    cmd = [sys.executable, str(tree / "bench" / "gateway.py"), "--serve-gateway", str(port)]
    cmd += ["--upstream", str(backend), "--policy", policy]
    if policy == "keys":
        cmd += ["--key-file", str(tmp / f"key-{port}")]
    if traced:
        node = TracingConfig()
        cmd += ["--trace-dir", str(tmp / f"spans-{port}")]
        cmd += ["--sample-ratio", str(node.sample_ratio), "--reservoir", str(node.reservoir)]
    return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)


def load(port: int, pid: int, mode: str, tmp: Path, args: argparse.Namespace) -> Sample:
    """requests/s and CPU µs per request of the gateway ``pid`` under one wrk."""
    headers: tuple[str, ...] = ()
    if MODES[mode][0] == "keys":
        headers = (f"x-api-key: {(tmp / f'key-{port}').read_text().strip()}",)
    side = Load("gateway", port, pid, headers)
    wrk_slice(side, args, args.warmup)
    before, kids_before = process_cpu(pid), children_cpu(pid) or 0.0
    rps = wrk_slice(side, args, args.duration).rps
    after, kids_after = process_cpu(pid), children_cpu(pid) or 0.0
    if before is None or after is None or rps <= 0:
        raise SystemExit("no CPU time read from /proc, or no request answered")
    per = 1e6 / (rps * args.duration)
    own = (after - before) * per
    return Sample(rps, own, own + (kids_after - kids_before) * per)


def wait_ready(port: int, proc: subprocess.Popen[bytes], mode: str, tmp: Path) -> None:
    wait_port(port, proc)
    if MODES[mode][0] == "keys":  # the key is written once the gateway has made it
        key = tmp / f"key-{port}"
        for _ in range(200):
            if key.exists() and key.read_text().strip():
                return
            subprocess.run(["sleep", "0.05"], check=True)
        raise SystemExit(f"the gateway on port {port} wrote no API key")


def ratios(samples: dict[str, list[Sample]], field: int) -> list[float]:
    return [a[field] / b[field] for a, b in zip(samples["after"], samples["before"], strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", help="the commit to compare this tree with (default: none)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=int, default=6, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--mode", choices=tuple(MODES), default="bare")
    parser.add_argument("--before-mode", choices=tuple(MODES), help="default: --mode")
    parser.add_argument(
        "--interpreted", action="store_true", help="leave the before tree interpreted"
    )
    args = parser.parse_args()
    modes = {"before": args.before_mode or args.mode, "after": args.mode}
    if args.before is None and modes["before"] == modes["after"]:
        parser.error("give --before REV, or a --before-mode other than --mode")
    user = "user root;" if os.geteuid() == 0 else ""
    samples: dict[str, list[Sample]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="stackyard-gw-ab-") as scratch:
        tmp = Path(scratch)
        trees = {"before": ROOT, "after": ROOT}
        srcs: dict[str, Path | None] = {"before": None, "after": None}
        if args.before is not None:
            src = archive(args.before, tmp / "before", not args.interpreted, also=("bench",))
            trees["before"], srcs["before"] = src.parent, src
        backend_port = free_port()
        backend = start_nginx(
            tmp, "backend", NGINX_BACKEND.format(user=user, tmp=tmp, host=HOST, port=backend_port)
        )
        try:
            wait_port(backend_port, backend)
            for round_ in range(1, args.rounds + 1):
                order = SIDES if round_ % 2 else SIDES[::-1]
                gateways = {}
                try:
                    for side in order:
                        port = free_port()
                        proc = start_gateway(
                            trees[side], srcs[side], port, backend_port, modes[side], tmp
                        )
                        gateways[side] = (port, proc)
                        wait_ready(port, proc, modes[side], tmp)
                    with ThreadPoolExecutor(2) as pool:
                        futures = {
                            side: pool.submit(load, port, proc.pid, modes[side], tmp, args)
                            for side, (port, proc) in gateways.items()
                        }
                        for side in SIDES:
                            got = futures[side].result()
                            samples[side].append(got)
                            print(
                                f"round {round_} {side:6} {modes[side]:12} {got.rps:8,.0f} "
                                f"req/s  {got.cpu:5.1f} µs CPU/req ({got.total:5.1f} with "
                                "child processes)",
                                flush=True,
                            )
                finally:
                    for _, proc in gateways.values():
                        stop(proc)
        finally:
            stop(backend)
    before = f"{args.before or 'this tree'} ({modes['before']})"
    print(f"\n{args.rounds} rounds, before = {before}, after = this tree ({modes['after']})")
    print(
        "| req/s after ÷ before, per round (median) | CPU µs/request after ÷ before (median) "
        "| with child processes (median) |"
    )
    print("|---|---|---|")
    cells = []
    for field in (0, 1, 2):
        values = ratios(samples, field)
        cells.append(f"{' '.join(f'{v:.2f}' for v in values)} ({statistics.median(values):.3f})")
    print(f"| {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
