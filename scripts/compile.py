"""Compiles the request path's modules to C extensions with mypyc, in place.

Run by ``make install`` (so by ``make up`` and ``make test``) after the editable install;
``make compile`` runs it alone. Each module of ``MODULES`` gets an extension module next to its
source (``src/stackyard/gateway/h1.cpython-311-x86_64-linux-gnu.so``), which Python imports in
place of the ``.py``; the code they share is one more extension, ``src/stackyard__mypyc...so``.
None of it is committed (``.gitignore``). The sources stay the truth: the same typed code runs
interpreted where it is not compiled, and every test passes either way.

A compiled module whose source changed since is stale: Python would still import the old
extension. ``make`` compiles again when a source is newer than the last build, and the test
suite refuses to start on a stale extension (``tests/conftest.py``). ``--clean`` removes every
extension (pure Python again).

The modules are those a request runs through — the gateway's steps, router, upstream client,
response cache, usage plans (quotas, buckets) and tracing; the function integration, the node's
end of the workers' channel, the worker pool and logs. Not compiled: ``functions/channel.py``, which
the workers' bootstrap imports too (compiled, a worker's cold start would load the shared
extension: 4 MB, ≈ 3 ms); the admin API (``gateway/admin.py``: Starlette tells a coroutine
function from a plain one with ``inspect``, which does not see a compiled ``async def`` as
one); ``gateway/keys.py``, whose admin operations failed their tests compiled (not looked
into: a key is looked up once per key value, off the request path's hot part). If the build
fails (no C compiler, say), the reason is printed and the interpreted code is used: nothing
else depends on it.

Compiled code differs from the interpreter in a few ways the code must respect:

- it checks at run time the types its annotations declare: a value read through a typed
  attribute whose real type differs from typeshed's (uvloop's ``Server.sockets`` is a list,
  typeshed says tuple) raises ``TypeError``; such reads go through ``Any``;
- a class attribute a subclass overrides is declared ``ClassVar`` in the base (an error's
  ``status`` and ``code``), or the compiled subclass keeps the base's value;
- a tuple constant is not one object: compare it by value, never with ``is``;
- a dataclass's generated methods (``__init__`` first) stay interpreted Python, even in a
  compiled module: what a request makes many of is a plain class with ``__slots__`` and its
  own ``__init__`` (and a generic frozen dataclass does not compile at all).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
BUILD = ROOT / "build" / "mypyc"
GROUP = "stackyard"
"""mypyc's group: the shared extension is ``stackyard__mypyc``, a top-level module in src/."""

MODULES = (
    "stackyard/deadline.py",
    "stackyard/jsontext.py",
    "stackyard/gateway/access_log.py",
    "stackyard/gateway/answer.py",
    "stackyard/gateway/auth/step.py",
    "stackyard/gateway/balancer.py",
    "stackyard/gateway/cache.py",
    "stackyard/gateway/cors.py",
    "stackyard/gateway/docs.py",
    "stackyard/gateway/h1.py",
    "stackyard/gateway/headers.py",
    "stackyard/gateway/lambda_proxy.py",
    "stackyard/gateway/metrics.py",
    "stackyard/gateway/pool.py",
    "stackyard/gateway/proxy.py",
    "stackyard/gateway/quota.py",
    "stackyard/gateway/router.py",
    "stackyard/gateway/steps.py",
    "stackyard/gateway/throttle.py",
    "stackyard/gateway/tracecontext.py",
    "stackyard/gateway/tracing.py",
    "stackyard/gateway/upstream.py",
    "stackyard/gateway/usage.py",
    "stackyard/functions/channel_server.py",
    "stackyard/functions/events.py",
    "stackyard/functions/logs.py",
    "stackyard/functions/pool.py",
    "stackyard/functions/runtime.py",
    "stackyard/functions/runtime_api.py",
    "stackyard/functions/tracing.py",
    "stackyard/functions/worker.py",
    "stackyard/telemetry/metrics.py",
)


def extensions() -> list[Path]:
    """Every extension a build left in src/ (the modules' and the shared one)."""
    return sorted(SRC.rglob("*.so"))


def clean() -> None:
    for path in extensions():
        path.unlink()
    shutil.rmtree(BUILD, ignore_errors=True)


def build() -> None:
    from mypyc.build import mypycify
    from setuptools import setup

    clean()
    BUILD.mkdir(parents=True, exist_ok=True)
    os.chdir(SRC)  # module names come from the paths, relative to src/
    setup(
        name="stackyard-compiled",
        ext_modules=mypycify(list(MODULES), opt_level="3", group_name=GROUP, target_dir=str(BUILD)),
        script_args=[
            "--quiet",
            "build_ext",
            "--inplace",
            "--build-temp",
            str(BUILD / "temp"),
            "--build-lib",
            str(BUILD / "lib"),
        ],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clean", action="store_true", help="remove the extensions")
    parser.add_argument("--list", action="store_true", help="print the modules' sources")
    args = parser.parse_args()
    if args.list:
        print(" ".join(f"src/{module}" for module in MODULES))
        return 0
    if args.clean:
        clean()
        print("compiled modules removed: the interpreted code runs")
        return 0
    began = time.perf_counter()
    print(f"compiling {len(MODULES)} modules with mypyc (about a minute)...", flush=True)
    try:
        build()
    except (Exception, SystemExit) as exc:  # setuptools reports a failed build by SystemExit
        clean()
        print(f"could not compile ({exc}); the interpreted code runs", file=sys.stderr)
        return 0
    took = time.perf_counter() - began
    print(f"compiled {len(MODULES)} modules in {took:.0f} s ({len(extensions())} extensions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
