"""Functions A/B benchmark: this tree against an earlier commit, alternating in one loop.

Run by hand: ``.venv/bin/python bench/functions_ab.py --before REV [--rounds 3]`` (needs
``wrk``: ``bash scripts/system-deps.sh --bench``). On a shared machine whose speed moves by
tens of percent between runs a minute apart, two separate runs of ``bench/functions.py`` cannot
resolve a 10 % change; alternating does:

1. ``git archive REV src`` into a scratch folder: the "before" tree (it runs interpreted;
   ``--compiled`` also compiles it, with its own ``scripts/compile.py``);
2. for each of ``--rounds`` rounds, for before (that tree first on ``PYTHONPATH``, for the node
   and its workers) then after (this checkout): ``stackyard up bench/apps/hello`` on free ports,
   then for each route (``/hello``, HTTP API; ``/dev/hello``, REST) and each of
   ``--connections``, ``wrk -t1 -cC`` for ``--warmup`` then ``--duration`` seconds, with the
   CPU the node's whole process tree (node, span and log writers, workers) spent per request,
   read from ``/proc``;
3. prints every sample and, per route and connection count, the medians of before and after
   and their ratio.

With ``--together``, each round starts both nodes and loads them **at the same time** (one
``wrk`` each, same route and connection count): both sides then see the same machine at the
same moment, so the ratio of their CPU per request moves far less than the ratio of two runs
even seconds apart. The two nodes share the two cores, so the absolute figures are lower than
alone; the per-round ratios and their medians are what to read.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from functions import APP, ROUTES, Children, Load, ensure_app, start_stackyard, wrk

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def python_path(path: Path | None) -> Iterator[None]:
    """``path`` first on ``PYTHONPATH`` for the processes started meanwhile (None: as is)."""
    saved = os.environ.get("PYTHONPATH")
    if path is not None:
        os.environ["PYTHONPATH"] = str(path) + (os.pathsep + saved if saved else "")
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def archive(rev: str, into: Path, compiled: bool = False, also: tuple[str, ...] = ()) -> Path:
    """The ``src`` folder of ``rev`` (and the paths ``also``), unpacked into ``into``; with
    ``compiled``, its modules compiled by its own ``scripts/compile.py``, as ``make`` compiles
    this checkout's. Returns the ``src`` folder."""
    parts = ["src", *also]
    if compiled:
        parts += ["scripts", "pyproject.toml"]  # mypy, which compiles, reads its config there
    tar = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, *parts], capture_output=True, check=True
    ).stdout
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=tar, check=True)
    if compiled:
        script = into / "scripts" / "compile.py"
        if not script.exists():
            raise SystemExit(f"{rev} has no scripts/compile.py: it cannot be compiled")
        print(f"compiling {rev}'s modules ...", flush=True)
        subprocess.run([sys.executable, str(script)], check=True, stdout=subprocess.DEVNULL)
    return into / "src"


def measure(tag: str, tmp: Path, args: argparse.Namespace) -> dict[tuple[str, int], Load]:
    children = Children()
    try:
        server = start_stackyard(APP, tmp, children, tag)
        return {
            (path, connections): wrk(server, path, connections, args)
            for _, path in ROUTES
            for connections in args.connections
        }
    finally:
        children.close()


def measure_together(
    round_: int, before: Path, tmp: Path, args: argparse.Namespace
) -> dict[tuple[str, str, int], Load]:
    """Both nodes running, each route and connection count loaded on both at once."""
    children = Children()
    try:
        servers = {}
        sides = [("before", before), ("after", None)]
        for side, path in sides if round_ % 2 else reversed(sides):  # who starts first alternates
            with python_path(path):
                servers[side] = start_stackyard(APP, tmp, children, f"{side}-{round_}")
        loads: dict[tuple[str, str, int], Load] = {}
        with ThreadPoolExecutor(2) as pool:
            for _, route in ROUTES:
                for connections in args.connections:
                    both = {
                        side: pool.submit(wrk, server, route, connections, args)
                        for side, server in servers.items()
                    }
                    for side, future in both.items():
                        loads[(side, route, connections)] = future.result()
        return loads
    finally:
        children.close()


def report_together(
    samples: dict[tuple[str, str, int], list[Load]], args: argparse.Namespace
) -> None:
    print(f"\nloaded together, {args.rounds} rounds, before = {args.before}, after = this tree")
    print(
        "| route, connections | req/s after ÷ before, per round (median) "
        "| CPU µs/request after ÷ before, per round (median) |"
    )
    print("|---|---|---|")
    for _, route in ROUTES:
        for connections in args.connections:
            pairs = zip(
                samples[("before", route, connections)],
                samples[("after", route, connections)],
                strict=True,
            )
            rps, cpu = [], []
            for b, a in pairs:
                rps.append(a.rps / b.rps)
                if a.cpu_us and b.cpu_us:
                    cpu.append(a.cpu_us / b.cpu_us)
            print(
                f"| `{route}`, {connections} | {' '.join(f'{r:.2f}' for r in rps)} "
                f"({statistics.median(rps):.3f}) | {' '.join(f'{c:.2f}' for c in cpu)} "
                f"({statistics.median(cpu) if cpu else float('nan'):.3f}) |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="the commit to compare this tree with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each")
    parser.add_argument(
        "--connections", type=lambda text: [int(c) for c in text.split(",")], default=[8, 32]
    )
    parser.add_argument(
        "--together", action="store_true", help="load both nodes at the same time (see above)"
    )
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="compile the before tree's modules too (its scripts/compile.py); without it the "
        "before tree runs interpreted",
    )
    args = parser.parse_args()
    ensure_app()
    samples: dict[tuple[str, str, int], list[Load]] = {}
    with tempfile.TemporaryDirectory(prefix="stackyard-ab-") as scratch:
        tmp = Path(scratch)
        before = archive(args.before, tmp, args.compiled)
        if args.together:
            for round_ in range(1, args.rounds + 1):
                for key, load in measure_together(round_, before, tmp, args).items():
                    samples.setdefault(key, []).append(load)
                    side, route, connections = key
                    print(
                        f"round {round_} {side:6} {route:11} -c{connections:<3} "
                        f"{load.rps:8,.0f} req/s  {load.cpu_us or float('nan'):6.0f} µs CPU/req",
                        flush=True,
                    )
            report_together(samples, args)
            return
        for round_ in range(1, args.rounds + 1):
            for side, path in (("before", before), ("after", None)):
                with python_path(path):
                    loads = measure(f"{side}-{round_}", tmp, args)
                for (route, connections), load in loads.items():
                    samples.setdefault((side, route, connections), []).append(load)
                    print(
                        f"round {round_} {side:6} {route:11} -c{connections:<3} "
                        f"{load.rps:8,.0f} req/s  {load.cpu_us or float('nan'):6.0f} µs CPU/req",
                        flush=True,
                    )
    print(f"\nmedians of {args.rounds} rounds, before = {args.before}, after = this tree")
    print("| route, connections | req/s before → after | CPU µs/request before → after |")
    print("|---|---:|---:|")
    for _, route in ROUTES:
        for connections in args.connections:
            b, a = samples[("before", route, connections)], samples[("after", route, connections)]
            rb = statistics.median(load.rps for load in b)
            ra = statistics.median(load.rps for load in a)
            cb = statistics.median(load.cpu_us or 0.0 for load in b)
            ca = statistics.median(load.cpu_us or 0.0 for load in a)
            print(
                f"| `{route}`, {connections} | {rb:,.0f} → {ra:,.0f} ({ra / rb:.2f}x) "
                f"| {cb:.0f} → {ca:.0f} |"
            )


if __name__ == "__main__":
    main()
