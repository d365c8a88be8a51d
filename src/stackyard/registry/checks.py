"""Health checks: the HTTP and TCP probes, TTL expiry, Consul's thresholds, and the tasks that run
them (one task per check, all owned by a ``CheckRunner``).

- HTTP: a request (GET by default) with the check's timeout through one shared
  ``aiohttp.ClientSession``; 2xx is passing, 429 warning, anything else or no answer critical.
- TCP: a connect to ``host:port`` within the timeout.
- TTL: critical ("TTL expired") when not refreshed within ``ttl``; refreshed by the registry
  through ``ttl_touched`` when a client reports pass/warn/fail.

Probing checks run their first probe at once, then every ``interval`` (not less than
``MIN_INTERVAL``). A result changes the reported status only after ``success_before_passing``
consecutive successes (passing or warning) or ``failures_before_critical`` consecutive failures;
0 means at once, as in Consul.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aiohttp

from .models import CheckSpec, Health

logger = logging.getLogger(__name__)

MIN_INTERVAL = 0.1
MAX_DURATION = 366 * 24 * 3600.0  # a longer interval, timeout or TTL is a mistake (or inf)
OUTPUT_LIMIT = 4096
USER_AGENT = "Stackyard Health Check"

Report = Callable[[str, Health, str], None]


class Thresholds:
    """Consecutive-result counting (Consul's ``StatusHandler``)."""

    def __init__(self, success_before_passing: int, failures_before_critical: int) -> None:
        self.success_before_passing = max(0, success_before_passing)
        self.failures_before_critical = max(0, failures_before_critical)
        self.successes = 0
        self.failures = 0

    def observe(self, status: Health) -> bool:
        """Count one result; return whether it may become the check's status."""
        if status is Health.CRITICAL:
            self.failures += 1
            self.successes = 0
            return self.failures >= self.failures_before_critical
        self.successes += 1
        self.failures = 0
        return self.successes >= self.success_before_passing


def split_host_port(target: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` → (host, port); ``ValueError`` if malformed."""
    host, sep, port_text = target.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"not host:port: {target!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"port out of range in {target!r}")
    return host, port


async def probe_http(session: aiohttp.ClientSession, spec: CheckSpec) -> tuple[Health, str]:
    what = f"HTTP {spec.method} {spec.target}"
    headers = {"User-Agent": USER_AGENT, "Accept": "text/plain, text/*, */*"}
    headers.update(dict(spec.headers))
    try:
        async with session.request(
            spec.method,
            spec.target,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=spec.timeout),
        ) as resp:
            body = await resp.content.read(OUTPUT_LIMIT)
            code, reason = resp.status, resp.reason or ""
    except TimeoutError:
        return Health.CRITICAL, f"{what}: timed out after {spec.timeout:g}s"
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return Health.CRITICAL, f"{what}: {type(exc).__name__}: {exc}"
    output = f"{what}: {code} {reason} Output: {body.decode('utf-8', 'replace')}"
    if 200 <= code < 300:
        return Health.PASSING, output
    if code == 429:
        return Health.WARNING, output
    return Health.CRITICAL, output


async def probe_tcp(spec: CheckSpec) -> tuple[Health, str]:
    what = f"TCP connect {spec.target}"
    try:
        host, port = split_host_port(spec.target)
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), spec.timeout)
    except TimeoutError:
        return Health.CRITICAL, f"{what}: timed out after {spec.timeout:g}s"
    except (OSError, ValueError) as exc:
        return Health.CRITICAL, f"{what}: {exc}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return Health.PASSING, f"{what}: Success"


class CheckRunner:
    """Runs one task per check and reports status changes through ``report``."""

    def __init__(self, report: Report, session: Callable[[], aiohttp.ClientSession]) -> None:
        self._report = report
        self._session = session
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._ttl_touch: dict[str, asyncio.Event] = {}
        self._all: set[asyncio.Task[None]] = set()

    def start(self, spec: CheckSpec) -> None:
        """Start (or restart) the task of ``spec``; a probing check probes at once."""
        self.stop(spec.check_id)
        if spec.kind == "ttl":
            touch = asyncio.Event()
            self._ttl_touch[spec.check_id] = touch
            coro = self._run_ttl(spec, touch)
        else:
            coro = self._run_probe(spec)
        task = asyncio.create_task(coro, name=f"registry-check:{spec.check_id}")
        self._tasks[spec.check_id] = task
        self._all.add(task)
        task.add_done_callback(self._finished)

    def stop(self, check_id: str) -> None:
        task = self._tasks.pop(check_id, None)
        self._ttl_touch.pop(check_id, None)
        if task is not None:
            task.cancel()

    def ttl_touched(self, check_id: str) -> None:
        """A TTL check was updated: restart its clock."""
        touch = self._ttl_touch.get(check_id)
        if touch is not None:
            touch.set()

    async def close(self) -> None:
        """Cancel every task and wait until all have ended."""
        self._tasks.clear()
        self._ttl_touch.clear()
        pending = list(self._all)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._all.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("health check task %s failed", task.get_name(), exc_info=task.exception())

    async def _run_probe(self, spec: CheckSpec) -> None:
        thresholds = Thresholds(spec.success_before_passing, spec.failures_before_critical)
        interval = max(spec.interval, MIN_INTERVAL)
        while True:
            if spec.kind == "http":
                status, output = await probe_http(self._session(), spec)
            else:
                status, output = await probe_tcp(spec)
            if thresholds.observe(status):
                self._report(spec.check_id, status, output)
            await asyncio.sleep(interval)

    async def _run_ttl(self, spec: CheckSpec, touch: asyncio.Event) -> None:
        ttl = spec.ttl if spec.ttl and spec.ttl > 0 else 30.0
        while True:
            try:  # not wait_for: on 3.11 it swallows a cancel that meets a touch
                async with asyncio.timeout(ttl):
                    await touch.wait()
            except TimeoutError:
                self._report(spec.check_id, Health.CRITICAL, "TTL expired")
                await touch.wait()
            touch.clear()
