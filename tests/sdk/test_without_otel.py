"""Without OpenTelemetry installed (imports of it blocked in a child process), ``setup()`` warns
once and logging, correlation and trace-context forwarding still work."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ImportError(f"blocked: {name}")
        return None

sys.meta_path.insert(0, Block())
import json, logging
from stackyard import sdk

handle = sdk.setup("plain")
headers = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
           "x-correlation-id": "c-1", "x-correlation-counter": "2"}
with sdk.server_span(headers, "GET /x"):
    logging.getLogger("app").info("inside")
    out = sdk.outbound_headers()
print(json.dumps({"tracing": handle.tracing, "warning": handle.warning, "out": out}))
"""


def test_setup_without_opentelemetry() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    warning, inside, result = (json.loads(line) for line in done.stdout.splitlines())
    assert warning["level"] == "warning" and "opentelemetry-api is not installed" in warning["msg"]
    assert inside["msg"] == "inside" and inside["correlation_id"] == "c-1"
    assert inside["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert result["tracing"] == "off"
    assert result["out"] == {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "x-correlation-id": "c-1",
        "x-correlation-counter": "3",
    }
