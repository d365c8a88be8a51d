"""One supervised instance: its lifecycle loop, restart backoff, catalog registration and status.

A :class:`ManagedInstance` is driven by one task (``run``) owned by the ``Supervisor``. Each
turn of its loop spawns the process, registers it in the catalog with a check derived from the
service's ``HealthConfig``, pumps its output into the logs, and waits for either the process to
exit or a request (``stop`` / ``restart``). An unexpected exit deregisters the instance at
once, SIGKILLs what is left of its process group, and restarts it after an exponential backoff
that resets once an instance has stayed up for ``RestartPolicy.reset_after`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

from ..config.models import HealthConfig, ServiceConfig
from ..registry.base import Catalog
from ..registry.models import CheckSpec, Health, ServiceRegistration
from .errors import SpawnError
from .logs import LogWriter, pump
from .process import InstanceProcess, instance_env

logger = logging.getLogger(__name__)

_DRAIN_TIMEOUT = 1.0
MANAGED = "stackyard"  # meta["managed"] of the registrations the supervisor makes

Request = Literal["stop", "restart"]
Outcome = Literal["stop", "restart", "exited", "failed"]


class InstanceState(StrEnum):
    STARTING = "starting"  # process spawned, its check not yet seen passing
    RUNNING = "running"  # process up and its check has passed since it was spawned
    BACKOFF = "backoff"  # process exited; waiting before the next start
    STOPPED = "stopped"  # stopped on request
    FAILED = "failed"  # the command could not be spawned; retried with backoff


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential backoff between restarts of a crashing instance."""

    initial_delay: float = 0.1
    max_delay: float = 30.0
    factor: float = 2.0
    reset_after: float = 10.0  # an instance up this long restarts after initial_delay again


@dataclass(frozen=True)
class InstanceStatus:
    service: str
    instance_id: str
    pid: int | None
    port: int
    state: InstanceState
    restarts: int
    started_at: float | None  # Unix time of the current process's start
    last_exit_code: int | None


def check_for(health: HealthConfig, instance_id: str, host: str, port: int) -> CheckSpec:
    """The catalog check of an instance, from its service's health settings."""
    kind = health.kind
    if kind == "http":
        target = f"http://{_authority(host, port)}{health.http or '/'}"
    elif kind == "tcp":
        target = _authority(host, port)
    else:
        target = ""
    return CheckSpec(
        check_id=f"service:{instance_id}",
        kind=kind,
        name=f"{kind} check of {instance_id}",
        target=target,
        interval=health.interval,
        timeout=health.timeout,
        ttl=health.ttl if kind == "ttl" else None,
        success_before_passing=health.healthy_threshold,
        failures_before_critical=health.unhealthy_threshold,
        deregister_after=health.deregister_after,
        initial_status=Health.CRITICAL,
    )


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class InstanceDeps:
    """What every instance shares, handed down by the Supervisor."""

    catalog: Catalog
    writer: LogWriter
    stack_root: Path
    base_env: Mapping[str, str]
    host: str
    policy: RestartPolicy
    choose_port: Callable[[str, int | None], int]  # (instance_id, previous port) -> port


class ManagedInstance:
    """State and lifecycle loop of one instance (``<service>-<index>``)."""

    def __init__(self, service: str, index: int, config: ServiceConfig, deps: InstanceDeps):
        self.service = service
        self.index = index
        self.instance_id = f"{service}-{index}"
        self.config = config
        self._deps = deps
        self.port: int = deps.choose_port(self.instance_id, None)
        self.state = InstanceState.STARTING
        self.restarts = 0
        self.started_at: float | None = None
        self.last_exit_code: int | None = None
        self.process: InstanceProcess | None = None
        self.spawned = asyncio.Event()  # set after each spawn attempt (cleared by restart)
        self._request: Request | None = None
        self._wake = asyncio.Event()
        self._seen_passing = False
        self._started_mono = 0.0

    # --- requests (from the Supervisor) -----------------------------------------------------

    def request_stop(self) -> None:
        self._request = "stop"
        self._wake.set()

    def _stop_requested(self) -> bool:
        return self._request == "stop"

    def request_restart(self) -> None:
        if self._request != "stop":
            self._request = "restart"
            self.spawned.clear()
            self._wake.set()

    # --- status -----------------------------------------------------------------------------

    def status(self) -> InstanceStatus:
        return InstanceStatus(
            service=self.service,
            instance_id=self.instance_id,
            pid=self.process.pid if self.process is not None else None,
            port=self.port,
            state=self._current_state(),
            restarts=self.restarts,
            started_at=self.started_at,
            last_exit_code=self.last_exit_code,
        )

    def _current_state(self) -> InstanceState:
        if self.state is InstanceState.STARTING and self.process is not None:
            if not self._seen_passing:
                try:
                    entries = self._deps.catalog.health(self.service)
                except Exception:  # a closing catalog must not break a status page
                    entries = []
                self._seen_passing = any(
                    h.registration.id == self.instance_id and h.status is Health.PASSING
                    for h in entries
                )
            if self._seen_passing:
                return InstanceState.RUNNING
        return self.state

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Keep the instance running until ``request_stop``; never leaves its processes behind."""
        policy = self._deps.policy
        delay = policy.initial_delay
        try:
            while not self._stop_requested():
                self._request = None
                self._wake.clear()
                outcome = await self._attempt()
                if outcome == "stop":
                    break
                if outcome == "restart":
                    self.restarts += 1
                    delay = policy.initial_delay
                    continue
                if time.monotonic() - self._started_mono >= policy.reset_after:
                    delay = policy.initial_delay
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                if self._stop_requested():
                    break
                delay = min(delay * policy.factor, policy.max_delay)
                self.restarts += 1
        finally:
            if self.process is not None:
                self.process.kill_group()
                self.process = None
            self.state = InstanceState.STOPPED
            self.spawned.set()

    async def _attempt(self) -> Outcome:
        """One process lifetime: spawn, register, wait for exit or a request."""
        self.port = self._deps.choose_port(self.instance_id, self.port)
        env = instance_env(
            base_env=self._deps.base_env,
            service_env=self.config.env,
            service=self.service,
            instance_id=self.instance_id,
            port=self.port,
        )
        cwd = self._deps.stack_root / (self.config.cwd or ".")
        self.state = InstanceState.STARTING
        self._started_mono = time.monotonic()
        try:
            process = await InstanceProcess.spawn(self.config.command, cwd=cwd, env=env)
        except SpawnError as exc:
            logger.error("instance %s: %s", self.instance_id, exc)
            self.state = InstanceState.FAILED
            self.spawned.set()
            return "failed"
        self.process, self.started_at, self._seen_passing = process, time.time(), False
        pumps = [
            asyncio.create_task(pump(process.stdout, self._emitter("stdout"))),
            asyncio.create_task(pump(process.stderr, self._emitter("stderr"))),
        ]
        try:
            await self._register(process.pid)
            self.spawned.set()
            outcome = await self._wait(process)
            await _drain(pumps)
            return outcome
        finally:
            process.kill_group()
            for task in pumps:
                task.cancel()
            self.process = None

    async def _wait(self, process: InstanceProcess) -> Outcome:
        exited = asyncio.create_task(process.wait())
        woken = asyncio.create_task(self._wake.wait())
        try:
            await asyncio.wait({exited, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            if not exited.done():
                exited.cancel()
        if exited.done() and not exited.cancelled():
            self.state = InstanceState.BACKOFF
            await self._deregister()  # first, so the gateway stops sending traffic
            self.last_exit_code = await process.kill_remaining()  # and what it left behind
            logger.warning("instance %s exited with code %s", self.instance_id, self.last_exit_code)
            return "exited"
        await self._deregister()
        self.last_exit_code = await process.stop(self.config.stop_grace)
        return self._request or "stop"

    def _emitter(self, stream: Literal["stdout", "stderr"]) -> Callable[[str], None]:
        writer, service, instance_id = self._deps.writer, self.service, self.instance_id

        def emit(line: str) -> None:
            writer.write(service, instance_id, stream, line)

        return emit

    async def _register(self, pid: int) -> None:
        host = self._deps.host
        registration = ServiceRegistration(
            id=self.instance_id,
            name=self.service,
            address=host,
            port=self.port,
            tags=(),
            meta={"pid": str(pid), "managed": MANAGED},
            checks=(check_for(self.config.health, self.instance_id, host, self.port),),
        )
        try:
            await self._deps.catalog.register(registration)
        except Exception:
            logger.exception("cannot register instance %s", self.instance_id)

    async def _deregister(self) -> None:
        try:
            await self._deps.catalog.deregister(self.instance_id)
        except Exception:
            logger.exception("cannot deregister instance %s", self.instance_id)


async def _drain(pumps: list[asyncio.Task[None]]) -> None:
    """Let the output pumps reach EOF (bounded: an escaped grandchild may hold the pipe)."""
    _, pending = await asyncio.wait(pumps, timeout=_DRAIN_TIMEOUT)
    for task in pending:
        task.cancel()
    for result in await asyncio.gather(*pumps, return_exceptions=True):
        if isinstance(result, Exception):
            logger.error("output pump failed", exc_info=result)
