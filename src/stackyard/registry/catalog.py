"""``Registry``: the service catalog with health state, its check tasks, the KV store and the
persistence behind them; the in-process implementation of ``Catalog``.

Indexes: one clock numbers every change (catalog, health and KV share it, like Consul's raft
index). ``Registry.index`` is the clock value of the last *catalog or health* change (what the
health and catalog endpoints report); ``Registry.kv.index`` that of the last KV change. Both only
grow, also across restarts (the clock is persisted and moved past every stored index on load).
A check's status change moves the index; a new output with the same status does not.
``Registry.history`` keeps the last transitions of every check in memory (see ``history``).

Lifecycle: ``start`` opens the store, reloads registrations (checks back at their initial
status) and KV entries and starts the check tasks; ``stop`` ends every task it started, releases
every blocking wait and closes the store (the last state stays readable; writes are refused).
Re-registering an ID replaces the old registration; a check that keeps its ID keeps its current
status (as Consul does).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from .checks import MAX_DURATION, CheckRunner, split_host_port
from .errors import InvalidRegistration, RegistryClosed
from .feed import ChangeFeed, IndexClock, Listener
from .history import HealthHistory
from .kv import KVStore
from .models import (
    CheckSpec,
    CheckState,
    Endpoint,
    Health,
    InstanceHealth,
    ServiceRegistration,
)
from .store import RegistryStore, StoredService

logger = logging.getLogger(__name__)


@dataclass
class _Instance:
    registration: ServiceRegistration
    create_index: int
    modify_index: int


@dataclass
class _Check:
    spec: CheckSpec
    service_id: str
    status: Health
    output: str
    modify_index: int

    def state(self) -> CheckState:
        return CheckState(self.spec, self.service_id, self.status, self.output, self.modify_index)


class Registry:
    """Service catalog + health checks + KV, persisted under ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._clock = IndexClock()
        self._store = RegistryStore(self.data_dir)
        self.kv = KVStore(self._clock, self._store)
        self.history = HealthHistory()
        self._feed = ChangeFeed()
        self._instances: dict[str, _Instance] = {}
        self._by_name: dict[str, set[str]] = {}
        self._checks: dict[str, _Check] = {}
        self._reapers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: CheckRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        if self._runner is not None:
            return
        snapshot = await self._store.open()
        self._instances.clear()
        self._by_name.clear()
        self._checks.clear()
        self._clock.at_least(snapshot.index)
        loaded = self._clock.advance()
        self._feed.reset(loaded)
        self.kv.load(snapshot.kv, loaded)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True, limit=256)
        )
        self._runner = CheckRunner(self._on_check_result, self._http_session)
        for stored in snapshot.services:
            self._install(stored.registration, stored.create_index, stored.modify_index, {})

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await runner.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._reapers.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
        try:
            await self._store.save_index(self._clock.value)
        finally:
            await self._store.close()
            self._feed.close()
            self.kv.close()

    # -- Catalog protocol ----------------------------------------------------------------

    @property
    def index(self) -> int:
        return self._feed.index

    async def register(self, registration: ServiceRegistration) -> None:
        """Add or replace the instance ``registration.id``; raises ``InvalidRegistration``."""
        self._require_running()
        validate_registration(registration)
        for spec in registration.checks:
            owner = self._checks.get(spec.check_id)
            if owner is not None and owner.service_id != registration.id:
                raise InvalidRegistration(
                    f"check ID {spec.check_id!r} already belongs to service {owner.service_id!r}",
                    "CheckID",
                )
        index = self._clock.advance()
        previous: dict[str, _Check] = {}
        old = self._instances.get(registration.id)
        if old is not None:
            for spec in old.registration.checks:
                check = self._drop_check(spec.check_id)
                if check is not None:
                    previous[spec.check_id] = check
            self._unindex(old.registration)
        create_index = old.create_index if old else index
        stored = self._install(registration, create_index, index, previous)
        pending = self._store.put_service(stored, index)
        self._feed.publish(index)
        await pending

    async def deregister(self, service_id: str) -> bool:
        self._require_running()
        inst = self._instances.pop(service_id, None)
        if inst is None:
            return False
        self._unindex(inst.registration)
        for spec in inst.registration.checks:
            check = self._drop_check(spec.check_id)
            if check is not None:
                self.history.record(check.spec.check_id, service_id, check.status, None, "")
        index = self._clock.advance()
        pending = self._store.delete_service(service_id, index)
        self._feed.publish(index)
        await pending
        return True

    async def update_ttl(self, check_id: str, status: Health, note: str = "") -> bool:
        """Report a TTL check's status; ``False`` if there is no TTL check with that ID."""
        check = self._checks.get(check_id)
        if check is None or check.spec.kind != "ttl" or self._runner is None:
            return False
        self._runner.ttl_touched(check_id)
        self._set_status(check, Health(status), note)
        return True

    def services(self) -> Mapping[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for name in sorted(self._by_name):
            tags: set[str] = set()
            for sid in self._by_name[name]:
                tags.update(self._instances[sid].registration.tags)
            out[name] = tuple(sorted(tags))
        return out

    def health(self, name: str) -> list[InstanceHealth]:
        return [
            self._health_of(self._instances[sid]) for sid in sorted(self._by_name.get(name, ()))
        ]

    def passing(self, name: str) -> list[Endpoint]:
        return [
            Endpoint(h.registration.id, h.registration.address, h.registration.port)
            for h in self.health(name)
            if h.status is Health.PASSING
        ]

    async def wait_for_change(self, index: int, timeout: float) -> int:  # noqa: ASYNC109
        return await self._feed.wait_for_change(index, timeout)

    # -- extras --------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(index)`` synchronously after each catalog/health change."""
        return self._feed.add_listener(listener)

    def instances(self) -> list[InstanceHealth]:
        return [self._health_of(self._instances[sid]) for sid in sorted(self._instances)]

    def instance(self, service_id: str) -> InstanceHealth | None:
        inst = self._instances.get(service_id)
        return self._health_of(inst) if inst is not None else None

    def check(self, check_id: str) -> CheckState | None:
        check = self._checks.get(check_id)
        return check.state() if check is not None else None

    # -- internals -----------------------------------------------------------------------

    def _require_running(self) -> None:
        if self._runner is None:
            raise RegistryClosed("registry is not started")

    def _http_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RegistryClosed("registry is not started")
        return self._session

    def _health_of(self, inst: _Instance) -> InstanceHealth:
        checks = tuple(
            self._checks[c.check_id].state()
            for c in inst.registration.checks
            if c.check_id in self._checks
        )
        return InstanceHealth(inst.registration, checks, inst.create_index, inst.modify_index)

    def _install(
        self,
        reg: ServiceRegistration,
        create_index: int,
        modify_index: int,
        previous: Mapping[str, _Check],
    ) -> StoredService:
        assert self._runner is not None
        self._instances[reg.id] = _Instance(reg, create_index, modify_index)
        self._by_name.setdefault(reg.name, set()).add(reg.id)
        for spec in reg.checks:
            prev = previous.get(spec.check_id)
            if prev is not None and prev.spec.kind == spec.kind:
                check = _Check(spec, reg.id, prev.status, prev.output, prev.modify_index)
            else:
                check = _Check(spec, reg.id, spec.initial_status, "", modify_index)
                self.history.record(spec.check_id, reg.id, None, check.status, "")
            self._checks[spec.check_id] = check
            self._runner.start(spec)
            self._update_reaper(check)
        return StoredService(reg, create_index, modify_index)

    def _unindex(self, reg: ServiceRegistration) -> None:
        ids = self._by_name.get(reg.name)
        if ids is not None:
            ids.discard(reg.id)
            if not ids:
                del self._by_name[reg.name]

    def _drop_check(self, check_id: str) -> _Check | None:
        if self._runner is not None:
            self._runner.stop(check_id)
        reaper = self._reapers.pop(check_id, None)
        if reaper is not None and reaper is not asyncio.current_task():
            reaper.cancel()
        return self._checks.pop(check_id, None)

    def _on_check_result(self, check_id: str, status: Health, output: str) -> None:
        check = self._checks.get(check_id)
        if check is not None:
            self._set_status(check, status, output)

    def _set_status(self, check: _Check, status: Health, output: str) -> None:
        check.output = output
        if check.status is status:
            return
        self.history.record(check.spec.check_id, check.service_id, check.status, status, output)
        check.status = status
        check.modify_index = self._clock.advance()
        self._update_reaper(check)
        self._feed.publish(check.modify_index)

    def _update_reaper(self, check: _Check) -> None:
        after = check.spec.deregister_after
        if not after:  # None or 0: never (Consul: only a positive duration counts)
            return
        check_id = check.spec.check_id
        reaper = self._reapers.get(check_id)
        if check.status is Health.CRITICAL:
            if reaper is None:
                task = asyncio.create_task(
                    self._reap(check_id, check.service_id, after),
                    name=f"registry-reap:{check_id}",
                )
                self._reapers[check_id] = task
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        elif reaper is not None:
            del self._reapers[check_id]
            reaper.cancel()

    async def _reap(self, check_id: str, service_id: str, after: float) -> None:
        await asyncio.sleep(after)
        if self._reapers.get(check_id) is asyncio.current_task():
            del self._reapers[check_id]
        logger.info("deregistering %s: check %s critical for %.3gs", service_id, check_id, after)
        try:
            await self.deregister(service_id)
        except Exception:
            logger.exception("could not deregister %s", service_id)


def validate_registration(reg: ServiceRegistration) -> None:
    """Raise ``InvalidRegistration`` naming the field if ``reg`` cannot be registered."""
    if not reg.name:
        raise InvalidRegistration("service name is required", "Name")
    if not reg.id:
        raise InvalidRegistration("service ID must not be empty", "ID")
    if not 0 <= reg.port <= 65535:
        raise InvalidRegistration(f"port out of range: {reg.port}", "Port")
    seen: set[str] = set()
    for spec in reg.checks:
        if not spec.check_id:
            raise InvalidRegistration("check ID must not be empty", "CheckID")
        if spec.check_id in seen:
            raise InvalidRegistration(f"duplicate check ID {spec.check_id!r}", "CheckID")
        seen.add(spec.check_id)
        _validate_check(spec)


def _validate_check(spec: CheckSpec) -> None:
    if spec.kind == "ttl":
        if spec.ttl is None or spec.ttl <= 0:
            raise InvalidRegistration("a TTL check needs a TTL > 0", "TTL")
    elif spec.kind == "http":
        if not spec.target.startswith(("http://", "https://")):
            raise InvalidRegistration(f"HTTP check URL must be http(s): {spec.target!r}", "HTTP")
    elif spec.kind == "tcp":
        try:
            split_host_port(spec.target)
        except ValueError as exc:
            raise InvalidRegistration(str(exc), "TCP") from exc
    else:
        raise InvalidRegistration(f"unsupported check kind {spec.kind!r}", "Check")
    for label, value in (
        ("Interval", spec.interval),
        ("Timeout", spec.timeout),
        ("TTL", spec.ttl or 0.0),
        ("DeregisterCriticalServiceAfter", spec.deregister_after or 0.0),
    ):
        if not value <= MAX_DURATION:  # also catches inf and nan
            raise InvalidRegistration(f"{label} must not exceed {MAX_DURATION:g}s", label)
    if spec.kind != "ttl" and spec.interval <= 0:
        raise InvalidRegistration("Interval must be > 0 for HTTP and TCP checks", "Interval")
    if spec.timeout <= 0:
        raise InvalidRegistration("Timeout must be > 0", "Timeout")
    if spec.success_before_passing < 0:
        raise InvalidRegistration("must not be negative", "SuccessBeforePassing")
    if spec.failures_before_critical < 0:
        raise InvalidRegistration("must not be negative", "FailuresBeforeCritical")
    if spec.deregister_after is not None and spec.deregister_after < 0:
        raise InvalidRegistration("must not be negative", "DeregisterCriticalServiceAfter")
