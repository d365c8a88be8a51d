"""Built-in collectors: node process CPU and memory, read from ``/proc/self`` (``os.times`` and
``resource`` where ``/proc`` is missing). A collector is any ``Callable[[MetricsRecorder],
None]``; :class:`stackyard.telemetry.Telemetry` calls every registered collector before each
metrics flush (``Telemetry.add_collector``), which is how components publish gauges.

Published by :class:`ProcessCollector` (no labels): ``process_cpu_seconds_total`` (counter),
``process_cpu_utilization`` (gauge, 1.0 = one core busy over the last interval),
``process_resident_memory_bytes``, ``process_virtual_memory_bytes``, ``process_open_fds``,
``process_threads`` (gauges).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

from .instruments import MetricsRecorder

Collector = Callable[[MetricsRecorder], None]
_NO_LABELS: dict[str, str] = {}


class ProcessCollector:
    """CPU and memory of the current process."""

    def __init__(self, proc: Path = Path("/proc/self")) -> None:
        self.proc = proc
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._last_cpu: float | None = None
        self._last_time = 0.0

    def __call__(self, recorder: MetricsRecorder) -> None:
        times = os.times()
        cpu = times.user + times.system
        now = time.monotonic()
        if self._last_cpu is not None:
            recorder.count("process_cpu_seconds_total", _NO_LABELS, max(0.0, cpu - self._last_cpu))
            elapsed = now - self._last_time
            if elapsed > 0:
                recorder.set(
                    "process_cpu_utilization", _NO_LABELS, (cpu - self._last_cpu) / elapsed
                )
        else:
            recorder.count("process_cpu_seconds_total", _NO_LABELS, cpu)
        self._last_cpu, self._last_time = cpu, now
        stat = self._stat()
        if stat is not None:
            threads, vsize, rss = stat
            recorder.set("process_threads", _NO_LABELS, threads)
            recorder.set("process_virtual_memory_bytes", _NO_LABELS, vsize)
            recorder.set("process_resident_memory_bytes", _NO_LABELS, rss)
        else:  # no /proc: peak RSS is the best `resource` offers (KiB on Linux)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            recorder.set("process_resident_memory_bytes", _NO_LABELS, float(peak))
        try:
            fds = len(os.listdir(self.proc / "fd"))
        except OSError:
            return
        recorder.set("process_open_fds", _NO_LABELS, float(fds))

    def _stat(self) -> tuple[float, float, float] | None:
        try:
            text = (self.proc / "stat").read_text()
        except OSError:
            return None
        fields = text.rsplit(")", 1)[-1].split()
        try:  # fields after the command start at field 3 (state)
            threads, vsize, rss = int(fields[17]), int(fields[20]), int(fields[21])
        except (IndexError, ValueError):
            return None
        return float(threads), float(vsize), float(rss * self._page)
