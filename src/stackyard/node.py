"""Builds a node from a stack: creates the components, starts them in order, stops them in reverse.

A node owns every long-lived part of a running stack: the registry (catalog, checks, KV, DNS),
the gateway (data plane), the control-plane HTTP server, the supervisor of service processes,
the function runtime (warm workers, async invocations, schedules), telemetry (spans and logs
stores with their ingest and query APIs) and the publisher that turns
registry changes into route-table snapshots for the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .asgi import ASGIApp
from .config import LoadedStack, StackConfig
from .console import TokenGuard, load_token
from .console.guard import needs_token
from .control import create_control_app
from .deploy import Change, DeployError, stack_diff
from .functions.runtime import FunctionRuntime
from .gateway import Gateway, tune_gc
from .gateway.access_log import AccessLogWriter
from .gateway.errors import InvalidRoute
from .gateway.tracing import Sampler
from .registry import DnsServer, Registry
from .routes import route_table
from .serving import AsgiServer
from .storage.buckets import Buckets
from .storage.buckets.notifications import stack_buckets, stack_rules
from .storage.dispatch import AwsDispatch
from .storage.managed import ManagedResources
from .storage.streams import Streams
from .storage.streams.api import TARGET
from .storage.streams.mappings import stream_mappings
from .storage.tables import Tables
from .storage.tables.api import DynamoDbApp
from .storage.tables.declared import create_requests
from .supervisor import LogWriter, Supervisor
from .telemetry import Telemetry
from .telemetry.instruments import MetricsRecorder

logger = logging.getLogger(__name__)
_json_text = json.encoder.encode_basestring_ascii  # a str as JSON, as json.dumps writes it


@dataclass(frozen=True)
class NodeSettings:
    """Where a node listens and keeps its data; the CLI's ``up`` flags map onto these."""

    data_dir: Path
    host: str = "127.0.0.1"
    gateway_port: int = 8080
    control_port: int = 4566
    dns_port: int = 8600
    stage: str = "dev"
    region: str = "us-east-1"
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def url(self, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}"

    @property
    def gateway_url(self) -> str:
        return self.url(self.gateway_port)

    @property
    def control_url(self) -> str:
        return self.url(self.control_port)


def standard_env(settings: NodeSettings, stack: StackConfig) -> dict[str, str]:
    """The environment every service and function gets (DESIGN.md, "Standard environment")."""
    control = settings.control_url
    return {
        "STACKYARD_URL": control,
        "STACKYARD_GATEWAY_URL": settings.gateway_url,
        "STACKYARD_STACK": stack.name,
        "STACKYARD_STAGE": settings.stage,
        "STACKYARD_PYTHON": sys.executable,
        "OTEL_EXPORTER_OTLP_ENDPOINT": control,
        "AWS_ENDPOINT_URL": control,
        "AWS_REGION": settings.region,
        "AWS_DEFAULT_REGION": settings.region,
        "AWS_ACCESS_KEY_ID": "stackyard",
        "AWS_SECRET_ACCESS_KEY": "stackyard",
        **settings.extra_env,
    }


class Node:
    """One running stack. ``start`` brings every component up; ``stop`` takes them down."""

    def __init__(self, stack: LoadedStack, settings: NodeSettings) -> None:
        self.stack = stack
        self.settings = settings
        data_dir = settings.data_dir
        self.registry = Registry(data_dir)
        self.dns = DnsServer(self.registry, host=settings.host, port=settings.dns_port)
        self.telemetry = Telemetry(data_dir, alarms=stack.config.alarms)
        env = standard_env(settings, stack.config)
        self.resources = ManagedResources(  # caches and databases; URLs injected by `uses`
            data_dir, stack.config.caches, stack.config.databases, host=settings.host
        )
        self.supervisor = Supervisor(
            self.resources.services(stack.config.services),
            self.registry,
            stack_root=stack.root,
            log_dir=data_dir / "logs",
            base_env=env,
            host=settings.host,
            on_record=self.telemetry.log_sink,
        )
        self.function_logs = LogWriter(data_dir / "logs", on_record=self.telemetry.log_sink)
        tracing = stack.config.tracing
        self.functions = FunctionRuntime(
            self.resources.functions(stack.config.functions),
            stack_root=stack.root,
            data_dir=data_dir,
            log_dir=data_dir / "logs",
            base_env=env,
            host=settings.host,
            region=settings.region,
            logs=self.function_logs,
            spans=self.telemetry,
            metrics=self.telemetry.metrics,
            sampler=Sampler(tracing.sample_ratio, tracing.reservoir),  # the gateway's rule
        )
        access = stack.config.api.access_log
        self.access_log = AccessLogWriter(
            data_dir / "logs" / "gateway-access.log" if access.file else None,
            forward=self._forward_access if access.central else None,
        )
        self.buckets = Buckets(  # declared buckets and those s3 events name; their notifications
            data_dir,
            region=settings.region,
            declared=stack_buckets(stack.config),
            notifications=stack_rules(stack.config.functions),
            functions=self.functions,
        )
        self.gateway = Gateway(
            buckets=self.buckets,  # the bucket integration's static sites
            access_log=self.access_log,
            functions=self.functions,
            spans=self.telemetry,
            sample_ratio=tracing.sample_ratio,
            reservoir=tracing.reservoir,
            metrics=self.telemetry.metrics,
            stage=settings.stage,
            api=stack.config.api,
            root=stack.root,
            data_dir=data_dir,
        )
        self.telemetry.add_collector(self._publish_gauges)
        self.gateway_server = AsgiServer(self.gateway.serve, settings.host, settings.gateway_port)
        # AWS APIs on the control port, by service name ("dynamodb", "s3"): see storage.dispatch
        self.aws_services: dict[str, ASGIApp] = {}
        self.tables = Tables(
            data_dir,
            declared=create_requests(stack.config.tables),
            region=settings.region,
            storage=stack.config.storage.tables,
        )
        self.aws_services["dynamodb"] = self.tables.app
        # the stream log lives with the tables (in their SQLite file or PostgreSQL schema)
        self.streams = Streams(self.tables, self.functions, stream_mappings(stack.config.functions))
        self.aws_services["dynamodbstreams"] = DynamoDbApp(self.streams.api.call, TARGET)
        self.aws_services["s3"] = self.buckets.app
        control: ASGIApp = AwsDispatch(create_control_app(self), self.aws_services)
        self.token = load_token(data_dir)  # asked of console and admin calls beyond loopback
        self.guarded = needs_token(settings.host)
        if self.guarded:
            control = TokenGuard(control, self.token)
        self.control_server = AsgiServer(
            control,
            settings.host,
            settings.control_port,
        )
        self.started_at = time.time()
        self._started = False
        self._publisher: asyncio.Task[None] | None = None
        self._stops: list[Callable[[], Awaitable[None]]] = []
        self._deploying = asyncio.Lock()
        self._retiring: frozenset[str] = frozenset()  # instance ids kept out of route tables

    @property
    def started(self) -> bool:
        return self._started

    def ready(self) -> bool:
        """Every component started and every service has its wanted number of passing instances."""
        if not self._started:
            return False
        return all(
            len(self.registry.passing(name)) >= self.supervisor.replicas(name)
            for name in self.stack.config.services
        )

    async def start(self) -> None:
        """Start in dependency order; on failure, stop whatever already started and re-raise."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        steps = [
            (self.registry.start, self.registry.stop),
            (self.telemetry.start, self._stop_telemetry),
            (self.dns.start, self.dns.stop),
            (self.tables.start, self.tables.stop),
            (self.resources.start, self.resources.stop),
            (self.access_log.start, self.access_log.stop),
            (self.gateway.start, self.gateway.stop),
            (self.buckets.start, self.buckets.stop),
            (self.functions.start, self.functions.stop),
            (self.streams.start, self.streams.stop),
            (self._start_publisher, self._stop_publisher),
            (self.control_server.start, self.control_server.stop),
            (self.gateway_server.start, self.gateway_server.stop),
            (self.supervisor.start, self.supervisor.stop),
        ]
        try:
            for start, stop in steps:
                await start()
                self._stops.append(stop)
        except BaseException:
            await self.stop()
            raise
        self._started = True
        tune_gc()  # long-lived start-up objects out of the collector's way (gateway p99)

    async def stop(self) -> None:
        """Stop in reverse order; one failing component does not keep the others running."""
        self._started = False
        for stop in reversed(self._stops):
            try:
                await stop()
            except Exception:
                logger.exception("error while stopping %s", getattr(stop, "__qualname__", stop))
        self._stops = []

    async def wait_ready(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait until ``ready()``; False if ``timeout`` passes first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        index = self.registry.index
        while not self.ready():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            index = await self.registry.wait_for_change(index, min(remaining, 1.0))
        return True

    async def deploy(
        self,
        stack: LoadedStack,
        *,
        dry_run: bool = False,
        timeout: float = 60.0,  # noqa: ASYNC109
    ) -> list[Change]:
        """Apply an edited stack to the running node; returns what changed.

        In an order that keeps every request answered: (1) new instances of new and changed
        services start beside the old ones, and the deploy waits until they pass their health
        checks (else they are stopped again and :class:`DeployError` is raised with nothing
        changed); (2) new and changed functions get warm pools, old pools drain; (3) the
        gateway's API settings and route table swap in one step, without the instances being
        replaced; (4) once no request is in flight to those, they and removed services stop.
        """
        if stack.root != self.stack.root:
            raise DeployError(
                f"deploy {stack.file} from the folder the node runs ({self.stack.root})"
            )
        changes = stack_diff(self.stack.config, stack.config)
        try:  # bad schemas or templates: refused before anything changes
            table = route_table(stack.config, self.registry, 0, self.settings.stage)
            self.gateway.content.check(table.routes)
        except InvalidRoute as exc:
            raise DeployError(str(exc)) from exc
        if dry_run or not changes:
            return changes
        async with self._deploying:
            rollout = await self.supervisor.roll_out(self.resources.services(stack.config.services))
            try:
                await self._until_passing(rollout.started_ids, timeout)
            except BaseException:
                await self.supervisor.roll_back(rollout)
                raise
            await self.functions.apply(self.resources.functions(stack.config.functions))
            await self.buckets.apply(
                stack_buckets(stack.config), stack_rules(stack.config.functions)
            )
            self.stack = stack
            self._retiring = frozenset(i.instance_id for i in rollout.replaced)
            self.gateway.configure(stack.config.api)
            self._update_routes()
            await self._until_idle(self._retiring, timeout=10.0)
            await self.supervisor.retire(rollout)
            self._retiring = frozenset()
        return changes

    async def _until_passing(
        self,
        wanted: Mapping[str, set[str]],
        timeout: float,  # noqa: ASYNC109
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        index = self.registry.index
        while True:
            missing = {
                name: ids - {ep.instance_id for ep in self.registry.passing(name)}
                for name, ids in wanted.items()
            }
            missing = {name: ids for name, ids in missing.items() if ids}
            if not missing:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                names = ", ".join(sorted(i for ids in missing.values() for i in ids))
                raise DeployError(f"new instances did not pass their health checks: {names}")
            index = await self.registry.wait_for_change(index, min(remaining, 1.0))

    async def _until_idle(
        self,
        instance_ids: Collection[str],
        timeout: float,  # noqa: ASYNC109
    ) -> None:
        """Wait until the gateway has no request in flight to ``instance_ids``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and any(  # noqa: ASYNC110 (in-flight counters)
            state.in_flight
            for key, state in self.gateway.endpoint_state_items()
            if key[0] in instance_ids
        ):
            await asyncio.sleep(0.02)

    def _update_routes(self, index: int | None = None) -> None:
        self.gateway.update(
            route_table(
                self.stack.config,
                self.registry,
                self.registry.index if index is None else index,
                self.settings.stage,
                exclude=self._retiring,
            )
        )

    def _forward_access(self, record: dict[str, Any], line: str) -> None:
        """An access record into the central logs (searchable by correlation id, trace id):
        its JSON line with a ``msg`` first."""
        message = f"{record['method']} {record['path']} {record['status']}"
        self.telemetry.log_sink(
            {
                "time": record["time"],
                "service": "gateway",
                "instance": "access",
                "stream": "stdout",
                "message": f'{{"msg":{_json_text(message)},{line[1:]}',
            }
        )

    def _publish_gauges(self, metrics: MetricsRecorder) -> None:
        """Instance health and function concurrency, sampled before every metrics flush."""
        for name in self.stack.config.services:
            for entry in self.registry.health(name):
                labels = {"service": name, "instance": entry.registration.id}
                metrics.set("instance_healthy", labels, 1.0 if entry.status == "passing" else 0.0)
        for name in self.stack.config.functions:
            busy = self.functions.status(name).busy
            metrics.set("function_concurrent_executions", {"function": name}, float(busy))

    async def _stop_telemetry(self) -> None:
        self.function_logs.close()
        await self.telemetry.stop()

    async def _start_publisher(self) -> None:
        self._update_routes()
        self._publisher = asyncio.create_task(self._publish_routes(), name="route-publisher")

    async def _stop_publisher(self) -> None:
        if self._publisher is not None:
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
            self._publisher = None

    async def _publish_routes(self) -> None:
        """Publish a new route table on every registry change (the in-process 'watch')."""
        index = self.registry.index
        while True:
            index = await self.registry.wait_for_change(index, 30.0)
            try:
                self._update_routes(index)
            except Exception:
                logger.exception("could not publish route table %d", index)
