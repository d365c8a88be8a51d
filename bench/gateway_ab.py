"""Gateway A/B benchmark: this tree's gateway against an earlier commit's, loaded at the same time.

Run by hand: ``.venv/bin/python bench/gateway_ab.py --before REV [--rounds 4] [--mode tracing]``
(needs ``wrk`` and ``nginx``: ``bash scripts/system-deps.sh --bench``). On a shared machine two
runs of ``bench/gateway.py`` a minute apart differ by more than a change worth measuring; two
gateways loaded at the same moment see the same machine, so the ratio of their CPU time per
request moves far less. One run, loopback only:

1. ``git archive REV`` of ``src`` and ``bench`` into a scratch folder — the "before" tree —
   compiled by its own ``scripts/compile.py``, as ``make`` compiles this checkout
   (``--interpreted``: left interpreted);
2. starts one backend, the nginx of ``bench/gateway.py`` answering 13 bytes itself;
3. each round, starts both gateways (each tree's ``bench/gateway.py --serve-gateway``, the
   before one with its ``src`` first on ``PYTHONPATH``; who starts first alternates) and loads
   both at once, one ``wrk -t1 -cC`` each for ``--duration`` seconds after ``--warmup``; the
   CPU time of each gateway process per request is read from ``/proc``. ``--mode``: ``bare``
   (route ``/{proxy+}``, nothing else) or ``tracing`` (a real span store, a node's default
   sampling);
4. prints every sample and the medians of after ÷ before (requests/s, CPU per request).

The two gateways share the machine's cores with each other, the backend and the two wrk: the
absolute figures are lower than alone; the ratios are what to read.
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

from functions_ab import archive

from gateway import (
    HOST,
    NGINX_BACKEND,
    PATH,
    free_port,
    parse_wrk,
    process_cpu,
    start_nginx,
    stop,
    wait_port,
)

ROOT = Path(__file__).resolve().parents[1]
SIDES = ("before", "after")


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
    cmd = [sys.executable, str(tree / "bench" / "gateway.py"), "--serve-gateway", str(port)]
    cmd += ["--upstream", str(backend), "--policy", "none"]
    if mode == "tracing":
        node = TracingConfig()
        cmd += ["--trace-dir", str(tmp / f"spans-{port}")]
        cmd += ["--sample-ratio", str(node.sample_ratio), "--reservoir", str(node.reservoir)]
    return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)


def load(port: int, pid: int, args: argparse.Namespace) -> tuple[float, float | None]:
    """requests/s and CPU µs per request of the gateway ``pid`` under one wrk."""
    url = f"http://{HOST}:{port}{PATH}"
    base = ["wrk", "-t1", f"-c{args.connections}", "--latency"]
    subprocess.run([*base, "-d", f"{args.warmup}s", url], capture_output=True, check=True)
    before = process_cpu(pid)
    out = subprocess.run(
        [*base, "-d", f"{args.duration}s", url], capture_output=True, text=True, check=True
    ).stdout
    after = process_cpu(pid)
    rps = parse_wrk("gateway", out).rps
    cpu = None
    if before is not None and after is not None and rps > 0:
        cpu = 1e6 * (after - before) / (rps * args.duration)
    return rps, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="the commit to compare this tree with")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=int, default=6, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--mode", choices=("bare", "tracing"), default="bare")
    parser.add_argument(
        "--interpreted", action="store_true", help="leave the before tree interpreted"
    )
    args = parser.parse_args()
    user = "user root;" if os.geteuid() == 0 else ""
    rps: dict[str, list[float]] = {side: [] for side in SIDES}
    cpu: dict[str, list[float]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="stackyard-gw-ab-") as scratch:
        tmp = Path(scratch)
        before = archive(args.before, tmp / "before", not args.interpreted, also=("bench",))
        trees = {"before": before.parent, "after": ROOT}
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
                        src = trees[side] / "src" if side == "before" else None
                        proc = start_gateway(trees[side], src, port, backend_port, args.mode, tmp)
                        gateways[side] = (port, proc)
                        wait_port(port, proc)
                    with ThreadPoolExecutor(2) as pool:
                        futures = {
                            side: pool.submit(load, port, proc.pid, args)
                            for side, (port, proc) in gateways.items()
                        }
                        for side in SIDES:
                            got_rps, got_cpu = futures[side].result()
                            rps[side].append(got_rps)
                            if got_cpu is not None:
                                cpu[side].append(got_cpu)
                            print(
                                f"round {round_} {side:6} {got_rps:8,.0f} req/s  "
                                f"{got_cpu or float('nan'):5.1f} µs CPU/req",
                                flush=True,
                            )
                finally:
                    for _, proc in gateways.values():
                        stop(proc)
        finally:
            stop(backend)
    rps_ratios = [a / b for a, b in zip(rps["after"], rps["before"], strict=True)]
    cpu_ratios = [a / b for a, b in zip(cpu["after"], cpu["before"], strict=True)]
    print(f"\n{args.mode} gateway, {args.rounds} rounds, before = {args.before}, after = this tree")
    print("| req/s after ÷ before, per round (median) | CPU µs/request after ÷ before (median) |")
    print("|---|---|")
    print(
        f"| {' '.join(f'{r:.2f}' for r in rps_ratios)} ({statistics.median(rps_ratios):.3f}) "
        f"| {' '.join(f'{c:.2f}' for c in cpu_ratios)} "
        f"({statistics.median(cpu_ratios) if cpu_ratios else float('nan'):.3f}) |"
    )


if __name__ == "__main__":
    main()
