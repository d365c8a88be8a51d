"""The Supervisor: keeps ``replicas`` instances of every service running.

It owns one task per instance (see ``instance.ManagedInstance.run``), the port assignment of
the instances (a port is kept across restarts while it is still free) and the log writer.
``start`` returns once every instance has been spawned (health is the registry's business);
``stop`` stops every instance in parallel (SIGTERM, SIGKILL after ``stop_grace``), deregisters
them and leaves no task or process behind, even when ``stop`` itself is cancelled.
A deploy changes the services in two halves (``roll_out`` starts the new instances beside the
old ones; ``retire`` stops the replaced and removed ones, or ``roll_back`` the new ones).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..config.models import ServiceConfig
from ..registry.base import Catalog
from ..serving import free_port, port_is_free
from .errors import SupervisorStateError, UnknownInstanceError, UnknownServiceError
from .instance import MANAGED, InstanceDeps, InstanceStatus, ManagedInstance, RestartPolicy
from .logs import LogWriter, RecordSink

logger = logging.getLogger(__name__)

_STOP_MARGIN = 5.0  # beyond the longest stop_grace before stop() cancels an instance task


@dataclass(frozen=True)
class Rollout:
    """A deploy in progress: instances ``started`` for new or changed services, the instances
    they replace, the services being ``removed`` and the definitions before the change."""

    started: tuple[ManagedInstance, ...]
    replaced: tuple[ManagedInstance, ...]
    removed: tuple[str, ...]
    previous: Mapping[str, ServiceConfig]

    @property
    def started_ids(self) -> dict[str, set[str]]:
        """Instance ids started, by service."""
        out: dict[str, set[str]] = {}
        for instance in self.started:
            out.setdefault(instance.service, set()).add(instance.instance_id)
        return out


class Supervisor:
    """Runs the services of a stack as supervised OS processes registered in a catalog."""

    def __init__(
        self,
        services: Mapping[str, ServiceConfig],
        catalog: Catalog,
        *,
        stack_root: Path,
        log_dir: Path,
        base_env: Mapping[str, str],
        host: str = "127.0.0.1",
        restart_policy: RestartPolicy | None = None,
        on_record: RecordSink | None = None,
    ) -> None:
        self._services = dict(services)
        self._host = host
        self._writer = LogWriter(log_dir, on_record=on_record)
        self._deps = InstanceDeps(
            catalog=catalog,
            writer=self._writer,
            stack_root=stack_root,
            base_env=dict(base_env),
            host=host,
            policy=restart_policy or RestartPolicy(),
            choose_port=self._choose_port,
        )
        self._instances: dict[str, ManagedInstance] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._ports: dict[str, int] = {}
        self._scaled: dict[str, int] = {}  # replicas set by scale(), until a deploy changes it
        self._phase = "new"  # new → started → stopped

    @property
    def log_dir(self) -> Path:
        return self._writer.log_dir

    @property
    def host(self) -> str:
        """The address the instances listen on."""
        return self._host

    def services(self) -> list[str]:
        """The names of the supervised services."""
        return list(self._services)

    def replicas(self, service: str) -> int:
        """How many instances of ``service`` are wanted: the last ``scale``, else the stack's."""
        if service not in self._services:
            raise UnknownServiceError(f"no service {service!r}")
        return self._scaled.get(service, self._services[service].replicas)

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Spawn every instance of every service; returns once each has been spawned."""
        if self._phase != "new":
            raise SupervisorStateError(f"cannot start a supervisor that is {self._phase}")
        self._phase = "started"
        try:
            await self._forget_stale_registrations()
            added = [
                self._add(name, index)
                for name, config in self._services.items()
                for index in range(1, config.replicas + 1)
            ]
            await self._until_spawned(added)
        except BaseException:  # cancelled while starting: the node will not call stop()
            self._phase = "stopped"
            for task in self._tasks.values():
                task.cancel()  # each task's finally SIGKILLs its process group
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            self._writer.close()
            raise

    async def stop(self) -> None:
        """Stop every instance in parallel and deregister them; idempotent."""
        if self._phase == "stopped":
            return
        self._phase = "stopped"
        try:
            await self._stop_instances(list(self._instances.values()))
        finally:
            self._writer.close()

    def status(self) -> list[InstanceStatus]:
        """One entry per instance, by service then instance number."""
        ordered = sorted(self._instances.values(), key=lambda i: (i.service, i.index))
        return [instance.status() for instance in ordered]

    async def restart_instance(self, instance_id: str) -> None:
        """Stop one instance gracefully and start it again at once (no backoff)."""
        self._require_started()
        instance = self._instances.get(instance_id)
        if instance is None or instance_id not in self._tasks:
            raise UnknownInstanceError(f"no instance {instance_id!r}")
        instance.request_restart()
        await self._until_spawned([instance])

    async def scale(self, service: str, replicas: int) -> None:
        """Run ``replicas`` instances of ``service``: start missing ones or stop the highest."""
        self._require_started()
        if service not in self._services:
            raise UnknownServiceError(f"no service {service!r}")
        if replicas < 0:
            raise ValueError("replicas must be 0 or more")
        self._scaled[service] = replicas
        current = sorted(
            (i for i in self._instances.values() if i.service == service), key=lambda i: i.index
        )
        if replicas < len(current):
            await self._stop_instances(current[replicas:], forget=True)
            return
        used = {i.index for i in current}
        free_indexes = (n for n in range(1, replicas + len(current) + 1) if n not in used)
        added = [self._add(service, next(free_indexes)) for _ in range(replicas - len(current))]
        await self._until_spawned(added)

    async def roll_out(self, services: Mapping[str, ServiceConfig]) -> Rollout:
        """First half of a deploy: spawn the instances of new services and new instances of
        changed ones (the old ones keep serving). ``retire`` finishes the change;
        ``roll_back`` undoes it."""
        self._require_started()
        old_configs = dict(self._services)
        changed = [n for n, c in services.items() if n in self._services and self._services[n] != c]
        added = [n for n in services if n not in self._services]
        removed = [n for n in self._services if n not in services]
        replaced = [i for i in self._instances.values() if i.service in changed]
        self._services.update({name: services[name] for name in (*changed, *added)})
        for name in (*changed, *added):
            self._scaled.pop(name, None)
        fresh: list[ManagedInstance] = []
        for name in (*changed, *added):
            used = {i.index for i in self._instances.values() if i.service == name}
            start = max(used, default=0) + 1
            fresh.extend(
                self._add(name, index) for index in range(start, start + services[name].replicas)
            )
        await self._until_spawned(fresh)
        return Rollout(tuple(fresh), tuple(replaced), tuple(removed), old_configs)

    async def retire(self, rollout: Rollout) -> None:
        """Second half: stop the replaced instances and every instance of removed services."""
        gone = [i for i in self._instances.values() if i.service in rollout.removed]
        await self._stop_instances([*rollout.replaced, *gone], forget=True)
        for name in rollout.removed:
            self._services.pop(name, None)
            self._scaled.pop(name, None)

    async def roll_back(self, rollout: Rollout) -> None:
        """Undo ``roll_out``: stop the instances it started, restore the old definitions."""
        await self._stop_instances(list(rollout.started), forget=True)
        self._services = dict(rollout.previous)

    # --- internals --------------------------------------------------------------------------

    def _require_started(self) -> None:
        if self._phase != "started":
            raise SupervisorStateError(f"the supervisor is {self._phase}")

    def _add(self, service: str, index: int) -> ManagedInstance:
        instance = ManagedInstance(service, index, self._services[service], self._deps)
        self._instances[instance.instance_id] = instance
        task = asyncio.create_task(instance.run(), name=f"supervise:{instance.instance_id}")
        task.add_done_callback(self._task_done)
        self._tasks[instance.instance_id] = task
        return instance

    async def _forget_stale_registrations(self) -> None:
        """Deregister what a previous run registered for our services (a persisted catalog).

        Only registrations marked ``managed`` whose id follows our ``<service>-<n>`` scheme;
        instances registered through the API are left alone.
        """
        catalog = self._deps.catalog
        for name in self._services:
            for entry in catalog.health(name):
                reg = entry.registration
                number = reg.id.removeprefix(f"{name}-")
                if reg.meta.get("managed") == MANAGED and number.isdigit():
                    try:
                        await catalog.deregister(reg.id)
                    except Exception:
                        logger.exception("cannot deregister stale instance %s", reg.id)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("supervision of %s failed", task.get_name(), exc_info=exc)

    async def _until_spawned(self, instances: list[ManagedInstance]) -> None:
        await asyncio.gather(*(instance.spawned.wait() for instance in instances))

    async def _stop_instances(self, instances: list[ManagedInstance], forget: bool = False) -> None:
        tasks = [self._tasks[i.instance_id] for i in instances if i.instance_id in self._tasks]
        for instance in instances:
            instance.request_stop()
        grace = max((i.config.stop_grace for i in instances), default=0.0)
        try:
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=grace + _STOP_MARGIN)
                for task in pending:
                    logger.error("%s did not stop in time; cancelling it", task.get_name())
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        except BaseException:
            for task in tasks:
                task.cancel()  # each task's finally SIGKILLs its process group
            raise
        finally:
            for instance in instances:
                self._tasks.pop(instance.instance_id, None)
                if forget:
                    self._instances.pop(instance.instance_id, None)
                    self._ports.pop(instance.instance_id, None)

    def _choose_port(self, instance_id: str, previous: int | None) -> int:
        """Keep ``previous`` while it is free; otherwise a fresh port no other instance holds."""
        taken = {port for owner, port in self._ports.items() if owner != instance_id}
        port = previous
        if port is None or port in taken or not port_is_free(self._host, port):
            port = free_port(self._host)
            while port in taken:
                port = free_port(self._host)
        self._ports[instance_id] = port
        return port
