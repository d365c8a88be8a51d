"""The Python runtime's trace header: in ``os.environ`` for the handler, without glibc's setenv
keeping every value it was ever given."""

from __future__ import annotations

import json
import subprocess
import sys

SETS = 100_000

# Sets a new trace header SETS times the way MODE says, then reports how much the process grew
# and what Python code and the C environment see.
_PROBE = """
import ctypes, json, os, sys
from stackyard.functions.bootstrap import TRACE_VARIABLE, trace_setter

def rss_kb():
    with open("/proc/self/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0])

mode, sets = sys.argv[1], int(sys.argv[2])
if mode == "setter":
    set_trace = trace_setter(os.environ)
else:
    def set_trace(value):
        os.environ[TRACE_VARIABLE] = value
set_trace("Root=1-00000000-000000000000000000000000;Parent=0000000000000001;Sampled=1")
before = rss_kb()
for i in range(sets):
    set_trace(f"Root=1-5759e988-bd862e3fe1be46a9{i:08x};Parent=53995c3f42cd8ad8;Sampled=1")
grown = rss_kb() - before
libc = ctypes.CDLL(None)
libc.getenv.restype = ctypes.c_char_p
seen = {"environ": os.environ.get(TRACE_VARIABLE), "getenv": os.getenv(TRACE_VARIABLE),
        "c": (libc.getenv(TRACE_VARIABLE.encode()) or b"").decode() or None}
set_trace("")
print(json.dumps({"grown_kb": grown, "seen": seen, "after_removal": os.getenv(TRACE_VARIABLE)}))
"""


def _probe(mode: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode, str(SETS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_trace_header_is_in_os_environ_and_a_new_one_each_time_costs_no_memory() -> None:
    last = f"Root=1-5759e988-bd862e3fe1be46a9{SETS - 1:08x};Parent=53995c3f42cd8ad8;Sampled=1"
    setter = _probe("setter")
    assert setter["seen"] == {"environ": last, "getenv": last, "c": None}
    assert setter["after_removal"] is None
    assert isinstance(setter["grown_kb"], int) and setter["grown_kb"] < 2_000
    # what os.environ assignment (setenv) costs over as many invocations: the values stay
    plain = _probe("environ")
    assert plain["seen"] == {"environ": last, "getenv": last, "c": last}
    assert isinstance(plain["grown_kb"], int) and plain["grown_kb"] > 5 * setter["grown_kb"] + 8_000
